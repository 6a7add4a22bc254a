"""``l2emg floor RUN...``: FR's no-forgetting floor measured on a finished run.

``result.json``'s ``fr_floor`` is simulated from a binomial per test text, which overstates the
noise when some texts are easier than others (an upper bound).  This command measures the
evaluation's own noise instead: it reopens the run (its ``config.json``, the stages by content
hash, the strategy from ``checkpoints/state.pt``, i.e. the model after the last experience),
checks that the model reproduces the run's last row, then regenerates and rescores subsets
``0..N-2`` ``--gens`` times with fresh generation seeds and the rows' batch composition
(:meth:`evaluators.protocol.Scorer.redraw`), and simulates FR's null distribution from the
measured spread (:func:`evaluators.continual.empirical_forgetting_floor`).

Writes ``RUN/fr_floor.json`` (atomically; the run's own files are not touched), which the
leaderboard reads into the run's info and ``l2emg validity`` uses for its forgetting check.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from benchmark.io import DataError, atomic_write_json, default_cache, read_json

from evaluators.continual import FLOOR_FILE

REPRODUCE_ATOL = 1e-9     # the reopened model must give the last row's R@1 to this tolerance


def config_from_record(record: dict, **execution):
    """The :class:`~harness.run_config.RunConfig` a ``config.json`` record was made from, with
    the execution options (``out``, ``cache``, ``data``...) given here (they are not recorded)."""
    from harness.run_config import EXECUTION_FIELDS, FIELDS, RunConfig

    opts = {k: v for k, v in record.items() if k in FIELDS and k not in EXECUTION_FIELDS}
    order = record["order"]
    opts["order"] = (order["name"] if order["name"] in ("1", "2", "3")
                     else ",".join(order["scenarios"]))
    return RunConfig.from_options(**opts, **execution)


def measure(run_dir: str | Path, gens: int = 10, **execution) -> dict:
    """Measure the empirical floor of one finished run, write ``RUN/fr_floor.json``, return it.
    ``execution``: the run's execution options (``cache``, ``data``, ``threads``...)."""
    from harness.runner import thread_limits

    with thread_limits(int(execution.get("threads") or 0)):
        return _measure(Path(run_dir), gens, execution)


def _measure(run_dir: Path, gens: int, execution: dict) -> dict:
    import torch

    from benchmark.io import code_version
    from harness.runner import prepare
    from evaluators.continual import empirical_forgetting_floor

    if gens < 2:
        raise DataError(None, f"--gens {gens}: a spread needs at least 2 draws", "pass --gens 5")
    result_path, config_path = run_dir / "result.json", run_dir / "config.json"
    for p in (result_path, config_path):
        if not p.is_file():
            raise DataError(p, "missing: not a finished run folder",
                            "finish the run first (l2emg run ... --resume), or name its folder")
    result, record = read_json(result_path), read_json(config_path)
    n = int(result["n_experiences"])
    final = result["final"]["r_precision_top1"]
    if n < 2 or n != len(final):
        raise DataError(run_dir, f"{result['method']} was evaluated {n} time(s) on {len(final)} "
                        "subsets: a joint run has no FR, so no floor", "name a continual run")
    ckpt_path = run_dir / "checkpoints" / "state.pt"
    if not ckpt_path.is_file():
        raise DataError(ckpt_path, "missing: the model after the last experience is needed",
                        "rerun the run (its checkpoint was deleted)")
    started = time.time()
    cfg = config_from_record(record, out=str(run_dir), progress=False, **execution)
    st = prepare(cfg, reopen=True)
    if st.record["config_hash"] != record["config_hash"]:
        now, then = st.record["stage_hashes"], record.get("stage_hashes", {})
        diff = {k: (then.get(k), v) for k, v in now.items() if then.get(k) != v}
        raise DataError(config_path, f"the rebuilt config hash {st.record['config_hash']} is not "
                        f"the recorded {record['config_hash']} (stages recorded -> now: {diff})",
                        "pass the --cache, --data, --tokenizer, --evaluator, --backbone and "
                        "--strategy-file the run was made with")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    if len(ckpt["run"]["rows"]) != n:
        raise DataError(ckpt_path, f"holds {len(ckpt['run']['rows'])} of {n} rows",
                        "rerun the run: the checkpoint is not its last")
    st.strategy.load_state_dict(ckpt["strategy"])
    check, _, _, _ = st.scorer.cell(st.strategy, n, 0)       # the run's own seeds for r[N-1, 0]
    if abs(check["r_precision_top1"] - final[0]) > REPRODUCE_ATOL:
        raise DataError(ckpt_path, f"the reopened model gives R@1 {check['r_precision_top1']:.6f} "
                        f"on {st.names[0]} after the last experience, the run recorded "
                        f"{final[0]:.6f}", "measure on the machine and code the run was made with")
    draws = np.full((gens, n), np.nan)
    for g in range(gens):
        draws[g, : n - 1] = st.scorer.redraw(st.strategy, list(range(n - 1)), g)
    floor = empirical_forgetting_floor(draws, seed=cfg.key.seed)
    fr = float(result["aggregates"]["FR"])
    out = {
        "method": result["method"], "setting": result["setting"], "order": result["order"],
        "seed": result["seed"], "config_hash": record["config_hash"], "gens": gens,
        "subsets": st.names, "draws": [[None if math.isnan(x) else x for x in row] for row in draws.tolist()],
        "reproduced_last_row_subset0": check["r_precision_top1"],
        **{k: floor[k] for k in ("mean", "q95")},
        "sd": [None if math.isnan(x) else x for x in floor["sd"]],
        "FR": fr, "inside": bool(math.isfinite(fr) and fr <= floor["q95"]),
        "binomial": result.get("fr_floor"), "code": code_version(),
        "wall_time_s": time.time() - started,
    }
    atomic_write_json(run_dir / FLOOR_FILE, out)
    return out


def floor_args(parser) -> None:
    a = parser.add_argument
    a("runs", nargs="+", help="finished run folders (continual methods: a joint run has no FR)")
    a("--gens", type=int, default=10, help="regenerations of the final model (default 10)")
    a("--cache", default=default_cache(), help="the stage cache the runs were made with "
      "(default: the shared one, $L2EMG_CACHE or ~/.cache/l2emg)")
    a("--data", help="corpus folder the runs were made with (default: the synthetic corpus)")
    a("--tokenizer", help="motion tokenizer folder the runs were made with")
    a("--evaluator", help="evaluator folder the runs were made with")
    a("--backbone", default="tiny", help="'tiny' or the local model folder of the runs")
    a("--strategy-file", "--plugin", dest="strategy_files", action="append", default=[],
      metavar="FILE.py", help="a .py file of extra strategies (and CL plugins) to register (repeatable; --plugin is its old name)")
    a("--device", default="cpu")
    a("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    a("--force", action="store_true", help="measure again where fr_floor.json exists")


def floor(args) -> int:
    execution = dict(cache=args.cache, data=args.data, tokenizer=args.tokenizer,
                     evaluator=args.evaluator, backbone=args.backbone,
                     plugins=tuple(args.strategy_files), device=args.device, threads=args.threads)
    for run in args.runs:
        path = Path(run) / FLOOR_FILE
        if path.is_file() and not args.force:
            f = json.loads(path.read_text())
            print(f"{run}: kept ({FLOOR_FILE} exists; --force measures again)")
        else:
            f = measure(run, gens=args.gens, **execution)
        print(f"{run}: FR {f['FR']:.2f}, empirical floor mean {f['mean']:.2f} q95 {f['q95']:.2f} "
              f"({f['gens']} draws; binomial floor mean {f['binomial']['mean']:.2f} q95 "
              f"{f['binomial']['q95']:.2f}){'  inside' if f['inside'] else ''}")
    return 0
