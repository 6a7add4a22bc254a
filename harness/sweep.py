"""``l2emg sweep``: methods x settings x scenario orders x seeds, each a ``l2emg run`` folder.

Resumable: a run folder with ``result.json`` is skipped, one with a checkpoint resumes from its
last finished experience.  The shared stages (corpus, split manifests, tokenizer, evaluator,
backbone) are built once before any run starts and reused by content hash (``harness.stages``),
so parallel workers never race to train the same tokenizer.

Executors (one progress bar across the sweep for all of them):

* ``local``: ``--jobs N`` runs at once on this machine through joblib's process executor;
* ``ray``: one Ray task per run with declared resources (``--cpus-per-run``, ``--gpus-per-run``)
  on a local or remote Ray cluster (``--address auto|HOST:PORT``); a task whose worker dies is
  retried (``--max-retries``) and resumes from the run's last checkpoint;
* ``slurm``: one submitit job per run (``--partition``, ``--time``); a preempted or timed-out
  job is requeued (submitit's checkpoint protocol) and resumes from the run's last checkpoint.

Ray and Slurm workers read the stages from ``--cache`` and write run folders under ``--out``
by the same absolute paths as the driver: both must lie on a filesystem every node shares.

The sweep records its plan in ``OUT/sweep.json`` and a run that failed for good in
``RUN/failed.json``; a worker marks the run it is working on with ``RUN/running.json`` and
appends each (re)start to ``RUN/attempts.jsonl``.
``l2emg status OUT`` reads these (see :mod:`harness.sweep_status`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from benchmark.io import DataError, atomic_write_json

SETTINGS: tuple[str, ...] = ("unseen", "mixed")
EXECUTORS: tuple[str, ...] = ("local", "ray", "slurm")
PLAN_FILE = "sweep.json"
FAILED_FILE = "failed.json"
RUNNING_FILE = "running.json"
ATTEMPTS_FILE = "attempts.jsonl"
# test-only hook: "LABEL|N|MARKER" makes the worker of run LABEL stop after N experiences and
# kill its own process once (MARKER is created first, so the retry runs normally)
DIE_ONCE_ENV = "L2EMG_TEST_DIE_ONCE"


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
        from harness.run_config import RunKey

        return RunKey(self.method, self.setting, self.order, self.seed).label

@dataclass
class SweepConfig:
    """What to sweep and how.  ``run_options`` are passed to every run (preset, data paths,
    device, ``--set`` overrides ...: flat :meth:`harness.run_config.RunConfig.from_options`
    names), see :func:`harness.runner.shared_options`."""

    methods: list[str]
    settings: list[str] = field(default_factory=lambda: list(SETTINGS))
    orders: list[str] = field(default_factory=lambda: ["1", "2", "3"])
    seeds: list[int] = field(default_factory=lambda: [0])
    out: Path = Path("runs/sweep")
    jobs: int = 1
    executor: str = "local"
    run_options: dict = field(default_factory=dict)
    address: str | None = None           # ray: None = start a local runtime, "auto", HOST:PORT
    cpus_per_run: int = 0                # 0 = cores // jobs (local), 1 (ray / slurm)
    gpus_per_run: float = 0.0
    max_retries: int = 2                 # ray: retries after a worker death; slurm: requeues
    partition: str | None = None         # slurm
    time_min: int = 240                  # slurm job time limit (minutes)
    slurm_cluster: str | None = None     # submitit cluster: None = auto (slurm), "local" (tests)
    poll_s: float = 5.0                  # slurm: seconds between job polls
    overwrite: bool = False              # rerun folders that hold another configuration's run

    def __post_init__(self):
        self.out = Path(self.out)
        bad = [s for s in self.settings if s not in SETTINGS]
        if bad:
            raise DataError(None, f"unknown setting(s) {bad}", f"use {', '.join(SETTINGS)}")
        if self.jobs < 1:
            raise DataError(None, "--jobs must be >= 1", "pass --jobs 1 or more")
        if self.executor not in EXECUTORS:
            raise DataError(None, f"unknown executor {self.executor!r}", f"use {', '.join(EXECUTORS)}")
        if not self.methods:
            raise DataError(None, "no methods to run", "pass --methods a,b or 'all'")
        if self.cpus_per_run < 0 or self.gpus_per_run < 0 or self.max_retries < 0:
            raise DataError(None, "--cpus-per-run, --gpus-per-run and --max-retries must be >= 0",
                            "pass 0 or more")
        if self.time_min < 1:
            raise DataError(None, f"--time must be >= 1 minute, got {self.time_min}", "pass e.g. --time 240")
        if self.gpus_per_run and str(self.run_options.get("device", "cpu")).startswith("cpu"):
            raise DataError(None, f"--gpus-per-run {self.gpus_per_run:g} reserves GPUs but runs use "
                            "--device cpu", "add --device cuda (or drop --gpus-per-run)")
        if self.gpus_per_run and self.executor == "local":
            raise DataError(None, "--gpus-per-run is for --executor ray or slurm",
                            "on one machine use --device cuda --jobs 1")


def _is_joint(method: str, plugins=()) -> bool:
    """Whether the registered strategy trains once on the union of experiences (order-free)."""
    from benchmark.strategy import registry

    registry.discover(plugins)
    return bool(registry.get_strategy(method).cls.capabilities()["order_free"])


def plan(cfg: SweepConfig) -> list[RunSpec]:
    """The grid in a stable order: methods outermost, so a partial sweep covers whole methods.
    A joint method (``joint = True``, e.g. MTL) trains on everything at once, so the scenario
    order does not matter: it runs once per seed per setting (the first order)."""
    from benchmark.identity import merge_plugins, overrides_plugins, run_label, split_label

    plugins = tuple(cfg.run_options.get("plugins", ()))
    extra = overrides_plugins(cfg.run_options.get("method_overrides"))     # --with for all
    specs = []
    for name in cfg.methods:
        base, own = split_label(name)
        method = run_label(base, merge_plugins(own, extra))   # the run's identity: es_moe+replay
        joint = _is_joint(base, plugins)
        for setting in cfg.settings:
            orders = cfg.orders[:1] if joint else cfg.orders
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

    from harness import runner
    from harness.cli import quiet_third_party_warnings

    quiet_third_party_warnings()
    torch.set_num_threads(max(1, threads))

    t0 = time.time()
    marker = spec.out / RUNNING_FILE
    try:
        resume = status(spec) == "partial"
        attempt = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                   "label": spec.label, "resume": resume,
                   "from_experience": _finished_experiences(spec.out)}
        atomic_write_json(marker, attempt)
        with open(spec.out / ATTEMPTS_FILE, "a") as fh:    # one line per (re)start of this run
            fh.write(json.dumps(attempt) + "\n")
        cfg = make_run_config(spec, run_options, resume=resume)
        die_after, sig = _die_once(spec)
        if die_after:
            runner.run(cfg.replace(stop_after=die_after))
            _die(sig)
        runner.run(cfg)
        return spec.label, None, time.time() - t0
    except Exception as err:  # noqa: BLE001 - one failed run must not stop the sweep; reported
        tail = traceback.format_exc(limit=4).strip().splitlines()[-1]
        return spec.label, f"{type(err).__name__}: {err} ({tail})", time.time() - t0
    finally:
        marker.unlink(missing_ok=True)


def _finished_experiences(out: Path) -> int:
    try:
        return int(json.loads((out / "progress.json").read_text())["finished"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _die_once(spec: RunSpec) -> tuple[int, str]:
    """Test hook (:data:`DIE_ONCE_ENV` = ``LABEL|N|MARKER[|SIGNAL]``): the worker of run LABEL
    stops after N experiences (checkpointed) and then dies, once: MARKER is created first, so
    the retried worker runs normally.  Unset (always, outside tests) it does nothing."""
    parts = os.environ.get(DIE_ONCE_ENV, "").split("|")
    if len(parts) not in (3, 4) or parts[0] != spec.label or Path(parts[2]).exists():
        return 0, ""
    Path(parts[2]).parent.mkdir(parents=True, exist_ok=True)
    Path(parts[2]).write_text(f"{os.getpid()}\n")
    return int(parts[1]), (parts[3] if len(parts) == 4 else "")


def _die(sig: str) -> None:
    """The test hook's death: ``os._exit`` (a crashed worker) or a signal to this process (e.g.
    ``USR2``, the preemption signal submitit handles by checkpointing and requeueing)."""
    if not sig:
        os._exit(17)
    import signal

    os.kill(os.getpid(), getattr(signal, f"SIG{sig}"))
    for _ in range(600):            # the signal's handler ends the process
        time.sleep(0.1)
    os._exit(18)


def make_run_config(spec: RunSpec, run_options: dict, resume: bool = False):
    """The :class:`harness.run_config.RunConfig` of one cell (``spec.method`` is the run's
    label, e.g. es_moe+replay: the registered method + its plugins)."""
    from benchmark.identity import with_label_plugins
    from harness.run_config import RunConfig

    method, overrides = with_label_plugins(spec.method, run_options.get("method_overrides"))
    opts = {**run_options, "method_overrides": overrides}
    return RunConfig.from_options(method=method, out=str(spec.out), setting=spec.setting,
                                  order=spec.order, seed=spec.seed, resume=resume, **opts)


def prepare_stages(cfg: SweepConfig) -> dict:
    """Build the shared artefacts once (corpus, manifests, tokenizer, evaluator, backbone) in
    this process, so parallel runs only ever read them; returns their content hashes by
    (setting, seed)."""
    from harness.runner import build_run_stages

    hashes = {}
    for setting in cfg.settings:
        for seed in sorted(set(cfg.seeds)):
            spec = RunSpec(cfg.methods[0], setting, cfg.orders[0], seed, cfg.out / ".stages")
            stages, _ = build_run_stages(make_run_config(spec, cfg.run_options))
            hashes[(setting, seed)] = dict(stages.hashes)
    return hashes


def check_grid(cfg: SweepConfig, specs: list[RunSpec], stage_hashes: dict | None = None) -> dict:
    """Validate every cell before any work (a bad ``--set``, ``--with`` or ``--order`` fails
    here, not after the stages) and check that each existing run folder holds a run of the very
    configuration asked for (and, with ``stage_hashes`` by (setting, seed), of the same
    stages).  Folders of another configuration are refused, or with ``cfg.overwrite`` emptied;
    returns {label: request hash}."""
    import shutil

    from harness.run_config import check_folder_identity, request_identity
    from harness.runner import validate_run_config

    identities, refused = {}, []
    for s in specs:
        run_cfg = make_run_config(s, cfg.run_options)
        if stage_hashes is None:
            validate_run_config(run_cfg)
        identities[s.label] = request_identity(run_cfg)
        try:
            check_folder_identity(s.out, run_cfg, None if stage_hashes is None
                                  else stage_hashes.get((s.setting, s.seed)))
        except DataError as err:
            if not cfg.overwrite:
                refused.append(err)
                continue
            shutil.rmtree(s.out, ignore_errors=True)
    if refused:
        more = f" (and {len(refused) - 1} more run folder(s) like it)" if len(refused) > 1 else ""
        first = refused[0]
        raise DataError(first.path, f"{first.problem}{more}", first.fix)
    return identities


def _absolute(opts: dict) -> dict:
    """Paths made absolute, so workers on other nodes (same shared filesystem) find them."""
    out = dict(opts)
    for key in ("cache", "data", "tokenizer", "evaluator"):
        if out.get(key):
            out[key] = str(Path(out[key]).resolve())
    if out.get("backbone") and out["backbone"] != "tiny":
        out["backbone"] = str(Path(out["backbone"]).resolve())
    if out.get("plugins"):
        out["plugins"] = tuple(str(Path(p).resolve()) for p in out["plugins"])
    return out


def write_plan(cfg: SweepConfig, specs: list[RunSpec], identities: dict | None = None) -> Path:
    """``OUT/sweep.json``: every run this folder's sweeps planned (merged with earlier plans)."""
    path = cfg.out / PLAN_FILE
    runs = {}
    if path.is_file():
        try:
            runs = {r["label"]: r for r in json.loads(path.read_text()).get("runs", [])}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise DataError(path, f"unreadable sweep plan ({err})",
                            "delete it; the next sweep writes it again") from err
    for s in specs:
        runs[s.label] = {"label": s.label, "method": s.method, "setting": s.setting,
                         "order": s.order, "seed": s.seed, "folder": str(s.out.relative_to(cfg.out)),
                         "request_hash": (identities or {}).get(s.label)}
    return atomic_write_json(path, {"runs": list(runs.values()), "executor": cfg.executor,
                                    "updated": time.time()})


def sweep_runs(cfg: SweepConfig, progress: bool = True) -> dict:
    """Run every pending cell; returns {"done": [...], "failed": {label: error}, "skipped": [...]}."""
    cfg = dataclasses.replace(cfg, out=cfg.out.resolve())
    specs = plan(cfg)
    identities = check_grid(cfg, specs)        # every option checked before any stage is built
    write_plan(cfg, specs, identities)
    if cfg.executor != "local":
        cfg = dataclasses.replace(cfg, run_options=_absolute(cfg.run_options))
    if progress:
        print(f"sweep: {len(specs)} runs planned; building or reusing the stages in "
              f"{cfg.run_options.get('cache') or 'the cache'}", flush=True)
    check_grid(cfg, specs, prepare_stages(cfg))   # finished runs must be of these very stages
    pending = [s for s in specs if status(s) != "done"]
    skipped = [s.label for s in specs if status(s) == "done"]
    report = {"planned": len(specs), "skipped": skipped, "done": [], "failed": {}, "seconds": {}}
    if progress:
        print(f"sweep: {len(specs)} runs planned, {len(skipped)} already finished (same "
              f"configuration and stages), {len(pending)} to run with {_how(cfg)}", flush=True)
    if not pending:
        return report
    for s in pending:                     # a failure of an earlier sweep is retried now
        (s.out / FAILED_FILE).unlink(missing_ok=True)
    cores = os.cpu_count() or 1
    per_run = cfg.cpus_per_run or (max(1, cores // cfg.jobs) if cfg.executor == "local" else 1)
    threads = cfg.run_options.get("threads") or per_run
    opts = {**cfg.run_options, "threads": threads}
    if cfg.jobs > 1 or cfg.executor != "local":   # interleaved per-run bars are unreadable
        opts["progress"] = False
    cfg = dataclasses.replace(cfg, run_options=opts, cpus_per_run=per_run)
    from tqdm.auto import tqdm

    by_label = {s.label: s for s in pending}
    from benchmark import progress as shown

    with tqdm(total=len(specs), initial=len(skipped), desc="sweep", unit="run",
              disable=not (progress and shown.enabled()), dynamic_ncols=True) as bar:
        for label, error, seconds in _execute(pending, cfg, threads):
            report["seconds"][label] = round(seconds, 1) if math.isfinite(seconds) else None
            if error is None:
                report["done"].append(label)
            else:
                report["failed"][label] = error
                atomic_write_json(by_label[label].out / FAILED_FILE, {
                    "label": label, "error": error, "executor": cfg.executor, "time": time.time()})
                if progress:
                    tqdm.write(f"FAILED {label}: {error}")
            bar.update(1)
            bar.set_postfix(failed=len(report["failed"]), refresh=False)
    return report


def _how(cfg: SweepConfig) -> str:
    if cfg.executor == "local":
        return f"{cfg.jobs} job(s) on this machine"
    res = f"{cfg.cpus_per_run or 1} CPU(s) + {cfg.gpus_per_run:g} GPU(s) per run"
    if cfg.executor == "ray":
        return f"Ray ({cfg.address or 'local runtime'}), {res}"
    return f"Slurm ({cfg.partition or 'default partition'}, {cfg.time_min} min), {res}"


def _execute(pending: list[RunSpec], cfg: SweepConfig, threads: int) -> Iterator[tuple]:
    """Yields (label, error or None, seconds) per run as runs finish."""
    if cfg.executor == "ray":
        yield from _execute_ray(pending, cfg, threads)
    elif cfg.executor == "slurm":
        yield from _execute_slurm(pending, cfg, threads)
    elif cfg.jobs == 1:
        for spec in pending:
            yield _run_one(spec, cfg.run_options, threads)
    else:
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=cfg.jobs, backend="loky", return_as="generator_unordered")(
            delayed(_run_one)(s, cfg.run_options, threads) for s in pending)


def _need(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise DataError(None, f"--executor {extra} needs the {module} package",
                        f"pip install 'l2emg-bench[{extra}]'") from err


def _execute_ray(pending: list[RunSpec], cfg: SweepConfig, threads: int) -> Iterator[tuple]:
    """One Ray task per run.  Ray retries a task whose worker process dies (``max_retries``);
    the retried task finds the run's checkpoint and resumes.  An exception inside a run is not
    retried (it would fail again): it comes back as that run's error."""
    ray = _need("ray", "ray")
    started = False
    if not ray.is_initialized():
        ray.init(address=cfg.address or None, include_dashboard=False, log_to_driver=True)
        started = True
    try:
        task = ray.remote(_run_one).options(num_cpus=cfg.cpus_per_run, num_gpus=cfg.gpus_per_run,
                                            max_retries=cfg.max_retries, retry_exceptions=False)
        refs = {task.remote(s, cfg.run_options, threads): s for s in pending}
        t0 = time.time()
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                spec = refs.pop(ref)
                try:
                    yield tuple(ray.get(ref))
                except ray.exceptions.RayError as err:   # the worker died more than max_retries times
                    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                    yield (spec.label, f"{type(err).__name__}: worker lost {cfg.max_retries + 1} "
                           f"time(s) ({first[:200]})", time.time() - t0)
    finally:
        if started:
            ray.shutdown()


class SlurmRun:
    """The callable of one Slurm job: runs (or resumes) one cell.  ``checkpoint`` is submitit's
    hook on preemption / time-out: the job is requeued with the same callable, which resumes
    from the run's last ``checkpoints/state.pt`` (the run itself checkpoints every experience)."""

    def __init__(self, spec: RunSpec, run_options: dict, threads: int):
        self.spec, self.run_options, self.threads = spec, run_options, threads

    def __call__(self) -> tuple[str, str | None, float]:
        return _run_one(self.spec, self.run_options, self.threads)

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(SlurmRun(self.spec, self.run_options, self.threads), *args, **kwargs)


def slurm_executor(cfg: SweepConfig):
    """The submitit executor of a sweep (``cfg.slurm_cluster="local"`` runs jobs as local
    processes, for tests)."""
    submitit = _need("submitit", "slurm")
    ex = submitit.AutoExecutor(folder=str(cfg.out / ".submitit" / "%j"), cluster=cfg.slurm_cluster)
    params = dict(timeout_min=cfg.time_min, cpus_per_task=cfg.cpus_per_run, nodes=1,
                  tasks_per_node=1, name="l2emg")
    if cfg.gpus_per_run:
        params["gpus_per_node"] = int(math.ceil(cfg.gpus_per_run))
    if ex.cluster == "slurm":
        params["slurm_max_num_timeout"] = cfg.max_retries
        if cfg.partition:
            params["slurm_partition"] = cfg.partition
    ex.update_parameters(**params)
    return ex


def _execute_slurm(pending: list[RunSpec], cfg: SweepConfig, threads: int) -> Iterator[tuple]:
    ex = slurm_executor(cfg)
    jobs = {ex.submit(SlurmRun(s, cfg.run_options, threads)): s for s in pending}
    t0 = time.time()
    while jobs:
        finished = [j for j in jobs if j.done()]
        for job in finished:
            spec = jobs.pop(job)
            try:
                yield tuple(job.result())
            except Exception as err:  # noqa: BLE001 - submitit's job errors; reported per run
                first = str(err).strip().splitlines()[-1] if str(err).strip() else ""
                yield (spec.label, f"{type(err).__name__}: job {job.job_id} failed ({first[:200]})",
                       time.time() - t0)
        if jobs and not finished:
            time.sleep(cfg.poll_s)


# ----------------------------------------------------------------------------- CLI
def add_grid_args(p) -> None:
    """Arguments shared by ``sweep`` and ``bench``."""
    p.add_argument("--methods", default="paper",
                   help="comma-separated registered names, 'all', or 'paper' (the default: the "
                        "systems of the paper's Table 2, in its row order, as their classes' "
                        "paper_row says); NAME+PLUGIN[+PLUGIN] composes CL plugins, e.g. "
                        "A,B,B+replay (--with adds plugins to every method)")
    p.add_argument("--settings", default="unseen",
                   help="comma-separated: unseen,mixed (default unseen, the setting the default "
                        "stream is built for; mixed adds the paper's control setting: random "
                        "mixtures of every scenario, as many runs again)")
    p.add_argument("--orders", default="1,2,3",
                   help="comma-separated order numbers (1,2,3); an explicit order is ';'-separated "
                        "lists of names, e.g. 'Dance,Sports;Sports,Dance'")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--overwrite", action="store_true",
                   help="rerun run folders that hold another configuration's run (by default the "
                        "command refuses them: a folder is reused only for the same config hash)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="runs in parallel on this machine (default: min(2, cores)); each run gets "
                        "cores // jobs torch threads")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local (joblib, --jobs), ray (one task per run) or slurm (one submitit job "
                        "per run); ray/slurm need --out and --cache on a filesystem every node shares")
    g = p.add_argument_group("ray / slurm")
    g.add_argument("--address", help="ray: cluster address, 'auto' or HOST:PORT (default: start a "
                                      "local Ray runtime)")
    g.add_argument("--cpus-per-run", type=int, default=0,
                   help="CPUs reserved (and torch threads) per run (default: 1 on ray/slurm, "
                        "cores // jobs locally)")
    g.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="GPUs reserved per run (ray: may be fractional); needs --device cuda")
    g.add_argument("--max-retries", type=int, default=2,
                   help="ray: retries of a run whose worker died; slurm: requeues after time-outs")
    g.add_argument("--partition", help="slurm partition (default: the cluster's default)")
    g.add_argument("--time", type=int, default=240, dest="time_min",
                   help="slurm time limit per job in minutes (default 240); a job that reaches it "
                        "is requeued and resumes")


def grid_from_args(args) -> dict:
    from benchmark.strategy.registry import available, discover, paper_methods

    discover(getattr(args, "strategy_files", None) or ())
    from benchmark.identity import split_label
    from benchmark.strategy.plugins import PLUGINS

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if methods == ["all"]:
        methods = list(available())
    elif methods == ["paper"]:
        methods = paper_methods()
    unknown = [m for m in methods if split_label(m)[0] not in available()]
    if unknown:
        raise DataError(None, f"unknown method(s) {unknown}",
                        f"choose from {', '.join(sorted(available()))}")
    bad = sorted({p for m in methods for p in split_label(m)[1] if p not in PLUGINS})
    if bad:
        raise DataError(None, f"unknown plugin(s) {bad} in --methods",
                        f"compose a method with {', '.join(sorted(PLUGINS))}, e.g. "
                        f"{split_label(methods[0])[0]}+{min(PLUGINS, default='PLUGIN')}")
    orders = parse_orders(args.orders)
    return dict(methods=methods, settings=[s.strip() for s in args.settings.split(",") if s.strip()],
                orders=orders, seeds=[int(s) for s in args.seeds.split(",") if s.strip()],
                jobs=args.jobs, executor=args.executor, address=args.address,
                cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
                max_retries=args.max_retries, partition=args.partition, time_min=args.time_min,
                overwrite=getattr(args, "overwrite", False))


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
    from harness.runner import add_shared_options

    add_grid_args(p)
    p.add_argument("--out", required=True, help="folder of run folders")
    add_shared_options(p)


def sweep(args) -> int:
    from harness.runner import shared_options

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
