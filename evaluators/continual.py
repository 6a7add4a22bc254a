"""Continual-learning aggregates from the full accuracy matrices (the paper's Sec. 4.1).

A matrix ``r`` is ``(N, N)``: ``r[i, j]`` = metric on subset ``j``'s test set after training on
experience ``i`` (0-based here; the paper writes 1-based ``r_{i,j}``), for *all* ``j``, so the
upper triangle holds zero-shot scores on subsets not yet trained.  ``b`` (baseline) is the
metric of the model before any training on each subset (used by FWT).

Final averages (mean over j of the last row ``r[N-1, :]``):
  AF (fid), AR (r_precision_top1), AR3 (r_precision_top3), AD (diversity),
  AMM (multimodality), AWF (emotion_f1).
Transfer, all on top-1 R-precision and reported in percentage points (x100, as Table 2's FR):
  FR  = 100/(N-1) * sum_{j<N} (max_{k=j..N-1} r[k, j] - r[N, j])    (paper eq., 1-based)
  BWT = 100/(N-1) * sum_{j<N} (r[N, j] - r[j, j])
  FWT = 100/(N-1) * sum_{j>1} (r[j-1, j] - b[j])
With N = 1 (e.g. multi-task learning) FR, BWT and FWT are NaN; FWT is NaN without a baseline.
AKID (kid) is the final average of KID, beside AF.

Paired CIs over subsets (:func:`transfer_ci95`): FR, BWT and FWT are means of N-1 per-subset
terms (:func:`transfer_terms`); the 95% Student-t half-width of that mean, in points.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from evaluators.metrics import METRIC_KEYS

# aggregate -> (matrix key it averages, direction)
FINAL_AVERAGES: dict[str, str] = {
    "AF": "fid", "AR": "r_precision_top1", "AR3": "r_precision_top3", "AD": "diversity",
    "AMM": "multimodality", "AWF": "emotion_f1", "AKID": "kid",
}
TRANSFER_KEY = "r_precision_top1"
# "lower" = smaller is better.  AD/AMM follow the paper's Table 2 arrows (higher is better).
DIRECTIONS: dict[str, str] = {
    "AF": "lower", "AR": "higher", "AR3": "higher", "AD": "higher", "AMM": "higher",
    "AWF": "higher", "FR": "lower", "BWT": "higher", "FWT": "higher", "AKID": "lower",
}
AGGREGATE_KEYS: tuple[str, ...] = tuple(DIRECTIONS)

__all__ = ["aggregates", "run_aggregates", "final_average", "forgetting_rate", "backward_transfer",
           "forward_transfer", "validate_matrix", "needed_cells", "forgetting_floor",
           "empirical_forgetting_floor", "FLOOR_FILE", "DIRECTIONS", "AGGREGATE_KEYS", "FINAL_AVERAGES",
           "transfer_terms", "transfer_ci95"]


def needed_cells(n: int) -> np.ndarray:
    """``(N, N)`` bool: the cells every aggregate, FWT and the figures need, ``j <= i + 1``
    (0-based: everything trained so far plus the next subset, and the whole last row).  The
    runner evaluates only these unless ``--full-matrix``; the rest of the upper triangle is NaN."""
    i, j = np.indices((n, n))
    return (j <= i + 1) | (i == n - 1)


def validate_matrix(r: np.ndarray, name: str = "matrix") -> np.ndarray:
    """Return ``r`` as a float ``(N, N)`` array; raise ValueError if not square or if a cell of
    :func:`needed_cells` is NaN (cells above the first superdiagonal may be NaN: not evaluated).

    An all-NaN matrix (metric not computed, e.g. multimodality without repeats) is allowed.
    """
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty square (N, N) matrix, got shape {r.shape}")
    nan = ~np.isfinite(r)
    if nan.all():
        return r
    bad_cells = nan & needed_cells(r.shape[0])
    if bad_cells.any():
        bad = [tuple(int(v) + 1 for v in ij) for ij in np.argwhere(bad_cells)[:5]]
        raise ValueError(f"{name}: NaN/inf at (after, subset) = {bad} (1-based); every experience "
                         f"must be evaluated on every subset seen so far and the next one")
    return r


def final_average(r: np.ndarray) -> float:
    """Mean over subsets of the last row: ``1/N sum_j r[N, j]``."""
    r = validate_matrix(r)
    return float(r[-1].mean())


def forgetting_rate(r: np.ndarray) -> float:
    """``1/(N-1) sum_{j<N} (max_{k=j..N-1} r[k, j] - r[N, j])`` in the metric's units (NaN if N=1)."""
    r = validate_matrix(r)
    n = r.shape[0]
    if n < 2:
        return float("nan")
    prev = r[:-1, :-1]                                   # rows k = 0..N-2, cols j = 0..N-2
    lower = np.where(np.tril(np.ones_like(prev, dtype=bool)), prev, -np.inf)  # keep k >= j
    best = lower.max(axis=0)
    return float((best - r[-1, :-1]).mean())


def backward_transfer(r: np.ndarray) -> float:
    """``1/(N-1) sum_{j<N} (r[N, j] - r[j, j])`` (NaN if N=1)."""
    r = validate_matrix(r)
    n = r.shape[0]
    if n < 2:
        return float("nan")
    return float((r[-1, :-1] - np.diag(r)[:-1]).mean())


def forward_transfer(r: np.ndarray, baseline: np.ndarray | None) -> float:
    """``1/(N-1) sum_{j>1} (r[j-1, j] - b[j])`` (NaN if N=1 or no baseline)."""
    r = validate_matrix(r)
    n = r.shape[0]
    if n < 2 or baseline is None:
        return float("nan")
    b = np.asarray(baseline, dtype=np.float64).reshape(-1)
    if b.shape != (n,):
        raise ValueError(f"baseline: expected {n} values (one per subset), got shape {b.shape}")
    if not np.isfinite(b).all():
        raise ValueError("baseline contains NaN/inf")
    return float((np.diag(r, k=1) - b[1:]).mean())


def transfer_terms(r: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The per-subset terms ``(N-1,)`` whose means are FR, BWT and FWT (metric units):
    ``max_{k=j..N-1} r[k, j] - r[N, j]``, ``r[N, j] - r[j, j]`` (j < N) and ``r[j-1, j] - b[j]``
    (j > 1; NaN without a baseline).  Empty arrays for N = 1."""
    r = validate_matrix(r)
    n = r.shape[0]
    if n < 2:
        empty = np.zeros(0)
        return {"FR": empty, "BWT": empty, "FWT": empty}
    prev = r[:-1, :-1]
    best = np.where(np.tril(np.ones_like(prev, dtype=bool)), prev, -np.inf).max(axis=0)
    fwt = np.full(n - 1, np.nan)
    if baseline is not None:
        b = np.asarray(baseline, dtype=np.float64).reshape(-1)
        if b.shape != (n,):
            raise ValueError(f"baseline: expected {n} values (one per subset), got shape {b.shape}")
        fwt = np.diag(r, k=1) - b[1:]
    return {"FR": best - r[-1, :-1], "BWT": r[-1, :-1] - np.diag(r)[:-1], "FWT": fwt}


def transfer_ci95(r: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, float]:
    """Paired 95% CI half-widths of FR, BWT and FWT over subsets, in points (x100, as the
    aggregates): ``t_{0.975, m-1} * sd(terms, ddof=1) / sqrt(m)`` of the ``m = N-1`` per-subset
    terms (:func:`transfer_terms`; each pairs two cells of the same subset).  NaN with fewer
    than 2 terms (N < 3) or non-finite terms (FWT without a baseline)."""
    from scipy import stats

    out = {}
    for key, terms in transfer_terms(r, baseline).items():
        m = terms.size
        if m < 2 or not np.isfinite(terms).all():
            out[key] = float("nan")
            continue
        half = stats.t.ppf(0.975, m - 1) * terms.std(ddof=1) / np.sqrt(m)
        out[key] = float(100.0 * half)
    return out


def aggregates(matrices: Mapping[str, np.ndarray],
               baseline: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
    """All aggregates (keys :data:`AGGREGATE_KEYS`) from matrices keyed by METRIC_KEYS.

    A missing metric gives NaN for its average; FR/BWT/FWT need ``r_precision_top1``.
    """
    unknown = set(matrices) - set(METRIC_KEYS)
    if unknown:
        raise ValueError(f"unknown metric keys {sorted(unknown)}; expected some of {METRIC_KEYS}")
    checked = {k: validate_matrix(v, k) for k, v in matrices.items()}
    sizes = {v.shape[0] for v in checked.values()}
    if len(sizes) > 1:
        raise ValueError(f"matrices have different sizes {sorted(sizes)}")
    out: dict[str, float] = {}
    for agg, key in FINAL_AVERAGES.items():
        out[agg] = final_average(checked[key]) if key in checked else float("nan")
    r = checked.get(TRANSFER_KEY)
    b = None if baseline is None else baseline.get(TRANSFER_KEY)
    if r is None:
        out.update(FR=float("nan"), BWT=float("nan"), FWT=float("nan"))
    else:
        out["FR"] = 100.0 * forgetting_rate(r)
        out["BWT"] = 100.0 * backward_transfer(r)
        out["FWT"] = 100.0 * forward_transfer(r, b)
    return out


def run_aggregates(matrices: Mapping[str, np.ndarray],
                   baseline: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
    """:func:`aggregates` of square matrices; a run evaluated fewer times than it has subsets
    (one joint multi-task run: a single ``after_1`` row, ``(1, N)``) gets last-row averages
    only (NaN for a missing metric) and FR, BWT, FWT NaN."""
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in matrices.items()}
    if all(a.shape[0] == a.shape[1] for a in arrays.values()):
        return aggregates(matrices, baseline=baseline)
    out = {agg: float(np.mean(arrays[key][-1])) if key in arrays else float("nan")
           for agg, key in FINAL_AVERAGES.items()}
    out.update(FR=float("nan"), BWT=float("nan"), FWT=float("nan"))
    return out


def forgetting_floor(r: np.ndarray, n_test: int | np.ndarray, sims: int = 4000,
                     seed: int = 0) -> dict[str, float]:
    """What FR measures when nothing is forgotten, from the evaluation's own noise (in points).

    FR takes a max over rows ``k = j..N-1`` of noisy scores, so noise alone makes it positive.
    Null model: subset ``j``'s true top-1 R-precision is constant over rows, estimated by the
    mean of the observed ``r[k, j]``, ``k >= j`` (all rows from its own training on, including the
    last); each evaluated cell is a fresh draw ``Binomial(n_test_j, p_j) / n_test_j`` (each of
    the ``n_test_j`` test texts either retrieves its new generation or not; this binomial
    variance is an upper bound of the variance of R@1 averaged over reshuffled batches, so the
    floor is conservative).  ``sims`` simulated matrices give FR's null distribution: returns
    ``{"mean", "q95"}`` x 100 (percentage points, like FR).  NaN for N = 1.
    """
    r = validate_matrix(r)
    n = r.shape[0]
    if n < 2:
        return {"mean": float("nan"), "q95": float("nan")}
    sizes = np.broadcast_to(np.asarray(n_test, dtype=np.int64), (n,))
    if (sizes < 1).any():
        raise ValueError(f"n_test must be >= 1 per subset, got {sizes.tolist()}")
    rng = np.random.default_rng(seed)
    fr = np.zeros(sims)
    for j in range(n - 1):
        p = float(np.clip(np.nanmean(r[j:, j]), 0.0, 1.0))
        draws = rng.binomial(sizes[j], p, size=(sims, n - j)) / sizes[j]   # rows j..N-1
        fr += draws[:, :-1].max(axis=1) - draws[:, -1]
    fr *= 100.0 / (n - 1)
    return {"mean": float(fr.mean()), "q95": float(np.quantile(fr, 0.95))}


FLOOR_FILE = "fr_floor.json"     # RUN/<this>: the floor `l2emg floor` measured on a finished run


def empirical_forgetting_floor(draws: np.ndarray, sims: int = 4000, seed: int = 0) -> dict:
    """FR's no-forgetting floor measured from the evaluation's own noise (in points).

    ``draws`` is ``(G, N)``: the top-1 R-precision of *one* model (the run's final one) on each
    subset, evaluated ``G >= 2`` times with fresh generation seeds (the batch composition fixed,
    as in the run's own rows).  Column ``j``'s spread is what regenerating and rescoring alone
    moves a cell by.  Null model: every cell ``r[k, j]``, ``k >= j``, is an independent draw
    ``Normal(mu_j, sd_j^2)``, ``sd_j`` the sample std (ddof 1) of column ``j``; FR is a
    difference of cells, so ``mu_j`` drops out.  ``sims`` simulated matrices give FR's null
    distribution, as :func:`forgetting_floor` does from the binomial.  That binomial floor
    treats every test text as a fresh coin of the subset's mean rate in every row, an upper
    bound of the variance when some texts are easier than others; this one measures the
    spread, but of one model, so a later model that differs item by item with the same mean is
    counted as a change, not as noise.  Returns ``{"mean", "q95", "sd"}`` (mean and q95 x 100;
    ``sd`` per subset, the last NaN: FR never uses it); NaN for N = 1."""
    d = np.asarray(draws, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 1:
        raise ValueError(f"draws: expected (G >= 2, N) R-precision values, got shape {d.shape}")
    n = d.shape[1]
    nan = {"mean": float("nan"), "q95": float("nan"), "sd": [float("nan")] * n}
    if n < 2:
        return nan
    if not np.isfinite(d[:, : n - 1]).all():
        raise ValueError("draws contain NaN/inf in a subset FR uses (all but the last)")
    sd = d[:, : n - 1].std(axis=0, ddof=1)
    rng = np.random.default_rng(seed)
    fr = np.zeros(sims)
    for j in range(n - 1):
        cells = rng.normal(0.0, sd[j], size=(sims, n - j))             # rows j..N-1
        fr += cells[:, :-1].max(axis=1) - cells[:, -1]
    fr *= 100.0 / (n - 1)
    return {"mean": float(fr.mean()), "q95": float(np.quantile(fr, 0.95)),
            "sd": [float(x) for x in sd] + [float("nan")]}
