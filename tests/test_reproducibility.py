"""Numbers do not depend on which process built a stage: a run that builds its stages (cold
cache) writes the same files as the same run on the warm cache; a stage build leaves the
process as it found it (torch threads, RNG states, grad mode, default dtype)."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_isolated_restores_process_state():
    from benchmark.seed import isolated

    threads = torch.get_num_threads()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expect = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with isolated():
        torch.set_num_threads(1 if threads != 1 else 2)
        torch.set_grad_enabled(False)
        torch.set_default_dtype(torch.float64)
        random.random(), np.random.rand(10), torch.rand(10)
    assert torch.get_num_threads() == threads and torch.is_grad_enabled()
    assert torch.get_default_dtype() == torch.float32
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expect


def test_corpus_build_in_this_process_keeps_torch_threads(tmp_path):
    """joblib runs a small corpus build in the caller's process; its one-thread-per-worker
    setting used to stay behind (the cause of cold- vs warm-cache differences)."""
    from benchmark.corpus import build_corpus

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        build_corpus(tmp_path / "c", scale=0.005, seed=0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _run_cli(cache: Path, out: Path, *extra: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "harness.cli", "run", "--method", "seq_lora", "--preset", "test",
           "--order", "Daily Life,Sports", "--max-test", "6", "--cache", str(cache), "--out", str(out),
           "--no-progress", *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_cold_and_warm_cache_give_identical_files(tmp_path):
    """Two processes, one cache: the first builds every stage (corpus, split, tokenizer,
    evaluator, pretrained backbone, codes), the second finds them built.  Every matrix (with
    the baseline row, CIs and chance levels) and train_log.csv are byte-identical."""
    cache = tmp_path / "cache"
    _run_cli(cache, tmp_path / "cold")
    _run_cli(cache, tmp_path / "warm")
    files = sorted(p.relative_to(tmp_path / "cold") for p in (tmp_path / "cold" / "matrices").glob("*.csv"))
    assert Path("matrices/baseline.csv") in files and Path("matrices/fid.csv") in files
    for rel in files + [Path("train_log.csv")]:
        assert (tmp_path / "warm" / rel).read_bytes() == (tmp_path / "cold" / rel).read_bytes(), rel


@pytest.mark.slow
def test_one_and_two_threads_give_the_same_matrices(tmp_path):
    """The protocol barely depends on the thread count: the same run with --threads 1 and
    --threads 2 (one cache, the first builds it) trains identically (train_log.csv and every
    generated token, so R-precision and emotion F1, are byte-identical); the continuous metrics
    (FID, KID, diversity, matching score, multimodality) come from float32 embeddings whose sums
    run in another order, and agree to 1e-5 relative (measured: <= 1e-7, docs/runner.md)."""
    import pandas as pd

    cache = tmp_path / "cache"
    _run_cli(cache, tmp_path / "t1", "--threads", "1")
    _run_cli(cache, tmp_path / "t2", "--threads", "2")
    one, two = tmp_path / "t1", tmp_path / "t2"
    files = sorted(p.relative_to(one) for p in (one / "matrices").glob("*.csv"))
    assert Path("matrices/r_precision_top1.csv") in files
    exact = [Path("train_log.csv")] + [f for f in files if f.stem.startswith(("r_precision", "emotion_f1"))
                                       and not f.stem.endswith("_ci")]
    for rel in exact:
        assert (two / rel).read_bytes() == (one / rel).read_bytes(), rel
    for rel in files:
        a = pd.read_csv(one / rel, index_col=0).select_dtypes("number").to_numpy(float)
        b = pd.read_csv(two / rel, index_col=0).select_dtypes("number").to_numpy(float)
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=str(rel))


def test_code_version_reads_the_commit_a_git_archive_wrote(tmp_path):
    import subprocess

    from benchmark.io import code_version

    here = code_version()                                # this checkout: git answers
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    if head:
        assert here["commit"] == head and "source" not in here
    (tmp_path / "benchmark").mkdir()
    stamp = tmp_path / "benchmark" / "ARCHIVE_COMMIT"
    stamp.write_text("$Format:%H$\n")                    # a checkout's unsubstituted placeholder
    assert code_version(tmp_path)["commit"] is None
    stamp.write_text("0123456789abcdef0123456789abcdef01234567\n")
    snap = code_version(tmp_path)
    assert snap["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert snap["source"] == "git archive" and snap["dirty"] is None


def test_provenance_records_the_torch_thread_count():
    """A tokenizer trained with 1 and with 2 torch threads got other weights (measured on the
    `test` preset: content hashes 2ceaa84b… vs 89bed2b3…, each repeatable), so every result
    and stage file records the thread count it was made with."""
    import torch

    from benchmark.io import provenance

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert provenance()["torch_threads"] == 1
        torch.set_num_threads(2)
        assert provenance()["torch_threads"] == 2
    finally:
        torch.set_num_threads(before)
