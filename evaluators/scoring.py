"""From embeddings to the metric row (pure numpy): what ``Evaluator.evaluate`` computes after
embedding, split out so it can be tested and timed without networks."""
from __future__ import annotations

import numpy as np

from evaluators import metrics as M

DIVERSITY_PAIRS = 300
MM_PAIRS = 10
# multimodality is "measured" when the 95% CI over texts is at most this share of its value,
# from at least MM_MIN_TEXTS texts (a percentile bootstrap over fewer resampling units covers far
# less than 95%: over 2 texts it is half their range)
MM_MAX_REL_CI = 0.25
MM_MIN_TEXTS = 10


def score_embeddings(text_emb: np.ndarray, motion_emb: np.ndarray,
                     ref_stats: tuple[np.ndarray, np.ndarray], pred_emotions: np.ndarray,
                     true_emotions: np.ndarray, mm_emb: np.ndarray | None = None,
                     repeats: int = 1, seed: int = 0, batch_size: int = 32,
                     ref_emb: np.ndarray | None = None, pool_emb: np.ndarray | None = None,
                     texts=None, pool_texts=None) -> dict:
    """Metric row from matched text/motion embeddings ``(n, D)``, the reference (mu, sigma),
    emotion predictions/labels ``(n,)`` and optional multimodality embeddings ``(texts, gens, D)``.
    ``ref_emb``: the reference embeddings themselves, for KID (``kid``; NaN without them).

    R-precision's distractors: without ``pool_emb`` (``r_precision_pool`` "subset", the
    reference protocol) each text ranks the motions of its batch of ``batch_size`` pairs, all
    from this subset.  With ``pool_emb`` (the embeddings of ``pool_texts``, e.g. every test
    caption of the stream; "stream") each motion ranks its own text (``texts[i]``) among
    ``batch_size - 1`` pool captions other than its own (:func:`evaluators.metrics.draw_distractors`,
    redrawn per repeat), so a motion that answers another scenario's caption of the same phrase
    is ranked below it.  Chance is ``k / batch_size`` either way.

    Each repeat ``r`` shuffles the pairs with ``seed + r`` before cutting R-precision batches of
    exactly ``batch_size`` (incomplete last batch dropped, matching score over the same pairs;
    fewer than ``batch_size`` pairs -> ValueError, never a smaller batch with another chance
    level) and draws new diversity/multimodality pairs (distinct pairs when the pool is smaller
    than the number of pairs, :func:`evaluators.metrics.pair_indices`).  ``chance_top{k}`` =
    ``k / batch_size`` is recorded with every row.

    Multimodality's spread over texts: each text's mean pair distance (averaged over the
    repeats), the 95% percentile-bootstrap half-width of their mean over texts
    (``multimodality_text_ci95``), and ``multimodality_measured`` = at least
    :data:`MM_MIN_TEXTS` texts and that half-width at most :data:`MM_MAX_REL_CI` of the value
    (else the texts x generations are too few to rank on it).
    """
    n = len(motion_emb)
    bs = int(batch_size)
    if pool_emb is not None and (texts is None or pool_texts is None
                                 or len(texts) != n or len(pool_texts) != len(pool_emb)):
        raise ValueError("a distractor pool needs texts (one per pair) and pool_texts (one per "
                         "pool embedding)")
    if n < bs:
        raise ValueError(f"R-precision needs at least {bs} pairs (one full batch), got {n}")
    n_div = M.max_pairs(n, DIVERSITY_PAIRS)
    fid = M.frechet_distance(*M.activation_statistics(motion_emb), *ref_stats)
    f1 = M.emotion_f1(pred_emotions, true_emotions)
    runs: dict[str, list[float]] = {k: [] for k in ("r_precision_top1", "r_precision_top2",
                                                    "r_precision_top3", "matching_score",
                                                    "diversity", "multimodality")}
    per_text = []
    for r in range(repeats):
        rng = np.random.default_rng(seed + r)
        perm = rng.permutation(n)[: (n // bs) * bs]
        if pool_emb is None:
            rp = M.r_precision(text_emb[perm], motion_emb[perm], top_k=3, batch_size=bs)
        else:
            drawn = M.draw_distractors(texts, pool_texts, bs - 1, rng)
            rp = M.r_precision_pooled(text_emb, motion_emb, pool_emb, drawn, top_k=3)
        for k in range(3):
            runs[f"r_precision_top{k + 1}"].append(float(rp[k]))
        runs["matching_score"].append(M.matching_score(text_emb[perm], motion_emb[perm]))
        runs["diversity"].append(M.diversity(motion_emb, n_div, seed=seed + r))
        if mm_emb is not None:
            per_text.append(M.multimodality_per_text(
                mm_emb, M.max_pairs(mm_emb.shape[1], MM_PAIRS), seed=seed + r))
            runs["multimodality"].append(M.multimodality(
                mm_emb, M.max_pairs(mm_emb.shape[1], MM_PAIRS), seed=seed + r))
        else:
            runs["multimodality"].append(float("nan"))
    out: dict = {"fid": fid, "emotion_f1": f1, "n": int(n), "r_precision_batch": int(bs),
                 "diversity_pairs": int(n_div), "repeats": int(repeats),
                 "r_precision_pool": "subset" if pool_emb is None else "stream",
                 **{f"chance_top{k}": k / bs for k in (1, 2, 3)}}
    out["kid"] = (M.kernel_inception_distance(motion_emb, ref_emb) if ref_emb is not None
                  else float("nan"))
    if mm_emb is not None:
        out["multimodality_pairs"] = int(M.max_pairs(mm_emb.shape[1], MM_PAIRS))
        out.update(mm_texts=int(mm_emb.shape[0]), mm_gens=int(mm_emb.shape[1]))
        out.update(multimodality_check(np.mean(per_text, axis=0), seed=seed))
    for k, vals in runs.items():
        out[k], out[f"{k}_ci95"] = M.mean_ci95(vals)
    # deterministic given the generations (no random part in their evaluation)
    out["fid_ci95"] = 0.0
    out["emotion_f1_ci95"] = 0.0
    out["kid_ci95"] = 0.0 if ref_emb is not None else float("nan")
    return out


def multimodality_check(per_text: np.ndarray, seed: int = 0) -> dict:
    """``multimodality_text_ci95`` (bootstrap over texts of the per-text distances ``(T,)``)
    and ``multimodality_measured`` (``T >= MM_MIN_TEXTS`` and half-width <=
    :data:`MM_MAX_REL_CI` x the mean)."""
    per_text = np.asarray(per_text, dtype=float).reshape(-1)
    value = float(np.mean(per_text))
    half = M.bootstrap_ci95(per_text, seed=seed)
    ok = per_text.size >= MM_MIN_TEXTS and np.isfinite(half) and half <= MM_MAX_REL_CI * abs(value)
    return {"multimodality_text_ci95": half, "multimodality_measured": bool(ok)}
