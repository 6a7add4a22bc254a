"""Time the synthetic corpus build: seconds per 1,000 motions, serial vs parallel, and the
extrapolated full-scale (19,916 motions) build time.

    python perf/bench_corpus.py [--scale 0.1] [--jobs 1 2]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from benchmark.corpus import TABLE1_TOTAL, build_corpus, load_corpus


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench_corpus_"))
    try:
        times = {}
        for jobs in args.jobs:
            out = base / f"j{jobs}"
            t0, c0 = time.perf_counter(), _cpu_s()
            build_corpus(out, scale=args.scale, seed=0, n_jobs=jobs)
            dt, cpu = time.perf_counter() - t0, _cpu_s() - c0
            n = len(load_corpus(out, validate=False))
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
            times[jobs] = dt
            print(f"n_jobs={jobs}: {n} motions in {dt:.1f} s = {1000 * dt / n:.2f} s per 1,000 "
                  f"motions (CPU {1000 * cpu / n:.2f} s, children counted once they exit); "
                  f"{size:.0f} MiB; full scale ({TABLE1_TOTAL}) ~ {dt / n * TABLE1_TOTAL:.0f} s")
            shutil.rmtree(out)
        if 1 in times:
            for jobs, dt in times.items():
                if jobs != 1:
                    print(f"speed-up n_jobs={jobs} vs 1: {times[1] / dt:.2f}x")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
