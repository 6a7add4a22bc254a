"""The embedded synthetic emotional motion corpus (``l2emg data synth``).

Plan -> generate -> write: every motion gets a scenario, emotion, action and its own seed from
the corpus seed (so a motion does not depend on how the work is split between processes),
chunks of motions are posed in parallel (:mod:`benchmark.corpus.generator`) and written straight
into a temporary folder that is renamed into place when everything succeeded.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from benchmark.corpus.labels import EMOTIONS, SCENARIOS, TABLE1_COUNTS

# synth-2: CPU-independent float64 path (math.exp, fixed-order heading smoothing): the default
# corpus's bytes changed once (docs/corpus.md), so cached synth-1 corpora are not reused
GENERATOR_VERSION = "synth-2"

# the synthetic streams (docs/corpus.md): "paper" = Table 1's proportions, per-scenario verbs,
# 20 % of every Unseen subset from other scenarios; "conflict" = shared phrases realised by
# each scenario's own action, scenario cues, held-out emotions, no cross-scenario share
STREAMS: tuple[str, ...] = ("paper", "conflict")
STREAM_SPLIT_SHARE: dict[str, float] = {"paper": 0.2, "conflict": 0.0}
# SynthConfig fields a stream sets unless given explicitly
STREAM_DEFAULTS: dict[str, dict] = {"paper": {}, "conflict": {"duration_s": (3.2, 3.2)}}


def check_stream(stream: str) -> str:
    """``stream`` if it is a known stream name, else DataError listing them."""
    from benchmark.io import DataError

    if stream not in STREAMS:
        raise DataError(None, f"unknown stream {stream!r}", f"choose one of: {', '.join(STREAMS)}")
    return stream


@dataclass(frozen=True)
class SynthConfig:
    """How the synthetic corpus is generated.

    scale: fraction of Table 1's per-scenario counts (1.0 = 19,916 motions).
    min_per_cell: lower bound of motions per scenario x emotion cell (keeps small scales complete).
    duration_s: clip length range in seconds (20 fps; joints frames = round(s * 20) + 1).
    noise: std (rad) of the smooth per-joint angle noise; mirror_prob: chance of a left-handed take.
    scenario_style: strength of each scenario's own expression of each emotion, on top of the
    shared style (0 = none, the default: every scenario expresses an emotion the same way; 1 =
    posture shifts of ~0.3 rad and tempo/size factors of ~exp(+-0.2) per scenario x emotion,
    :func:`benchmark.corpus.emotion_style.scenario_shift`).  Recorded in corpus.json only when > 0,
    so the default corpus keeps its bytes and content hash.
    stream: "paper" (Table 1 proportions, per-scenario verbs) or "conflict" (shared phrases
    realised differently per scenario, :mod:`benchmark.corpus.conflict`; ``scale`` 1 = its
    designed size of 3,144 motions).  Recorded in corpus.json only when not "paper".
    """

    scale: float = 0.1
    seed: int = 0
    emotions: tuple[str, ...] = EMOTIONS
    min_per_cell: int = 2
    duration_s: tuple[float, float] = (2.0, 10.0)
    fps: int = 20
    noise: float = 0.03
    mirror_prob: float = 0.5
    n_captions: int = 3
    chunk_size: int = 64
    scenario_style: float = 0.0
    stream: str = "paper"
    generator: str = field(default=GENERATOR_VERSION)

    def __post_init__(self):
        from benchmark.corpus.emotion_style import EMOTION_STYLES

        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        unknown = [e for e in self.emotions if e not in EMOTION_STYLES]
        if unknown or not self.emotions:
            raise ValueError(f"unknown emotion(s) {unknown}; known: {', '.join(EMOTION_STYLES)}")
        lo, hi = self.duration_s
        if not 0.5 <= lo <= hi:
            raise ValueError(f"duration_s must satisfy 0.5 <= lo <= hi, got {self.duration_s}")
        if not self.scenario_style >= 0:
            raise ValueError(f"scenario_style must be >= 0, got {self.scenario_style}")
        if self.stream not in STREAMS:
            raise ValueError(f"unknown stream {self.stream!r}; known: {', '.join(STREAMS)}")


def scenario_counts(scale: float, n_emotions: int = len(EMOTIONS), min_per_cell: int = 2) -> dict[str, int]:
    """Motions per scenario: ``round(scale * TABLE1_COUNTS)``, at least ``min_per_cell`` per emotion."""
    return {s: max(int(round(scale * n)), min_per_cell * n_emotions) for s, n in TABLE1_COUNTS.items()}


def plan_corpus(cfg: SynthConfig) -> list[dict]:
    """One dict per motion: id, scenario, emotion, action, seed (all from ``cfg.seed``); the
    conflict stream's plans also carry concept and part (:func:`~benchmark.corpus.conflict.plan_conflict`)."""
    from benchmark.corpus.actions import SCENARIO_ACTIONS

    if cfg.stream == "conflict":
        from benchmark.corpus.conflict import plan_conflict

        return plan_conflict(cfg)

    root = np.random.SeedSequence([cfg.seed, 20250])
    plans: list[dict] = []
    counts = scenario_counts(cfg.scale, len(cfg.emotions), cfg.min_per_cell)
    children = root.spawn(len(SCENARIOS))
    for k, scenario in enumerate(SCENARIOS):
        n = counts[scenario]
        rng = np.random.default_rng(children[k])
        # balanced emotions (shuffled remainder), balanced actions within each emotion
        emo = np.concatenate([np.arange(len(cfg.emotions))] * (n // len(cfg.emotions))
                             + [rng.permutation(len(cfg.emotions))[: n % len(cfg.emotions)]])
        actions = SCENARIO_ACTIONS[scenario]
        act = np.empty(n, dtype=int)
        for e in range(len(cfg.emotions)):
            idx = np.flatnonzero(emo == e)
            act[idx] = (rng.integers(len(actions)) + np.arange(len(idx))) % len(actions)
        order = rng.permutation(n)
        seeds = rng.integers(0, 2**63 - 1, size=n)
        for i, j in enumerate(order):
            plans.append({"id": f"S{k + 1}_{i:05d}", "scenario": scenario,
                          "emotion": cfg.emotions[emo[j]], "action": actions[act[j]],
                          "seed": int(seeds[i])})
    return plans


def _work(chunk: list[dict], cfg: SynthConfig, root: str) -> list:
    """Generate and write one chunk (runs in a worker process)."""
    import torch

    from benchmark.corpus.generator import generate_chunk
    from benchmark.corpus.humanml3d import write_motion_files

    # one thread per worker; with n_jobs=1 joblib runs this in the caller's process, whose
    # setting must survive it (a corpus built in a run's process used to leave the run on one
    # thread, so its numbers differed from a run that found the corpus built)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [write_motion_files(root, m) for m in generate_chunk(chunk, cfg)]
    finally:
        torch.set_num_threads(threads)


def build_corpus(out: str | os.PathLike, scale: float = 0.1, seed: int = 0,
                 emotions: tuple[str, ...] = EMOTIONS, *, n_jobs: int | None = None,
                 overwrite: bool = False, progress: bool = False, **options) -> Path:
    """Generate the synthetic corpus into ``out`` (HumanML3D layout + labels.csv + corpus.json).

    Same (scale, seed, emotions, options) -> byte-identical files, whatever ``n_jobs``.
    ``options`` are further :class:`SynthConfig` fields.  Returns ``out``.
    """
    from joblib import Parallel, delayed

    from benchmark.corpus.humanml3d import finalize_corpus
    from benchmark.io import atomic_dir

    stream = check_stream(options.get("stream", "paper"))
    options = {**STREAM_DEFAULTS[stream], **options}
    cfg = SynthConfig(scale=scale, seed=seed, emotions=tuple(emotions), **options)
    plans = plan_corpus(cfg)
    chunks = [plans[i:i + cfg.chunk_size] for i in range(0, len(plans), cfg.chunk_size)]
    if n_jobs is None:
        n_jobs = 1 if len(plans) <= 400 else min(len(chunks), os.cpu_count() or 1)
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        jobs = (delayed(_work)(c, cfg, str(tmp)) for c in chunks)
        if progress:
            from tqdm import tqdm

            jobs = tqdm(jobs, total=len(chunks), desc="synth", unit="chunk")
        results = Parallel(n_jobs=n_jobs)(jobs)
        summaries = [s for r in results for s in r]
        config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()
                  if not (k == "scenario_style" and v == 0)   # the default corpus's old record
                  and not (k == "stream" and v == "paper")}
        if cfg.stream == "conflict":
            from benchmark.corpus.conflict import cell_counts, held_out_emotions

            config["held_out_train"] = {s: list(e) for s, e in
                                        held_out_emotions(SCENARIOS, cfg.emotions).items() if e}
            config["cell_counts"] = cell_counts(cfg.scale)
        finalize_corpus(tmp, summaries, emotions=cfg.emotions, config=config, seed=cfg.seed)
    return out
