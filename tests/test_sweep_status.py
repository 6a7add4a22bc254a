"""``l2emg status`` on hand-made run folders: finished, running, interrupted, failed, pending,
runs outside the plan, a bench folder, and bad input."""
from __future__ import annotations

import json
import os
import socket

import pytest

from harness.cli import main
from benchmark.io import DataError
from harness.sweep_status import format_status, run_state, sweep_status


def _folder(root, name, **files):
    d = root / name
    d.mkdir(parents=True)
    for fname, content in files.items():
        (d / fname.replace("_json", ".json")).write_text(json.dumps(content))
    return d


def _plan(root, names):
    runs = [{"label": n, "method": n.split("/")[0], "setting": "unseen", "order": "1", "seed": 0,
             "folder": n} for n in names]
    (root / "sweep.json").write_text(json.dumps({"runs": runs}))


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "sweep"
    _folder(root, "a/done", result_json={"n_experiences": 8}, progress_json={"finished": 8, "n_experiences": 8})
    _folder(root, "b/running", progress_json={"finished": 3, "n_experiences": 8},
            running_json={"host": socket.gethostname(), "pid": os.getpid()})
    _folder(root, "c/remote", running_json={"host": "some-other-node", "pid": 1})
    # a worker on this host that is gone: its run is interrupted, not running
    _folder(root, "d/stale", progress_json={"finished": 2, "n_experiences": 8},
            running_json={"host": socket.gethostname(), "pid": 2**22 + 12345})
    _folder(root, "e/failed", failed_json={"error": "RuntimeError: boom"}, config_json={"method": "e"})
    _plan(root, ["a/done", "b/running", "c/remote", "d/stale", "e/failed", "f/pending"])
    _folder(root, "g/unplanned", config_json={"method": "seq_lora", "setting": "mixed",
                                              "order": {"name": "2"}, "seed": 3, "config_hash": "x"})
    _folder(root, "cache/tokenizer-ab12", config_json={"codebook_size": 512})   # not a run
    return root


def test_states_from_the_folders(runs):
    rows = {r["label"]: r for r in sweep_status(runs)}
    assert {k: r["state"] for k, r in rows.items()} == {
        "a/done": "finished", "b/running": "running", "c/remote": "running",
        "d/stale": "interrupted", "e/failed": "failed", "f/pending": "pending",
        "seq_lora/mixed/order2/seed3": "interrupted"}
    assert rows["b/running"]["finished"] == 3 and rows["b/running"]["n_experiences"] == 8
    assert "boom" in rows["e/failed"]["detail"]
    text = format_status(list(rows.values()))
    assert text.splitlines()[0] == "7 runs: 1 finished, 2 running, 2 interrupted, 1 failed, 1 pending"
    assert "a/done" not in text and "3/8 exp" in text
    assert "a/done" in format_status(list(rows.values()), show_finished=True)


def test_result_wins_over_markers(tmp_path):
    d = _folder(tmp_path, "r", result_json={"n_experiences": 2}, failed_json={"error": "old"})
    assert run_state(d)["state"] == "finished"


def test_cli_status_exit_code_and_bench_folder(runs, tmp_path, capsys):
    assert main(["status", str(runs)]) == 1                      # a failed run -> exit 1
    out = capsys.readouterr().out
    assert "failed" in out and "f/pending" in out
    bench = tmp_path / "bench"
    (bench / "runs").mkdir(parents=True)
    _folder(bench / "runs", "x", result_json={"n_experiences": 1})
    _plan(bench / "runs", ["x"])
    assert main(["status", str(bench), "--json"]) == 0           # finds perf/runs/sweep.json
    assert json.loads(capsys.readouterr().out)[0]["state"] == "finished"


def test_bad_input(tmp_path, capsys):
    with pytest.raises(DataError, match="no such folder"):
        sweep_status(tmp_path / "missing")
    with pytest.raises(DataError, match="no sweep plan"):
        sweep_status(tmp_path)
    (tmp_path / "sweep.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a sweep plan"):
        sweep_status(tmp_path)
    assert main(["status", str(tmp_path / "missing")]) == 2
    assert "Fix:" in capsys.readouterr().err


def test_sweep_records_plan_failures_and_one_bar(tmp_path, monkeypatch, capsys):
    """With a stub runner: sweep.json lists the grid, a failed run gets failed.json (cleared when
    a later sweep retries it), one progress bar counts runs done / total including skipped ones."""
    from pathlib import Path

    from harness import runner
    from harness import sweep as sw

    monkeypatch.setenv("L2EMG_PROGRESS", "1")     # shown even under CI, where bars are off
    fail = {"on": True}

    def fake_run(cfg):
        if cfg.key.order == "2" and fail["on"]:
            raise RuntimeError("boom")
        Path(cfg.execution.out).mkdir(parents=True, exist_ok=True)
        (Path(cfg.execution.out) / "result.json").write_text(json.dumps({"n_experiences": 8}))
        return Path(cfg.execution.out)

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.setattr(sw, "prepare_stages", lambda cfg: None)
    cfg = sw.SweepConfig(methods=["seq_lora"], settings=["unseen"], orders=["1", "2", "3"],
                         seeds=[0], out=tmp_path / "s")
    (cfg.out / "seq_lora" / "unseen" / "order1" / "seed0").mkdir(parents=True)
    (cfg.out / "seq_lora" / "unseen" / "order1" / "seed0" / "result.json").write_text("{}")
    report = sw.sweep_runs(cfg, progress=True)
    err = capsys.readouterr().err
    assert "sweep: 100%" in err and "3/3" in err and "failed=1" in err
    assert list(report["failed"]) == ["seq_lora/unseen/order2/seed0"]
    plan = json.loads((cfg.out / "sweep.json").read_text())
    assert [r["folder"] for r in plan["runs"]] == [f"seq_lora/unseen/order{k}/seed0" for k in (1, 2, 3)]
    states = {r["label"]: r["state"] for r in sweep_status(cfg.out)}
    assert states["seq_lora/unseen/order2/seed0"] == "failed"
    attempts = (cfg.out / "seq_lora/unseen/order2/seed0" / sw.ATTEMPTS_FILE).read_text().splitlines()
    assert len(attempts) == 1 and not (cfg.out / "seq_lora/unseen/order2/seed0" / sw.RUNNING_FILE).exists()
    fail["on"] = False
    again = sw.sweep_runs(cfg, progress=False)
    assert again["done"] == ["seq_lora/unseen/order2/seed0"]
    assert {r["state"] for r in sweep_status(cfg.out)} == {"finished"}


def test_bad_executor_options(tmp_path):
    from harness import sweep as sw

    with pytest.raises(DataError, match="executor"):
        sw.SweepConfig(methods=["seq_lora"], executor="kubernetes")
    with pytest.raises(DataError, match="--device cuda"):
        sw.SweepConfig(methods=["seq_lora"], executor="ray", gpus_per_run=1)
    with pytest.raises(DataError, match="--time"):
        sw.SweepConfig(methods=["seq_lora"], executor="slurm", time_min=0)
