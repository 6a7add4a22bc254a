"""The typed run config: the tree, its flat options, and config hashes pinned to the values the
flat RunConfig gave before the tree existed (results are compared by hash and ``--resume``
checks it, so the refactor must not change a run's identity)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.io import DataError
from harness.run_config import (EXECUTION_FIELDS, FIELDS, PRESETS, Execution, RunConfig, RunKey,
                                  config_record)
from evaluators.protocol import EvalSettings

REPO = Path(__file__).resolve().parents[1]
HASHES = {"corpus": "c0ffee0000000001", "split": "5p1170000000002", "tokenizer": "70ce000000000003",
          "evaluator": "e7a1000000000004", "backbone": "bb00000000000005"}
NAMES8 = ["Daily Life", "Sports", "Dance", "Shows", "Game", "Animation", "Instrument Play", "Acrobatics"]

# Each case's config_hash as the flat RunConfig of commit 5135194 (before the tree) computed it:
# its harness.runner._config_record of the resolved config, with the fake stage hashes and the
# 8 Table-1 subset names, was recorded on that commit, and the hash recomputed with the record's
# method_config replaced by FIXED_METHOD_CONFIG (so that later changes of a method's own config
# fields, which change its runs' hashes on purpose, do not move these pins; the full records,
# live method configs included, were equal before and after the refactor).
FIXED_METHOD_CONFIG = {"lr": 0.001, "max_steps": 3, "lora_r": 4, "target_modules": ["q_proj", "v_proj"]}
CASES = {
    "seq_lora_tiny": (dict(method="seq_lora", out="x", preset="tiny"), "2c5aaef89b01d450"),
    "mtl_test": (dict(method="mtl", out="y", preset="test", cache="/c", device="cuda", threads=3,
                      resume=True, progress=False, stop_after=1, gradient_checkpointing=True),
                 "ee533868d4d93c28"),
    "es_moe_mixed_custom": (dict(method="es_moe", out="z", setting="mixed", order="Dance,Sports",
                                 seed=3, preset="long", full_matrix=True, max_test=16,
                                 method_overrides={"with_plugins": "replay", "replay.mem_size": "50",
                                                   "lr": "1e-3"},
                                 generation={"max_new_tokens": 20, "top_k": 5, "batch_size": 128}),
                            "8f517cb96de4581c"),
    "sapt_quick": (dict(method="sapt", out="w", preset="quick", order="2", seed=1, data="/d",
                        tokenizer="/t", evaluator="/e", backbone="/b", plugins=("p.py",)),
                   "843b9c5ba6801ff8"),
    "lwf_real": (dict(method="lwf_lora", out="v", preset="real", order="3", eval_repeats=3,
                      r_precision_batch=16, mm_texts=0, mm_gens=0, n_samples=1, dtype="bfloat16"),
                 "c33e87aa0ac5a804"),
}


def _record(cfg: RunConfig) -> dict:
    return config_record(cfg, FIXED_METHOD_CONFIG, HASHES, NAMES8)


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_hash_is_the_one_of_the_flat_config(name):
    options, pinned = CASES[name]
    record = _record(RunConfig.from_options(**options))
    assert record["config_hash"] == pinned
    # the record keeps its flat layout: the 20 hashed options + method_config, stage hashes
    assert len(record) == 24 and not set(record) & set(EXECUTION_FIELDS)   # + request_hash (unhashed)


def test_execution_fields_do_not_change_the_hash():
    a = RunConfig.from_options(method="seq_lora", out="a", preset="tiny")
    b = a.replace(out="b", cache="/elsewhere", device="cuda", resume=True, progress=False,
                  plugins=("x.py",), threads=7, stop_after=2, gradient_checkpointing=True,
                  data="/d", tokenizer="/t", evaluator="/e", backbone="/b")
    assert _record(a)["config_hash"] == _record(b)["config_hash"] == CASES["seq_lora_tiny"][1]
    assert _record(a.replace(seed=1))["config_hash"] != _record(a)["config_hash"]


def test_a_scenario_style_is_hashed_only_when_set():
    a = RunConfig.from_options(method="seq_lora", out="a", preset="tiny")
    assert a.stages.scenario_style == 0 and "scenario_style" not in _record(a)
    b = a.replace(scenario_style=2.0)
    assert _record(b)["scenario_style"] == 2.0
    assert _record(b)["config_hash"] != _record(a)["config_hash"] == CASES["seq_lora_tiny"][1]


def test_the_tree_and_its_flat_options():
    cfg = RunConfig.from_options(method="es_moe", out="o", preset="test", seed=4, order="2",
                                 max_test=5, method_overrides={"lr": "1e-3"}, device="cuda")
    assert cfg.key == RunKey("es_moe", "unseen", "2", 4, "test")
    assert cfg.eval == EvalSettings(seed=4, max_test=5, batch=3, repeats=2, mm_texts=2, mm_gens=2)
    assert cfg.stages.corpus_scale == PRESETS["test"]["corpus_scale"]
    assert cfg.train.overrides == {"lr": "1e-3"} and cfg.train.n_samples == 2
    assert cfg.execution == Execution(out="o", device="cuda")
    assert set(cfg.options()) == set(FIELDS) and len(FIELDS) == 41   # 33 + log, eval_part, scenario_style, train_fraction, overwrite, stream, rebuild_stages, r_precision_pool
    assert RunConfig.from_options(**cfg.options()) == cfg
    assert cfg.replace(seed=5).eval.seed == 5            # the evaluation follows the run seed
    # the preset's values are copies: editing a config never edits the preset
    cfg.stages.tiny_backbone["hidden_size"] = 1
    assert PRESETS["test"]["tiny_backbone"]["hidden_size"] == 64


def test_the_method_config_is_the_presets_then_set_then_the_joint_budget():
    from harness.runner import method_config_for
    from benchmark.strategy import registry

    registry.discover(())
    seq = method_config_for(RunConfig.from_options(method="seq_lora", out="o", preset="test",
                                                   method_overrides={"lr": "1e-3"}), 3)
    assert (seq.lr, seq.max_steps) == (1e-3, PRESETS["test"]["train"]["max_steps"])
    mtl = method_config_for(RunConfig.from_options(method="mtl", out="o", preset="test"), 3)
    assert mtl.max_steps == 3 * PRESETS["test"]["train"]["max_steps"]
    none = RunConfig.from_options(method="seq_lora", out="o", preset="test", method_overrides=None)
    assert none == RunConfig.from_options(method="seq_lora", out="o", preset="test")   # None = no --set


def test_bad_options_are_refused():
    with pytest.raises(DataError, match="unknown preset 'huge'"):
        RunConfig.from_options(method="m", out="o", preset="huge")
    with pytest.raises(TypeError, match="unknown run option"):
        RunConfig.from_options(method="m", out="o", max_tests=3)
    cfg = RunConfig.from_options(method="m", out="o")
    with pytest.raises(ValueError, match="eval.seed"):
        RunConfig(key=RunKey("m", seed=1), stages=cfg.stages, eval=cfg.eval, train=cfg.train,
                  execution=cfg.execution)


def test_the_run_key_is_the_leaderboards_and_the_sweeps():
    from harness.sweep import RunSpec
    from leaderboard.runs import load_run

    key = RunKey("seq_lora", "unseen", "Dance,Sports", 0)
    assert key.order_name == "custom-dance-sports"
    assert key.cell == ("seq_lora", "unseen", "custom-dance-sports", 0)
    assert RunKey.from_result({"method": "seq_lora", "setting": "Unseen", "seed": 0,
                               "order": {"name": "custom-dance-sports"}}).cell == key.cell
    assert RunSpec("seq_lora", "unseen", "1", 2, Path("x")).label == "seq_lora/unseen/order1/seed2"
    flat = REPO / "tests" / "data" / "pinned" / "seq_lora_flat"   # a flattened copy of a run folder
    run = load_run(flat)
    res = json.loads((flat / "result.json").read_text())
    assert run.run_key == RunKey.from_result(res) == RunKey("seq_lora", "unseen", "1", 0, "tiny")
    assert run.key == run.run_key.cell


def test_resume_reads_a_checkpoint_of_the_flat_runner():
    """The progress a checkpoint carries is the plain dict the runner wrote before RunState."""
    from harness.runner import Progress

    old = {"rows": [[{"fid": 1.0}]], "baseline": [{"fid": 2.0}], "ground_truth": [{"fid": 0.0}],
           "failed": 1, "total": 9, "baseline_failed": 0, "baseline_total": 9, "elapsed": 3.5}
    p = Progress.from_dict(old)
    assert p.rows == [[{"fid": 1.0}]] and p.total == 9 and p.to_dict() == old


def test_set_pretrain_overrides_the_backbone_recipe_and_changes_the_hash():
    import argparse

    from harness.runner import add_shared_options, shared_options

    parser = argparse.ArgumentParser()
    add_shared_options(parser)

    def cfg(*sets):
        args = parser.parse_args(["--preset", "long", *[x for s in sets for x in ("--set", s)]])
        return RunConfig.from_options(method="seq_lora", out="o", **shared_options(args))

    base = cfg()
    assert base.stages.pretrain == {"recipe": "text"}          # the preset's, untouched
    tm = cfg("pretrain.recipe=text+motion", "pretrain.motion_pool_scale=0.1",
             "pretrain.motion_steps=2000", "lr=1e-3")
    # typed as PretrainConfig's fields; a method --set beside it still goes to the method
    assert tm.stages.pretrain == {"recipe": "text+motion", "motion_pool_scale": 0.1,
                                  "motion_steps": 2000}
    assert tm.train.overrides == {"lr": "1e-3"}
    assert PRESETS["long"]["pretrain"] == {"recipe": "text"}    # the preset is not edited
    assert _record(tm)["pretrain"] == tm.stages.pretrain
    assert _record(tm)["config_hash"] != _record(cfg("lr=1e-3"))["config_hash"]
    assert _record(cfg("pretrain.recipe=text"))["config_hash"] == _record(base)["config_hash"]
    # the preset's other pretraining settings stay (the `backbone pretrain --recipe` merge too)
    from harness.runner import pretrain_settings

    assert pretrain_settings("test", {"recipe": "text+motion"}) == {
        "recipe": "text+motion", "text_steps": 30, "motion_steps": 10}


@pytest.mark.parametrize("pair, message", [
    ("pretrain.pool=0.1", "no such backbone pretraining setting"),
    ("pretrain.motion_steps=many", "is not of type int"),
    ("pretrain.recipe=vision", "unknown pretraining recipe 'vision'"),
    ("pretrain.motion_steps=-5", "motion_steps must be >= 0"),
    ("pretrain.lr=0", "lr must be > 0"),
])
def test_bad_set_pretrain_is_refused_with_the_fix(pair, message):
    from harness.runner import parse_sets, pretrain_settings

    _, _, raw = parse_sets([pair])
    with pytest.raises(DataError, match=message) as err:
        pretrain_settings("long", raw)
    assert "Fix:" in str(err.value) and "--set pretrain." in str(err.value)
