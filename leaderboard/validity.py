"""Does the protocol measure?  Six checks of a set of runs, each with its numbers, chance level
and confidence interval, so that a leaderboard is only read once its instrument is shown valid:

1. **chance**: the untrained baseline row's mean R@1 is at chance (1/batch): chance lies in the
   95% Clopper-Pearson interval of the pooled hits (one baseline per setting x seed: every
   method starts from the same untrained model);
2. **learning**: the lower bound's (sequential fine-tuning) mean diagonal R@1 (subset i right
   after training on i) is beyond chance (its 95% CI excludes chance: Student t over runs, or
   for one run the Clopper-Pearson interval of its pooled hits) AND >= 0.5 x the real-vs-real
   ceiling of the same evaluator on the same subsets; at or below chance it fails saying so;
3. **upper bound**: the joint method's AR likewise (beyond chance and >= 0.5 x the ceiling), and
   no other method's AR exceeds it by more than the 95% CI of the difference;
4. **forgetting**: the lower bound's FR in the Unseen setting is above its no-forgetting floor:
   per run, FR minus the mean FR its own evaluation noise gives when nothing is forgotten
   (result.json ``fr_floor.mean``, simulated from a binomial per test text: an upper bound;
   or, when every such run has one, the floor measured by regenerating the final model,
   ``l2emg floor`` -> ``RUN/fr_floor.json``, the one used then, the binomial result beside it);
   the mean of that excess over orders x seeds > 0 with its Student-t 95% CI excluding 0.  (A run's FR is flagged on its own against the floor's 95th
   percentile, ``fr_floor.q95``; with n runs the mean's noise is ~1/sqrt(n) of one run's, so
   the per-run q95 is not the threshold for the mean.  The detail gives both, and the excess per
   scenario order when there are several: the order can decide whether a run forgets.)
5. **noise floor**: the std of the lower bound's AR across seeds <= 1/4 of (joint AR - lower AR);
6. **heat map**: the lower bound's diagonal is brighter than the cells below it (a fade), and
   above chance (a fade of values at chance is noise).

``validity(runs) -> DataFrame`` (one row per check and setting); ``to_markdown``.  Which methods
are the joint upper bound and the sequential lower bound is an argument; by default the runs'
methods whose facts (``result.json`` ``method_info``, else the strategy registry) give them the
role ``upper_bound`` / ``lower_bound`` (in this project ``mtl`` and ``seq_lora``, the paper's).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leaderboard.runs import Run
from leaderboard.stats import mean_t_ci, runs_to_resolve

COLUMNS = ("check", "setting", "value", "target", "ci_low", "ci_high", "passed", "detail")


def _row(check, setting, value, target, lo=math.nan, hi=math.nan, passed=None, detail="") -> dict:
    return dict(check=check, setting=setting, value=value, target=target, ci_low=lo, ci_high=hi,
                passed=passed, detail=detail)


def _ceiling(runs: list[Run]) -> float:
    vals = [r.info.get("ground_truth", {}).get("r_precision_top1", math.nan) for r in runs]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan


def _chance(run: Run) -> float:
    return float(run.info.get("chance", {}).get("r_precision_top1", math.nan))


def _ranked(run: Run) -> int:
    batch = int(run.info.get("eval", {}).get("batch", 0) or 0)
    sizes = run.info.get("n_test") or []
    return int(sum((n // batch) * batch for n in sizes)) if batch else 0


def check_chance(runs: list[Run], setting: str) -> dict:
    from scipy import stats

    seen, hits, total, chance = set(), 0.0, 0, math.nan
    for r in runs:
        if r.baseline is None or "r_precision_top1" not in r.baseline.index or (r.seed in seen):
            continue
        seen.add(r.seed)
        n = _ranked(r)
        chance = _chance(r)
        hits += float(np.mean(r.baseline.loc["r_precision_top1"].to_numpy(float))) * n
        total += n
    if not total:
        return _row("chance", setting, math.nan, "= chance", detail="no baseline rows")
    ci = stats.binomtest(int(round(hits)), total, p=chance).proportion_ci(0.95)
    value = hits / total
    return _row("chance", setting, value, f"= chance {chance:.4f}", ci.low, ci.high,
                bool(ci.low <= chance <= ci.high),
                f"untrained baseline, {total} ranked test texts over {len(seen)} seed(s)")


def _setting_chance(runs: list[Run]) -> float:
    vals = [_chance(r) for r in runs]
    vals = [v for v in vals if math.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan


def r1_interval(runs: list[Run], values: list[float]) -> tuple[float, float, float, str]:
    """(mean, low, high, how) of per-run R@1 values: the Student-t 95% CI over the runs when
    there are >= 2, else the Clopper-Pearson 95% interval of the one run's pooled hits over its
    ranked test texts (R@1 x texts; result.json ``n_test`` and ``eval.batch``)."""
    from scipy import stats

    pairs = [(r, v) for r, v in zip(runs, values) if math.isfinite(v)]
    m, lo, hi = mean_t_ci([v for _, v in pairs])
    if len(pairs) >= 2:
        return m, lo, hi, f"Student t over {len(pairs)} runs"
    if len(pairs) == 1 and _ranked(pairs[0][0]):
        n = _ranked(pairs[0][0])
        ci = stats.binomtest(int(round(min(max(m, 0.0), 1.0) * n)), n).proportion_ci(0.95)
        return m, float(ci.low), float(ci.high), f"Clopper-Pearson over {n} ranked test texts"
    return m, lo, hi, ""


def beyond_chance_and_ceiling(m: float, lo: float, chance: float, ceiling: float,
                              fraction: float = 0.5) -> tuple[bool | None, str, str]:
    """Verdict, target text and reason for an R@1 value that must lie beyond chance (its 95% CI
    excludes it, low end above) and reach ``fraction`` x the real-vs-real ceiling."""
    need = fraction * ceiling
    target = (f"> chance {chance:.3f} (CI excludes it) and " if math.isfinite(chance) else "") \
        + f">= {fraction:g} x ceiling = {need:.3f}"
    if not math.isfinite(m):
        return None, target, "no value"
    if math.isfinite(chance) and m <= chance:
        return False, target, f"BELOW CHANCE: {m:.3f} <= chance {chance:.3f}"
    if math.isfinite(chance) and math.isfinite(lo) and lo <= chance:
        return False, target, f"not beyond chance: the 95% CI reaches down to {lo:.3f} <= chance {chance:.3f}"
    if not math.isfinite(ceiling):
        return None, target, "no ceiling (result.json ground_truth r_precision_top1)"
    if m < need:
        return False, target, f"below {fraction:g} x ceiling: {m:.3f} < {need:.3f}"
    if math.isfinite(chance) and not math.isfinite(lo):
        return None, target, "above chance in the mean, but no CI to tell it from chance"
    note = "" if math.isfinite(chance) else " (chance unknown: result.json has no chance)"
    return True, target, f"beyond chance and >= {fraction:g} x ceiling{note}"


def check_learning(lower: list[Run], ceiling: float, setting: str, name: str) -> dict:
    have = [r for r in lower if "r_precision_top1" in r.matrices]
    diags = [float(np.nanmean(np.diag(r.matrices["r_precision_top1"].to_numpy(float)))) for r in have]
    m, lo, hi, how = r1_interval(have, diags)
    chance = _setting_chance(have)
    passed, target, why = beyond_chance_and_ceiling(m, lo, chance, ceiling)
    return _row("learning", setting, m, target, lo, hi, passed if diags else None,
                f"{why}; {name} mean diagonal R@1 over {len(diags)} run(s) (CI: {how or 'none'}); "
                f"chance {chance:.3f}, ceiling {ceiling:.3f}")


def check_upper(by_method: dict[str, list[Run]], upper: str, ceiling: float, setting: str) -> list[dict]:
    rows = []
    joint = by_method.get(upper, [])
    if not joint:
        return [_row("upper bound", setting, math.nan, "", detail=f"no {upper} runs")]
    ar_j = [r.metric("AR") for r in joint]
    m_j, lo_j, hi_j = mean_t_ci(ar_j)
    eval_ci = float(np.mean([r.info.get("aggregates_ci95", {}).get("AR", math.nan) for r in joint]))
    half_j = (hi_j - m_j) if np.isfinite(hi_j) else eval_ci
    _, lo_c, hi_c, how = r1_interval(joint, ar_j)
    chance = _setting_chance(joint)
    passed, target, why = beyond_chance_and_ceiling(m_j, lo_c, chance, ceiling)
    rows.append(_row("upper bound", setting, m_j, target, lo_c, hi_c, passed,
                     f"{why}; {upper} AR over {len(joint)} run(s) (CI: {how or 'none'}); "
                     f"chance {chance:.3f}, ceiling {ceiling:.3f}"))
    above = []
    for method, rs in sorted(by_method.items()):
        if method == upper:
            continue
        m, lo, hi = mean_t_ci([r.metric("AR") for r in rs])
        half = (hi - m) if np.isfinite(hi) else float(np.mean(
            [r.info.get("aggregates_ci95", {}).get("AR", math.nan) for r in rs]))
        diff = m - m_j
        margin = math.sqrt(half ** 2 + half_j ** 2) if np.isfinite(half) and np.isfinite(half_j) else 0.0
        if diff - margin > 0:
            above.append(f"{method} (+{diff:.3f} > CI {margin:.3f})")
    rows.append(_row("no method above the upper bound", setting, len(above), "0", passed=not above,
                     detail="; ".join(above) or f"every method's AR <= {upper}'s + the 95% CI"))
    return rows


def _excess(lower: list[Run], source: str) -> tuple[list[float], list[float], list[float]]:
    """Per run: FR, the floor's mean and q95 of ``source`` (``fr_floor``: binomial, in
    result.json; ``fr_floor_measured``: ``l2emg floor``)."""
    frs, means, q95s = [], [], []
    for r in lower:
        floor = r.info.get(source) or {}
        frs.append(r.metric("FR"))
        means.append(float(floor.get("mean", math.nan)))
        q95s.append(float(floor.get("q95", math.nan)))
    return frs, means, q95s


def _by_order(lower: list[Run], means: list[float]) -> str:
    """The excess per scenario order (a breakdown, not a second verdict): the pooled mean can hide
    orders that forget and orders that do not.  With >= 2 orders of >= 2 runs each, a
    Kruskal-Wallis test of "the orders' excesses come from one distribution" is added."""
    from scipy import stats

    groups: dict[str, list[float]] = {}
    for r, floor in zip(lower, means):
        f = r.metric("FR")
        if np.isfinite(f) and np.isfinite(floor):
            groups.setdefault(str(r.order), []).append(f - floor)
    if len(groups) < 2:
        return ""
    parts = []
    for order in sorted(groups, key=lambda o: (len(o), o)):
        m, lo, hi = mean_t_ci(groups[order])
        ci = f" [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else ""
        parts.append(f"order {order} {m:+.2f}{ci} ({len(groups[order])} run(s))")
    text = "; by order: " + ", ".join(parts)
    testable = [v for v in groups.values() if len(v) >= 2]
    if len(testable) >= 2:
        try:
            text += f" (Kruskal-Wallis across orders p = {stats.kruskal(*testable).pvalue:.3g})"
        except ValueError:                       # every excess identical: nothing to rank
            pass
    return text


def check_forgetting(lower: list[Run], setting: str, name: str) -> dict:
    measured = bool(lower) and all(r.info.get("fr_floor_measured") for r in lower)
    source = "fr_floor_measured" if measured else "fr_floor"
    frs, means, q95s = _excess(lower, source)
    excess = [f - m for f, m in zip(frs, means) if np.isfinite(f) and np.isfinite(m)]
    m, lo, hi = mean_t_ci(excess)
    fr_m, fr_lo, fr_hi = mean_t_ci(frs)
    above = sum(1 for f, q in zip(frs, q95s) if np.isfinite(f) and np.isfinite(q) and f > q)
    passed = bool(np.isfinite(lo) and lo > 0) if len(excess) >= 2 else None
    floor_m = float(np.nanmean(means)) if excess else math.nan
    floor_q = float(np.nanmean(q95s)) if any(np.isfinite(q95s)) else math.nan
    kind = "measured floor (l2emg floor)" if measured else "binomial floor (an upper bound)"
    detail = (f"{name} FR {fr_m:.2f} [{fr_lo:.2f}, {fr_hi:.2f}] points over {len(frs)} run(s) "
              f"minus its {kind} mean {floor_m:.2f}; {above}/{len(frs)} run(s) above their "
              f"floor's q95 (mean {floor_q:.2f})")
    if passed is False:
        need = runs_to_resolve(m, float(np.std(excess, ddof=1))) if m > 0 else None
        detail += (f"; at this mean and spread about {need} runs would exclude 0" if need
                   else "; the mean excess is not positive: more runs would not make it pass")
    detail += _by_order(lower, means)
    if measured:
        _, b_means, _ = _excess(lower, "fr_floor")
        b = mean_t_ci([f - x for f, x in zip(frs, b_means) if np.isfinite(f) and np.isfinite(x)])
        detail += f"; against the binomial floor: {b[0]:.2f} [{b[1]:.2f}, {b[2]:.2f}]"
    return _row("forgetting", setting, m, "FR - no-forgetting floor > 0, CI excludes 0", lo, hi,
                passed, detail)


def check_noise(lower: list[Run], upper_runs: list[Run], setting: str, name: str) -> dict:
    by_order: dict[str, list[float]] = {}
    for r in lower:
        by_order.setdefault(r.order, []).append(r.metric("AR"))
    stds = [float(np.std(v, ddof=1)) for v in by_order.values() if len(v) >= 2]
    gap = (np.mean([r.metric("AR") for r in upper_runs]) - np.mean([r.metric("AR") for r in lower])
           if upper_runs and lower else math.nan)
    if not stds:
        return _row("noise floor", setting, math.nan, f"<= gap / 4 = {gap / 4:.3f}",
                    detail=f"needs >= 2 seeds of {name} (run with --seeds 0,1,2)")
    std = float(np.mean(stds))
    return _row("noise floor", setting, std, f"<= gap / 4 = {gap / 4:.3f}", passed=bool(std <= gap / 4),
                detail=f"std of {name} AR across seeds (mean over orders); gap = upper - lower AR")


def check_fade(lower: list[Run], setting: str, name: str) -> dict:
    diag, below = [], []
    for r in lower:
        m = r.matrices.get("r_precision_top1")
        if m is None or m.shape[0] != m.shape[1]:
            continue
        a = m.to_numpy(float)
        diag.append(np.nanmean(np.diag(a)))
        below.append(np.nanmean(a[np.tril_indices(len(a), k=-1)]))
    if not diag:
        return _row("heat map fade", setting, math.nan, "diag > below", detail="no square matrices")
    d, b = float(np.mean(diag)), float(np.mean(below))
    chance = _setting_chance(lower)
    detail = f"{name}: diagonal R@1 {d:.3f} vs below-diagonal {b:.3f}, chance {chance:.3f}"
    if math.isfinite(chance) and d <= chance:     # a fade of noise around chance is no fade
        return _row("heat map fade", setting, d - b, "> 0, diagonal above chance", passed=False,
                    detail=f"BELOW CHANCE: the diagonal is at or below chance; {detail}")
    return _row("heat map fade", setting, d - b, "> 0, diagonal above chance", passed=bool(d > b),
                detail=detail)


def bound(runs: list[Run], role: str) -> str:
    """The method of ``role`` (``upper_bound`` / ``lower_bound``) among the runs' methods (else
    the registry's), by the methods' facts; "" when there is none."""
    from leaderboard.methods import with_role

    found = with_role(role, {r.method for r in runs})
    return found[0] if found else ""


def validity(runs: list[Run], upper: str | None = None, lower: str | None = None) -> pd.DataFrame:
    """The six checks per setting (see the module docstring); ``upper`` / ``lower`` default to
    :func:`bound` of the runs."""
    upper = upper or bound(runs, "upper_bound")
    lower = lower or bound(runs, "lower_bound")
    rows = []
    for setting in sorted({r.setting for r in runs}):
        rs = [r for r in runs if r.setting == setting]
        by_method: dict[str, list[Run]] = {}
        for r in rs:
            by_method.setdefault(r.method, []).append(r)
        ceiling = _ceiling(rs)
        low = by_method.get(lower, [])
        rows.append(check_chance(rs, setting))
        rows.append(check_learning(low, ceiling, setting, lower))
        rows += check_upper(by_method, upper, ceiling, setting)
        if setting == "unseen":
            rows.append(check_forgetting(low, setting, lower))
        rows.append(check_noise(low, by_method.get(upper, []), setting, lower))
        rows.append(check_fade(low, setting, lower))
    return pd.DataFrame(rows, columns=COLUMNS)


def to_markdown(table: pd.DataFrame) -> str:
    def f(x):
        return "-" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:.4g}"

    out = ["# Is the instrument valid?", "",
           "| check | setting | value | target | 95% CI | verdict | detail |",
           "|---|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        ci = "-" if not math.isfinite(r.ci_low) else f"[{f(r.ci_low)}, {f(r.ci_high)}]"
        verdict = {True: "**pass**", False: "**FAIL**"}.get(r.passed, "not measurable")
        out.append(f"| {r.check} | {r.setting} | {f(r.value)} | {r.target} | {ci} | {verdict} | {r.detail} |")
    return "\n".join(out) + "\n"
