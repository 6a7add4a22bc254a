"""Sweep executors on real (test-preset) runs: Ray on a local runtime and Slurm through
submitit's local executor give the same matrices as the local executor, a worker killed after
a checkpoint is retried and resumes, a preempted job is requeued and resumes, a run that fails
for good is reported while the others finish (Ray); ``l2emg status`` on the resulting folder."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray

from harness import sweep as sw
from benchmark.strategy import registry
from harness.sweep_status import sweep_status

PLUGIN = str(Path(__file__).parent / "plugins" / "always_fails.py")
ORDER = "Daily Life,Sports"


@pytest.fixture(scope="module")
def options(tiny_corpus_dir, tiny_tokenizer, tiny_evaluator, tmp_path_factory):
    yield dict(preset="test", data=str(tiny_corpus_dir), tokenizer=str(tiny_tokenizer.saved_dir),
               evaluator=str(tiny_evaluator.root), cache=str(tmp_path_factory.mktemp("xcache")),
               max_test=4, threads=1, progress=False, plugins=(PLUGIN,))
    registry._REGISTRY.pop("always_fails", None)        # keep the registry of other tests clean


def _cfg(out, options, methods=("seq_lora",), **kw):
    return sw.SweepConfig(methods=list(methods), settings=["unseen"], orders=[ORDER], seeds=[0],
                          out=out, run_options=dict(options), **kw)


@pytest.fixture(scope="module")
def reference(options, tmp_path_factory):
    """The grid run by the local executor, one run after another."""
    out = tmp_path_factory.mktemp("local")
    report = sw.sweep_runs(_cfg(out, options), progress=False)
    assert report["failed"] == {} and len(report["done"]) == 1
    return out


def _matrices(run: Path) -> dict:
    return {p.name: p.read_text() for p in sorted((run / "matrices").glob("*.csv"))}


def _attempts(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / sw.ATTEMPTS_FILE).read_text().splitlines()]


def test_ray_same_results_retry_resume_and_failure(options, reference, tmp_path, monkeypatch):
    out = tmp_path / "ray"
    victim = sw.RunSpec("seq_lora", "unseen", ORDER, 0, out / "seq_lora" / "unseen"
                        / f"order{sw._slug(ORDER)}" / "seed0")
    marker = tmp_path / "died"
    # the worker of the SeqLoRA run kills its own process after the first experience's checkpoint, once
    monkeypatch.setenv(sw.DIE_ONCE_ENV, f"{victim.label}|1|{marker}")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {sw.DIE_ONCE_ENV: f"{victim.label}|1|{marker}"}})
    try:
        cfg = _cfg(out, options, methods=("seq_lora", "always_fails"), executor="ray",
                   cpus_per_run=1, max_retries=1)
        report = sw.sweep_runs(cfg, progress=False)
    finally:
        ray.shutdown()
    assert marker.exists()                                       # the worker did die
    assert report["done"] == [victim.label]
    assert list(report["failed"]) == [f"always_fails/unseen/order{ORDER}/seed0"]
    assert "fails by design" in report["failed"][f"always_fails/unseen/order{ORDER}/seed0"]
    tries = _attempts(victim.out)
    assert [t["resume"] for t in tries] == [False, True] and tries[1]["from_experience"] == 1
    assert tries[0]["pid"] != tries[1]["pid"]                    # a new worker process
    rel = victim.out.relative_to(out)
    assert _matrices(victim.out) == _matrices(reference / rel)
    rows = {r["label"]: r["state"] for r in sweep_status(out)}
    assert sorted(rows.values()) == ["failed", "finished"]


def test_slurm_local_requeue_on_preemption_resumes(options, reference, tmp_path, monkeypatch):
    out = tmp_path / "slurm"
    cfg = _cfg(out, options, executor="slurm", slurm_cluster="local", poll_s=0.5, cpus_per_run=1)
    spec = sw.plan(cfg)[0]
    marker = tmp_path / "preempted"
    # after the first experience's checkpoint the job gets submitit's preemption signal, once
    monkeypatch.setenv(sw.DIE_ONCE_ENV, f"{spec.label}|1|{marker}|USR2")
    report = sw.sweep_runs(cfg, progress=False)
    assert marker.exists()
    assert report["done"] == [spec.label] and report["failed"] == {}
    tries = _attempts(spec.out)
    assert [t["resume"] for t in tries] == [False, True] and tries[1]["from_experience"] == 1
    rel = spec.out.relative_to(out.resolve())
    assert _matrices(spec.out) == _matrices(reference / rel)
