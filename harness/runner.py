"""``l2emg run``: train one strategy through every experience, evaluate after each, resume.

``run(config) -> Path`` is the plain function (the sweep calls it).  Flow: stages (corpus,
split, tokenizer, evaluator, backbone; built or reused by hash) -> avalanche scenario whose
items carry motion codes -> ground-truth row + baseline row (untrained model) -> for each
experience: ``strategy.train(exp)``, generate for the test set of every subset, evaluate, append
row ``after_i`` of every matrix, checkpoint -> ``result.json`` (written last).
See docs/CONTRACTS.md ("Run folders") for the files.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.io import (DataError, atomic_torch_save, atomic_write_json, atomic_write_text,
                          default_cache, peak_rss_mb, provenance)
from harness.run_config import DEFAULT_PRESET, PRESETS, RunConfig, config_record
from benchmark.seed import hash_seed
from evaluators.protocol import EVAL_PARTS, RP_POOLS, Scorer

__all__ = ["run", "prepare", "start_or_resume", "train_experience", "finish", "RunState",
           "Progress", "build_run_stages", "method_config_for"]


# ----------------------------------------------------------------------------- run
def _metric_keys() -> list[str]:
    from evaluators import METRIC_KEYS

    return [k for k in METRIC_KEYS if k != "n"]


def _save_matrices(out: Path, rows: list[list[dict]], names: list[str], keys: list[str]) -> None:
    """``matrices/<metric>.csv`` (r[i, j]; empty = cell not evaluated) and next to each its
    per-cell 95% CI over the reshuffled repeats, ``matrices/<metric>_ci.csv``."""
    import pandas as pd

    index = [f"after_{i + 1}" for i in range(len(rows))]
    for k in keys:
        for name, key in ((k, k), (f"{k}_ci", f"{k}_ci95")):
            df = pd.DataFrame([[r.get(key, float("nan")) for r in row] for row in rows],
                              columns=names, index=index)
            atomic_write_text(out / "matrices" / f"{name}.csv", df.to_csv())


def _save_chance(out: Path, gt: list[dict], names: list[str]) -> None:
    """``matrices/chance.csv``: the chance level of R@1..3 and the R-precision batch and test
    size of every subset (the same for every row of the matrices)."""
    import pandas as pd

    rows = {f"r_precision_top{k}": [g[f"chance_top{k}"] for g in gt] for k in (1, 2, 3)}
    rows["r_precision_batch"] = [g["r_precision_batch"] for g in gt]
    rows["n_test"] = [g["n"] for g in gt]
    df = pd.DataFrame(rows, index=names).T
    df.index.name = "metric"
    atomic_write_text(out / "matrices" / "chance.csv", df.to_csv())


def _check_resume(out: Path, record: dict) -> dict:
    old = json.loads((out / "config.json").read_text())
    for key in sorted(set(old) | set(record)):
        if key not in ("config_hash", "request_hash") and old.get(key) != record.get(key):
            raise DataError(out / "config.json", f"the checkpoint was made with a different {key!r} "
                            f"({old.get(key)!r} != {record.get(key)!r})",
                            "rerun with the original settings or choose another --out")
    return old


def _check_folder(out: Path, cfg: RunConfig) -> None:
    """Refuse a folder that holds another configuration's run (whatever its state), a finished
    run, or an unfinished one without ``--resume``; ``--overwrite`` empties it first."""
    import shutil

    from harness.run_config import check_folder_identity

    if cfg.execution.overwrite and out.exists():
        shutil.rmtree(out)
        return
    check_folder_identity(out, cfg)             # another configuration's run: refused
    if (out / "result.json").exists():
        raise DataError(out, "this run is already finished (same configuration): its numbers are in "
                        "result.json", "choose another --out, or pass --overwrite to run it again")
    if (out / "progress.json").exists() and not cfg.execution.resume:
        raise DataError(out, "an unfinished run of this configuration is in this folder",
                        "pass --resume (or --overwrite to start again) or another --out")


def _rng_state() -> dict:
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Progress:
    """What a run has measured so far; checkpointed after every experience (``"run"`` in
    ``checkpoints/state.pt``, a plain dict with these keys, as the runner has always written
    it: checkpoints of earlier versions resume)."""

    baseline: list[dict]                 # metric dict per subset, untrained model
    ground_truth: list[dict]             # real-vs-real metric dict per subset
    baseline_failed: int = 0             # failed generations of the baseline row / outputs
    baseline_total: int = 0
    rows: list[list[dict]] = field(default_factory=list)   # row i = after experience i + 1
    failed: int = 0                      # failed generations after training / outputs
    total: int = 0
    elapsed: float = 0.0                 # seconds spent in finished experiences (all sessions)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> "Progress":
        return cls(**{f.name: state[f.name] for f in dataclasses.fields(cls)})


@dataclass
class RunState:
    """One run in progress: what :func:`prepare` builds and the other steps share."""

    cfg: RunConfig
    record: dict                         # config.json (with config_hash)
    names: list[str]                     # subset names in training order
    keys: list[str]                      # metric keys of the matrices
    experiences: list                    # training experiences (one for a joint method)
    strategy: object
    scorer: Scorer
    progress: Progress | None = None     # set by start_or_resume
    generated: list | None = None        # features generated by the last scored row
    clock: float = field(default_factory=time.time)   # start of the current timing interval
    loggers: list = field(default_factory=list)       # Avalanche loggers of the curves (--log)

    @property
    def out(self) -> Path:
        return Path(self.cfg.execution.out)

    @property
    def checkpoint(self) -> Path:
        return self.out / "checkpoints" / "state.pt"

    def lap(self) -> float:
        """Seconds since the last lap (or the start)."""
        now = time.time()
        dt, self.clock = now - self.clock, now
        return dt


def run(cfg: RunConfig) -> Path:
    """Train + evaluate one (method, setting, order, seed); returns the run folder."""
    with thread_limits(cfg.execution.threads):
        return _run(cfg)


@contextlib.contextmanager
def thread_limits(threads: int):
    """``threads`` torch threads (0: torch's default) and at most that many (>= 1) BLAS threads
    for numpy/scipy (FID's sqrtm... on small matrices: more only contend with torch); the
    caller's torch thread count is restored after."""
    import scipy.linalg  # noqa: F401 - load scipy's own OpenBLAS now, so the limit below reaches it
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=max(1, threads), user_api="blas"):
            yield
    finally:                       # a library call leaves the caller's thread count as it found it
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _run(cfg: RunConfig) -> Path:
    from tqdm.auto import tqdm

    st = prepare(cfg)
    start_or_resume(st)
    ex = cfg.execution
    n = len(st.experiences)
    start = len(st.progress.rows)
    from benchmark import progress

    bar = tqdm(total=n, initial=start, disable=not (ex.progress and progress.enabled()),
               desc=cfg.key.method, unit="exp")
    from benchmark.strategy.curves import close_loggers

    try:
        for i in range(start, n):
            if ex.stop_after and i >= ex.stop_after:
                bar.close()
                return st.out
            with progress.doing(f"training {cfg.key.label} on experience {i + 1}/{n}",
                                f"experience {i + 1}'s training and scoring (the run resumes "
                                f"after experience {i})", announce=False):
                train_experience(st, i)
            bar.update(1)
    finally:
        close_loggers(st.loggers)
    bar.close()
    finish(st)
    return st.out


def method_config_for(cfg: RunConfig, n_experiences: int | None = None):
    """The typed method config of a run: the preset's training overrides, then ``--set``; with
    ``n_experiences``, a joint method's step budget is scaled to the stream (:func:`_joint_budget`)."""
    from harness.run_config import method_config as resolved

    method_config = resolved(cfg)
    return method_config if n_experiences is None else _joint_budget(cfg, method_config, n_experiences)


def _joint_budget(cfg: RunConfig, method_config, n_experiences: int):
    """A joint method sees all experiences at once: it gets the optimiser-step budget a
    sequential method spends over the whole stream, or the "upper bound" is undertrained."""
    from benchmark.strategy import registry

    if registry.get_strategy(cfg.key.method).cls.joint and method_config.max_steps:
        method_config = dataclasses.replace(method_config,
                                            max_steps=method_config.max_steps * n_experiences)
    return method_config


def prepare(cfg: RunConfig, reopen: bool = False) -> RunState:
    """Check the folder, build the stages, the stream, the model, the strategy and the scorer.
    ``reopen``: the folder holds a finished run that is read back (``l2emg floor``), not
    continued: its files are not checked."""
    from benchmark.backbone import GenerationSettings, MotionLM, MotionLMConfig
    from benchmark.seed import seed_everything
    from benchmark.strategy import registry
    from benchmark.splits import subsample_train
    from benchmark.streams import make_scenario

    clock = time.time()
    ex, key = cfg.execution, cfg.key
    out = Path(ex.out)
    if not ex.progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    validate_run_config(cfg)                    # a bad option fails before any stage is built
    entry = registry.get_strategy(key.method)
    method_config = method_config_for(cfg)
    if not reopen:
        _check_folder(out, cfg)
    from benchmark.strategy.curves import parse_loggers

    parse_loggers(ex.log)                       # so does an unknown --log
    stages, codes = build_run_stages(cfg)
    manifest = subsample_train(stages.manifest, cfg.train.train_fraction)
    scenario = make_scenario(stages.corpus, manifest, _order_arg(key.order),
                             payload=codes.__getitem__, seed=key.seed)
    names = list(scenario.subset_names)
    method_config = _joint_budget(cfg, method_config, len(names))
    record = config_record(cfg, method_config.to_dict(), stages.hashes, names)

    seed_everything(key.seed)
    max_motion = max(1, 196 // stages.tokenizer.downsample)
    mlm = MotionLM.from_pretrained(stages.backbone, stages.tokenizer.codebook_size,
                                   MotionLMConfig(max_motion_tokens=max_motion, dtype=cfg.train.dtype),
                                   device=ex.device)
    if ex.gradient_checkpointing:
        mlm.enable_gradient_checkpointing()
    from benchmark.identity import run_label
    from benchmark.strategy.curves import make_loggers

    loggers = make_loggers(ex.log, out, run_label(key.method, method_config.with_plugins), record)
    from benchmark import progress

    strategy = entry.cls(motion_lm=mlm, config=method_config, device=ex.device, seed=key.seed,
                         progress=ex.progress and progress.enabled(), loggers=loggers,
                         label_spaces={"emotions": tuple(stages.corpus.emotions),
                                       "scenarios": tuple(stages.corpus.scenarios)})
    experiences = _joint(scenario) if entry.cls.joint else list(scenario.train_stream)
    scorer = Scorer(cfg.eval, stages, scenario, GenerationSettings(**cfg.train.generation))
    return RunState(cfg=cfg, record=record, names=names, keys=_metric_keys(),
                    experiences=experiences, strategy=strategy, scorer=scorer, clock=clock,
                    loggers=loggers)


def validate_run_config(cfg: RunConfig) -> None:
    """Every option of a run checked without building anything (the sweep calls it for every
    cell before the first stage): the method and its ``--set`` / ``--with`` values, the loggers,
    the input folders and the scenario order.  Raises :class:`DataError`."""
    import json as _json

    from benchmark.splits import resolve_order
    from benchmark.strategy import registry
    from benchmark.strategy.curves import parse_loggers

    ex = cfg.execution
    registry.discover(ex.plugins)
    method_config_for(cfg)
    parse_loggers(ex.log)
    for name in ("data", "tokenizer", "evaluator"):
        value = getattr(ex, name)
        if value and not Path(value).is_dir():
            raise DataError(value, f"--{name} folder does not exist",
                            f"pass an existing folder, or leave --{name} out to build the default")
    if ex.backbone != "tiny" and not Path(ex.backbone).is_dir():
        raise DataError(ex.backbone, "--backbone folder does not exist",
                        "pass 'tiny' or a local Hugging Face model folder")
    scenarios = None
    if ex.data:
        meta = Path(ex.data) / "corpus.json"
        if meta.is_file():
            try:
                scenarios = _json.loads(meta.read_text()).get("scenarios")
            except ValueError:
                scenarios = None          # load_corpus reports a bad corpus.json with its fix
    if not str(cfg.key.order).isdigit():  # numbered orders are checked against the corpus later
        resolve_order(cfg.key.order, cfg.key.setting, scenarios=scenarios)


def start_or_resume(st: RunState) -> None:
    """A new run: write ``config.json``, score the ground truth and the untrained model.  A
    resumed one (``--resume`` and ``progress.json``): check the config, restore the strategy,
    the random state and the progress from the last checkpoint."""
    import torch

    out = st.out
    if st.cfg.execution.resume and (out / "progress.json").exists():
        _check_resume(out, st.record)
        ckpt = torch.load(st.checkpoint, map_location="cpu", weights_only=False)
        st.strategy.load_state_dict(ckpt["strategy"])
        _set_rng_state(ckpt["rng"])
        st.progress = Progress.from_dict(ckpt["run"])
        return
    atomic_write_json(out / "config.json", st.record)
    gt = st.scorer.ground_truth()
    base, _, bfail, btotal = st.scorer.score(st.strategy, 0, len(st.experiences))
    st.progress = Progress(baseline=base, ground_truth=gt, baseline_failed=bfail,
                           baseline_total=btotal)
    _save_baseline(out, base, st.names, st.keys)
    _save_chance(out, gt, st.names)


def train_experience(st: RunState, i: int) -> None:
    """Train on experience ``i`` (0-based), score row ``after_{i+1}``, save the matrices and
    checkpoint (strategy, random state, progress)."""
    from benchmark.seed import seed_everything

    seed = st.cfg.key.seed
    n = len(st.experiences)
    p = st.progress
    seed_everything(hash_seed(seed, "train", i))
    st.strategy.train(st.experiences[i], eval_streams=[])
    metrics, st.generated, failed, total = st.scorer.score(st.strategy, i + 1, n)
    p.rows.append(metrics)
    p.failed += failed
    p.total += total
    _record_routing(st, i + 1, n)
    p.elapsed += st.lap()
    _save_matrices(st.out, p.rows, st.names, st.keys)
    config_hash = st.record["config_hash"]
    atomic_torch_save(st.checkpoint, {"strategy": st.strategy.state_dict(), "rng": _rng_state(),
                                      "run": p.to_dict(), "config_hash": config_hash})
    atomic_write_json(st.out / "progress.json", {"finished": i + 1, "n_experiences": n,
                                                 "config_hash": config_hash})


def _record_routing(st: RunState, n_trained: int, n: int) -> None:
    """Routed strategies: ``matrices/route_own.csv`` row, and after the last experience
    ``routing.csv`` / ``routing.png`` (benchmark.strategy.routing); RNG states untouched."""
    from benchmark.seed import isolated
    from benchmark.strategy.routing import record_routing

    with isolated():
        record_routing(st.out, st.strategy, st.scorer.tests, st.names, n_trained, n)


def stage_method() -> str:
    """The method a command that only builds stages names in its run config (the stages do not
    depend on it): the registered lower bound, plain sequential fine-tuning."""
    from benchmark.strategy import registry

    registry.discover()
    return registry.role_method("lower_bound")


def build_run_stages(cfg: RunConfig):
    """Stages (built or reused in ``cfg.execution.cache``) of a config and the motion-token
    codes of its manifest's motions: ``(Stages, {id: codes})``."""
    from benchmark.backbone import TinyBackboneConfig
    from benchmark.backbone.pretrain import PretrainConfig
    from harness.stages import build_stages, codes_stage

    ex, st = cfg.execution, cfg.stages
    stages = build_stages(ex.cache, data=ex.data, tokenizer=ex.tokenizer, evaluator=ex.evaluator,
                          backbone=ex.backbone, setting=cfg.key.setting, seed=cfg.key.seed,
                          corpus_scale=st.corpus_scale, tokenizer_preset=st.tokenizer_preset,
                          evaluator_preset=st.evaluator_preset,
                          tiny_config=TinyBackboneConfig(**st.tiny_backbone),
                          pretrain=PretrainConfig(**(st.pretrain or {"recipe": "none"})),
                          device=ex.device, scenario_style=st.scenario_style, stream=st.stream,
                          rebuild=ex.rebuild_stages)
    ids = list(stages.manifest["id"].astype(str))
    return stages, codes_stage(Path(ex.cache), stages.corpus, stages.tokenizer, ids)


def _order_arg(order: str):
    return int(order) if str(order).isdigit() else order


def _joint(scenario) -> list:
    """One experience holding the union of every training experience (for ``joint`` methods)."""
    from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience

    data = scenario.train_stream[0].dataset
    for exp in list(scenario.train_stream)[1:]:
        data = data.concat(exp.dataset)
    return [DatasetExperience(dataset=data, current_experience=0)]


def _save_baseline(out: Path, base: list[dict], names: list[str], keys: list[str]) -> None:
    import pandas as pd

    rows = keys + [f"{k}_ci95" for k in keys]
    df = pd.DataFrame([[b.get(k, float("nan")) for b in base] for k in rows],
                      index=pd.Index(rows, name="metric"), columns=names)
    atomic_write_text(out / "matrices" / "baseline.csv", df.to_csv())


def _save_samples(out: Path, scorer: Scorer, generated, corpus, n: int) -> None:
    from benchmark.io import atomic_save_npy

    index, per = {}, max(1, -(-n // len(scorer.tests)))
    for t, feats in zip(scorer.tests, generated):
        for k in range(min(per, len(t["ids"]))):
            if len(index) >= n:
                break
            name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(t["ids"][k]))
            atomic_save_npy(out / "samples" / f"{name}.npy", feats[k].astype(np.float32))
            atomic_save_npy(out / "samples" / f"{name}_gt.npy", t["reference"][k].astype(np.float32))
            index[name] = {"text": t["texts"][k], "emotion": corpus.emotions[t["emotions"][k]],
                           "scenario": corpus.scenarios[t["scenarios"][k]], "subset": t["subset"],
                           "reference": f"{name}_gt.npy"}
    atomic_write_json(out / "samples" / "index.json", index)


def finish(st: RunState) -> None:
    """Samples, ``train_log.csv`` and ``result.json`` (written last)."""
    import pandas as pd
    import torch

    from evaluators.continual import FINAL_AVERAGES, TRANSFER_KEY, forgetting_floor, run_aggregates

    cfg, p, scorer, keys, record = st.cfg, st.progress, st.scorer, st.keys, st.record
    n = len(st.experiences)
    if st.generated is None:      # resumed after the last experience: regenerate the samples
        _, st.generated, _, _ = scorer.score(st.strategy, n, n)
    extra_s = st.lap()
    _save_samples(st.out, scorer, st.generated, scorer.stages.corpus, cfg.train.n_samples)
    atomic_write_text(st.out / "train_log.csv", pd.DataFrame(st.strategy.history).to_csv(index=False))

    matrices = {k: np.array([[m[k] for m in row] for row in p.rows], dtype=float) for k in keys}
    cis = {k: np.array([[m.get(f"{k}_ci95", np.nan) for m in row] for row in p.rows],
                       dtype=float) for k in keys}
    baseline = {k: np.array([b[k] for b in p.baseline], dtype=float) for k in keys}
    gt = {k: float(np.mean([g[k] for g in p.ground_truth])) for k in keys}
    aggregates = run_aggregates(matrices, baseline)
    # CI of a mean over the N subsets of the last row (independent cells): sqrt(sum ci^2) / N
    agg_ci = {a: float(np.sqrt(np.sum(cis[k][-1] ** 2)) / cis[k].shape[1])
              for a, k in FINAL_AVERAGES.items() if k in cis}
    r1 = matrices[TRANSFER_KEY]
    batch = scorer.settings.batch
    ranked = [(size // batch) * batch for size in scorer.sizes]
    floor = (forgetting_floor(r1, ranked, seed=cfg.key.seed) if r1.shape[0] == r1.shape[1]
             else {"mean": float("nan"), "q95": float("nan")})
    fr = aggregates.get("FR", float("nan"))
    chance = {f"r_precision_top{k}": k / batch for k in (1, 2, 3)}
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    key = cfg.key
    from benchmark.identity import run_label

    from benchmark.strategy.registry import method_info

    plugins = list(record["method_config"].get("with_plugins", ()))
    result = {
        # the run's identity: the method + its composable plugins (es_moe+replay)
        "method": run_label(key.method, plugins), "base_method": key.method, "plugins": plugins,
        # what the leaderboard shows of it (display name, role, paper row: the class's facts)
        "method_info": method_info(key.method),
        "setting": key.setting, "order": record["order"]["name"],
        "seed": key.seed, "preset": key.preset, "scenario_order": st.names,
        "n_experiences": len(p.rows), "aggregates": aggregates,
        "aggregates_ci95": agg_ci, "chance": chance,
        "fr_floor": {**floor, "inside": bool(np.isfinite(fr) and fr <= floor["q95"])},
        "eval": dataclasses.asdict(scorer.settings), "n_test": scorer.sizes,
        "final": {k: matrices[k][-1].tolist() for k in keys}, "ground_truth": gt,
        "ground_truth_per_subset": {k: [g[k] for g in p.ground_truth] for k in keys},
        "generation_failure_rate": p.failed / max(p.total, 1),
        "baseline_failure_rate": p.baseline_failed / max(p.baseline_total, 1),
        "config_hash": record["config_hash"], "stage_hashes": record["stage_hashes"],
        # the shipped reference stages' version, "rebuilt" (trained here) or "given" (paths)
        "stages_version": getattr(scorer.stages, "version", None),
        "provenance": provenance(config_hash=record["config_hash"], seed=key.seed,
                                 order=record["order"], device=cfg.execution.device),
        "wall_time_s": p.elapsed + extra_s, "peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": peak_gpu,
    }
    # docs/evaluators.md: FID/KID floors of held-out real motions of the cells' size, paired CIs
    # over subsets of FR/BWT/FWT, multimodality's CI over texts and whether it is measured
    from evaluators.continual import transfer_ci95
    from evaluators.protocol import floor_summary, multimodality_summary

    result["floors"] = floors = floor_summary(p.ground_truth)
    for k, agg in (("fid_floor", "AF_floor"), ("kid_floor", "AKID_floor")):
        result["ground_truth"][k] = floors[agg]
        result["ground_truth_per_subset"][k] = floors[k]
    if r1.shape[0] == r1.shape[1]:
        agg_ci.update(transfer_ci95(r1, baseline.get(TRANSFER_KEY)))
    result["multimodality"] = multimodality_summary(p.rows[-1], scorer.settings)
    result["multimodality_measured"] = result["multimodality"]["measured"]
    from benchmark.strategy.routing import routing_summary

    result.update(routing_summary(st.out))      # {"routing": {...}} for routed strategies
    atomic_write_json(st.out / "result.json", result)


# ----------------------------------------------------------------------------- CLI
def add_shared_options(parser, cache_default: str | None = None) -> None:
    """Options every command that launches runs shares (``run``, ``sweep``, ``bench``)."""
    a = parser.add_argument
    a("--preset", default=DEFAULT_PRESET, choices=tuple(PRESETS),
      help=f"run preset (default {DEFAULT_PRESET!r}, the embedded default)")
    a("--data", help="corpus folder (default: the synthetic corpus, built in --cache)")
    a("--stream", choices=("conflict", "paper"),
      help="the synthetic stream (default: the preset's; `default`: conflict): conflict (scenarios "
           "that realise shared phrases with their own actions, no cross-scenario share; built to "
           "measure forgetting) or paper (Table 1 proportions, 20%% cross-scenario share)")
    a("--tokenizer", help="motion tokenizer folder (default: trained in --cache)")
    a("--evaluator", help="evaluator folder (default: trained in --cache)")
    a("--backbone", default="tiny", help="'tiny' or a local Hugging Face model folder")
    a("--strategy-file", "--plugin", dest="strategy_files", action="append", default=[],
      metavar="FILE.py", help="a .py file of extra strategies (and CL plugins) to register (repeatable; --plugin is its old name)")
    a("--with", dest="with_plugins", default="", metavar="PLUGINS",
      help="composable CL plugins added to the method, e.g. ewc,replay,lwf (method config "
           "with_plugins: in the config hash); options as --set replay.mem_size=N")
    a("--rebuild-stages", action="store_true",
      help="train the tokenizer, evaluator and backbone on this machine instead of using the "
           "shipped reference stages (recorded as 'rebuilt'; never merged with the reference "
           "version on one leaderboard)")
    a("--cache", default=cache_default or default_cache(),
      help="stage cache folder, shared by every --out (default: $L2EMG_CACHE, else "
           f"~/.cache/l2emg; here {default_cache()}); stages are reused by content hash")
    a("--device", default="cpu")
    a("--max-test", type=int, help="cap on test motions per subset (0 = all)")
    a("--full-matrix", action="store_true",
      help="evaluate every cell r[i, j]; default: only j <= i + 1 (all that the aggregates, FWT "
           "and the figures use) and the whole last row")
    a("--eval-part", default="test", choices=EVAL_PARTS,
      help="corpus part the cells are scored on: test (results, the default) or val (choose a "
           "method's settings there, never on test; recorded, in the config hash, and the "
           "leaderboard refuses to merge val and test runs)")
    a("--rp-pool", choices=RP_POOLS,
      help="where R-precision's 31 distractors come from (default: the preset's): subset (the "
           "reference protocol: the batch's other pairs, all of one subset) or stream (captions "
           "of every subset of the stream: answering another scenario's caption is a miss)")
    a("--train-fraction", type=float, default=1.0,
      help="share of each subset's training part to train on (a nested, id-hashed choice; "
           "val and test untouched; in the config hash when < 1): learning curves over data")
    a("--threads", type=int, default=0, help="torch CPU threads per run (0 = default)")
    a("--no-progress", action="store_true", help="no progress bars")
    a("--log", default="", metavar="LOGGERS",
      help="training curves (per-term losses) also to Avalanche's loggers: tensorboard "
           "(RUN/tensorboard/), wandb (offline, RUN/wandb/); comma-separated; train_log.csv is "
           "always written (not part of the config hash)")
    a("--gradient-checkpointing", action="store_true",
      help="recompute each decoder layer's activations in backward: less GPU memory, ~30%% more "
           "compute, same numbers (not part of the config hash)")
    a("--set", action="append", default=[], metavar="KEY=VALUE",
      help="method config field (see `l2emg methods`); gen.KEY=VALUE sets a generation setting, "
           "pretrain.KEY=VALUE a backbone pretraining setting (e.g. pretrain.recipe=text+motion, "
           "pretrain.motion_pool_scale=0.1; another backbone stage)")


def shared_options(args) -> dict:
    """Flat run options (:meth:`RunConfig.from_options` names) from :func:`add_shared_options`'
    arguments (the sweep passes them to every run as ``run_options``)."""
    method, gen, pretrain = parse_sets(args.set)
    if getattr(args, "with_plugins", ""):
        method["with_plugins"] = args.with_plugins
    opts = dict(preset=args.preset, data=args.data, tokenizer=args.tokenizer,
                evaluator=args.evaluator, backbone=args.backbone, plugins=tuple(args.strategy_files),
                device=args.device, max_test=args.max_test, threads=args.threads,
                full_matrix=args.full_matrix, eval_part=args.eval_part,
                train_fraction=args.train_fraction,
                progress=not args.no_progress, method_overrides=method,
                rebuild_stages=getattr(args, "rebuild_stages", False),
                gradient_checkpointing=getattr(args, "gradient_checkpointing", False))
    if getattr(args, "log", ""):
        from benchmark.strategy.curves import parse_loggers

        opts["log"] = parse_loggers(args.log)
    if args.cache:
        opts["cache"] = args.cache
    if getattr(args, "rp_pool", None):
        opts["r_precision_pool"] = args.rp_pool
    stream = getattr(args, "stream", None)
    if stream and stream != PRESETS[args.preset]["stream"]:
        from harness.run_config import STREAM_SCALE

        opts.update(stream=stream, corpus_scale=STREAM_SCALE[stream])
    if gen:
        opts["generation"] = {**PRESETS[args.preset]["generation"], **gen}
    if pretrain:
        opts["pretrain"] = pretrain_settings(args.preset, pretrain)
    return opts


def run_command_args(parser) -> None:
    a = parser.add_argument
    a("--method", required=True, help="registered strategy name (see `l2emg methods`)")
    a("--setting", default="unseen", choices=("unseen", "mixed"))
    a("--order", default="1", help="1, 2, 3 or comma-separated subset names")
    a("--seed", type=int, default=0)
    a("--out", required=True, help="run folder")
    a("--resume", action="store_true", help="continue an unfinished run in --out")
    a("--overwrite", action="store_true",
      help="delete whatever run is in --out first (by default a folder holding another "
           "configuration's run is refused)")
    a("--stop-after", type=int, default=0, help="stop after N experiences (resume later)")
    add_shared_options(parser)


def parse_sets(pairs: list[str]) -> tuple[dict, dict, dict]:
    """``--set`` pairs -> (method config overrides, generation overrides (``gen.KEY``),
    backbone pretraining overrides (``pretrain.KEY``, raw strings))."""
    method, gen, pretrain = {}, {}, {}
    for pair in pairs:
        if "=" not in pair:
            raise DataError(None, f"--set {pair!r} is not KEY=VALUE", "write e.g. --set lr=1e-3")
        k, v = pair.split("=", 1)
        if k.startswith("gen."):
            gen[k[4:]] = json.loads(v) if v.replace(".", "", 1).isdigit() or v in ("true", "false") else v
        elif k.startswith("pretrain."):
            pretrain[k[len("pretrain."):]] = v
        else:
            method[k] = v
    return method, gen, pretrain


def pretrain_settings(preset: str, raw: dict[str, str]) -> dict:
    """The preset's backbone pretraining settings with ``--set pretrain.KEY=VALUE`` overrides,
    each converted to its :class:`PretrainConfig` field's type and checked there (a changed
    recipe or pool is a different backbone stage and a different config hash)."""
    from benchmark.backbone.pretrain import PretrainConfig

    defaults = PretrainConfig()
    names = [f.name for f in dataclasses.fields(PretrainConfig)]
    merged = dict(PRESETS[preset].get("pretrain") or {"recipe": "none"})
    for k, v in raw.items():
        if k not in names:
            raise DataError(None, f"--set pretrain.{k}: no such backbone pretraining setting",
                            f"choose one of: {', '.join(names)}")
        kind = type(getattr(defaults, k))
        try:
            merged[k] = kind(v)
        except ValueError:
            raise DataError(None, f"--set pretrain.{k}={v!r} is not of type {kind.__name__}",
                            f"write e.g. --set pretrain.{k}={getattr(defaults, k)}") from None
    try:
        PretrainConfig(**merged)
    except ValueError as e:
        raise DataError(None, f"--set pretrain.*: {e}", "see `l2emg backbone pretrain --help`") from None
    return merged


def run_command(args) -> int:
    cfg = RunConfig.from_options(method=args.method, out=args.out, setting=args.setting,
                                 order=args.order, seed=args.seed, resume=args.resume,
                                 overwrite=args.overwrite,
                                 stop_after=args.stop_after, **shared_options(args))
    out = run(cfg)
    if (out / "result.json").exists():
        res = json.loads((out / "result.json").read_text())
        agg = res["aggregates"]
        print(f"{args.method}: AR {agg['AR']:.3f}  AF {agg['AF']:.2f}  FR {agg['FR']:.2f}  "
              f"failures {res['generation_failure_rate']:.1%}  -> {out}")
    else:
        print(f"stopped after {args.stop_after} experience(s); resume with --resume -> {out}")
    return 0

