"""Progress lines name each stage, Ctrl-C says what was lost, a killed build's temporary folder
is removed by the next build, and the stage cache is shared by default."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmark import progress
from benchmark.io import atomic_dir, default_cache


@pytest.fixture
def shown():
    progress.set_enabled(True)
    yield
    progress.set_enabled(None)


@pytest.mark.parametrize("stage", ["corpus", "tokenizer", "evaluator", "backbone"])
def test_each_stage_build_is_named_with_its_time(tmp_path, capsys, shown, stage):
    from harness.stages import _build_once

    _build_once(tmp_path / stage / "x-123", lambda p: p.mkdir(parents=True))
    err = capsys.readouterr().err
    assert f"building the {stage} stage (x-123) ..." in err
    assert f"building the {stage} stage (x-123): done in" in err
    _build_once(tmp_path / stage / "x-123", lambda p: pytest.fail("rebuilt"))   # reused, silent
    assert capsys.readouterr().err == ""


def test_quiet_without_progress(tmp_path, capsys):
    from harness.stages import _build_once

    progress.set_enabled(False)
    try:
        _build_once(tmp_path / "tokenizer" / "y", lambda p: p.mkdir(parents=True))
    finally:
        progress.set_enabled(None)
    assert capsys.readouterr().err == ""


def test_quiet_in_ci_by_default(monkeypatch):
    monkeypatch.delenv("L2EMG_PROGRESS", raising=False)
    monkeypatch.setenv("CI", "true")
    assert not progress.enabled()
    monkeypatch.setenv("L2EMG_PROGRESS", "1")
    assert progress.enabled()


def test_the_interrupt_message_says_what_is_lost():
    assert "saved" in progress.interrupt_message()
    with progress.doing("building the tokenizer stage (t-1)", "the tokenizer stage restarts",
                        announce=False):
        msg = progress.interrupt_message()
    assert "while building the tokenizer stage (t-1)" in msg and "restarts" in msg
    assert "while" not in progress.interrupt_message()


def test_ctrl_c_in_the_cli_prints_the_message(monkeypatch, capsys):
    from harness import cli

    def handler(args):
        with progress.doing("building the corpus stage (synth-1)", "the corpus stage restarts",
                            announce=False):
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", lambda argv: (_Parser(handler), {}))
    assert cli.main(["x"]) == 130
    assert "interrupted while building the corpus stage (synth-1)" in capsys.readouterr().err


class _Parser:
    def __init__(self, handler):
        self.handler = handler

    def parse_args(self, argv):
        import argparse

        return argparse.Namespace(_handler=self.handler)


def test_a_killed_builds_temporary_folder_is_removed_by_the_next_build(tmp_path):
    target = tmp_path / "corpus" / "synth-abc"
    code = textwrap.dedent(f"""
        import time
        from benchmark.io import atomic_dir
        with atomic_dir({str(target)!r}) as tmp:
            (tmp / "big.bin").write_bytes(b"x" * 1000)
            print("ready", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    left = list(target.parent.glob(".synth-abc.*.tmp"))
    assert len(left) == 1 and not target.exists()                 # the kill leaked it
    with atomic_dir(target) as tmp:                               # the next build of it
        (tmp / "ok").write_text("1")
    assert list(target.parent.glob(".synth-abc.*.tmp")) == [] and (target / "ok").is_file()


def test_a_live_builders_temporary_folder_stays(tmp_path):
    target = tmp_path / "tokenizer" / "t"
    with atomic_dir(target) as mine:
        from benchmark.io import remove_stale_temps

        assert remove_stale_temps(target) == [] and mine.is_dir()


def test_the_stage_cache_is_shared_by_default(monkeypatch, tmp_path):
    from harness.run_config import RunConfig

    monkeypatch.delenv("L2EMG_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache() == str(tmp_path / "xdg" / "l2emg")
    monkeypatch.setenv("L2EMG_CACHE", str(tmp_path / "mine"))
    assert default_cache() == str(tmp_path / "mine")
    a = RunConfig.from_options(method="seq_lora", out="runs/a", preset="test")
    b = RunConfig.from_options(method="seq_lora", out="runs/b", preset="test")
    assert a.execution.cache == b.execution.cache == str(tmp_path / "mine")


def test_no_progress_of_one_in_process_command_does_not_stick(tmp_path):
    from harness.cli import main

    assert progress.forced() is None
    main(["run", "--method", "seq_lora", "--preset", "test", "--set", "lr=abc", "--no-progress",
          "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c")])
    assert progress.forced() is None
