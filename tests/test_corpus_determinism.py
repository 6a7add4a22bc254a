"""The synthetic corpus hashes the same whatever the thread counts and the CPU's instruction set.

Each build runs in a fresh subprocess, because thread pools and SIMD dispatch are fixed when
numpy, torch and MKL load.  "Another CPU" is emulated on this one by switching off numpy's
dispatched SIMD kernels above its baseline (``NPY_DISABLE_CPU_FEATURES``) and limiting MKL to
AVX2 (``MKL_ENABLE_INSTRUCTIONS``): before the fix both changed the float64 features (numpy's
AVX-512 ``exp``, MKL's ``dgemm`` behind the float64 ``conv1d`` of the heading smoothing).  The
pinned hashes catch a change of bytes on any other machine.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# content hashes of the tiny corpora below (paper: scale 0.001, 56 motions; conflict: scale
# 0.01, 160 motions); it changes only with the generator (then update it
# together with docs/corpus.md), never with the machine, thread count or worker count
PINNED = {"paper": "156cbd371b51e759", "conflict": "da5f7ecbd5e20b91"}

# prints the corpus's content hash and a digest of the float64 features before the float32
# cast (float32 rounding hides most last-bit differences at this size; the float64 digest does not)
_BUILD = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[2]))
from benchmark.corpus import build_corpus, load_corpus
from benchmark.corpus.generator import make_tracks, pose_batch
from benchmark.corpus.synth import SynthConfig, plan_corpus
from benchmark.motion import joints_to_features
opts = dict(scale=0.001, seed=0, min_per_cell=1, duration_s=(2.0, 4.0))
out = build_corpus(sys.argv[1], n_jobs=int(sys.argv[3]), **opts)
cfg = SynthConfig(**opts)
tracks = [make_tracks(p, cfg) for p in plan_corpus(cfg)]
h = hashlib.sha256()
for b in range(0, len(tracks), 32):
    for j in pose_batch(tracks[b:b + 32], cfg.fps):
        h.update(joints_to_features(j).tobytes())
conflict = build_corpus(sys.argv[1] + "-conflict", scale=0.01, seed=0, stream="conflict",
                        n_jobs=int(sys.argv[3]))
print(load_corpus(out, validate=False).content_hash, h.hexdigest()[:16],
      load_corpus(conflict, validate=False).content_hash)
"""


def _numpy_simd_above_baseline() -> str:
    """The dispatched numpy SIMD targets this CPU supports (to switch off), comma-separated."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return ",".join(f for f in __cpu_dispatch__ if __cpu_features__.get(f))


def _build(tmp: Path, threads: int, jobs: int, other_cpu: bool = False) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NPY_DISABLE_CPU_FEATURES", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")}
    env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                          "OPENBLAS_NUM_THREADS")})
    env["PYTHONWARNINGS"] = "ignore"
    if other_cpu:
        env["MKL_ENABLE_INSTRUCTIONS"] = "AVX2"
        simd = _numpy_simd_above_baseline()
        if simd:
            env["NPY_DISABLE_CPU_FEATURES"] = simd
    out = tmp / f"t{threads}-j{jobs}-{'other' if other_cpu else 'this'}"
    proc = subprocess.run([sys.executable, "-c", _BUILD, str(out), str(threads), str(jobs)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1].split()


@pytest.mark.slow
def test_same_hash_for_threads_jobs_and_cpu_features(tmp_path):
    (one, one64, one_c), (two, two64, two_c) = (
        _build(tmp_path, threads=1, jobs=1), _build(tmp_path, threads=2, jobs=2, other_cpu=True))
    assert one64 == two64, "the float64 features depend on threads / SIMD kernels / BLAS"
    assert one == two and one_c == two_c, "the corpus bytes depend on threads / workers / SIMD"
    assert {"paper": one, "conflict": one_c} == PINNED, "the generator's output changed"


def test_smoothing_matches_scipy_and_is_order_fixed():
    """The heading smoothing (a fixed-order sum of taps, no BLAS) equals scipy's filter."""
    import torch
    from scipy.ndimage import gaussian_filter1d

    from benchmark.motion.skeleton import _gaussian_smooth_time

    x = np.random.default_rng(0).normal(size=(2, 75, 3))
    got = _gaussian_smooth_time(torch.from_numpy(x), 20.0).numpy()
    want = gaussian_filter1d(x, 20.0, axis=-2, mode="nearest", truncate=4.0)
    assert np.allclose(got, want, rtol=0, atol=1e-12)
    # batch-independent bits: one motion alone gives the same bytes as inside a batch
    alone = _gaussian_smooth_time(torch.from_numpy(x[1:]), 20.0).numpy()
    assert alone.tobytes() == got[1:].tobytes()


def test_exp_helper_is_libm_exact():
    import math

    from benchmark.corpus.pose import exp

    v = np.random.default_rng(1).uniform(-30, 30, size=(4, 5))
    assert exp(v).shape == (4, 5)
    assert all(a == math.exp(b) for a, b in zip(exp(v).ravel(), v.ravel()))
    assert exp(np.array([800.0]))[0] == np.inf and exp(np.array([-800.0]))[0] == 0.0


@pytest.mark.parametrize("n", [1, 3])
def test_small_batches_identical(n):
    """A motion's bytes do not depend on which motions share its batch."""
    from benchmark.corpus.generator import generate_chunk
    from benchmark.corpus.synth import SynthConfig, plan_corpus

    cfg = SynthConfig(scale=0.001, min_per_cell=1, duration_s=(2.0, 4.0))
    plans = plan_corpus(cfg)[:6]
    whole = generate_chunk(plans, cfg)
    parts = [m for i in range(0, 6, n) for m in generate_chunk(plans[i:i + n], cfg)]
    assert [m.features.tobytes() for m in whole] == [m.features.tobytes() for m in parts]
