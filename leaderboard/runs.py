"""Read and validate run folders (docs/CONTRACTS.md "Run folders"), recompute their aggregates
from the saved matrices, and refuse to merge runs whose configurations differ.

Only result files are read here; no training code is imported.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.io import DataError, hash_json
from benchmark.identity import RunKey
from evaluators.continual import DIRECTIONS

# Aggregate name -> True when lower is better (the evaluator's directions, the paper's arrows).
LOWER_IS_BETTER: dict[str, bool] = {k: v == "lower" for k, v in DIRECTIONS.items()}
LOWER_IS_BETTER["generation_failure_rate"] = True
# Fields that must agree between merged runs, and the run keys within which they must agree
# (a split depends on the setting and may depend on the seed; the rest is shared by all runs).
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "corpus": (), "tokenizer": (), "evaluator": (), "backbone": (), "preset": (),
    "eval_part": (), "stages_version": (),
    "split": ("setting", "seed"), "method_config": ("method",),
}
# How each field reads in the refusal message.
FIELD_TITLES: dict[str, str] = {
    "corpus": "corpus stage hash", "tokenizer": "tokenizer stage hash",
    "evaluator": "evaluator stage hash", "backbone": "backbone stage hash", "preset": "preset",
    "eval_part": "eval_part (evaluated part)", "stages_version": "stages_version",
    "split": "split hash", "method_config": "method_config hash",
}
# Fields compared only between runs that have them (a field newer runs write, older ones lack).
OPTIONAL_FIELDS = ("stages_version",)
INFO_KEYS = ("ground_truth", "ground_truth_per_subset", "chance", "fr_floor", "n_test",
             "aggregates_ci95", "eval", "stages_version", "floors", "multimodality_measured")
RESULT_KEYS = ("method", "setting", "order", "seed", "scenario_order", "aggregates")
AGREE_RTOL, AGREE_ATOL = 1e-4, 1e-6


def is_lower_better(metric: str) -> bool:
    """Direction of an aggregate; unknown metrics are treated as higher-is-better."""
    return LOWER_IS_BETTER.get(metric, False)


@dataclass
class Run:
    """One finished run: identity, stage hashes, matrices and (recomputed) aggregates."""

    path: Path
    method: str
    setting: str
    order: str
    seed: int
    preset: str | None
    scenario_order: list[str]
    stage_hashes: dict[str, str]
    method_config_hash: str
    matrices: dict[str, pd.DataFrame]
    baseline: pd.DataFrame | None
    aggregates: dict[str, float]
    reported: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)     # result.json's ground truth, chance, FR floor...

    @property
    def run_key(self) -> RunKey:
        return RunKey(self.method, self.setting, self.order, self.seed, self.preset)

    @property
    def key(self) -> tuple[str, str, str, int]:
        """The run's cell (:attr:`harness.run_config.RunKey.cell`): one run per cell."""
        return self.run_key.cell

    def metric(self, name: str) -> float:
        return self.aggregates.get(name, self.extra.get(name, math.nan))


# ----------------------------------------------------------------------------- discovery
def find_run_dirs(paths: list[str | Path], strict: bool = False) -> list[Path]:
    """Finished run folders under ``paths`` (each a run folder or a folder searched recursively).

    Folders that look like runs (``config.json`` or ``progress.json``) but have no
    ``result.json`` are unfinished: skipped with a warning, or a DataError when ``strict``.
    """
    if not paths:
        raise DataError(None, "no run folders given", "pass one or more RUNS folders")
    found: list[Path] = []
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise DataError(root, "folder does not exist", "check the RUNS path")
        if root.is_file():
            raise DataError(root, "expected a run folder, got a file",
                            "pass the folder that holds result.json")
        results = sorted(p.parent for p in root.rglob("result.json"))
        markers = {p.parent for p in root.rglob("progress.json")}
        markers |= {p.parent for p in root.rglob("config.json") if _looks_like_run_config(p)}
        unfinished = sorted(m for m in markers if not (m / "result.json").exists()
                            and not any(m in r.parents or r in m.parents for r in results))
        for u in unfinished:
            msg = "run folder has no result.json (unfinished run)"
            if strict:
                raise DataError(u, msg, "finish it with `l2emg run ... --resume` or drop --strict")
            warnings.warn(f"{u}: {msg}; skipped", stacklevel=2)
        if not results:
            raise DataError(root, "no finished run (result.json) found here",
                            "point RUNS at run folders written by `l2emg run`/`l2emg sweep`")
        found.extend(results)
    unique = sorted({p.resolve() for p in found})
    return unique


def _looks_like_run_config(path: Path) -> bool:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and "method" in obj and "setting" in obj


# ----------------------------------------------------------------------------- reading
def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "file is missing", "rerun the run that should have written it") from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err.msg} at line {err.lineno})",
                        "rerun the run; result files are written atomically") from None
    if not isinstance(obj, dict):
        raise DataError(path, "expected a JSON object", "rerun the run")
    return obj


def _read_matrix(path: Path, order: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"unreadable matrix CSV ({err})", "rerun the run") from None
    if list(df.columns) != order:
        raise DataError(path, f"columns {list(df.columns)} are not the run's scenario order {order}",
                        "the matrix and result.json come from different runs; rerun it")
    n_rows = len(df)
    if not 1 <= n_rows <= len(order) or list(df.index) != [f"after_{i}" for i in range(1, n_rows + 1)]:
        raise DataError(path, f"rows {list(df.index)} are not after_1..after_k (k <= {len(order)})",
                        "rerun the run")
    try:
        return df.astype(float)
    except ValueError:
        raise DataError(path, "matrix holds non-numeric values", "rerun the run") from None


def _read_matrices(run_dir: Path, order: list[str]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None]:
    from evaluators.metrics import METRIC_KEYS

    mdir = run_dir / "matrices"
    if not mdir.is_dir() and any((run_dir / f"{k}.csv").is_file() for k in METRIC_KEYS):
        mdir = run_dir          # a flattened copy of a run folder (tests/data/pinned/seq_lora_flat/)
    if not mdir.is_dir():
        raise DataError(mdir, "matrices/ folder is missing", "rerun the run (its evaluation did not finish)")

    # <metric>.csv are the matrices; <metric>_ci.csv their per-cell CIs, chance.csv the chance
    # levels (read by :func:`read_cis` / :func:`read_chance`)
    mats = {p.stem: _read_matrix(p, order) for p in sorted(mdir.glob("*.csv")) if p.stem in METRIC_KEYS}
    if not mats:
        raise DataError(mdir, "no matrix CSVs", "rerun the run")
    base_path = mdir / "baseline.csv"
    baseline = None
    if base_path.exists():
        baseline = pd.read_csv(base_path, index_col=0).astype(float)
    return mats, baseline


def _baseline_arrays(baseline: pd.DataFrame | None, order: list[str]) -> dict[str, np.ndarray] | None:
    """baseline.csv (rows = metric keys, columns = subsets) -> {metric: (N,) array}, or None."""
    if baseline is None or list(baseline.columns) != order:
        return None
    return {str(k): baseline.loc[k].to_numpy(dtype=float) for k in baseline.index}


def recompute_aggregates(mats: dict[str, pd.DataFrame], baseline: pd.DataFrame | None,
                         path: Path | None = None) -> dict[str, float]:
    """Aggregates recomputed from the matrices with ``evaluators.continual`` (the one definition).

    A run evaluated fewer times than it has subsets (e.g. one joint multi-task run, a single
    ``after_1`` row) gets last-row averages only; FR, BWT and FWT are NaN then.
    """
    from evaluators.continual import run_aggregates
    from evaluators.metrics import METRIC_KEYS

    arrays = {k: v.to_numpy(dtype=float) for k, v in mats.items() if k in METRIC_KEYS}
    base = None
    if all(a.shape[0] == a.shape[1] for a in arrays.values()):
        order = list(next(iter(mats.values())).columns)
        base = _baseline_arrays(baseline, order)
        base = None if base is None else {k: v for k, v in base.items() if np.isfinite(v).all()}
    try:
        return run_aggregates(arrays, baseline=base)
    except ValueError as err:
        raise DataError(path, f"invalid matrices ({err})", "rerun the run's evaluation") from None


def _agree(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=AGREE_RTOL, abs_tol=AGREE_ATOL)


def load_run(run_dir: str | Path, strict: bool = False) -> Run:
    """Read and validate one finished run folder."""
    run_dir = Path(run_dir)
    res_path = run_dir / "result.json"
    res = _read_json(res_path)
    missing = [k for k in RESULT_KEYS if k not in res]
    if missing:
        raise DataError(res_path, f"missing keys {missing}", "rerun the run with the current code")
    config = _read_json(run_dir / "config.json") if (run_dir / "config.json").exists() else {}
    order = [str(s) for s in res["scenario_order"]]
    mats, baseline = _read_matrices(run_dir, order)
    agg = recompute_aggregates(mats, baseline, run_dir / "matrices")
    reported = {k: float(v) for k, v in res["aggregates"].items() if v is not None}
    for name, value in reported.items():
        if math.isfinite(agg.get(name, math.nan)) and not _agree(agg[name], value):
            msg = (f"result.json says {name}={value:.6g} but its matrices give {agg[name]:.6g} "
                   "(stale summary)")
            if strict:
                raise DataError(res_path, msg, "rerun the run's evaluation or drop --strict")
            warnings.warn(f"{res_path}: {msg}; using the matrices", stacklevel=2)
    for name, value in reported.items():  # aggregates we cannot recompute are taken as reported
        if not math.isfinite(agg.get(name, math.nan)):
            agg[name] = value
    routed = run_dir / "matrices" / "route_own.csv"
    if routed.is_file():      # routed methods: share of each subset's prompts sent to its own expert
        last = pd.read_csv(routed, index_col=0).iloc[-1].to_numpy(dtype=float)
        if np.isfinite(last).any():
            agg["route_own"] = float(np.nanmean(last))
    stages = dict(res.get("stage_hashes") or config.get("stage_hashes") or {})
    key = RunKey.from_result(res, config)
    if "method_info" in res:      # the method's facts (older runs: the registry's, see methods)
        from benchmark.identity import split_label
        from leaderboard.methods import check_info, remember

        remember(res.get("base_method") or split_label(key.method)[0],
                 check_info(res["method_info"], res_path))
    extra = {}
    if isinstance(res.get("generation_failure_rate"), (int, float)):
        extra["generation_failure_rate"] = float(res["generation_failure_rate"])
    info = {k: res[k] for k in INFO_KEYS if k in res}
    # FR's no-forgetting floors (mean, points) as per-run values next to FR in every table
    if math.isfinite(agg.get("FR", math.nan)):
        extra["FR_floor_binomial"] = float((res.get("fr_floor") or {}).get("mean", math.nan))
    floor = _measured_floor(run_dir, res)
    if floor is not None:
        info["fr_floor_measured"] = floor
        extra["FR_floor_measured"] = float(floor["mean"])
    return Run(path=run_dir, method=key.method, setting=key.setting, order=key.order,
               seed=key.seed, preset=key.preset,
               scenario_order=order, stage_hashes={k: str(v) for k, v in stages.items()},
               method_config_hash=hash_json(config.get("method_config", res.get("method_config", {}))),
               matrices=mats, baseline=baseline, aggregates=agg, reported=reported, extra=extra,
               info=info)


def _measured_floor(run_dir: Path, res: dict) -> dict | None:
    """``RUN/fr_floor.json`` (``l2emg floor``) when there is one; it must be of this run."""
    from evaluators.continual import FLOOR_FILE

    path = run_dir / FLOOR_FILE
    if not path.is_file():
        return None
    floor = _read_json(path)
    if floor.get("config_hash") != res.get("config_hash"):
        raise DataError(path, f"measured on config {floor.get('config_hash')}, the run is "
                        f"{res.get('config_hash')}", "measure again: l2emg floor RUN --force")
    return floor


def _field_value(run: Run, name: str) -> str | None:
    if name == "preset":
        return run.preset
    if name == "eval_part":     # test (results) or val (model selection); old runs: test
        return str((run.info.get("eval") or {}).get("part", "test"))
    if name == "stages_version":    # e.g. "l2emg-ref-v1" or "rebuilt"; absent in older runs
        value = run.info.get("stages_version")
        return None if value is None else str(value)
    if name == "method_config":
        return run.method_config_hash
    return run.stage_hashes.get(name)


def _differences(a: Run, b: Run) -> list[str]:
    """'<field> differs (x vs y)' for every field of STAGE_FIELDS that may not differ between
    runs ``a`` and ``b`` (a field with a scope only when both runs share it)."""
    out = []
    for name, within in STAGE_FIELDS.items():
        if any(getattr(a, w) != getattr(b, w) for w in within):
            continue
        va, vb = _field_value(a, name), _field_value(b, name)
        if name in OPTIONAL_FIELDS and (va is None or vb is None):
            continue
        if va != vb:
            out.append(f"{FIELD_TITLES.get(name, name)} differs ({va!r} vs {vb!r})")
    return out


def _conflicts(runs: list[Run]) -> list[tuple[str, Run, Run, int]]:
    """Per field of STAGE_FIELDS whose value differs within its scope: (field, the first run of
    one value, the first run of another, how many runs hold a value other than the first)."""
    out = []
    for name, within in STAGE_FIELDS.items():
        groups: dict[tuple, dict[str | None, list[Run]]] = {}
        for r in runs:
            value = _field_value(r, name)
            if name in OPTIONAL_FIELDS and value is None:
                continue
            groups.setdefault(tuple(getattr(r, w) for w in within), {}).setdefault(value, []).append(r)
        for values in groups.values():
            if len(values) > 1:
                first, *rest = values.values()
                out.append((name, first[0], rest[0][0], sum(len(v) for v in rest)))
    return out


def check_compatible(runs: list[Run]) -> list[str]:
    """Problems that make ``runs`` unsafe to merge: duplicates, and per conflicting field one
    message naming two runs and everything that differs between them (stage hashes, preset,
    stages_version, evaluated part, split within a setting and seed, method_config within a
    method)."""
    problems: list[str] = []
    seen: dict[tuple, Path] = {}
    for r in runs:
        if r.key in seen:
            problems.append(f"duplicate run {r.key}: {seen[r.key]} and {r.path}")
        seen.setdefault(r.key, r.path)
    reported: set[frozenset] = set()
    for name, a, b, n_other in _conflicts(runs):
        pair = frozenset((a.path, b.path))
        if pair in reported:
            continue
        reported.add(pair)
        more = f" (and {n_other - 1} more run(s) like the second)" if n_other > 1 else ""
        problems.append(f"{a.path} and {b.path}: " + ", ".join(_differences(a, b)) + more)
    return problems


def load_runs(paths: list[str | Path], allow_mixed: bool = False, strict: bool = False) -> list[Run]:
    """Find, read and validate runs; refuse mixed configurations unless ``allow_mixed``."""
    runs = [load_run(p, strict=strict) for p in find_run_dirs(paths, strict=strict)]
    problems = check_compatible(runs)
    dup = [p for p in problems if p.startswith("duplicate")]
    if dup:
        raise DataError(None, "the same run appears twice: " + " | ".join(dup),
                        "pass each run folder once (remove the copy)")
    if problems and not allow_mixed:
        extra = f" (+{len(problems) - 1} other conflicting pair(s))" if len(problems) > 1 else ""
        raise DataError(None, "refusing to merge runs of different configurations into one row: "
                        + problems[0] + extra,
                        "compare runs of one preset and one set of stages (rebuild or rerun the odd "
                        "ones), or pass --allow-mixed")
    if problems:
        warnings.warn("merging mixed configurations: " + " | ".join(problems), stacklevel=2)
    return runs


def runs_frame(runs: list[Run], metrics: list[str] | None = None) -> pd.DataFrame:
    """Tidy per-run values: method, setting, order, seed, metric, value, path."""
    valid = available_metrics(runs)
    metrics = validate_metrics(metrics, valid) if metrics else valid
    rows = [{"method": r.method, "setting": r.setting, "order": r.order, "seed": r.seed,
             "metric": m, "value": r.metric(m), "path": str(r.path)} for r in runs for m in metrics]
    return pd.DataFrame(rows)


def subset_values(run: Run, metric: str) -> pd.Series:
    """The per-subset terms whose mean is the aggregate ``metric`` (index = subset names):
    the last row of the averaged matrix for AF/AR/AR3/AD/AMM/AWF, and for FR each subset's
    ``100 (max_{k=j..N-1} r[k, j] - r[N, j])`` (NaN for the last subset of the order).  Empty
    for an aggregate without per-subset terms (BWT/FWT)."""
    from evaluators.continual import FINAL_AVERAGES, TRANSFER_KEY

    if metric in FINAL_AVERAGES and FINAL_AVERAGES[metric] in run.matrices:
        return run.matrices[FINAL_AVERAGES[metric]].iloc[-1].astype(float)
    if metric == "FR" and TRANSFER_KEY in run.matrices:
        m = run.matrices[TRANSFER_KEY]
        r = m.to_numpy(dtype=float)
        n = r.shape[0]
        if n < 2 or r.shape[0] != r.shape[1]:
            return pd.Series(dtype=float)
        vals = [100.0 * (np.nanmax(r[j:n - 1, j]) - r[n - 1, j]) for j in range(n - 1)] + [np.nan]
        return pd.Series(vals, index=m.columns)
    return pd.Series(dtype=float)


def subsets_frame(runs: list[Run], metric: str) -> pd.DataFrame:
    """Tidy per-subset values: method, setting, order, seed, subset, value."""
    rows = [{"method": r.method, "setting": r.setting, "order": r.order, "seed": r.seed,
             "subset": str(subset), "value": float(v)}
            for r in runs for subset, v in subset_values(r, metric).items()]
    return pd.DataFrame(rows, columns=["method", "setting", "order", "seed", "subset", "value"])


def available_metrics(runs: list[Run]) -> list[str]:
    """Aggregate names present in any run, in the paper's column order first."""
    names = {k for r in runs for k in list(r.aggregates) + list(r.extra)}
    known = [m for m in LOWER_IS_BETTER if m in names]
    return known + sorted(names - set(known))


def validate_metrics(metrics: list[str], valid: list[str]) -> list[str]:
    """Return metrics as given (case-insensitive match) or raise listing the valid names."""
    lookup = {v.lower(): v for v in valid}
    out = []
    for m in metrics:
        if m.lower() not in lookup:
            raise DataError(None, f"unknown metric {m!r}", f"choose from {', '.join(valid)}")
        out.append(lookup[m.lower()])
    return out
