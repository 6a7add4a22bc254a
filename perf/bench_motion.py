"""Throughput of the HumanML3D feature conversions (numpy and torch, CPU and CUDA if present).

    python perf/bench_motion.py [--motions 200] [--frames 200] [--threads 2]
Prints frames/s for features_to_joints and joints_to_features on a batch of random motions.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmark.motion import (DEFAULT_OFFSETS, features_to_joints, forward_kinematics,
                              joints_to_features)


def make_motions(n: int, frames: int, seed: int = 0) -> np.ndarray:
    """``(n, frames, 22, 3)`` smooth random motions posed by forward kinematics."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, frames)[None, :, None, None]
    axis = rng.normal(size=(n, 1, 22, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    ang = 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 3, (n, 1, 22, 1)) * t
                       + rng.uniform(0, 6.3, (n, 1, 22, 1)))
    quats = np.concatenate([np.cos(ang / 2), np.sin(ang / 2) * axis], axis=-1)
    root = np.cumsum(rng.normal(0, 0.01, (n, frames, 3)), axis=1) + [0, 0.9, 0]
    return forward_kinematics(quats, root, DEFAULT_OFFSETS)


def timed(fn, x, sync=lambda: None, repeats: int = 3) -> float:
    fn(x)
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--motions", type=int, default=200)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    joints = make_motions(args.motions, args.frames)
    feats = joints_to_features(joints)
    n_in, n_feat = args.motions * args.frames, feats.shape[0] * feats.shape[1]
    print(f"{args.motions} motions x {args.frames} frames, torch threads={args.threads}")
    rows = [("numpy float64", joints, feats, lambda: None),
            ("torch float32 cpu", torch.from_numpy(joints).float(), torch.from_numpy(feats).float(),
             lambda: None)]
    if torch.cuda.is_available():
        rows.append(("torch float32 cuda", torch.from_numpy(joints).float().cuda(),
                     torch.from_numpy(feats).float().cuda(), torch.cuda.synchronize))
    base = None
    for name, j, f, sync in rows:
        t_j2f = timed(joints_to_features, j, sync)
        t_f2j = timed(features_to_joints, f, sync)
        fps = (n_feat / t_f2j, n_in / t_j2f)
        base = base or fps
        print(f"{name:20s} features_to_joints {fps[0]:12,.0f} frames/s ({fps[0] / base[0]:5.1f}x)"
              f"   joints_to_features {fps[1]:12,.0f} frames/s ({fps[1] / base[1]:5.1f}x)")


if __name__ == "__main__":
    main()
