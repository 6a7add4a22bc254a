"""--stop-after k + --resume == the uninterrupted run, for every registered method of the project
(baselines, ES-MoE and its ablations) and both examples, at k = 1 and k = 2, on the test preset
with 3 experiences, starting from a run cache that is empty when the module starts (so the first
run builds the backbone stage and the codes in this process; the cold-vs-warm equality of each
stage is tests/test_reproducibility.py's).

One chain per method covers both k: stop after experience 1, resume from that checkpoint and
stop after 2, resume from the second checkpoint to the end; its matrices (CIs, baseline and
chance rows included) and train_log.csv must equal the uninterrupted run's byte for byte.
Every train_log.csv has unique, consecutive (experience, epoch) rows.  To fit CI the runs are
cut to what resuming needs (2 optimiser steps per experience, 4 test motions per subset, one
evaluation repeat, 6 new tokens); the stopping points and the checkpoint contents are those of
any run.  Marked ``slow``; its time is in docs/runner.md."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.run_config import RunConfig
from harness.runner import run

REPO = Path(__file__).resolve().parents[1]
ORDER = "Daily Life,Sports,Dance"
EXAMPLES = {"l2_lora": REPO / "examples" / "my_method.py",
            "word_router": REPO / "examples" / "routed_method.py"}


def _project_methods() -> list[str]:
    from benchmark.strategy.registry import discover

    return sorted(n for n, e in discover().items() if e.module.startswith(("baselines.", "methods.")))


METHODS = _project_methods() + sorted(EXAMPLES)


def assert_log_rows_consecutive(log: pd.DataFrame) -> None:
    """(experience, epoch) pairs are unique; experiences run 1, 2, ... and each one's epochs 1, 2, ..."""
    pairs = list(zip(log["experience"].astype(int), log["epoch"].astype(int)))
    assert len(set(pairs)) == len(pairs), f"repeated (experience, epoch) rows: {pairs}"
    expected_exp = 1
    for k, (exp, epoch) in enumerate(pairs):
        prev = pairs[k - 1] if k else (0, 0)
        if exp == prev[0]:
            assert epoch == prev[1] + 1, pairs
        else:
            assert exp == expected_exp and epoch == 1, pairs
            expected_exp += 1


def test_log_row_check_catches_a_repeated_epoch():
    """The check itself: a log that repeats experience 1's first epoch is refused."""
    good = pd.DataFrame({"experience": [1, 1, 2], "epoch": [1, 2, 1]})
    assert_log_rows_consecutive(good)
    for bad in ({"experience": [1, 1, 1, 2], "epoch": [1, 2, 1, 1]},
                {"experience": [1, 2, 2], "epoch": [1, 2, 3]},
                {"experience": [2, 3], "epoch": [1, 1]}):
        with pytest.raises(AssertionError):
            assert_log_rows_consecutive(pd.DataFrame(bad))


@pytest.fixture(scope="module")
def matrix_cfg(tiny_corpus_dir, tiny_tokenizer, tiny_evaluator, tmp_path_factory):
    cold = tmp_path_factory.mktemp("cold-cache")        # empty: the first run builds the stages
    return dict(preset="test", data=str(tiny_corpus_dir), tokenizer=str(tiny_tokenizer.saved_dir),
                evaluator=str(tiny_evaluator.root), cache=str(cold), order=ORDER,
                progress=False, max_test=4, eval_repeats=1, threads=1,
                generation={"max_new_tokens": 6, "top_k": 20}, method_overrides={"max_steps": "2"})


def _options(base: dict, method: str, out: Path, **extra) -> RunConfig:
    plugins = {"plugins": (str(EXAMPLES[method]),)} if method in EXAMPLES else {}
    return RunConfig.from_options(method=method, out=str(out), **base, **plugins, **extra)


def _same_results(out: Path, full: Path, method: str) -> None:
    for csv in sorted((full / "matrices").glob("*.csv")):
        assert (out / "matrices" / csv.name).read_text() == csv.read_text(), f"{method} ({out.name}): {csv.name}"
    log = pd.read_csv(out / "train_log.csv")
    assert_log_rows_consecutive(log)
    pd.testing.assert_frame_equal(log, pd.read_csv(full / "train_log.csv"))


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_resume_after_1_and_2_equals_uninterrupted(method, matrix_cfg, tmp_path):
    import torch

    threads = torch.get_num_threads()
    full = run(_options(matrix_cfg, method, tmp_path / "full"))      # runs with threads=1 ...
    assert torch.get_num_threads() == threads                        # ... and gives the caller's back
    log_full = pd.read_csv(full / "train_log.csv")
    assert_log_rows_consecutive(log_full)
    if int(log_full["experience"].max()) < 2:   # a joint method (MTL) trains one experience
        pytest.skip(f"{method} trains one joint experience: --stop-after 1 is the whole run")
    chain = tmp_path / "k1_then_k2"
    run(_options(matrix_cfg, method, chain, stop_after=1))
    assert not (chain / "result.json").exists()
    run(_options(matrix_cfg, method, chain, resume=True, stop_after=2))         # resumed at k = 1
    assert not (chain / "result.json").exists()
    run(_options(matrix_cfg, method, chain, resume=True))                       # resumed at k = 2
    _same_results(chain, full, method)


@pytest.mark.slow
def test_train_log_rows_unique_with_many_epochs_and_resume(matrix_cfg, tmp_path):
    """Several epochs per experience, the last one cut by max_steps: each (experience, epoch)
    appears once, in order, uninterrupted and after --stop-after 1 + --resume."""
    cfg = {**matrix_cfg, "order": "Daily Life,Sports",
           "method_overrides": {"epochs": "3", "max_steps": "5", "batch_size": "32"}}   # 3 epochs, cut at 5 steps
    full = run(_options(cfg, "seq_lora", tmp_path / "full"))
    log = pd.read_csv(full / "train_log.csv")
    assert_log_rows_consecutive(log)
    assert (log.groupby("experience")["epoch"].max() > 1).all()
    out = tmp_path / "resumed"
    run(_options(cfg, "seq_lora", out, stop_after=1))
    run(_options(cfg, "seq_lora", out, resume=True))
    _same_results(out, full, "seq_lora")
