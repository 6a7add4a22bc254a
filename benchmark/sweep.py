"""``l2emg sweep``: methods x settings x scenario orders x seeds, each a ``l2emg run`` folder.

Resumable: a run folder with ``result.json`` is skipped, one with a checkpoint resumes from its
last finished experience.  The shared stages (corpus, split manifests, tokenizer, evaluator,
backbone) are built once before any run starts and reused by content hash (``benchmark.stages``),
so parallel workers never race to train the same tokenizer.  ``--jobs N`` runs N runs at once
through joblib's process executor; ``--executor ray`` sends the same runs to a Ray cluster
(``pip install l2emg-bench[ray]``).
"""
from __future__ import annotations

import dataclasses
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.io import DataError

# the systems of the paper's Table 2, in its row order
PAPER_METHODS: tuple[str, ...] = (
    "mtl", "seq_lora", "lwf_lora", "epi", "o_lora", "prog_prompt", "sapt",
    "es_moe", "es_moe_no_cged", "es_moe_no_samoe", "es_moe_no_emo_loss",
)
SETTINGS: tuple[str, ...] = ("unseen", "mixed")


@dataclass(frozen=True)
class RunSpec:
    """One cell of the sweep grid and its run folder."""

    method: str
    setting: str
    order: str
    seed: int
    out: Path

    @property
    def label(self) -> str:
        return f"{self.method}/{self.setting}/order{self.order}/seed{self.seed}"


@dataclass
class SweepConfig:
    """What to sweep and how.  ``run_options`` are passed to every run (preset, data paths,
    device, ``--set`` overrides ...), see :func:`benchmark.runner.config_from_args`."""

    methods: list[str]
    settings: list[str] = field(default_factory=lambda: list(SETTINGS))
    orders: list[str] = field(default_factory=lambda: ["1", "2", "3"])
    seeds: list[int] = field(default_factory=lambda: [0])
    out: Path = Path("runs/sweep")
    jobs: int = 1
    executor: str = "local"
    run_options: dict = field(default_factory=dict)

    def __post_init__(self):
        self.out = Path(self.out)
        bad = [s for s in self.settings if s not in SETTINGS]
        if bad:
            raise DataError(None, f"unknown setting(s) {bad}", f"use {', '.join(SETTINGS)}")
        if self.jobs < 1:
            raise DataError(None, "--jobs must be >= 1", "pass --jobs 1 or more")
        if self.executor not in ("local", "ray"):
            raise DataError(None, f"unknown executor {self.executor!r}", "use local or ray")
        if not self.methods:
            raise DataError(None, "no methods to run", "pass --methods a,b or 'all'")


def plan(cfg: SweepConfig) -> list[RunSpec]:
    """The grid in a stable order: methods outermost, so a partial sweep covers whole methods.
    MTL trains jointly on everything, so its order does not matter: it runs once per seed per
    setting (order 1)."""
    specs = []
    for method in cfg.methods:
        for setting in cfg.settings:
            orders = cfg.orders[:1] if method == "mtl" else cfg.orders
            for order in orders:
                for seed in cfg.seeds:
                    out = cfg.out / method / setting / f"order{_slug(order)}" / f"seed{seed}"
                    specs.append(RunSpec(method, setting, str(order), int(seed), out))
    return specs


def _slug(order: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(order)).strip("-")[:60] or "x"


def status(spec: RunSpec) -> str:
    """``done`` (result.json), ``partial`` (a checkpoint or progress to resume) or ``new``."""
    if (spec.out / "result.json").is_file():
        return "done"
    if (spec.out / "progress.json").is_file() or (spec.out / "checkpoints").is_dir():
        return "partial"
    return "new"


def _run_one(spec: RunSpec, run_options: dict, threads: int) -> tuple[str, str | None, float]:
    """Run (or resume) one cell; returns (label, error or None, seconds).  Runs in a worker."""
    import torch

    from benchmark import runner
    from benchmark.cli import quiet_third_party_warnings

    quiet_third_party_warnings()
    torch.set_num_threads(max(1, threads))

    t0 = time.time()
    try:
        runner.run(make_run_config(spec, run_options, resume=status(spec) == "partial"))
        return spec.label, None, time.time() - t0
    except Exception as err:  # noqa: BLE001 - one failed run must not stop the sweep; reported
        tail = traceback.format_exc(limit=4).strip().splitlines()[-1]
        return spec.label, f"{type(err).__name__}: {err} ({tail})", time.time() - t0


def make_run_config(spec: RunSpec, run_options: dict, resume: bool = False):
    """The :class:`benchmark.runner.RunConfig` of one cell."""
    from benchmark.runner import RunConfig

    return RunConfig(method=spec.method, out=str(spec.out), setting=spec.setting, order=spec.order,
                     seed=spec.seed, resume=resume, **run_options)


def prepare_stages(cfg: SweepConfig) -> None:
    """Build the shared artefacts once (corpus, manifests, tokenizer, evaluator, backbone) in
    this process, so parallel runs only ever read them."""
    from benchmark.runner import build_run_stages

    for setting in cfg.settings:
        for seed in sorted(set(cfg.seeds)):
            spec = RunSpec(cfg.methods[0], setting, cfg.orders[0], seed, cfg.out / ".stages")
            build_run_stages(make_run_config(spec, cfg.run_options).resolved())


def sweep_runs(cfg: SweepConfig, progress: bool = True) -> dict:
    """Run every pending cell; returns {"done": [...], "failed": {label: error}, "skipped": [...]}."""
    specs = plan(cfg)
    pending = [s for s in specs if status(s) != "done"]
    skipped = [s.label for s in specs if status(s) == "done"]
    report = {"planned": len(specs), "skipped": skipped, "done": [], "failed": {}, "seconds": {}}
    if progress:
        print(f"sweep: {len(specs)} runs planned, {len(skipped)} already finished, "
              f"{len(pending)} to run with {cfg.jobs} job(s) on executor {cfg.executor}")
    if not pending:
        return report
    prepare_stages(cfg)
    cores = os.cpu_count() or 1
    threads = cfg.run_options.get("threads") or max(1, cores // cfg.jobs)
    opts = {**cfg.run_options, "threads": threads}
    if cfg.jobs > 1:   # interleaved per-run bars from several workers are unreadable
        opts["progress"] = False
    cfg = dataclasses.replace(cfg, run_options=opts)
    results = _execute(pending, cfg, threads, progress)
    for label, error, seconds in results:
        report["seconds"][label] = round(seconds, 1)
        if error is None:
            report["done"].append(label)
        else:
            report["failed"][label] = error
    return report


def _execute(pending: list[RunSpec], cfg: SweepConfig, threads: int, progress: bool):
    if cfg.executor == "ray":
        try:
            import ray
        except ImportError as err:
            raise DataError(None, "--executor ray needs the ray package",
                            "pip install 'l2emg-bench[ray]' (or ray) and start/attach a cluster") from err
        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True)
        remote = ray.remote(num_cpus=threads)(_run_one)
        return ray.get([remote.remote(s, cfg.run_options, threads) for s in pending])
    from tqdm.auto import tqdm

    if cfg.jobs == 1:
        out = []
        for spec in tqdm(pending, desc="runs", unit="run", disable=not progress):
            out.append(_run_one(spec, cfg.run_options, threads))
            if progress and out[-1][1]:
                tqdm.write(f"FAILED {out[-1][0]}: {out[-1][1]}")
        return out
    from joblib import Parallel, delayed

    jobs = Parallel(n_jobs=cfg.jobs, backend="loky", return_as="generator_unordered")(
        delayed(_run_one)(s, cfg.run_options, threads) for s in pending)
    out = []
    for res in tqdm(jobs, total=len(pending), desc="runs", unit="run", disable=not progress):
        out.append(res)
        if progress and res[1]:
            tqdm.write(f"FAILED {res[0]}: {res[1]}")
    return out


# ----------------------------------------------------------------------------- CLI
def add_grid_args(p) -> None:
    """Arguments shared by ``sweep`` and ``bench``."""
    p.add_argument("--methods", default=",".join(PAPER_METHODS),
                   help="comma-separated registered names, or 'all' (default: the paper's 11 systems)")
    p.add_argument("--settings", default="unseen,mixed", help="comma-separated: unseen,mixed")
    p.add_argument("--orders", default="1,2,3",
                   help="comma-separated order numbers (1,2,3); an explicit order is ';'-separated "
                        "lists of names, e.g. 'Dance,Sports;Sports,Dance'")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="runs in parallel on this machine (default: min(2, cores)); each run gets "
                        "cores // jobs torch threads")
    p.add_argument("--executor", choices=("local", "ray"), default="local")


def grid_from_args(args) -> dict:
    from benchmark.strategy.registry import available, discover

    for plugin in getattr(args, "plugin", None) or []:
        from benchmark.strategy.registry import load_plugin

        load_plugin(plugin)
    discover()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if methods == ["all"]:
        methods = list(available())
    unknown = [m for m in methods if m not in available()]
    if unknown:
        raise DataError(None, f"unknown method(s) {unknown}",
                        f"choose from {', '.join(sorted(available()))}")
    orders = parse_orders(args.orders)
    return dict(methods=methods, settings=[s.strip() for s in args.settings.split(",") if s.strip()],
                orders=orders, seeds=[int(s) for s in args.seeds.split(",") if s.strip()],
                jobs=args.jobs, executor=args.executor)


def parse_orders(text: str) -> list[str]:
    """``"1,2,3"`` -> three numbered orders; ``"Dance,Sports,Shows"`` -> one explicit order;
    ``"Dance,Sports;Sports,Dance"`` -> two explicit orders."""
    if ";" in text:
        return [o.strip() for o in text.split(";") if o.strip()]
    parts = [o.strip() for o in text.split(",") if o.strip()]
    if not parts:
        raise DataError(None, "--orders is empty", "pass e.g. --orders 1,2,3")
    return parts if all(p.isdigit() for p in parts) else [",".join(parts)]


def sweep_args(p) -> None:
    from benchmark.runner import add_shared_options

    add_grid_args(p)
    p.add_argument("--out", required=True, help="folder of run folders")
    add_shared_options(p)


def sweep(args) -> int:
    from benchmark.runner import shared_options

    cfg = SweepConfig(out=Path(args.out), run_options=shared_options(args),
                      **grid_from_args(args))
    report = sweep_runs(cfg)
    _print_report(report)
    return 1 if report["failed"] else 0


def _print_report(report: dict) -> None:
    print(f"sweep: {len(report['done'])} finished now, {len(report['skipped'])} were already "
          f"finished, {len(report['failed'])} failed")
    for label, err in report["failed"].items():
        print(f"  FAILED {label}: {err}")
