"""Tokenizer throughput: encode+decode frames/s on CPU, batched vs one-by-one.

    python perf/bench_tokenizer.py [--preset tiny] [--n 64] [--threads 2] [--device cpu]

Uses an untrained model of the preset's size (throughput does not depend on the weights) and
random motions of 40-196 frames (HumanML3D's range).  Prints frames/s of both paths and the ratio.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmark.tokenizer import PRESETS, MotionTokenizer


def _time(fn, repeats: int) -> float:
    fn()                                      # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--n", type=int, default=64, help="number of motions")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = PRESETS[args.preset].model
    tok = MotionTokenizer(cfg, np.zeros(cfg.feature_dim), np.ones(cfg.feature_dim)).to(args.device)
    tok.vqvae.quantizer.train()(torch.randn(1, cfg.code_dim, 4 * cfg.nb_code, device=args.device))
    tok.eval()
    motions = [rng.normal(size=(int(t), cfg.feature_dim)).astype(np.float32)
               for t in rng.integers(40, 197, size=args.n)]
    frames = sum(len(m) // tok.downsample * tok.downsample for m in motions)

    def batched():
        tok.decode_batch(tok.encode_batch(motions))

    def single():
        for m in motions:
            tok.decode(tok.encode(m))

    tb, ts = _time(batched, args.repeats), _time(single, args.repeats)
    print(f"preset {args.preset} (width {cfg.width}, codes {cfg.nb_code}x{cfg.code_dim}), device {args.device}, "
          f"{args.threads} threads, {args.n} motions, {frames} frames")
    print(f"batched     encode+decode: {frames / tb:12.0f} frames/s  ({tb * 1e3:.1f} ms)")
    print(f"one-by-one  encode+decode: {frames / ts:12.0f} frames/s  ({ts * 1e3:.1f} ms)")
    print(f"batched / one-by-one speed-up: {ts / tb:.2f}x")


if __name__ == "__main__":
    main()
