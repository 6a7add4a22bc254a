"""Runner: run folder per the contract, resume == uninterrupted, config mismatch refused,
joint MTL, the README plugin example through the CLI, readable by the leaderboard."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from benchmark.io import DataError
from harness.run_config import PRESETS, RunConfig
from harness.runner import run

REPO = Path(__file__).resolve().parents[1]
ORDER = "Daily Life,Sports,Dance"


@pytest.fixture(scope="module")
def base_cfg(tiny_corpus_dir, tiny_tokenizer, tiny_evaluator, tmp_path_factory):
    cache = tmp_path_factory.mktemp("runcache")
    return dict(preset="test", data=str(tiny_corpus_dir), tokenizer=str(tiny_tokenizer.saved_dir),
                evaluator=str(tiny_evaluator.root), cache=str(cache), order=ORDER,
                progress=False, max_test=6)


@pytest.fixture(scope="module")
def full_run(base_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "seq"
    return run(RunConfig.from_options(method="seq_lora", out=str(out), **base_cfg))


def test_run_folder_follows_the_contract(full_run):
    res = json.loads((full_run / "result.json").read_text())
    for key in ("method", "setting", "order", "seed", "scenario_order", "n_experiences", "aggregates",
                "final", "ground_truth", "generation_failure_rate", "config_hash", "stage_hashes",
                "provenance", "wall_time_s", "peak_rss_mb"):
        assert key in res, key
    assert res["scenario_order"] == ORDER.split(",") and res["n_experiences"] == 3
    # the method's facts, from its class (benchmark.strategy.registry.method_info)
    assert res["method_info"] == {"display_name": "SeqLoRA", "latex_name": "",
                                  "role": "lower_bound", "paper_row": 2}
    assert set(res["aggregates"]) == {"AF", "AR", "AD", "AMM", "AWF", "FR", "BWT", "FWT", "AR3",
                                      "AKID"}
    # docs/evaluators.md: KID beside FID, the floors of held-out real motions, paired transfer CIs
    assert all(map(math.isfinite, res["final"]["kid"])) and (full_run / "matrices" / "kid.csv").exists()
    assert res["floors"]["floor_n"] == res["n_test"] and math.isfinite(res["floors"]["AF_floor"])
    assert res["ground_truth_per_subset"]["fid_floor"] == res["floors"]["fid_floor"]
    assert {"FR", "BWT", "FWT"} <= set(res["aggregates_ci95"])
    assert res["multimodality"]["mm_texts"] == 2 and res["multimodality_measured"] is False  # < 10
    assert set(res["stage_hashes"]) == {"corpus", "split", "tokenizer", "evaluator", "backbone"}
    assert 0 <= res["generation_failure_rate"] <= 1
    r1 = pd.read_csv(full_run / "matrices" / "r_precision_top1.csv", index_col=0)
    assert list(r1.index) == ["after_1", "after_2", "after_3"] and list(r1.columns) == ORDER.split(",")
    base = pd.read_csv(full_run / "matrices" / "baseline.csv", index_col=0)
    assert "fid" in base.index and list(base.columns) == ORDER.split(",")
    assert res["final"]["r_precision_top1"] == pytest.approx(r1.iloc[-1].tolist())
    index = json.loads((full_run / "samples" / "index.json").read_text())
    assert index and all((full_run / "samples" / v["reference"]).exists() for v in index.values())
    cfg = json.loads((full_run / "config.json").read_text())
    assert cfg["config_hash"] == res["config_hash"] and cfg["method_config"]["lr"] == 3e-3


def test_leaderboard_reads_the_run(full_run):
    from leaderboard.runs import load_run

    loaded = load_run(full_run, strict=True)      # aggregates recomputed from matrices agree
    assert loaded is not None


@pytest.mark.slow
def test_resume_gives_identical_matrices(base_cfg, full_run, tmp_path):
    out = tmp_path / "resumed"
    cfg = RunConfig.from_options(method="seq_lora", out=str(out), **base_cfg)
    run(cfg.replace(stop_after=2))
    assert not (out / "result.json").exists()
    assert json.loads((out / "progress.json").read_text())["finished"] == 2
    with pytest.raises(DataError, match="--resume"):
        run(cfg)
    with pytest.raises(DataError, match="another configuration.*differs in .*seed"):
        run(cfg.replace(resume=True, seed=1))
    run(cfg.replace(resume=True))
    for csv in sorted((full_run / "matrices").glob("*.csv")):
        assert (out / "matrices" / csv.name).read_text() == csv.read_text(), csv.name


def test_mtl_is_one_joint_experience(base_cfg, tmp_path):
    out = run(RunConfig.from_options(method="mtl", out=str(tmp_path / "mtl"), **base_cfg))
    res = json.loads((out / "result.json").read_text())
    r1 = pd.read_csv(out / "matrices" / "r_precision_top1.csv", index_col=0)
    assert list(r1.index) == ["after_1"] and r1.shape == (1, 3)
    assert math.isnan(res["aggregates"]["FR"]) and not math.isnan(res["aggregates"]["AR"])
    # same optimiser-step budget as a sequential method over the 3 experiences
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method_config"]["max_steps"] == 3 * PRESETS["test"]["train"]["max_steps"]


def test_cli_plugin_example_and_unknown_method(base_cfg, tmp_path, capsys):
    common = ["--preset", "test", "--data", base_cfg["data"], "--tokenizer", base_cfg["tokenizer"],
              "--evaluator", base_cfg["evaluator"], "--cache", base_cfg["cache"],
              "--order", "Daily Life,Sports", "--max-test", "4", "--no-progress"]
    assert main(["run", "--method", "nope", "--out", str(tmp_path / "x"), *common]) == 2
    assert "seq_lora" in capsys.readouterr().err
    rc = main(["run", "--method", "l2_lora", "--plugin", str(REPO / "examples" / "my_method.py"),
               "--out", str(tmp_path / "l2"), "--set", "strength=0.5", *common])
    assert rc == 0
    res = json.loads((tmp_path / "l2" / "result.json").read_text())
    assert res["method"] == "l2_lora" and res["n_experiences"] == 2
    log = pd.read_csv(tmp_path / "l2" / "train_log.csv")
    assert log["extra_loss"].iloc[0] == 0 and (log["extra_loss"].iloc[1:] > 0).all()


def _registered() -> list[str]:
    from benchmark.strategy.registry import available, discover

    discover()
    return sorted(available())


@pytest.mark.slow
@pytest.mark.parametrize("name", _registered())
def test_every_registered_method_runs_through_the_runner(base_cfg, tmp_path, name):
    """Each registered strategy survives the whole protocol: the untrained baseline row (generation
    before any training), training, evaluation, checkpoints and the result file."""
    cfg = {**base_cfg, "order": "Daily Life,Sports"}
    out = run(RunConfig.from_options(method=name, out=str(tmp_path / name), **cfg))
    res = json.loads((out / "result.json").read_text())
    assert res["method"] == name and len(res["final"]["fid"]) == 2
    assert all(math.isfinite(v) for v in res["final"]["r_precision_top1"])
    base = pd.read_csv(out / "matrices" / "baseline.csv", index_col=0)
    assert base.loc["fid"].notna().all()


def test_declared_state_resumes_without_state_dict(base_cfg, tmp_path):
    """The README example declares its anchor with keep() and writes no state_dict: --stop-after 1
    + --resume gives the uninterrupted run's matrices, and the pull is active after resuming."""
    from benchmark.strategy.registry import discover

    example = REPO / "examples" / "my_method.py"
    assert "state_dict" not in example.read_text()
    discover(strategy_files=[example])
    cfg = {**base_cfg, "order": "Daily Life,Sports", "plugins": (str(example),),
           "method_overrides": {"strength": "50"}}
    full = run(RunConfig.from_options(method="l2_lora", out=str(tmp_path / "full"), **cfg))
    out = tmp_path / "resumed"
    run(RunConfig.from_options(method="l2_lora", out=str(out), stop_after=1, **cfg))
    assert not (out / "result.json").exists()
    run(RunConfig.from_options(method="l2_lora", out=str(out), resume=True, **cfg))
    for csv in sorted((full / "matrices").glob("*.csv")):
        assert (out / "matrices" / csv.name).read_text() == csv.read_text(), csv.name
    log = pd.read_csv(out / "train_log.csv")
    assert log["l2_pull"].iloc[-1] > 0        # the anchor came back from the checkpoint
    assert log.equals(pd.read_csv(full / "train_log.csv"))


def test_readme_shows_the_example_verbatim():
    """README's "Add your own method" code block is examples/my_method.py without its docstring."""
    import re

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Add your own method", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    source = (REPO / "examples" / "my_method.py").read_text()
    body = source.split('"""', 2)[2].lstrip("\n")          # after the module docstring
    assert block == body


def test_seq_lora_with_replay_plugin_is_the_replay_baseline(base_cfg, tmp_path):
    """SeqLoRA + the replay plugin (``--with replay``) gives the Replay baseline's numbers."""
    cfg = {**base_cfg, "order": "Daily Life,Sports"}
    base = run(RunConfig.from_options(method="replay", out=str(tmp_path / "replay"), **cfg))
    composed = run(RunConfig.from_options(method="seq_lora", out=str(tmp_path / "seq_replay"),
                             method_overrides={"with_plugins": "replay"}, **cfg))
    plain = run(RunConfig.from_options(method="seq_lora", out=str(tmp_path / "seq"), **cfg))
    mc = json.loads((composed / "config.json").read_text())["method_config"]
    assert mc["with_plugins"] == ["replay"] and mc["plugin_options"]["replay"]["mem_size"] == 200
    assert "with_plugins" not in json.loads((plain / "config.json").read_text())["method_config"]
    for csv in sorted((base / "matrices").glob("*.csv")):
        assert (composed / "matrices" / csv.name).read_text() == csv.read_text(), csv.name
    r1 = "r_precision_top1.csv"      # the memory changes training: not SeqLoRA's numbers
    assert (plain / "matrices" / "fid.csv").read_text() != (base / "matrices" / "fid.csv").read_text() \
        or (plain / "matrices" / r1).read_text() != (base / "matrices" / r1).read_text()


@pytest.mark.slow
def test_plugins_compose_on_es_moe_and_resume(base_cfg, tmp_path):
    """ES-MoE --with ewc,replay,lwf through the CLI option: every plugin's loss term is logged,
    and --stop-after 1 + --resume equals the uninterrupted run (plugin state checkpointed)."""
    common = ["--preset", "test", "--data", base_cfg["data"], "--tokenizer", base_cfg["tokenizer"],
              "--evaluator", base_cfg["evaluator"], "--cache", base_cfg["cache"],
              "--order", "Daily Life,Sports", "--max-test", "6", "--no-progress",
              "--method", "es_moe", "--with", "ewc,replay,lwf", "--set", "replay.mem_size=16"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["run", "--out", str(full), *common]) == 0
    assert main(["run", "--out", str(part), "--stop-after", "1", *common]) == 0
    assert main(["run", "--out", str(part), "--resume", *common]) == 0
    for csv in sorted((full / "matrices").glob("*.csv")):
        assert (part / "matrices" / csv.name).read_text() == csv.read_text(), csv.name
    log = pd.read_csv(full / "train_log.csv")
    assert {"emo_loss", "ewc", "distill"} <= set(log.columns)
    assert (log[["ewc", "distill"]].iloc[-1] > 0).all()
    mc = json.loads((full / "config.json").read_text())["method_config"]
    assert mc["with_plugins"] == ["ewc", "replay", "lwf"] and mc["plugin_options"]["replay"]["mem_size"] == 16


def test_second_example_plugin_and_routing_resumes(base_cfg, tmp_path):
    """examples/routed_method.py (replay plugin + route()): --stop-after 1 + --resume == the
    uninterrupted run; the checkpoint holds its declared words and the plugin's buffer."""
    import torch

    example = REPO / "examples" / "routed_method.py"
    cfg = {**base_cfg, "order": "Daily Life,Sports", "plugins": (str(example),)}
    full = run(RunConfig.from_options(method="word_router", out=str(tmp_path / "full"), **cfg))
    out = tmp_path / "resumed"
    run(RunConfig.from_options(method="word_router", out=str(out), stop_after=1, **cfg))
    state = torch.load(out / "checkpoints" / "state.pt", weights_only=False)["strategy"]
    assert len(state["kept"]["words"]["state"]) == 1
    assert state["plugins"]["replay"]["buffer"]["n_seen"] > 0
    run(RunConfig.from_options(method="word_router", out=str(out), resume=True, **cfg))
    for csv in sorted((full / "matrices").glob("*.csv")):
        assert (out / "matrices" / csv.name).read_text() == csv.read_text(), csv.name


@pytest.mark.slow
def test_untrained_row_sits_at_chance_and_training_beats_it(base_cfg, tmp_path):
    """The instrument end to end: the untrained model's R@1 is chance (its generations do not
    depend on the caption in a way the evaluator can read), and a model trained on a scenario is
    better than it there (FID towards the real motions, the measure a short budget moves)."""
    from scipy import stats

    cfg = {**base_cfg, "order": "Daily Life", "max_test": 16, "eval_repeats": 5,
           "method_overrides": {"max_steps": 120, "epochs": 40}}
    out = run(RunConfig.from_options(method="seq_lora", out=str(tmp_path / "run"), **cfg))
    res = json.loads((out / "result.json").read_text())
    base = pd.read_csv(out / "matrices" / "baseline.csv", index_col=0)["Daily Life"]
    chance = pd.read_csv(out / "matrices" / "chance.csv", index_col=0)["Daily Life"]
    batch = int(chance["r_precision_batch"])
    assert batch == PRESETS["test"]["r_precision_batch"] == res["eval"]["batch"]
    assert chance["r_precision_top1"] == pytest.approx(1 / batch) == res["chance"]["r_precision_top1"]
    ranked = (int(chance["n_test"]) // batch) * batch
    hits = round(base["r_precision_top1"] * ranked)
    ci = stats.binomtest(int(hits), ranked, p=1 / batch).proportion_ci(0.99)
    assert ci.low <= 1 / batch <= ci.high                       # untrained: chance
    trained = pd.read_csv(out / "matrices" / "fid.csv", index_col=0)["Daily Life"].iloc[-1]
    assert trained < 0.7 * base["fid"]                          # trained on it: clearly better
    # the ground-truth row is scored on the same subset and batch
    assert res["n_test"] == [int(chance["n_test"])]


def test_floor_reopens_the_run_reproduces_its_last_row_and_measures_the_noise(base_cfg, full_run,
                                                                               tmp_path, capsys):
    """`l2emg floor`: the reopened final model gives the run's own R@1, the draws are fresh
    generations (not the row's), and the result lands in fr_floor.json next to the binomial one."""
    import shutil

    from harness.floor import FLOOR_FILE, measure

    folder = tmp_path / "seq"
    shutil.copytree(full_run, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    ex = {k: base_cfg[k] for k in ("cache", "data", "tokenizer", "evaluator")}
    f = measure(folder, gens=3, **ex)
    res = json.loads((folder / "result.json").read_text())
    assert f["reproduced_last_row_subset0"] == pytest.approx(res["final"]["r_precision_top1"][0], abs=1e-12)
    draws = f["draws"]
    assert len(draws) == 3 and all(len(d) == 3 and d[-1] is None for d in draws)
    assert all(0.0 <= x <= 1.0 for d in draws for x in d[:-1])
    assert f["binomial"] == res["fr_floor"] and f["FR"] == res["aggregates"]["FR"]
    assert f["q95"] >= f["mean"] >= 0.0 and f["inside"] == (f["FR"] <= f["q95"])
    assert json.loads((folder / FLOOR_FILE).read_text())["mean"] == f["mean"]
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != FLOOR_FILE} == before
    again = measure(folder, gens=3, **ex)                      # seeded: the same draws
    assert again["draws"] == draws
    # through the CLI: kept unless --force
    assert main(["floor", str(folder), *[x for k, v in ex.items() for x in (f"--{k}", v)]]) == 0
    assert "kept" in capsys.readouterr().out
    # the leaderboard carries it (validity's forgetting check uses it), and refuses a stale one
    from leaderboard.runs import load_run

    assert load_run(folder).info["fr_floor_measured"]["q95"] == f["q95"]
    stale = {**f, "config_hash": "0" * 16}
    (folder / FLOOR_FILE).write_text(json.dumps(stale))
    with pytest.raises(DataError, match="fr_floor.json.*--force"):
        load_run(folder)


def test_floor_refuses_joint_runs_unfinished_folders_and_other_stages(base_cfg, full_run, tmp_path):
    import shutil

    from harness.floor import measure

    ex = {k: base_cfg[k] for k in ("cache", "data", "tokenizer", "evaluator")}
    with pytest.raises(DataError, match="not a finished run"):
        measure(tmp_path, **ex)
    folder = tmp_path / "seq"
    shutil.copytree(full_run, folder)
    with pytest.raises(DataError, match="at least 2 draws"):
        measure(folder, gens=1, **ex)
    cfg_path = folder / "config.json"
    record = json.loads(cfg_path.read_text())
    made_elsewhere = {**record, "config_hash": "0" * 16,        # as if made with other stages
                      "stage_hashes": {**record["stage_hashes"], "evaluator": "e" * 16}}
    cfg_path.write_text(json.dumps(made_elsewhere))
    with pytest.raises(DataError, match="config hash.*evaluator"):
        measure(folder, **ex)
    cfg_path.write_text(json.dumps(record))
    (folder / "checkpoints" / "state.pt").unlink()
    with pytest.raises(DataError, match="state.pt.*missing"):
        measure(folder, **ex)
    assert not (folder / "fr_floor.json").exists()


def test_a_train_fraction_shrinks_every_training_experience_and_is_recorded(base_cfg, tmp_path):
    from harness.runner import prepare

    full = prepare(RunConfig.from_options(method="seq_lora", out=str(tmp_path / "a"), **base_cfg))
    half = prepare(RunConfig.from_options(method="seq_lora", out=str(tmp_path / "b"),
                                          train_fraction=0.5, **base_cfg))
    n_full = [len(e.dataset) for e in full.experiences]
    n_half = [len(e.dataset) for e in half.experiences]
    assert n_half == [-(-n // 2) for n in n_full] and min(n_full) > 1
    assert half.record["train_fraction"] == 0.5 and "train_fraction" not in full.record
    assert half.record["config_hash"] != full.record["config_hash"]
    # the test stream the cells are scored on is the same
    assert [t["ids"] for t in half.scorer.tests] == [t["ids"] for t in full.scorer.tests]
