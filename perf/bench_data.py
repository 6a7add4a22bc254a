"""Data-pipeline timings: split manifests at full Table 1 scale, stream construction and item
reads on a corpus, Motion-X conversion speed (synthetic SMPL-X model, CPU).

    python perf/bench_data.py [--corpus DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    from types import SimpleNamespace

    from benchmark.corpus.labels import EMOTIONS, SCENARIOS, TABLE1_COUNTS
    from benchmark.corpus.parts import assign_parts
    from benchmark.splits import make_splits

    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=None, help="corpus for the stream timings")
    args = ap.parse_args()

    scen = np.repeat(list(TABLE1_COUNTS), list(TABLE1_COUNTS.values()))
    labels = pd.DataFrame({"id": [f"{k:06d}" for k in range(len(scen))], "scenario": scen,
                           "emotion": np.array(EMOTIONS)[np.arange(len(scen)) % 7]})
    labels["part"] = assign_parts(labels, 0)
    fake = SimpleNamespace(root="-", labels=labels, scenarios=SCENARIOS, emotions=EMOTIONS)
    for setting in ("unseen", "mixed"):
        t, _ = timed(lambda: make_splits(fake, setting, 0))
        print(f"make_splits {setting:6s} 19,916 motions: {t * 1e3:7.1f} ms")

    if args.corpus:
        from benchmark.corpus import load_corpus
        from benchmark.streams import make_scenario

        corpus = load_corpus(args.corpus)
        manifest = make_splits(corpus, "unseen", 0)
        make_scenario(corpus, manifest, 1)  # import avalanche once
        t, sc = timed(lambda: make_scenario(corpus, manifest, 1), 1)
        print(f"make_scenario ({len(corpus)} motions, 24 experiences): {t * 1e3:.1f} ms")
        data = sc.train_stream[0].dataset
        n = len(data)
        t, _ = timed(lambda: [data[i] for i in range(n)], 1)
        t2, _ = timed(lambda: [data[i] for i in range(n)], 1)
        print(f"item reads: {n / t:,.0f} items/s cold, {n / t2:,.0f} items/s cached")

    import torch

    from benchmark.corpus.motionx import MotionXConfig, convert_clip, load_body_model, \
        write_synthetic_smplx_model

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_smplx_model(Path(tmp) / "smplx" / "SMPLX_NEUTRAL.npz")
        cfg = MotionXConfig(Path(tmp))
        model = load_body_model(cfg)
        clip = np.zeros((300, 322), np.float32)
        clip[:, 0] = np.pi / 2
        clip[:, 310] = -np.arange(300) / 30
        t, _ = timed(lambda: convert_clip(clip, model, cfg), 2)
        print(f"Motion-X convert_clip: 300 frames (10 s @30 fps) in {t:.2f} s "
              f"= {300 / t:,.0f} source frames/s (2 threads, 10,475-vertex model)")


if __name__ == "__main__":
    main()
