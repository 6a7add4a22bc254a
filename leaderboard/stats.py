"""Statistics over runs: do scenario orders matter (per method), and which methods differ?

* Orders, per method and setting: Friedman test of a metric across orders, then pairwise
  Wilcoxon signed-rank tests with Holm correction (Kendall's W and the matched-pairs
  rank-biserial correlation as effect sizes).  Blocks are the (seed, test subset) pairs: every
  subset's test set (the same motions and prompts in every order) gives one matched observation
  per order, the per-subset term of the aggregate (its final-row score; for FR its forgetting),
  so the test exists with one seed (8 blocks) and gains blocks with seeds.  Without per-subset
  values (BWT, FWT), blocks are seeds.  See docs/leaderboard.md for the design and its caveat
  (subsets of one run are not independent runs).
* Methods: Friedman across methods with blocks = (setting, order, seed), Nemenyi post-hoc
  (scikit-posthocs), average ranks (1 = best, direction-aware) and the critical difference.
* Methods paired by test subset: for every pair of methods, a Wilcoxon signed-rank test over
  the (setting, order, seed, subset) blocks both have (Holm over the pairs), rank-biserial r
  and how many blocks each wins.  It exists with one run per method (8 blocks), with the same
  caveat as the order test: it compares these training runs, not methods across runs.
* Each method's mean with a bootstrap 95% CI (scipy.stats.bootstrap).
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leaderboard.runs import is_lower_better

STAT_COLUMNS = ("analysis", "metric", "setting", "method", "group_a", "group_b", "statistic",
                "p_value", "p_holm", "significant", "effect_size", "effect_name", "n_blocks", "k",
                "mean", "ci_low", "ci_high", "wins", "note")


@dataclass
class StatsResult:
    """Everything `l2emg compare` reports: tidy rows + the inputs of the CD diagram."""

    metric: str
    alpha: float
    rows: pd.DataFrame
    avg_ranks: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    nemenyi: pd.DataFrame = field(default_factory=pd.DataFrame)
    cd: float = math.nan
    notes: list[str] = field(default_factory=list)


def t_halfwidth(std, n):
    """Half-width of the Student-t 95% CI of a mean, ``t_{0.975, n-1} std / sqrt(n)``, for
    scalars or arrays (NaN where n < 2).  The one definition the tables (mean ± CI over orders
    x seeds) and the validity checks use."""
    from scipy.stats import t

    n = np.asarray(n, dtype=float)
    h = np.where(n > 1, t.ppf(0.975, np.maximum(n - 1, 1)), np.nan) * np.asarray(std, dtype=float) \
        / np.sqrt(np.maximum(n, 1))
    return float(h) if h.ndim == 0 else h


def mean_t_ci(values) -> tuple[float, float, float]:
    """(mean, low, high): the finite ``values``' mean and its Student-t 95% interval (NaN
    interval for fewer than 2 values, all NaN for none)."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    h = t_halfwidth(v.std(ddof=1), len(v))
    return m, m - h, m + h


def runs_to_resolve(mean: float, std: float, limit: int = 100_000) -> int | None:
    """The smallest number of runs n >= 2 whose Student-t 95% CI of a mean excludes 0, if the
    runs keep this ``mean`` and ``std``: ``t_{0.975, n-1} std / sqrt(n) < |mean|``.  None for
    a zero mean or a non-finite input, or above ``limit``."""
    if not (np.isfinite(mean) and np.isfinite(std)) or mean == 0:
        return None
    if std == 0:
        return 2
    lo, hi = 2, 2
    while t_halfwidth(std, hi) >= abs(mean):
        if hi >= limit:
            return None
        lo, hi = hi, min(2 * hi, limit)
    while lo < hi:  # the half-width falls with n: bisect for the first n below |mean|
        mid = (lo + hi) // 2
        if t_halfwidth(std, mid) < abs(mean):
            hi = mid
        else:
            lo = mid + 1
    return hi


def _row(**kw) -> dict:
    return {c: kw.get(c, np.nan if c not in ("analysis", "metric", "setting", "method", "group_a",
                                              "group_b", "effect_name", "note") else "")
            for c in STAT_COLUMNS}


def _friedman(table: np.ndarray) -> tuple[float, float, float]:
    """Friedman chi2, p and Kendall's W of a blocks x groups table (all-tied blocks -> 0, 1, 0)."""
    from scipy.stats import friedmanchisquare

    n, k = table.shape
    if np.all(table == table[:, :1]):
        return 0.0, 1.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stat, p = friedmanchisquare(*table.T)
    return float(stat), float(p), float(stat / (n * (k - 1)))


def _wilcoxon(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Wilcoxon signed-rank statistic, p and matched-pairs rank-biserial r (x - y)."""
    from scipy.stats import rankdata, wilcoxon

    d = x - y
    nz = d[d != 0]
    if nz.size == 0:
        return 0.0, 1.0, 0.0
    ranks = rankdata(np.abs(nz))
    r_plus, r_minus = ranks[nz > 0].sum(), ranks[nz < 0].sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = wilcoxon(x, y)
    return float(res.statistic), float(res.pvalue), float((r_plus - r_minus) / (r_plus + r_minus))


def _holm(p: list[float]) -> list[float]:
    from statsmodels.stats.multitest import multipletests

    arr = np.asarray(p, dtype=float)
    out = np.full_like(arr, np.nan)
    ok = np.isfinite(arr)
    if ok.any():
        out[ok] = multipletests(arr[ok], method="holm")[1]
    return out.tolist()


def order_tests(per_run: pd.DataFrame, metric: str, alpha: float = 0.05,
                per_subset: pd.DataFrame | None = None) -> list[dict]:
    """Per (method, setting): Friedman across orders + pairwise Wilcoxon/Holm.  Blocks =
    (seed, subset) from ``per_subset`` when given (complete blocks only), else seeds."""
    rows: list[dict] = []
    use_subsets = per_subset is not None and len(per_subset)
    source = per_subset if use_subsets else per_run
    index = ["seed", "subset"] if use_subsets else "seed"
    blocks = "seed x subset" if use_subsets else "seed"
    for (method, setting), grp in source.groupby(["method", "setting"], sort=True):
        tab = grp.pivot_table(index=index, columns="order", values="value", aggfunc="mean")
        tab = tab.dropna()
        n, k = tab.shape
        base = dict(metric=metric, setting=setting, method=method, n_blocks=n, k=k)
        if k < 3 or n < 2:
            need = []
            if k < 3:
                need.append(f"needs >= 3 scenario orders, have {k}")
            if n < 2:
                need.append(f"needs >= 2 complete blocks ({blocks}), have {n}")
            rows.append(_row(analysis="orders_friedman", note="not tested: " + "; ".join(need), **base))
            continue
        stat, p, w = _friedman(tab.to_numpy())
        rows.append(_row(analysis="orders_friedman", statistic=stat, p_value=p,
                         significant=bool(p < alpha), effect_size=w, effect_name="kendall_w",
                         note=f"blocks = {blocks}" + ("" if n >= 5 else "; low power"), **base))
        pairs = list(itertools.combinations(tab.columns, 2))
        tests = [_wilcoxon(tab[a].to_numpy(), tab[b].to_numpy()) for a, b in pairs]
        holm = _holm([t[1] for t in tests])
        for (a, b), (s, pv, r), ph in zip(pairs, tests, holm):
            rows.append(_row(analysis="orders_wilcoxon", group_a=str(a), group_b=str(b), statistic=s,
                             p_value=pv, p_holm=ph, significant=bool(ph < alpha), effect_size=r,
                             effect_name="rank_biserial", note="" if n >= 6 else
                             f"n={n} pairs: the smallest exact p is {2 / 2 ** n:.3g}", **base))
    return rows


def method_table(per_run: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Blocks (setting, order, seed) x methods, complete cases only; methods covering fewer than
    half of the blocks (e.g. one joint MTL run, or NaN FR) are left out with a note."""
    tab = per_run.pivot_table(index=["setting", "order", "seed"], columns="method", values="value",
                              aggfunc="mean")
    cover = tab.notna().sum()
    weak = cover[cover < 0.5 * len(tab)].index.tolist()
    if weak:
        notes.append(f"left out of the method comparison (too few comparable blocks): {', '.join(weak)}")
    tab = tab.drop(columns=weak)
    full = tab.dropna()
    if len(full) < len(tab):
        notes.append(f"{len(tab) - len(full)} block(s) dropped because a method was missing there")
    return full


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks (Demsar 2006)."""
    from scipy.stats import studentized_range

    q = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


def method_tests(per_run: pd.DataFrame, metric: str, alpha: float = 0.05) -> StatsResult:
    """Friedman + Nemenyi across methods with direction-aware average ranks."""
    import scikit_posthocs as sp

    notes: list[str] = []
    rows: list[dict] = []
    tab = method_table(per_run, notes)
    n, k = tab.shape
    result = StatsResult(metric=metric, alpha=alpha, rows=pd.DataFrame(columns=STAT_COLUMNS), notes=notes)
    setting = ",".join(sorted(per_run["setting"].unique()))
    if k < 2 or n < 2:
        msg = f"not tested: needs >= 2 methods and >= 2 complete blocks, have {k} methods, {n} blocks"
        notes.append(msg)
        rows.append(_row(analysis="methods_friedman", metric=metric, setting=setting, n_blocks=n, k=k,
                         note=msg))
        result.rows = pd.DataFrame(rows, columns=STAT_COLUMNS)
        return result
    sign = 1.0 if is_lower_better(metric) else -1.0
    ranks = (sign * tab).rank(axis=1, method="average")
    result.avg_ranks = ranks.mean().sort_values()
    if k == 2:
        a, b = tab.columns
        s, p, r = _wilcoxon(tab[a].to_numpy(), tab[b].to_numpy())
        rows.append(_row(analysis="methods_wilcoxon", metric=metric, setting=setting, group_a=a,
                         group_b=b, statistic=s, p_value=p, p_holm=p, significant=bool(p < alpha),
                         effect_size=r, effect_name="rank_biserial", n_blocks=n, k=k,
                         note="two methods: Wilcoxon signed-rank instead of Friedman"))
        result.nemenyi = pd.DataFrame([[1.0, p], [p, 1.0]], index=[a, b], columns=[a, b])
    else:
        stat, p, w = _friedman(tab.to_numpy())
        rows.append(_row(analysis="methods_friedman", metric=metric, setting=setting, statistic=stat,
                         p_value=p, significant=bool(p < alpha), effect_size=w,
                         effect_name="kendall_w", n_blocks=n, k=k))
        if np.all(tab.to_numpy() == tab.to_numpy()[:, :1]):
            nem = pd.DataFrame(1.0, index=tab.columns, columns=tab.columns)
        else:
            nem = sp.posthoc_nemenyi_friedman(tab.reset_index(drop=True))
        result.nemenyi = nem
        result.cd = critical_difference(k, n, alpha)
        for a, b in itertools.combinations(tab.columns, 2):
            pv = float(nem.loc[a, b])
            rows.append(_row(analysis="methods_nemenyi", metric=metric, setting=setting, group_a=a,
                             group_b=b, p_value=pv, p_holm=pv, significant=bool(pv < alpha),
                             effect_size=float(result.avg_ranks[a] - result.avg_ranks[b]),
                             effect_name="rank_difference", n_blocks=n, k=k))
    for method in result.avg_ranks.index:
        rows.append(_row(analysis="methods_rank", metric=metric, setting=setting, method=method,
                         statistic=float(result.avg_ranks[method]), effect_name="average_rank",
                         n_blocks=n, k=k, note="1 = best"))
    result.rows = pd.DataFrame(rows, columns=STAT_COLUMNS)
    return result


def subset_pair_tests(per_subset: pd.DataFrame, metric: str, alpha: float = 0.05) -> list[dict]:
    """Every pair of methods on the per-subset terms of ``metric``: blocks = (setting, order,
    seed, subset) present for both (e.g. one run each of the same order and seed gives the N
    subsets).  Wilcoxon signed-rank, Holm over the pairs, rank-biserial r of a - b, the mean
    of a - b and the blocks won by a (``wins``, direction-aware)."""
    if per_subset is None or not len(per_subset) or per_subset["method"].nunique() < 2:
        return []
    tab = per_subset.pivot_table(index=["setting", "order", "seed", "subset"], columns="method",
                                 values="value", aggfunc="mean")
    lower = is_lower_better(metric)
    rows, tests = [], []
    for a, b in itertools.combinations(sorted(tab.columns), 2):
        pair = tab[[a, b]].dropna()
        n = len(pair)
        base = dict(analysis="methods_subset_wilcoxon", metric=metric, method="",
                    setting=",".join(sorted(pair.index.get_level_values("setting").unique())),
                    group_a=a, group_b=b, n_blocks=n, k=2)
        if n < 2:
            rows.append(_row(note=f"not tested: needs >= 2 common blocks, have {n}", **base))
            tests.append(None)
            continue
        x, y = pair[a].to_numpy(), pair[b].to_numpy()
        stat, p, r = _wilcoxon(x, y)
        wins = int(np.sum(x < y) if lower else np.sum(x > y))
        rows.append(_row(statistic=stat, p_value=p, effect_size=r, effect_name="rank_biserial",
                         mean=float(np.mean(x - y)), wins=wins,
                         note=f"{a} better on {wins}/{n} blocks" +
                         ("" if n >= 6 else f"; n={n}: the smallest exact p is {2 / 2 ** n:.3g}"), **base))
        tests.append(p)
    holm = _holm([np.nan if t is None else t for t in tests])
    for row, ph in zip(rows, holm):
        if np.isfinite(ph):
            row.update(p_holm=ph, significant=bool(ph < alpha))
    return rows


def bootstrap_means(per_run: pd.DataFrame, metric: str, seed: int = 0,
                    n_resamples: int = 2000) -> list[dict]:
    """Each method's mean (per setting) with a percentile bootstrap 95% CI over its runs."""
    from scipy.stats import bootstrap

    rows = []
    for (method, setting), grp in per_run.groupby(["method", "setting"], sort=True):
        vals = grp["value"].dropna().to_numpy(dtype=float)
        base = dict(analysis="bootstrap_mean", metric=metric, setting=setting, method=method,
                    n_blocks=len(vals), mean=float(vals.mean()) if len(vals) else np.nan)
        if len(vals) < 2:
            rows.append(_row(note=f"no CI: needs >= 2 runs, have {len(vals)}", **base))
            continue
        if np.all(vals == vals[0]):
            rows.append(_row(ci_low=vals[0], ci_high=vals[0], note="all runs equal", **base))
            continue
        res = bootstrap((vals,), np.mean, confidence_level=0.95, n_resamples=n_resamples,
                        method="percentile", rng=np.random.default_rng(seed))
        rows.append(_row(ci_low=float(res.confidence_interval.low),
                         ci_high=float(res.confidence_interval.high), **base))
    return rows


def run_stats(per_run: pd.DataFrame, metric: str, alpha: float = 0.05, seed: int = 0,
              per_subset: pd.DataFrame | None = None) -> StatsResult:
    """All analyses for one metric on tidy per-run values (method, setting, order, seed, value)
    and, for the order tests, per-subset values (+ ``subset``; :func:`leaderboard.runs.subsets_frame`)."""
    per_run = per_run[per_run["metric"] == metric] if "metric" in per_run else per_run
    result = method_tests(per_run, metric, alpha)
    extra = (order_tests(per_run, metric, alpha, per_subset) + bootstrap_means(per_run, metric, seed)
             + subset_pair_tests(per_subset, metric, alpha))
    frames = [f for f in (result.rows, pd.DataFrame(extra, columns=STAT_COLUMNS)) if len(f)]
    result.rows = pd.concat(frames, ignore_index=True) if frames else result.rows
    return result


def _p(p: float) -> str:
    return "-" if not np.isfinite(p) else ("<0.001" if p < 1e-3 else f"{p:.3f}")


def to_markdown(res: StatsResult) -> str:
    """A readable report of :func:`run_stats`."""
    direction = "lower is better" if is_lower_better(res.metric) else "higher is better"
    rows = res.rows
    out = [f"# Statistics for {res.metric} ({direction}, alpha = {res.alpha})", ""]
    out += ["## Methods", ""]
    fr = rows[rows.analysis.isin(["methods_friedman", "methods_wilcoxon"])]
    for r in fr.itertuples():
        if r.note.startswith("not tested"):
            out.append(f"- {r.note}")
        else:
            test = "Friedman" if r.analysis == "methods_friedman" else "Wilcoxon signed-rank"
            verdict = "methods differ" if r.significant else "no significant difference"
            out.append(f"- {test} over {int(r.n_blocks)} blocks (setting x order x seed), {int(r.k)} methods: "
                       f"statistic {r.statistic:.3f}, p = {_p(r.p_value)} -> **{verdict}** "
                       f"({r.effect_name} = {r.effect_size:.3f})")
    if len(res.avg_ranks):
        cd = "" if not math.isfinite(res.cd) else f" (Nemenyi critical difference {res.cd:.3f})"
        out += ["", f"Average ranks, 1 = best{cd}:", "", "| method | average rank |", "|---|---|"]
        out += [f"| {m} | {v:.2f} |" for m, v in res.avg_ranks.items()]
    nem = rows[(rows.analysis == "methods_nemenyi") & (rows.significant == True)]  # noqa: E712
    if len(nem):
        out += ["", "Significantly different pairs (Nemenyi): "
                + ", ".join(f"{a} vs {b} (p = {_p(p)})" for a, b, p in
                            zip(nem.group_a, nem.group_b, nem.p_value))]
    pairs = rows[rows.analysis == "methods_subset_wilcoxon"]
    if len(pairs):
        out += ["", "## Methods paired by test subset (blocks = setting x order x seed x subset; "
                "compares these runs, see docs/leaderboard.md)", "",
                "| a | b | blocks | mean a - b | a better on | Wilcoxon p | Holm p | rank-biserial r |",
                "|---|---|---|---|---|---|---|---|"]
        for r in pairs.itertuples():
            if r.note.startswith("not tested"):
                out.append(f"| {r.group_a} | {r.group_b} | {int(r.n_blocks)} | - | - | {r.note} | | |")
                continue
            star = " **" if r.significant else " "
            out.append(f"| {r.group_a} | {r.group_b} | {int(r.n_blocks)} | {r.mean:+.4g} | "
                       f"{int(r.wins)}/{int(r.n_blocks)} | {_p(r.p_value)} |{star}{_p(r.p_holm)}"
                       f"{'**' if r.significant else ''} | {r.effect_size:+.2f} |")
    out += ["", "## Method means with bootstrap 95% CI", "", "| method | setting | n | mean | 95% CI | note |",
            "|---|---|---|---|---|---|"]
    for r in rows[rows.analysis == "bootstrap_mean"].itertuples():
        ci = "-" if not np.isfinite(r.ci_low) else f"[{r.ci_low:.4g}, {r.ci_high:.4g}]"
        out.append(f"| {r.method} | {r.setting} | {int(r.n_blocks)} | {r.mean:.4g} | {ci} | {r.note} |")
    out += ["", "## Scenario orders (per method; blocks = seed x test subset, see docs/leaderboard.md)", ""]
    for r in rows[rows.analysis == "orders_friedman"].itertuples():
        if r.note.startswith("not tested"):
            out.append(f"- {r.method} / {r.setting}: {r.note}")
            continue
        verdict = "order matters" if r.significant else "no significant order effect"
        out.append(f"- {r.method} / {r.setting}: Friedman chi2 = {r.statistic:.3f}, p = {_p(r.p_value)}, "
                   f"Kendall's W = {r.effect_size:.3f} -> **{verdict}** {r.note}".rstrip())
        pw = rows[(rows.analysis == "orders_wilcoxon") & (rows.method == r.method)
                  & (rows.setting == r.setting)]
        for q in pw.itertuples():
            out.append(f"  - order {q.group_a} vs {q.group_b}: Wilcoxon p = {_p(q.p_value)}, "
                       f"Holm p = {_p(q.p_holm)}, rank-biserial r = {q.effect_size:.2f}")
    if res.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in res.notes]
    return "\n".join(out) + "\n"
