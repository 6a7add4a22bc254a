"""A run folder is reused only for the very configuration it holds: another ``--set``, preset or
stage set is refused (naming both hashes) or, with ``--overwrite``, rerun; bad options are
refused before any stage is built."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import sweep as sw
from harness.cli import main
from benchmark.io import DataError
from harness.run_config import (RunConfig, check_folder_identity, config_record,
                                  recorded_identity, request_identity)

STAGES = {"corpus": "c1", "split": "s1", "tokenizer": "t1", "evaluator": "e1", "backbone": "b1"}


def _finished(folder: Path, **options) -> RunConfig:
    """A finished run folder as the runner leaves it (config.json + result.json), no training."""
    from harness.runner import method_config_for

    cfg = RunConfig.from_options(out=str(folder), **{"method": "seq_lora", "preset": "test", **options})
    record = config_record(cfg, method_config_for(cfg).to_dict(), STAGES, ["Daily Life", "Sports"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(record))
    (folder / "result.json").write_text(json.dumps({"config_hash": record["config_hash"]}))
    return cfg


def test_identity_is_the_resolved_request(tmp_path):
    a = RunConfig.from_options(method="seq_lora", out="x", preset="test", method_overrides={"lr": "0.5"})
    b = RunConfig.from_options(method="seq_lora", out="y", preset="test", method_overrides={"lr": "5e-1"})
    c = RunConfig.from_options(method="seq_lora", out="x", preset="test", method_overrides={"lr": "0.25"})
    assert request_identity(a) == request_identity(b) != request_identity(c)
    assert request_identity(a) != request_identity(a.replace(preset="quick"))
    # execution options (where, how fast) are not part of it
    assert request_identity(a) == request_identity(a.replace(threads=2, out="z", cache="elsewhere"))
    # the record's identity reads back (also without the recorded field, as in older runs)
    cfg = _finished(tmp_path / "r", method_overrides={"lr": "0.5"})
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    assert record["request_hash"] == request_identity(cfg) == request_identity(a)
    assert recorded_identity({k: v for k, v in record.items() if k != "request_hash"}) == record["request_hash"]


def test_another_config_in_the_folder_is_refused_naming_both_hashes(tmp_path):
    cfg = _finished(tmp_path / "r")
    assert check_folder_identity(tmp_path / "r", cfg) == "same"
    assert check_folder_identity(tmp_path / "empty", cfg) == "new"
    other = cfg.replace(method_overrides={"lr": "0.5"})
    with pytest.raises(DataError) as err:
        check_folder_identity(tmp_path / "r", other)
    text = str(err.value)
    assert request_identity(cfg) in text and request_identity(other) in text
    assert "method_overrides" in text and "--overwrite" in text
    with pytest.raises(DataError, match="preset"):
        check_folder_identity(tmp_path / "r", cfg.replace(preset="long"))
    # same request, other stages (e.g. a rebuilt evaluator): refused once the stages are known
    with pytest.raises(DataError, match="evaluator"):
        check_folder_identity(tmp_path / "r", cfg, {**STAGES, "evaluator": "e2"})
    assert check_folder_identity(tmp_path / "r", cfg, STAGES) == "same"


def _sweep_cfg(tmp_path, **kw):
    opts = {"preset": "test", "cache": str(tmp_path / "cache"), **kw.pop("run_options", {})}
    return sw.SweepConfig(methods=["seq_lora"], settings=["unseen"], orders=["1"], seeds=[0],
                          out=tmp_path / "runs", run_options=opts, **kw)


def test_sweep_never_reports_another_configs_numbers(tmp_path, monkeypatch):
    """The issue's case: seq_lora finished under one config, then the sweep asked for another on
    the same --out: refused before any stage is built; with --overwrite it is rerun."""
    from harness import runner

    _finished(tmp_path / "runs" / "seq_lora" / "unseen" / "order1" / "seed0")
    ran = []
    monkeypatch.setattr(runner, "run", lambda cfg: ran.append(cfg) or Path(cfg.execution.out))
    monkeypatch.setattr(sw, "prepare_stages", lambda cfg: {("unseen", 0): STAGES})
    same = sw.sweep_runs(_sweep_cfg(tmp_path), progress=False)
    assert same["skipped"] == ["seq_lora/unseen/order1/seed0"] and not ran
    for options in ({"method_overrides": {"lr": "0.5"}}, {"preset": "quick"}):
        with pytest.raises(DataError, match="another configuration"):
            sw.sweep_runs(_sweep_cfg(tmp_path, run_options=options), progress=False)
        assert not ran and not (tmp_path / "cache").exists()
    # the same request on rebuilt stages is refused after the stages, before any run
    monkeypatch.setattr(sw, "prepare_stages", lambda cfg: {("unseen", 0): {**STAGES, "corpus": "c2"}})
    with pytest.raises(DataError, match="other stages"):
        sw.sweep_runs(_sweep_cfg(tmp_path), progress=False)
    assert not ran
    report = sw.sweep_runs(_sweep_cfg(tmp_path, overwrite=True), progress=False)
    assert report["done"] == ["seq_lora/unseen/order1/seed0"] and len(ran) == 1
    plan = json.loads((tmp_path / "runs" / "sweep.json").read_text())
    assert plan["runs"][0]["request_hash"] == request_identity(ran[0])


@pytest.mark.parametrize("argv, match", [
    (["--set", "lr=abc"], "lr"),
    (["--with", "nonsense"], "nonsense"),
    (["--orders", "Daily Life,Nowhere"], "Nowhere"),
    (["--data", "no/such/folder"], "does not exist"),
])
def test_bench_refuses_bad_options_before_any_stage(tmp_path, capsys, argv, match):
    out = tmp_path / "b"
    code = main(["bench", "--preset", "test", "--methods", "seq_lora", "--settings", "unseen",
                 "--out", str(out), "--cache", str(tmp_path / "cache"), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2 and match in err and err.startswith("l2emg: error:")
    assert not (tmp_path / "cache").exists()          # no stage was started


def test_run_refuses_a_finished_folder_of_another_config(tmp_path, capsys):
    _finished(tmp_path / "r")
    code = main(["run", "--method", "seq_lora", "--preset", "test", "--set", "lr=0.5",
                 "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "cache"), "--no-progress"])
    assert code == 2 and "another configuration" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
    code = main(["run", "--method", "seq_lora", "--preset", "test",
                 "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "cache"), "--no-progress"])
    assert code == 2 and "already finished" in capsys.readouterr().err


def test_status_names_a_folder_of_another_config(tmp_path, monkeypatch):
    from harness import runner
    from harness.sweep_status import sweep_status

    monkeypatch.setattr(runner, "run", lambda cfg: Path(cfg.execution.out))
    monkeypatch.setattr(sw, "prepare_stages", lambda cfg: {("unseen", 0): STAGES})
    folder = tmp_path / "runs" / "seq_lora" / "unseen" / "order1" / "seed0"
    _finished(folder)
    sw.sweep_runs(_sweep_cfg(tmp_path), progress=False)          # plans it, reuses it
    assert [r["state"] for r in sweep_status(tmp_path / "runs")] == ["finished"]
    _finished(folder, method_overrides={"lr": "0.5"})             # replaced behind the plan's back
    row = sweep_status(tmp_path / "runs")[0]
    assert row["state"] == "other-config" and "--overwrite" in row["detail"]
