"""``l2emg run``: train one strategy through every experience, evaluate after each, resume.

``run(config) -> Path`` is the plain function (the sweep calls it).  Flow: stages (corpus,
split, tokenizer, evaluator, backbone; built or reused by hash) -> avalanche scenario whose
items carry motion codes -> ground-truth row + baseline row (untrained model) -> for each
experience: ``strategy.train(exp)``, generate for the test set of every subset, evaluate, append
row ``after_i`` of every matrix, checkpoint -> ``result.json`` (written last).
See docs/CONTRACTS.md ("Run folders") for the files.
"""
from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.io import (DataError, atomic_torch_save, atomic_write_json, atomic_write_text,
                          hash_json, peak_rss_mb, provenance)
from benchmark.run_eval import EvalSettings, Scorer
from benchmark.seed import hash_seed

@dataclass
class RunConfig:
    """Everything that decides a run's numbers (+ where to put them)."""

    method: str
    out: str
    setting: str = "unseen"
    order: str = "1"
    seed: int = 0
    preset: str = "tiny"
    data: str | None = None
    tokenizer: str | None = None
    evaluator: str | None = None
    backbone: str = "tiny"
    plugins: tuple[str, ...] = ()
    cache: str = "runs/cache"
    device: str = "cpu"
    resume: bool = False
    progress: bool = True
    method_overrides: dict = field(default_factory=dict)
    # preset-controlled (see PRESETS); None = the preset's value
    max_test: int | None = None
    corpus_scale: float | None = None
    tokenizer_preset: str | None = None
    evaluator_preset: str | None = None
    tiny_backbone: dict | None = None
    pretrain: dict | None = None         # PretrainConfig fields of the tiny backbone stage
    generation: dict | None = None
    eval_repeats: int | None = None
    r_precision_batch: int | None = None
    full_matrix: bool = False            # evaluate every cell, not only j <= i + 1
    mm_texts: int | None = None
    mm_gens: int | None = None
    n_samples: int | None = None
    dtype: str | None = None
    threads: int = 0                     # torch threads (0 = torch's default)
    stop_after: int = 0                  # test hook: stop after this many experiences (0 = all)
    gradient_checkpointing: bool = False # recompute activations in backward (same numbers, less memory)

    def eval_settings(self) -> EvalSettings:
        """The evaluation protocol of this (resolved) config."""
        return EvalSettings(seed=self.seed, max_test=self.max_test, batch=self.r_precision_batch,
                            repeats=self.eval_repeats, mm_texts=self.mm_texts,
                            mm_gens=self.mm_gens, full_matrix=self.full_matrix)

    def resolved(self) -> "RunConfig":
        """A copy with every None filled from the preset (unknown preset -> DataError)."""
        if self.preset not in PRESETS:
            raise DataError(None, f"unknown preset {self.preset!r}",
                            f"choose one of: {', '.join(PRESETS)}")
        fill = {k: v for k, v in PRESETS[self.preset].items()
                if k != "train" and getattr(self, k) is None}
        return dataclasses.replace(self, **fill)


# Training overrides ("train") go under the method config; --set wins over them.
# The one place presets live.  Every preset but ``test`` evaluates >= 64 test motions per subset
# in full R-precision batches of 32 (chance R@1 = 1/32 everywhere): ``tiny``'s corpus scale is
# the smallest at which the smallest subset (Shows, 1,101 motions in Table 1, 15 % test part)
# has >= 64 test motions, and ``max_test`` caps every subset at the same 64.
_TINY: dict = dict(
    max_test=64, r_precision_batch=32, corpus_scale=0.45, tokenizer_preset="tiny",
    evaluator_preset="tiny", tiny_backbone=dict(hidden_size=96, intermediate_size=256),
    pretrain=dict(recipe="text"),
    generation=dict(max_new_tokens=50, top_k=50, batch_size=128), eval_repeats=5,
    mm_texts=4, mm_gens=5, n_samples=8, dtype="float32",
    train=dict(lr=2e-3, epochs=100, batch_size=16, max_steps=200))
PRESETS: dict[str, dict] = {
    # smoke tests only: <= 8 test motions and an explicit R-precision batch of 3 (chance 1/3;
    # the smallest test subset of its 0.02-scale corpus, Shows, has 3 test motions)
    "test": dict(max_test=8, r_precision_batch=3, corpus_scale=0.02, tokenizer_preset="test",
                 evaluator_preset="test", tiny_backbone=dict(hidden_size=64, intermediate_size=128),
                 pretrain=dict(recipe="text", text_steps=30, motion_steps=10),
                 generation=dict(max_new_tokens=12, top_k=20), eval_repeats=2, mm_texts=2,
                 mm_gens=2, n_samples=2, dtype="float32",
                 train=dict(lr=3e-3, epochs=1, batch_size=16, max_steps=4, lora_dropout=0.0)),
    "tiny": _TINY,
    # the tiny stages (shared cache) with a short training budget: smoke-run a new method
    "quick": {**_TINY, "eval_repeats": 2, "train": dict(lr=2e-3, epochs=100, batch_size=16,
                                                        max_steps=40)},
    # the tiny stages with the budget at which SeqLoRA learns text conditioning (measured in
    # docs/backbone.md: 2,000 steps per scenario, LoRA r 16 on all seven linear maps, lr 3e-3
    # -> R@1 0.29 on Daily Life against a 0.67 ceiling; 200 steps give 0.04-0.09): about 10x
    # the training time of `tiny` per run
    "long": {**_TINY, "train": dict(lr=3e-3, epochs=1000, batch_size=16, max_steps=2000, lora_r=16,
                                    target_modules=("q_proj", "k_proj", "v_proj", "o_proj",
                                                    "gate_proj", "up_proj", "down_proj"))},
    # real motion capture by --data (the Bandai-Namco corpus of `l2emg data bandai`): the tiny
    # stages, budget and protocol (batch 32, 64 test motions per subset).  The full dataset's
    # smallest test subset has 78 motions; the shared 308-motion copy (6-15) is refused with the
    # Scorer's error: use `--preset test` there (docs/results-real/README.md)
    "real": {**_TINY},
    # LLaMA-2-7B by path on a GPU: --backbone /path/to/Llama-2-7b-hf --device cuda
    "paper": dict(max_test=0, r_precision_batch=32, corpus_scale=1.0, tokenizer_preset="paper",
                  evaluator_preset="paper", tiny_backbone=dict(), pretrain=None,
                  generation=dict(max_new_tokens=50, top_k=50, batch_size=64),
                  eval_repeats=20, mm_texts=32, mm_gens=30, n_samples=16, dtype="bfloat16",
                  train=dict(lr=2e-4, epochs=3, batch_size=8, max_steps=0)),
}

# The embedded default: the preset a command uses without --preset (and the README's main
# command).  `long` is the budget that meets most of the validity criteria (docs/results-long);
# `tiny` is the same stages with a tenth of the steps, which does not learn text conditioning.
DEFAULT_PRESET = "long"

# fields that do not change the numbers (excluded from the config hash)
EXECUTION_FIELDS = ("out", "cache", "device", "resume", "progress", "plugins", "threads",
                    "stop_after", "data", "tokenizer", "evaluator", "backbone",
                    "gradient_checkpointing")


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


def _config_record(cfg: RunConfig, method_config, stages, scenario_names) -> dict:
    from benchmark.splits import order_name

    record = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in EXECUTION_FIELDS}
    record.update(method_config=method_config.to_dict(), stage_hashes=stages.hashes,
                  order={"name": order_name(cfg.order), "scenarios": scenario_names})
    record["config_hash"] = hash_json(record)
    return record


def _check_resume(out: Path, record: dict) -> dict:
    old = json.loads((out / "config.json").read_text())
    for key in sorted(set(old) | set(record)):
        if key != "config_hash" and old.get(key) != record.get(key):
            raise DataError(out / "config.json", f"the checkpoint was made with a different {key!r} "
                            f"({old.get(key)!r} != {record.get(key)!r})",
                            "rerun with the original settings or choose another --out")
    return old


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


def run(cfg: RunConfig) -> Path:
    """Train + evaluate one (method, setting, order, seed); returns the run folder."""
    import scipy.linalg  # noqa: F401 - load scipy's own OpenBLAS now, so the limit below reaches it
    import torch
    from threadpoolctl import threadpool_limits

    cfg = cfg.resolved()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # numpy/scipy BLAS (FID's sqrtm...) on small matrices: threads only add contention with torch
    with threadpool_limits(limits=max(1, cfg.threads), user_api="blas"):
        return _run(cfg)


def _run(cfg: RunConfig) -> Path:
    import torch
    from tqdm.auto import tqdm

    from benchmark.backbone import GenerationSettings, MotionLM, MotionLMConfig
    from benchmark.seed import seed_everything
    from benchmark.strategy import registry
    from benchmark.streams import make_scenario

    t0 = time.time()
    out = Path(cfg.out)
    if not cfg.progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if (out / "result.json").exists():
        raise DataError(out, "the run is already finished", "choose another --out")
    if (out / "progress.json").exists() and not cfg.resume:
        raise DataError(out, "an unfinished run is in this folder", "pass --resume or another --out")
    registry.discover(cfg.plugins)
    entry = registry.get_strategy(cfg.method)
    method_config = registry.make_config(
        cfg.method, {**PRESETS[cfg.preset]["train"], **cfg.method_overrides})
    generation = GenerationSettings(**cfg.generation)
    stages, codes = build_run_stages(cfg)
    scenario = make_scenario(stages.corpus, stages.manifest, _order_arg(cfg.order),
                             payload=codes.__getitem__, seed=cfg.seed)
    names = list(scenario.subset_names)
    if entry.cls.joint and method_config.max_steps:
        # a joint method sees all experiences at once: give it the optimiser-step budget a
        # sequential method spends over the whole stream, or the "upper bound" is undertrained
        method_config = dataclasses.replace(method_config,
                                            max_steps=method_config.max_steps * len(names))
    record = _config_record(cfg, method_config, stages, names)

    seed_everything(cfg.seed)
    max_motion = max(1, 196 // stages.tokenizer.downsample)
    mlm = MotionLM.from_pretrained(stages.backbone, stages.tokenizer.codebook_size,
                                   MotionLMConfig(max_motion_tokens=max_motion, dtype=cfg.dtype),
                                   device=cfg.device)
    if cfg.gradient_checkpointing:
        mlm.enable_gradient_checkpointing()
    strategy = entry.cls(motion_lm=mlm, config=method_config, device=cfg.device, seed=cfg.seed,
                         progress=cfg.progress,
                         label_spaces={"emotions": tuple(stages.corpus.emotions),
                                       "scenarios": tuple(stages.corpus.scenarios)})
    experiences = _joint(scenario) if entry.cls.joint else list(scenario.train_stream)
    scorer = Scorer(cfg.eval_settings(), stages, scenario, generation)
    keys = _metric_keys()

    ckpt_path = out / "checkpoints" / "state.pt"
    if cfg.resume and (out / "progress.json").exists():
        _check_resume(out, record)
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        strategy.restore(ckpt["strategy"])
        _set_rng_state(ckpt["rng"])
        state = ckpt["run"]
    else:
        atomic_write_json(out / "config.json", record)
        gt = scorer.ground_truth()
        base, _, bfail, btotal = scorer.score(strategy, 0, len(experiences))
        state = {"rows": [], "baseline": base, "ground_truth": gt, "failed": 0, "total": 0,
                 "baseline_failed": bfail, "baseline_total": btotal, "elapsed": 0.0}
        _save_baseline(out, base, names, keys)
        _save_chance(out, gt, names)

    start = len(state["rows"])
    bar = tqdm(total=len(experiences), initial=start, disable=not cfg.progress, desc=cfg.method,
               unit="exp")
    generated = None
    for i in range(start, len(experiences)):
        if cfg.stop_after and i >= cfg.stop_after:
            bar.close()
            return out
        seed_everything(hash_seed(cfg.seed, "train", i))
        strategy.train(experiences[i], eval_streams=[])
        metrics, generated, failed, total = scorer.score(strategy, i + 1, len(experiences))
        state["rows"].append(metrics)
        state["failed"] += failed
        state["total"] += total
        state["elapsed"] += time.time() - t0
        t0 = time.time()
        _save_matrices(out, state["rows"], names, keys)
        atomic_torch_save(ckpt_path, {"strategy": strategy.checkpoint_state(), "rng": _rng_state(),
                                      "run": state, "config_hash": record["config_hash"]})
        atomic_write_json(out / "progress.json", {"finished": i + 1, "n_experiences": len(experiences),
                                                  "config_hash": record["config_hash"]})
        bar.update(1)
    bar.close()
    if generated is None:      # resumed after the last experience: regenerate the samples
        _, generated, _, _ = scorer.score(strategy, len(experiences), len(experiences))
    _finish(out, cfg, record, state, names, keys, scorer, generated, strategy, time.time() - t0)
    return out


def build_run_stages(cfg: RunConfig):
    """Stages (built or reused in ``cfg.cache``) of a resolved config and the motion-token
    codes of its manifest's motions: ``(Stages, {id: codes})``."""
    from benchmark.backbone import TinyBackboneConfig
    from benchmark.backbone.pretrain import PretrainConfig
    from benchmark.stages import build_stages, codes_stage

    stages = build_stages(cfg.cache, data=cfg.data, tokenizer=cfg.tokenizer, evaluator=cfg.evaluator,
                          backbone=cfg.backbone, setting=cfg.setting, seed=cfg.seed,
                          corpus_scale=cfg.corpus_scale, tokenizer_preset=cfg.tokenizer_preset,
                          evaluator_preset=cfg.evaluator_preset,
                          tiny_config=TinyBackboneConfig(**cfg.tiny_backbone),
                          pretrain=PretrainConfig(**(cfg.pretrain or {"recipe": "none"})),
                          device=cfg.device)
    ids = list(stages.manifest["id"].astype(str))
    return stages, codes_stage(Path(cfg.cache), stages.corpus, stages.tokenizer, ids)


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


def _finish(out, cfg, record, state, names, keys, scorer, generated, strategy, extra_s) -> None:
    import pandas as pd
    import torch

    from evaluators.continual import run_aggregates

    _save_samples(out, scorer, generated, scorer.stages.corpus, cfg.n_samples)
    atomic_write_text(out / "train_log.csv", pd.DataFrame(strategy.history).to_csv(index=False))
    from evaluators.continual import FINAL_AVERAGES, TRANSFER_KEY, forgetting_floor

    matrices = {k: np.array([[m[k] for m in row] for row in state["rows"]], dtype=float) for k in keys}
    cis = {k: np.array([[m.get(f"{k}_ci95", np.nan) for m in row] for row in state["rows"]],
                       dtype=float) for k in keys}
    baseline = {k: np.array([b[k] for b in state["baseline"]], dtype=float) for k in keys}
    gt = {k: float(np.mean([g[k] for g in state["ground_truth"]])) for k in keys}
    aggregates = run_aggregates(matrices, baseline)
    # CI of a mean over the N subsets of the last row (independent cells): sqrt(sum ci^2) / N
    agg_ci = {a: float(np.sqrt(np.sum(cis[k][-1] ** 2)) / cis[k].shape[1])
              for a, k in FINAL_AVERAGES.items() if k in cis}
    r1 = matrices[TRANSFER_KEY]
    ranked = [(n // scorer.settings.batch) * scorer.settings.batch for n in scorer.sizes]
    floor = (forgetting_floor(r1, ranked, seed=cfg.seed) if r1.shape[0] == r1.shape[1]
             else {"mean": float("nan"), "q95": float("nan")})
    fr = aggregates.get("FR", float("nan"))
    chance = {f"r_precision_top{k}": k / scorer.settings.batch for k in (1, 2, 3)}
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    wall = state["elapsed"] + extra_s
    result = {
        "method": cfg.method, "setting": cfg.setting, "order": record["order"]["name"],
        "seed": cfg.seed, "preset": cfg.preset, "scenario_order": names,
        "n_experiences": len(state["rows"]), "aggregates": aggregates,
        "aggregates_ci95": agg_ci, "chance": chance,
        "fr_floor": {**floor, "inside": bool(np.isfinite(fr) and fr <= floor["q95"])},
        "eval": dataclasses.asdict(scorer.settings), "n_test": scorer.sizes,
        "final": {k: matrices[k][-1].tolist() for k in keys}, "ground_truth": gt,
        "ground_truth_per_subset": {k: [g[k] for g in state["ground_truth"]] for k in keys},
        "generation_failure_rate": state["failed"] / max(state["total"], 1),
        "baseline_failure_rate": state["baseline_failed"] / max(state["baseline_total"], 1),
        "config_hash": record["config_hash"], "stage_hashes": record["stage_hashes"],
        "provenance": provenance(config_hash=record["config_hash"], seed=cfg.seed,
                                 order=record["order"], device=cfg.device),
        "wall_time_s": wall, "peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": peak_gpu,
    }
    atomic_write_json(out / "result.json", result)


# ----------------------------------------------------------------------------- CLI
def add_shared_options(parser, cache_default: str | None = "runs/cache") -> None:
    """Options every command that launches runs shares (``run``, ``sweep``, ``bench``)."""
    a = parser.add_argument
    a("--preset", default=DEFAULT_PRESET, choices=tuple(PRESETS),
      help=f"run preset (default {DEFAULT_PRESET!r}, the embedded default)")
    a("--data", help="corpus folder (default: the synthetic corpus, built in --cache)")
    a("--tokenizer", help="motion tokenizer folder (default: trained in --cache)")
    a("--evaluator", help="evaluator folder (default: trained in --cache)")
    a("--backbone", default="tiny", help="'tiny' or a local Hugging Face model folder")
    a("--plugin", action="append", default=[], help="extra strategy file (repeatable)")
    a("--with", dest="with_plugins", default="", metavar="PLUGINS",
      help="composable CL plugins added to the method, e.g. ewc,replay,lwf (method config "
           "with_plugins: in the config hash); options as --set replay.mem_size=N")
    a("--cache", default=cache_default, help="stage cache folder")
    a("--device", default="cpu")
    a("--max-test", type=int, help="cap on test motions per subset (0 = all)")
    a("--full-matrix", action="store_true",
      help="evaluate every cell r[i, j]; default: only j <= i + 1 (all that the aggregates, FWT "
           "and the figures use) and the whole last row")
    a("--threads", type=int, default=0, help="torch CPU threads per run (0 = default)")
    a("--no-progress", action="store_true", help="no progress bars")
    a("--gradient-checkpointing", action="store_true",
      help="recompute each decoder layer's activations in backward: less GPU memory, ~30%% more "
           "compute, same numbers (not part of the config hash)")
    a("--set", action="append", default=[], metavar="KEY=VALUE",
      help="method config field (see `l2emg methods`); gen.KEY=VALUE sets a generation setting")


def shared_options(args) -> dict:
    """RunConfig fields from :func:`add_shared_options`' arguments."""
    method, gen = parse_sets(args.set)
    if getattr(args, "with_plugins", ""):
        method["with_plugins"] = args.with_plugins
    opts = dict(preset=args.preset, data=args.data, tokenizer=args.tokenizer,
                evaluator=args.evaluator, backbone=args.backbone, plugins=tuple(args.plugin),
                device=args.device, max_test=args.max_test, threads=args.threads,
                full_matrix=args.full_matrix,
                progress=not args.no_progress, method_overrides=method,
                gradient_checkpointing=getattr(args, "gradient_checkpointing", False))
    if args.cache:
        opts["cache"] = args.cache
    if gen:
        opts["generation"] = {**PRESETS[args.preset]["generation"], **gen}
    return opts


def run_command_args(parser) -> None:
    a = parser.add_argument
    a("--method", required=True, help="registered strategy name (see `l2emg methods`)")
    a("--setting", default="unseen", choices=("unseen", "mixed"))
    a("--order", default="1", help="1, 2, 3 or comma-separated subset names")
    a("--seed", type=int, default=0)
    a("--out", required=True, help="run folder")
    a("--resume", action="store_true", help="continue an unfinished run in --out")
    a("--stop-after", type=int, default=0, help="stop after N experiences (resume later)")
    add_shared_options(parser)


def parse_sets(pairs: list[str]) -> tuple[dict, dict]:
    """``--set`` pairs -> (method config overrides, generation overrides)."""
    method, gen = {}, {}
    for pair in pairs:
        if "=" not in pair:
            raise DataError(None, f"--set {pair!r} is not KEY=VALUE", "write e.g. --set lr=1e-3")
        k, v = pair.split("=", 1)
        if k.startswith("gen."):
            gen[k[4:]] = json.loads(v) if v.replace(".", "", 1).isdigit() or v in ("true", "false") else v
        else:
            method[k] = v
    return method, gen


def run_command(args) -> int:
    cfg = RunConfig(method=args.method, out=args.out, setting=args.setting, order=args.order,
                    seed=args.seed, resume=args.resume, stop_after=args.stop_after,
                    **shared_options(args))
    out = run(cfg)
    if (out / "result.json").exists():
        res = json.loads((out / "result.json").read_text())
        agg = res["aggregates"]
        print(f"{args.method}: AR {agg['AR']:.3f}  AF {agg['AF']:.2f}  FR {agg['FR']:.2f}  "
              f"failures {res['generation_failure_rate']:.1%}  -> {out}")
    else:
        print(f"stopped after {args.stop_after} experience(s); resume with --resume -> {out}")
    return 0

