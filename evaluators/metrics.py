"""Text-to-motion metrics, computed exactly as the literature does (Guo et al. 2022 / T2M-GPT).

Pure numpy (scipy for the matrix square root, scikit-learn for weighted F1).  Every function
takes embeddings already produced by the evaluator: ``(N, D)`` float arrays, row ``i`` of the
text and motion embeddings being a matched pair.

- FID: Frechet distance between Gaussians fitted to motion embeddings (covariance rowvar=False).
- R-precision: in batches of ``batch_size`` (32) pairs, rank the batch's motions by Euclidean
  distance to each text; R@k = fraction of texts whose own motion is among the k nearest
  (cumulative).  An incomplete last batch is dropped, as the reference loaders do
  (``drop_last=True``); chance level is ``k / batch_size``.
- Matching score (MM-Dist): mean Euclidean distance of matched pairs.
- Diversity: mean distance between two independent random index sets (each without
  replacement) of ``n_pairs`` (300) embeddings, as the reference; when the pool is smaller than
  ``2 n_pairs`` (a 64-motion test subset), ``n_pairs`` *distinct* pairs ``i != j`` instead, so no
  embedding is ever compared with itself (:func:`pair_indices`).
- Multimodality: same within the generations of each text (``n_pairs`` = 10; 30 generations
  in the reference, distinct pairs when there are fewer generations than pairs).
- Repeated evaluation: mean and 95% CI = 1.96 * std / sqrt(R) (population std, as T2M-GPT).
- KID (Binkowski et al. 2018): unbiased MMD^2 between generated and reference embeddings with
  the cubic polynomial kernel ``k(x, y) = (x.y / D + 1)^3``; unlike FID it has no bias in the
  sample size (two samples of one distribution give ~0, sometimes below 0).
- Multimodality's uncertainty over texts: percentile bootstrap of the mean over texts
  (:func:`bootstrap_ci95`) of the per-text distances (:func:`multimodality_per_text`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import linalg

# The keys of every evaluation result (docs/CONTRACTS.md); "n" = number of generated motions.
METRIC_KEYS: tuple[str, ...] = (
    "fid", "r_precision_top1", "r_precision_top2", "r_precision_top3", "matching_score",
    "diversity", "multimodality", "emotion_f1", "kid", "n",
)
# "lower" = smaller is better.  Diversity/multimodality: higher, following the paper's Table 2
# arrows (the T2M literature reads diversity as "closer to ground truth is better").
METRIC_DIRECTIONS: dict[str, str] = {
    "fid": "lower", "r_precision_top1": "higher", "r_precision_top2": "higher",
    "r_precision_top3": "higher", "matching_score": "lower", "diversity": "higher",
    "multimodality": "higher", "emotion_f1": "higher", "kid": "lower",
}

__all__ = [
    "METRIC_KEYS", "METRIC_DIRECTIONS", "activation_statistics", "frechet_distance", "euclidean_distance_matrix", "r_precision",
    "matching_score", "diversity", "multimodality", "emotion_f1", "mean_ci95", "pair_indices",
    "max_pairs", "kernel_inception_distance", "multimodality_per_text", "bootstrap_ci95",
]


def _as_2d(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def activation_statistics(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` of embeddings ``(N, D)``, N >= 2."""
    emb = _as_2d(emb, "emb")
    if emb.shape[0] < 2:
        raise ValueError(f"need at least 2 embeddings for a covariance, got {emb.shape[0]}")
    return emb.mean(axis=0), np.cov(emb, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance ``|mu1-mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))`` between two Gaussians.

    If ``sqrtm(S1 S2)`` is not finite (near-singular product) it is retried with ``eps`` added to
    both diagonals; a complex result keeps its real part (numerical noise).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def kernel_inception_distance(x: np.ndarray, y: np.ndarray) -> float:
    """KID: unbiased MMD^2 of ``x (m, D)`` and ``y (n, D)`` (m, n >= 2) under the kernel
    ``k(a, b) = (a.b / D + 1)^3``: the mean of ``k`` over distinct pairs within ``x``, plus the
    same within ``y``, minus twice the mean over all ``x``-``y`` pairs.  Zero in expectation when
    both are samples of one distribution (a single estimate may be negative)."""
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x {x.shape} and y {y.shape} must have the same dimension")
    m, n = x.shape[0], y.shape[0]
    if min(m, n) < 2:
        raise ValueError(f"KID needs at least 2 embeddings per set, got {m} and {n}")
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances, ``(..., N, D) x (..., M, D) -> (..., N, M)`` (float64)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    sq = (a * a).sum(-1)[..., :, None] + (b * b).sum(-1)[..., None, :] - 2.0 * a @ np.swapaxes(b, -1, -2)
    return np.sqrt(np.maximum(sq, 0.0))


def _full_batches(n: int, batch_size: int) -> int:
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    if n < batch_size:
        raise ValueError(
            f"R-precision needs at least batch_size={batch_size} pairs, got {n}; pass a smaller "
            f"batch_size (chance level is then 1/batch_size)")
    return n // batch_size


def r_precision(text_emb: np.ndarray, motion_emb: np.ndarray, top_k: int = 3,
                batch_size: int = 32) -> np.ndarray:
    """R@1..R@top_k ``(top_k,)`` over the full batches of ``batch_size`` consecutive pairs.

    Ties are ranked by index (stable sort).  Raises ``ValueError`` if fewer than ``batch_size``
    pairs are given.  Shuffle the pairs beforehand to randomise batch composition.
    """
    t, m = _as_2d(text_emb, "text_emb"), _as_2d(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise ValueError(f"text_emb {t.shape} and motion_emb {m.shape} must have the same shape")
    if not 1 <= top_k <= batch_size:
        raise ValueError(f"top_k must be in 1..batch_size, got {top_k}")
    nb = _full_batches(t.shape[0], batch_size)
    n = nb * batch_size
    dist = euclidean_distance_matrix(t[:n].reshape(nb, batch_size, -1),
                                     m[:n].reshape(nb, batch_size, -1))      # (nb, bs, bs)
    order = np.argsort(dist, axis=-1, kind="stable")
    rank = np.argmax(order == np.arange(batch_size)[None, :, None], axis=-1)  # (nb, bs)
    rank = rank.reshape(-1)
    return np.array([(rank < k).mean() for k in range(1, top_k + 1)])


def draw_distractors(texts: Sequence[str], pool_texts: Sequence[str], n_distractors: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Indices ``(n, n_distractors)`` into ``pool_texts``: for each query text, distinct pool
    entries whose text differs from it (a repeated caption is never its own distractor).
    ValueError when a query has fewer eligible pool texts than asked for."""
    pool = np.asarray(list(pool_texts), dtype=object)
    out = np.empty((len(texts), n_distractors), dtype=np.int64)
    for i, text in enumerate(texts):
        ok = np.flatnonzero(pool != text)
        if len(ok) < n_distractors:
            raise ValueError(f"text {text!r} has {len(ok)} distinct pool texts, {n_distractors} "
                             f"distractors asked for; use a larger pool or a smaller batch")
        out[i] = rng.choice(ok, n_distractors, replace=False)
    return out


def r_precision_pooled(text_emb: np.ndarray, motion_emb: np.ndarray, pool_emb: np.ndarray,
                       distractors: np.ndarray, top_k: int = 3) -> np.ndarray:
    """R@1..R@top_k ``(top_k,)`` of motion -> text retrieval with drawn distractors: motion
    ``i`` ranks its own text ``text_emb[i]`` among itself and the ``B - 1`` pool texts
    ``pool_emb[distractors[i]]`` by Euclidean distance (rank = distractors strictly closer).
    Chance R@k = k / B, B = ``distractors.shape[1] + 1``, as in a batch of B pairs."""
    t, m = _as_2d(text_emb, "text_emb"), _as_2d(motion_emb, "motion_emb")
    p = _as_2d(pool_emb, "pool_emb")
    if t.shape != m.shape:
        raise ValueError(f"text_emb {t.shape} and motion_emb {m.shape} must have the same shape")
    distractors = np.asarray(distractors)
    if distractors.ndim != 2 or distractors.shape[0] != len(m):
        raise ValueError(f"distractors must be (n={len(m)}, B-1), got {distractors.shape}")
    if not 1 <= top_k <= distractors.shape[1] + 1:
        raise ValueError(f"top_k must be in 1..B, got {top_k}")
    own = np.linalg.norm(m - t, axis=1)                                     # (n,)
    other = np.linalg.norm(m[:, None, :] - p[distractors], axis=-1)         # (n, B-1)
    rank = (other < own[:, None]).sum(axis=1)
    return np.array([(rank < k).mean() for k in range(1, top_k + 1)])


def matching_score(text_emb: np.ndarray, motion_emb: np.ndarray) -> float:
    """MM-Dist: mean Euclidean distance between matched text and motion embeddings."""
    t, m = _as_2d(text_emb, "text_emb"), _as_2d(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise ValueError(f"text_emb {t.shape} and motion_emb {m.shape} must have the same shape")
    return float(np.linalg.norm(t - m, axis=1).mean())


def pair_indices(n: int, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(first, second)`` of ``n_pairs`` comparisons within a pool of ``n`` items.

    ``n >= 2 n_pairs`` (the reference's regime: 30 generations for 10 pairs, thousands of test
    motions for 300): the reference's two independent index sets, each without replacement (a
    pair is an item with itself with probability 1/n, as in T2M-GPT).  Fewer items:
    ``n_pairs`` distinct unordered pairs ``i < j`` drawn without replacement from the
    ``n (n - 1) / 2`` possible ones, so no item is compared with itself (with 3 generations and
    3 "pairs" the reference draw compares a third of them with themselves).
    ValueError when fewer distinct pairs exist than asked for.
    """
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    if n >= 2 * n_pairs:
        return rng.choice(n, n_pairs, replace=False), rng.choice(n, n_pairs, replace=False)
    total = n * (n - 1) // 2
    if total < n_pairs:
        raise ValueError(f"{n} items give only {total} distinct pairs, {n_pairs} asked for; "
                         f"use more items (or fewer pairs)")
    first, second = np.triu_indices(n, k=1)
    pick = rng.choice(total, n_pairs, replace=False)
    return first[pick], second[pick]


def max_pairs(n: int, n_pairs: int) -> int:
    """The largest number of comparisons <= ``n_pairs`` that :func:`pair_indices` can draw."""
    return n_pairs if n >= 2 * n_pairs else min(n_pairs, n * (n - 1) // 2)


def diversity(emb: np.ndarray, n_pairs: int = 300, seed: int = 0) -> float:
    """Mean distance between ``n_pairs`` random pairs (:func:`pair_indices`)."""
    emb = _as_2d(emb, "emb")
    first, second = pair_indices(emb.shape[0], n_pairs, np.random.default_rng(seed))
    return float(np.linalg.norm(emb[first] - emb[second], axis=1).mean())


def _multimodality_distances(emb: np.ndarray, n_pairs: int, seed: int) -> np.ndarray:
    """``(n_texts, n_pairs)`` distances of the pairs of generations of each text."""
    emb = np.asarray(emb, np.float64)
    if emb.ndim != 3:
        raise ValueError(f"emb must be (n_texts, n_gens, D), got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise ValueError("emb contains NaN or inf")
    first, second = pair_indices(emb.shape[1], n_pairs, np.random.default_rng(seed))
    return np.linalg.norm(emb[:, first] - emb[:, second], axis=2)


def multimodality(emb: np.ndarray, n_pairs: int = 10, seed: int = 0) -> float:
    """Mean distance between ``n_pairs`` random pairs of generations of the same text.

    ``emb``: ``(n_texts, n_gens, D)``; the same index pairs (:func:`pair_indices` over the
    generations) are used for every text.
    """
    return float(_multimodality_distances(emb, n_pairs, seed).mean())


def multimodality_per_text(emb: np.ndarray, n_pairs: int = 10, seed: int = 0) -> np.ndarray:
    """Per text ``(n_texts,)``: the mean distance of the pairs :func:`multimodality` draws
    (same seed, same pairs); their mean is :func:`multimodality`."""
    return _multimodality_distances(emb, n_pairs, seed).mean(axis=1)


def bootstrap_ci95(values: Sequence[float], n_boot: int = 2000, seed: int = 0) -> float:
    """Half-width ``(hi - lo) / 2`` of the 95% percentile-bootstrap CI of the mean of ``values``
    (``scipy.stats.bootstrap``, ``n_boot`` resamples, seeded).  NaN for fewer than 2 values
    (one text says nothing about the spread between texts)."""
    from scipy.stats import bootstrap

    v = np.asarray(values, np.float64).reshape(-1)
    if not np.isfinite(v).all():
        raise ValueError("values contain NaN or inf")
    if v.size < 2:
        return float("nan")
    if np.ptp(v) == 0.0:            # every resample has the same mean
        return 0.0
    ci = bootstrap((v,), np.mean, n_resamples=n_boot, method="percentile", vectorized=True,
                   random_state=np.random.default_rng(seed)).confidence_interval
    return float((ci.high - ci.low) / 2.0)


def emotion_f1(pred: Sequence[int], true: Sequence[int]) -> float:
    """Weighted F1 (scikit-learn, support-weighted over the classes present in ``true``/``pred``)."""
    from sklearn.metrics import f1_score

    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape or pred.ndim != 1 or pred.size == 0:
        raise ValueError(f"pred {pred.shape} and true {true.shape} must be equal non-empty 1-D arrays")
    return float(f1_score(true, pred, average="weighted", zero_division=0))


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% confidence half-width ``1.96 * std / sqrt(R)`` of R repeated evaluations."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise ValueError("no values")
    return float(v.mean()), float(1.96 * v.std() / np.sqrt(v.size))
