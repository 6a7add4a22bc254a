"""Composed runs have their own identity (es_moe+replay: result.json, sweep folders and labels,
leaderboard rows, config hash), and training curves reach Avalanche's loggers (train_log.csv
always, TensorBoard / W&B offline by --log)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from benchmark.identity import merge_plugins, run_label, split_label, with_label_plugins
from harness.run_config import EXECUTION_FIELDS, RunConfig

ORDER = "Daily Life,Sports"


def test_label_round_trip_and_merge():
    assert run_label("es_moe", ["replay"]) == "es_moe+replay"
    assert run_label("es_moe", ()) == "es_moe" and split_label("es_moe") == ("es_moe", [])
    assert split_label("es_moe+ewc+replay") == ("es_moe", ["ewc", "replay"])
    assert merge_plugins(["replay"], "ewc,replay") == ["replay", "ewc"]
    method, over = with_label_plugins("es_moe+replay", {"with": "ewc", "lr": "1e-3"})
    assert method == "es_moe" and over == {"lr": "1e-3", "with_plugins": "replay,ewc"}
    # --method es_moe+replay is --method es_moe --with replay
    cfg = RunConfig.from_options(method="es_moe+replay", out="x", preset="test")
    assert cfg.key.method == "es_moe" and cfg.train.overrides == {"with_plugins": "replay"}


def test_leaderboard_names_and_orders_composed_labels():
    from leaderboard.tables import display_name, method_sort_key

    assert display_name("es_moe+replay") == "ES-MoE + Replay"
    assert display_name("seq_lora") == "SeqLoRA"
    ordered = sorted(["es_moe+replay", "sapt", "es_moe", "mtl", "zzz"], key=method_sort_key)
    assert ordered == ["mtl", "sapt", "es_moe", "es_moe+replay", "zzz"]


def test_leaderboard_keeps_composed_runs_apart(tmp_path):
    """es_moe and es_moe+replay (another method_config) in one folder: two systems, each its own
    method-config group (no mixed-config refusal), rows and display names."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from leaderboard_fakes import make_fake_run

    from leaderboard.runs import load_runs
    from leaderboard.tables import summarize

    for method, mc in (("es_moe", {"lr": 1e-4}),
                       ("es_moe+replay", {"lr": 1e-4, "with_plugins": ["replay"]})):
        for order in (1, 2):
            run = make_fake_run(tmp_path, method, order=order)
            cfg = json.loads((run / "config.json").read_text())
            (run / "config.json").write_text(json.dumps({**cfg, "method": "es_moe",
                                                         "method_config": mc}))
    runs = load_runs([tmp_path])
    assert sorted({r.method for r in runs}) == ["es_moe", "es_moe+replay"] and len(runs) == 4
    table = summarize(runs, ["AR"])
    assert set(table["display"]) == {"ES-MoE", "ES-MoE + Replay"}
    assert (table["n"] == 2).all()


def test_sweep_plans_composed_methods_apart(tmp_path):
    from harness.sweep import SweepConfig, make_run_config, plan

    cfg = SweepConfig(methods=["es_moe", "es_moe+replay", "mtl"], settings=["unseen"],
                      orders=["1", "2"], out=tmp_path, run_options={"preset": "test"})
    specs = plan(cfg)
    labels = [s.label for s in specs]
    assert "es_moe/unseen/order1/seed0" in labels and "es_moe+replay/unseen/order1/seed0" in labels
    assert len({s.out for s in specs}) == len(specs) == 5          # mtl: one order
    composed = next(s for s in specs if s.method == "es_moe+replay")
    assert composed.out == tmp_path / "es_moe+replay" / "unseen" / "order1" / "seed0"
    rc = make_run_config(composed, cfg.run_options)
    assert rc.key.method == "es_moe" and rc.train.overrides["with_plugins"] == "replay"
    # --with adds its plugins to every method of the grid (and so to every label)
    cfg = SweepConfig(methods=["seq_lora", "es_moe+replay"], settings=["unseen"], orders=["1"],
                      out=tmp_path, run_options={"method_overrides": {"with_plugins": "ewc"}})
    specs = plan(cfg)
    assert [s.method for s in specs] == ["seq_lora+ewc", "es_moe+replay+ewc"]
    rc = make_run_config(specs[1], cfg.run_options)
    assert rc.key.method == "es_moe" and rc.train.overrides["with_plugins"] == "replay,ewc"


def test_sweep_cli_refuses_unknown_plugin_in_methods(tmp_path, capsys):
    assert main(["sweep", "--methods", "seq_lora+nope", "--out", str(tmp_path), "--preset",
                 "test"]) == 2
    assert "unknown plugin" in capsys.readouterr().err


PLUGIN_FILE = '''
from dataclasses import dataclass, field

import torch

from benchmark.strategy import CLPlugin, register_plugin


@dataclass
class ConstOptions:
    value: float = field(default=1.0, metadata={"help": "the constant term"})


@register_plugin("const_term", options=ConstOptions)
class ConstTerm(CLPlugin):
    """A constant loss term (moves nothing; logged as const)."""

    def loss_terms(self, strategy, batch, outputs):
        return {"const": torch.tensor(self.options.value)}
'''


def test_a_cl_plugin_from_a_strategy_file_runs_with_with(cli_common, tmp_path):
    """A CL plugin registered in a strategy file (given by the old option name --plugin, which
    still works) is taken by --with and its option by --set; the run is named by its label."""
    path = tmp_path / "const_plugin.py"
    path.write_text(PLUGIN_FILE)
    out = tmp_path / "run"
    assert main(["run", "--method", "seq_lora", "--plugin", str(path), "--with", "const_term",
                 "--set", "const_term.value=0.25", "--out", str(out), *cli_common]) == 0
    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == ["experience", "epoch", "steps", "lm_loss", "extra_loss", "const"]
    assert log["const"].tolist() == pytest.approx([0.25] * len(log))
    assert log["extra_loss"].tolist() == pytest.approx([0.25] * len(log))
    res = json.loads((out / "result.json").read_text())
    assert res["method"] == "seq_lora+const_term" and res["plugins"] == ["const_term"]
    mc = json.loads((out / "config.json").read_text())["method_config"]
    assert mc["with_plugins"] == ["const_term"] and mc["plugin_options"] == {"const_term": {"value": 0.25}}


@pytest.fixture(scope="module")
def cli_common(tiny_corpus_dir, tiny_tokenizer, tiny_evaluator, tmp_path_factory):
    cache = tmp_path_factory.mktemp("idcache")
    return ["--preset", "test", "--data", str(tiny_corpus_dir), "--tokenizer",
            str(tiny_tokenizer.saved_dir), "--evaluator", str(tiny_evaluator.root),
            "--cache", str(cache), "--order", ORDER, "--max-test", "6", "--no-progress"]


def test_training_curves_through_avalanche_loggers(cli_common, tmp_path):
    """seq_lora --with ewc --log tensorboard[,wandb]: train_log.csv keeps its columns, and the
    same per-term values (lm_loss, extra_loss, ewc) are in the TensorBoard event file at
    x = optimiser steps so far; W&B (when installed) writes an offline run in the folder.  The
    composed run is called seq_lora+ewc, and --log is not part of the config."""
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from benchmark.strategy.curves import wandb_compatible

    loggers = "tensorboard,wandb" if wandb_compatible() else "tensorboard"
    out = tmp_path / "run"
    assert main(["run", "--method", "seq_lora", "--with", "ewc", "--set", "ewc.fisher_samples=4",
                 "--out", str(out), "--log", loggers, *cli_common]) == 0
    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == ["experience", "epoch", "steps", "lm_loss", "extra_loss", "ewc"]
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    steps = log["steps"].cumsum()
    assert log["ewc"].isna().iloc[0] and log["ewc"].notna().iloc[-1]   # no penalty before exp 2
    for col in ("lm_loss", "extra_loss", "ewc"):
        have = log[col].notna()
        events = acc.Scalars(f"train/{col}")
        assert [e.step for e in events] == steps[have].tolist(), col
        assert [e.value for e in events] == pytest.approx(log.loc[have, col].tolist(), rel=1e-6), col
    assert [e.value for e in acc.Scalars("train/experience")] == log["experience"].tolist()
    if "wandb" in loggers:
        runs = list((out / "wandb").glob("offline-run-*"))
        assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    res = json.loads((out / "result.json").read_text())
    assert res["method"] == "seq_lora+ewc" and res["base_method"] == "seq_lora"
    assert res["plugins"] == ["ewc"]
    cfg = json.loads((out / "config.json").read_text())
    assert "log" in EXECUTION_FIELDS and "log" not in cfg and cfg["method"] == "seq_lora"


def test_unknown_logger_is_one_clear_error(tmp_path, capsys):
    assert main(["run", "--method", "seq_lora", "--out", str(tmp_path / "r"), "--log", "mlflow",
                 "--preset", "test"]) == 2
    assert "unknown logger" in capsys.readouterr().err


def test_wandb_logger_offline_or_a_clear_refusal(tmp_path):
    """--log wandb: an offline W&B run in the run folder where Avalanche's WandBLogger works
    with the installed wandb; otherwise one DataError saying why (never a crash mid-run)."""
    pytest.importorskip("wandb", reason="wandb is not installed")
    from avalanche.evaluation.metric_results import MetricValue

    from benchmark.io import DataError
    from benchmark.strategy.curves import (EpochLossTerms, close_loggers, make_loggers,
                                           wandb_compatible)

    if not wandb_compatible():
        with pytest.raises(DataError, match="wandb.viz"):
            make_loggers(["wandb"], tmp_path, "seq_lora+ewc", {"config_hash": "0" * 16})
        return
    loggers = make_loggers(["wandb"], tmp_path, "seq_lora+ewc", {"config_hash": "0" * 16})
    for lg in loggers:
        lg.log_metrics([MetricValue(EpochLossTerms(), "train/lm_loss", 1.5, 4)])
    close_loggers(loggers)
    assert list((tmp_path / "wandb").glob("offline-run-*"))
