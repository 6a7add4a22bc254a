"""Synthetic run folders in the docs/CONTRACTS.md "Run folders" format, for the leaderboard tests."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.corpus.labels import SCENARIOS
from benchmark.io import atomic_save_npy, atomic_write_json
from evaluators.continual import aggregates

ORDERS = {1: list(SCENARIOS), 2: list(SCENARIOS[::-1]),
          3: [SCENARIOS[i] for i in (3, 0, 6, 2, 7, 5, 1, 4)]}
STAGES = {"corpus": "c0", "split": "s0", "tokenizer": "t0", "evaluator": "e0", "backbone": "b0"}


def truth(trained: str, tested: str, quality: float) -> float:
    """R@1 as a function of scenario names only (so heat maps align across orders)."""
    a, b = SCENARIOS.index(trained) if trained in SCENARIOS else 0, \
        SCENARIOS.index(tested) if tested in SCENARIOS else 0
    return quality * (1.0 - 0.02 * abs(a - b)) + 0.01 * b


def make_fake_run(root: Path, method: str, setting: str = "unseen", order: int = 1, seed: int = 0,
                  quality: float = 0.3, noise: float = 0.0, stages: dict | None = None,
                  preset: str = "test", finished: bool = True, stale: bool = False,
                  samples: Path | None = None, n_frames: int = 24, chance: float | None = 1 / 32,
                  ceiling: float = 0.6, result_extra: dict | None = None) -> Path:
    """Write RUN = root/<method>/<setting>/order<order>/seed<seed> and return it.

    ``r[i, j] = truth(order[i], order[j]) - 0.1 * (j > i)`` (+ noise), FID = 10 * (0.5 - R@1).
    ``samples`` = a HumanML3D features file used for both generated and ground-truth samples.
    ``chance`` = result.json's chance R@1 (top-2/3: 2x, 3x; None: no chance entry), ``ceiling``
    = its real-vs-real R@1 (FID 0); ``result_extra`` is merged into result.json.
    """
    rng = np.random.default_rng(zlib.crc32(f"{method}/{setting}/{order}/{seed}".encode()))
    names = ORDERS[order] if setting == "unseen" else [
        f"Scenario{SCENARIOS.index(s) + 1}" for s in ORDERS[order]]
    sc = ORDERS[order]
    n = len(names)
    r1 = np.array([[truth(sc[i], sc[j], quality) - 0.1 * (j > i) for j in range(n)] for i in range(n)])
    r1 = r1 + noise * rng.standard_normal(r1.shape)
    mats = {"r_precision_top1": r1, "r_precision_top2": r1 + 0.1, "r_precision_top3": r1 + 0.2,
            "fid": 10 * (0.5 - r1), "matching_score": 5 - r1, "diversity": 9 + r1,
            "multimodality": 1.5 + 0 * r1, "emotion_f1": r1 + 0.05}
    run = root / method / setting / f"order{order}" / f"seed{seed}"
    (run / "matrices").mkdir(parents=True, exist_ok=True)
    idx = [f"after_{i + 1}" for i in range(n)]
    for key, m in mats.items():
        pd.DataFrame(m, index=idx, columns=names).to_csv(run / "matrices" / f"{key}.csv")
    base = pd.DataFrame({k: m[0] * 0.5 for k, m in mats.items()}, index=names).T
    base.index.name = "metric"
    base.to_csv(run / "matrices" / "baseline.csv")
    stage_hashes = dict(STAGES, **(stages or {}))
    config = {"method": method, "method_config": {"lr": 1e-4}, "setting": setting,
              "order": {"name": str(order), "scenarios": names}, "seed": seed, "preset": preset,
              "stage_hashes": stage_hashes, "config_hash": f"h{order}{seed}"}
    atomic_write_json(run / "config.json", config)
    atomic_write_json(run / "progress.json", {"finished": n if finished else 2})
    if samples is not None:
        feats = np.load(samples)[:n_frames]
        sdir = run / "samples"
        atomic_save_npy(sdir / "p0.npy", feats + 0.01 * (method != "mtl"))
        atomic_save_npy(sdir / "p0_gt.npy", feats)
        atomic_write_json(sdir / "index.json", {"p0": {
            "text": "a person waves happily", "emotion": "happy", "scenario": sc[0],
            "subset": names[0], "reference": "p0_gt.npy"}})
    if finished:
        b = {k: base.loc[k].to_numpy() for k in base.index}
        agg = aggregates(mats, baseline=b)
        if stale:
            agg["AR"] += 0.05
        atomic_write_json(run / "result.json", {
            "method": method, "setting": setting, "order": str(order), "seed": seed,
            "scenario_order": names, "n_experiences": n, "aggregates": agg,
            "final": {k: m[-1].tolist() for k, m in mats.items()},
            "ground_truth": {"fid": 0.0, "r_precision_top1": ceiling, "diversity": 9.5,
                             "emotion_f1": 0.95},
            **({} if chance is None else {"chance": {"r_precision_top1": chance,
                                                     "r_precision_top2": 2 * chance,
                                                     "r_precision_top3": 3 * chance}}),
            "generation_failure_rate": 0.0, "config_hash": config["config_hash"],
            "stage_hashes": stage_hashes, "preset": preset, "provenance": {}, "wall_time_s": 1.0,
            "peak_rss_mb": 1.0, **(result_extra or {})})
    return run


def make_sweep(root: Path, methods: dict[str, float], settings=("unseen",), orders=(1, 2, 3),
               seeds=(0, 1), noise: float = 0.0, **kw) -> Path:
    """A folder of runs: methods (name -> quality) x settings x orders x seeds."""
    for m, q in methods.items():
        for s in settings:
            for o in orders:
                for sd in seeds:
                    make_fake_run(root, m, s, o, sd, quality=q, noise=noise, **kw)
    return root
