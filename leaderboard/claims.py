"""Pre-registered claims: test a list of directional hypotheses, written down before the runs
finish, on the finished runs (`l2emg claims SPEC RUNS --out DIR`).

A claims file is a CSV with one claim per row::

    family,metric,a,relation,b
    baselines,AR,lwf_lora,>,seq_lora     # "LwF-LoRA's AR is higher than SeqLoRA's"
    baselines,AR,prog_prompt,<,seq_lora
    forgetting,FR,lwf_lora,<,seq_lora

``relation`` is ``>`` or ``<`` on the metric's raw value (so "forgets less" is ``FR <``).
Optional columns ``setting``, ``order`` and ``seed`` restrict the blocks a claim uses; ``#``
starts a comment.  Each claim pairs ``a`` and ``b`` on the blocks both have: (setting, order,
seed, test subset) for the metrics with per-subset terms (AR, AF, ..., FR), (setting, order,
seed) for the others (BWT, FWT).  Test: two-sided Wilcoxon signed-rank (exact for small n),
rank-biserial r of a - b as the effect size, Holm within each family.  A claim "holds" when the
mean difference has the claimed sign and "is reversed" when it has the other; either is
significant only when its Holm-adjusted p < alpha.  Each row also gives the smallest Holm p the
design lets it reach (Holm over the family's smallest exact p's, 2 / 2^n each: family size x
2 / 2^n when the claims have equal n), so a family that cannot reach significance with its
blocks says so instead of looking like evidence of no effect.

The file's SHA-256 is written with the results, so a result names the exact claims it tested;
commit the file before the runs finish to make the claims pre-registered.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.io import DataError

SPEC_COLUMNS = ("family", "metric", "a", "relation", "b")
OPTIONAL_COLUMNS = ("setting", "order", "seed")
RELATIONS = (">", "<")
RESULT_COLUMNS = ("family", "metric", "claim", "a", "b", "relation", "mean_a", "mean_b", "mean_diff",
                  "n_blocks", "in_direction", "ties", "statistic", "p_value", "p_holm", "best_p_holm",
                  "effect_size", "verdict", "note")


def read_claims(path: str | Path) -> pd.DataFrame:
    """Parse and check a claims file (see the module docstring); one row per claim, in file
    order, with the optional columns present (empty = no restriction)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "claims file not found", "give the CSV written before the runs (family,metric,a,relation,b)")
    try:
        spec = pd.read_csv(path, comment="#", dtype=str, skipinitialspace=True).fillna("")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a readable CSV ({exc})",
                        "write one claim per line under the header family,metric,a,relation,b") from None
    spec.columns = [c.strip().lower() for c in spec.columns]
    missing = [c for c in SPEC_COLUMNS if c not in spec.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}",
                        f"the header must name {','.join(SPEC_COLUMNS)} (optional: {','.join(OPTIONAL_COLUMNS)})")
    unknown = [c for c in spec.columns if c not in SPEC_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise DataError(path, f"unknown column(s) {', '.join(unknown)}",
                        f"use only {','.join(SPEC_COLUMNS + OPTIONAL_COLUMNS)}")
    if spec.empty:
        raise DataError(path, "no claims", "add one row per claim under the header")
    for col in spec.columns:
        spec[col] = spec[col].str.strip()
    for c in OPTIONAL_COLUMNS:
        if c not in spec.columns:
            spec[c] = ""
    for i, row in spec.iterrows():
        where = f"claim on data row {i + 1}"
        for c in ("metric", "a", "b"):
            if not row[c]:
                raise DataError(path, f"{where}: empty {c!r}", f"fill in {c}")
        if row["relation"] not in RELATIONS:
            raise DataError(path, f"{where}: relation {row['relation']!r}",
                            "use > (a's value is higher) or < (a's value is lower)")
        if row["a"] == row["b"]:
            raise DataError(path, f"{where}: compares {row['a']!r} with itself", "name two different methods")
        if row["seed"] and not row["seed"].lstrip("-").isdigit():
            raise DataError(path, f"{where}: seed {row['seed']!r} is not an integer", "give a seed such as 0")
    spec["family"] = [f or m for f, m in zip(spec["family"], spec["metric"])]
    return spec[list(SPEC_COLUMNS + OPTIONAL_COLUMNS)].reset_index(drop=True)


def _blocks(runs, metric: str) -> pd.DataFrame:
    """Tidy values of ``metric`` per block: per subset where the metric has per-subset terms."""
    from leaderboard.runs import runs_frame, subsets_frame

    per_subset = subsets_frame(runs, metric)
    if len(per_subset):
        return per_subset.dropna(subset=["value"])
    per_run = runs_frame(runs, [metric]).drop(columns=["metric", "path"])
    per_run["subset"] = ""
    return per_run.dropna(subset=["value"])


def _holm(p: list[float]) -> list[float]:
    from leaderboard.stats import _holm as holm

    return holm(p)


def _verdict(sign: float, mean_diff: float, q: float, alpha: float) -> str:
    if not math.isfinite(mean_diff) or mean_diff == 0:
        return "no difference"
    held = "holds" if sign * mean_diff > 0 else "reversed"
    return held if (math.isfinite(q) and q < alpha) else f"{held} in the mean, not significant"


def evaluate_claims(spec: pd.DataFrame, runs: list, alpha: float = 0.05) -> pd.DataFrame:
    """One result row per claim of ``spec`` (from :func:`read_claims`) on ``runs``
    (:func:`leaderboard.runs.load_runs`); Holm within each family over the claims that could
    be tested."""
    from leaderboard.runs import available_metrics, validate_metrics
    from leaderboard.stats import _wilcoxon

    valid = available_metrics(runs)
    present = sorted({r.method for r in runs})
    rows, cache = [], {}
    for _, c in spec.iterrows():
        (metric,) = validate_metrics([c["metric"]], valid)
        if metric not in cache:
            cache[metric] = _blocks(runs, metric)
        data = cache[metric]
        for col in OPTIONAL_COLUMNS:
            if c[col]:
                data = data[data[col].astype(str).str.lower() == c[col].lower()]
        sign = 1.0 if c["relation"] == ">" else -1.0
        row = dict(family=c["family"], metric=metric, claim=f"{c['a']} {c['relation']} {c['b']} on {metric}",
                   a=c["a"], b=c["b"], relation=c["relation"], n_blocks=0)
        absent = [m for m in (c["a"], c["b"]) if m not in present]
        if absent:
            rows.append(dict(row, verdict="not run",
                             note=f"no finished run of {', '.join(absent)} (runs of: {', '.join(present)})"))
            continue
        tab = data[data["method"].isin([c["a"], c["b"]])].pivot_table(
            index=["setting", "order", "seed", "subset"], columns="method", values="value", aggfunc="mean")
        pair = tab.reindex(columns=[c["a"], c["b"]]).dropna()
        x, y = pair[c["a"]].to_numpy(float), pair[c["b"]].to_numpy(float)
        n = len(pair)
        row.update(n_blocks=n)
        if n < 2:
            rows.append(dict(row, verdict="not tested",
                             note=f"needs >= 2 blocks both methods have, found {n}"))
            continue
        d = x - y
        stat, p, r = _wilcoxon(x, y)
        ties = int(np.sum(d == 0))
        rows.append(dict(row, mean_a=float(x.mean()), mean_b=float(y.mean()), mean_diff=float(d.mean()),
                         in_direction=int(np.sum(sign * d > 0)), ties=ties, statistic=stat, p_value=p,
                         effect_size=r,
                         note=f"{ties} tied block(s) (zero difference) left out of the Wilcoxon test"
                         if ties else ""))
    families: dict[str, list[dict]] = {}
    for row in rows:
        families.setdefault(row["family"], []).append(row)
    for family in families.values():
        tested = [row for row in family if math.isfinite(row.get("p_value", math.nan))]
        m = len(tested)
        adjusted = _holm([row["p_value"] for row in tested]) if tested else []
        # the Holm p each claim gets when every claim of the family reaches its smallest exact p
        # (2 / 2^n over its n untied blocks: the Wilcoxon test leaves tied blocks out)
        floors = _holm([2.0 / 2 ** (row["n_blocks"] - row["ties"]) for row in tested]) if tested else []
        for row, q, best in zip(tested, adjusted, floors):
            n = row["n_blocks"] - row["ties"]
            sign = 1.0 if row["relation"] == ">" else -1.0
            row.update(p_holm=q, best_p_holm=best, verdict=_verdict(sign, row["mean_diff"], q, alpha))
            if best >= alpha:
                untied = f"{n} untied blocks" if row["ties"] else f"{n} blocks"
                row["note"] = "; ".join(x for x in (
                    f"cannot reach p < {alpha:g} with {untied} in a family of {m}", row["note"]) if x)
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return out


def _blocks_text(r) -> str:
    """'2/8' blocks in the claimed direction, '2/8, 6 ties' when some differences are zero."""
    if not (isinstance(r.in_direction, (int, float)) and math.isfinite(r.in_direction)):
        return ""
    ties = int(r.ties) if isinstance(r.ties, (int, float)) and math.isfinite(r.ties) else 0
    return f"{int(r.in_direction)}/{int(r.n_blocks)}" + (f", {ties} ties" if ties else "")


def to_markdown(res: pd.DataFrame, *, spec_path: str | Path, spec_sha256: str, n_runs: int,
                alpha: float) -> str:
    """claims.md: the claims that ran first (one table with their p-values), then counts of the
    rest ("N claims not run: systems missing: ...") instead of one row each."""
    def f(v, fmt):
        return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)

    ran = res[res["p_value"].map(lambda v: isinstance(v, (int, float)) and math.isfinite(v))]
    not_run = res[res["verdict"] == "not run"]
    not_tested = res[res["verdict"] == "not tested"]
    counts = ran["verdict"].value_counts()
    lines = [f"# Claims tested: `{Path(spec_path).name}`", "",
             f"Claims file SHA-256 `{spec_sha256}`; {n_runs} finished run(s). Each claim pairs its two "
             "methods on the blocks both have (setting, order, seed, test subset), two-sided Wilcoxon "
             f"signed-rank (tied blocks, zero differences, are counted and left out of the test), Holm "
             f"within each family, alpha = {alpha:g}. r = rank-biserial of a - b.", "",
             f"**{len(ran)} of {len(res)} claims ran**"
             + (": " + ", ".join(f"{n} {v}" for v, n in counts.items()) if len(ran) else "") + ".", ""]
    if len(ran):
        lines += ["| family | claim | a vs b | blocks in the claimed direction | p | p (Holm) | "
                  "smallest possible Holm p | r | verdict |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for _, r in ran.iterrows():
            means = f"{f(r.mean_a, '.4g')} vs {f(r.mean_b, '.4g')}"
            verdict = f"**{r.verdict}**" if r.verdict in ("holds", "reversed") else r.verdict
            note = f" ({r.note})" if r.note else ""
            lines.append(f"| {r.family} | {r.claim} | {means} | {_blocks_text(r)} | {f(r.p_value, '.4f')} | "
                         f"{f(r.p_holm, '.4f')} | {f(r.best_p_holm, '.4f')} | {f(r.effect_size, '+.2f')} | "
                         f"{verdict}{note} |")
        lines.append("")
    if len(not_run):
        missing: dict[str, int] = {}
        present = set()
        for _, r in not_run.iterrows():
            text = str(r.note)
            names = text.split("no finished run of ", 1)[-1].split(" (runs of", 1)[0]
            for name in [n.strip() for n in names.split(",") if n.strip()]:
                missing[name] = missing.get(name, 0) + 1
            if "(runs of: " in text:
                present.add(text.split("(runs of: ", 1)[1].rstrip(")"))
        listing = ", ".join(f"{m} ({k})" for m, k in sorted(missing.items(), key=lambda kv: (-kv[1], kv[0])))
        lines += [f"{len(not_run)} claims not run: systems missing: {listing} (claims per system; "
                  "run them to test these claims)." + (f" Systems present: {'; '.join(sorted(present))}."
                                                       if present else ""), ""]
    if len(not_tested):
        lines += [f"{len(not_tested)} claims not tested (fewer than 2 blocks both systems have): "
                  + "; ".join(f"{r.claim} ({int(r.n_blocks)} block(s))" for _, r in not_tested.iterrows())
                  + ".", ""]
    return "\n".join(lines)


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
