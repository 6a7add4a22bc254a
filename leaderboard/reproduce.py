"""Reference results and the reproduction check (``l2emg reference`` and ``l2emg reproduce``).

A *reference results* file is the published grid's numbers in one CSV, like
continual-learning-baselines' ``target_results.csv``: one row per (system, setting, metric) with
the mean over runs, its 95% CI, the number of runs, the config hashes of those runs and the
stages they were made on.  ``l2emg reproduce RUNS`` aggregates a user's run folders the same way
and says, per number, whether it lies inside the reference CI, and whether the user's stages and
corpus are the reference ones (numbers made on other stages are not comparable, whatever they
say).

The CI of a number is the Student-t 95% interval over runs when there are >= 2, else the run's
own evaluation CI (``aggregates_ci95``: the reshuffled repeats), else zero width (an exact
reproduction is then required).  Reads result files only.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.io import DataError, atomic_write_text, read_json
from benchmark.reference import VERSION as STAGES_VERSION

# the shipped reference results of the default grid (README's main command, test part), made on
# the shipped stages of the same version: what `l2emg reproduce` compares with by default
SHIPPED = Path(__file__).resolve().parent / "reference" / f"{STAGES_VERSION}_default_test.csv"

COLUMNS = ("system", "setting", "metric", "mean", "ci_low", "ci_high", "n_runs", "config_hashes",
           "stage_hashes", "preset", "eval_part")
# the reproduction tolerance of a number: its reference CI widened by the user's own CI, and never
# narrower than float noise of a re-run on another BLAS (1e-6 relative)
_EPS = 1e-6


def _results(roots) -> list[dict]:
    found = []
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise DataError(root, "no such run folder", "pass a sweep's --out folder or run folders")
        paths = [root / "result.json"] if (root / "result.json").is_file() else sorted(root.rglob("result.json"))
        found += [(p, read_json(p)) for p in paths if ".stages" not in p.parts]
    if not found:
        raise DataError(roots[0] if roots else None, "no finished run (result.json) here",
                        "finish a run or a sweep first")
    return found


def _stage_key(res: dict) -> str:
    hashes = res.get("stage_hashes") or {}
    return ";".join(f"{k}={hashes[k]}" for k in sorted(hashes) if k != "split")


def aggregate(roots) -> pd.DataFrame:
    """One row per (system, setting, metric) of the runs under ``roots`` (see module doc)."""
    rows: dict[tuple, dict] = {}
    for path, res in _results(roots):
        key = (res["method"], str(res["setting"]).lower())
        entry = rows.setdefault(key, {"values": {}, "cis": {}, "hashes": [], "stages": set(),
                                      "preset": set(), "part": set()})
        entry["hashes"].append(str(res.get("config_hash", "")))
        entry["stages"].add(_stage_key(res))
        entry["preset"].add(str(res.get("preset")))
        entry["part"].add(str((res.get("eval") or {}).get("part", "test")))
        for metric, value in (res.get("aggregates") or {}).items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                entry["values"].setdefault(metric, []).append(float(value))
                ci = (res.get("aggregates_ci95") or {}).get(metric)
                entry["cis"].setdefault(metric, []).append(float(ci) if ci is not None else 0.0)
    out = []
    for (system, setting), e in sorted(rows.items()):
        for metric, values in sorted(e["values"].items()):
            lo, hi, mean = _ci(values, e["cis"][metric])
            out.append({"system": system, "setting": setting, "metric": metric, "mean": mean,
                        "ci_low": lo, "ci_high": hi, "n_runs": len(values),
                        "config_hashes": ";".join(sorted(e["hashes"])),
                        "stage_hashes": "|".join(sorted(e["stages"])),
                        "preset": "|".join(sorted(e["preset"])), "eval_part": "|".join(sorted(e["part"]))})
    return pd.DataFrame(out, columns=list(COLUMNS))


def _ci(values: list[float], eval_cis: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) >= 2:
        half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    else:
        half = float(eval_cis[0]) if eval_cis and math.isfinite(eval_cis[0]) else 0.0
    return mean - half, mean + half, mean


def write_reference(roots, out: str | Path) -> pd.DataFrame:
    """``l2emg reference RUNS --out FILE``: the reference results of the runs under ``roots``."""
    table = aggregate(roots)
    atomic_write_text(out, table.to_csv(index=False, float_format="%.6g"))
    return table


def read_reference(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such reference results file",
                        "pass --reference FILE (written by `l2emg reference RUNS --out FILE`)")
    try:
        table = pd.read_csv(path, dtype={"config_hashes": str, "stage_hashes": str})
    except (ValueError, pd.errors.ParserError) as err:
        raise DataError(path, f"not a CSV file ({err})", "regenerate it with `l2emg reference`") from err
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(path, f"lacks the column(s) {missing}", "regenerate it with `l2emg reference`")
    return table


def compare(roots, reference: str | Path) -> pd.DataFrame:
    """Per (system, setting, metric) that both have: the user's mean and CI, the reference's,
    ``inside`` (the means differ by no more than the two CIs' half-widths together: the
    intervals overlap) and ``same_stages`` (the runs were made on the reference's stages)."""
    ref = read_reference(reference)
    mine = aggregate(roots)
    both = mine.merge(ref, on=["system", "setting", "metric"], suffixes=("", "_ref"))
    if both.empty:
        raise DataError(reference, "no (system, setting, metric) in common with these runs",
                        "run systems and settings the reference has (see its first columns)")
    half = (both["ci_high"] - both["ci_low"]) / 2 + (both["ci_high_ref"] - both["ci_low_ref"]) / 2
    tol = half + _EPS * np.maximum(1.0, both["mean_ref"].abs())
    both["difference"] = both["mean"] - both["mean_ref"]
    both["inside"] = both["difference"].abs() <= tol
    both["same_stages"] = both["stage_hashes"] == both["stage_hashes_ref"]
    both["same_protocol"] = (both["preset"] == both["preset_ref"]) & (both["eval_part"] == both["eval_part_ref"])
    return both[["system", "setting", "metric", "mean", "ci_low", "ci_high", "n_runs", "mean_ref",
                 "ci_low_ref", "ci_high_ref", "n_runs_ref", "difference", "inside", "same_stages",
                 "same_protocol"]]


def report_text(table: pd.DataFrame) -> str:
    n, inside = len(table), int(table["inside"].sum())
    stages = bool(table["same_stages"].all())
    protocol = bool(table["same_protocol"].all())
    lines = [f"reproduce: {inside}/{n} numbers inside the reference CI; stages "
             f"{'are' if stages else 'are NOT'} the reference ones; protocol (preset, eval part) "
             f"{'matches' if protocol else 'does NOT match'}"]
    if not stages:
        lines.append("  (numbers made on other stages, e.g. rebuilt ones, are not comparable with "
                     "the reference: use the shipped stages)")
    for r in table.itertuples():
        mark = "ok " if r.inside else "OUT"
        lines.append(f"  {mark} {r.system:<22}{r.setting:<8}{r.metric:<6}{r.mean:>9.4f} "
                     f"[{r.ci_low:.4f}, {r.ci_high:.4f}]  ref {r.mean_ref:.4f} "
                     f"[{r.ci_low_ref:.4f}, {r.ci_high_ref:.4f}]  n {r.n_runs}/{r.n_runs_ref}")
    return "\n".join(lines)


def compare_runs(roots, published) -> pd.DataFrame:
    """Each of your runs against the published run of the same config hash under ``published``
    (e.g. results/default-v1/runs): how many of its ``matrices/*.csv`` are byte-identical, the
    largest absolute difference of a numeric cell, and whether the aggregates are equal.  The
    protocol is deterministic on CPU, so a run on the same stages should match exactly; another
    BLAS or device leaves float noise, which the difference column shows."""
    twins = {res.get("config_hash"): path.parent for path, res in _results([published])}
    rows = []
    for path, res in _results(roots):
        run = path.parent
        row = {"run": f"{res['method']}/{res['setting']}/order{res['order']}/seed{res['seed']}",
               "config_hash": res.get("config_hash"), "published": None, "matrices": 0,
               "identical": 0, "max_abs_difference": math.nan, "aggregates_equal": False}
        twin = twins.get(res.get("config_hash"))
        if twin is not None and twin.resolve() != run.resolve():
            row["published"] = str(twin)
            mats = sorted((run / "matrices").glob("*.csv"))
            worst = 0.0
            for m in mats:
                other = twin / "matrices" / m.name
                if not other.is_file():
                    worst = math.inf
                    continue
                if m.read_bytes() == other.read_bytes():
                    row["identical"] += 1
                    continue
                a, b = pd.read_csv(m), pd.read_csv(other)
                if a.shape != b.shape:
                    worst = math.inf
                    continue
                x = a.select_dtypes("number").to_numpy(float)
                y = b.select_dtypes("number").to_numpy(float)
                both = np.isfinite(x) & np.isfinite(y)
                worst = max(worst, float(np.abs(x - y)[both].max(initial=0.0)),
                            math.inf if (np.isfinite(x) != np.isfinite(y)).any() else 0.0)
            row.update(matrices=len(mats), max_abs_difference=worst,
                       aggregates_equal=res.get("aggregates") == read_json(twin / "result.json").get("aggregates"))
        rows.append(row)
    return pd.DataFrame(rows)


def runs_text(table: pd.DataFrame) -> str:
    matched = table[table["published"].notna()]
    exact = matched[(matched["identical"] == matched["matrices"]) & matched["aggregates_equal"]]
    worst = matched["max_abs_difference"].max() if len(matched) else math.nan
    lines = [f"runs: {len(matched)}/{len(table)} have a published twin (same config hash); "
             f"{len(exact)} byte-identical (every matrix, equal aggregates); largest cell "
             f"difference {worst:.3g}"]
    for r in table.itertuples():
        if pd.isna(r.published):
            lines.append(f"  --  {r.run:<40} no published run with config hash {r.config_hash}")
        else:
            lines.append(f"  {'=  ' if r.identical == r.matrices and r.aggregates_equal else '~  '}"
                         f"{r.run:<40} {r.identical}/{r.matrices} matrices identical, "
                         f"max |diff| {r.max_abs_difference:.3g}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI
def reference_args(p) -> None:
    p.add_argument("runs", nargs="+", help="run folders or a sweep's --out folder")
    p.add_argument("--out", required=True, help="reference results CSV to write")


def reference(args) -> int:
    table = write_reference(args.runs, args.out)
    print(f"reference: {len(table)} numbers of {table[['system', 'setting']].drop_duplicates().shape[0]} "
          f"systems x settings -> {args.out}")
    return 0


def reproduce_args(p) -> None:
    p.add_argument("runs", nargs="+", help="your run folders or sweep --out folder")
    p.add_argument("--reference", default=str(SHIPPED),
                   help="reference results CSV (`l2emg reference RUNS --out FILE`); default: the "
                        f"shipped results of the default grid, leaderboard/reference/{SHIPPED.name}")
    p.add_argument("--out", help="also write the comparison as CSV")
    p.add_argument("--runs-of", metavar="FOLDER",
                   help="also compare each run with the published run of the same config hash in "
                        "FOLDER (e.g. results/default-v1/runs): matrices byte for byte, the largest "
                        "cell difference (informational: the exit status is the CI check's)")


def reproduce(args) -> int:
    table = compare(args.runs, args.reference)
    if args.out:
        atomic_write_text(args.out, table.to_csv(index=False, float_format="%.6g"))
    print(report_text(table))
    if args.runs_of:
        runs = compare_runs(args.runs, args.runs_of)
        if args.out:
            atomic_write_text(Path(args.out).with_name(Path(args.out).stem + "_runs.csv"),
                              runs.to_csv(index=False, float_format="%.6g"))
        print(runs_text(runs))
    ok = bool(table["inside"].all() and table["same_stages"].all() and table["same_protocol"].all())
    return 0 if ok else 1
