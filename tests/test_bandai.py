"""``l2emg data bandai``: contents -> scenarios, styles -> emotions, template captions, a corpus
that load_corpus, splits and ``data info`` read (on a handful of the shared files)."""
from __future__ import annotations

import json

import pytest

from benchmark.corpus.bandai import SCENARIO_CONTENTS, captions, plan_bandai
from benchmark.io import DataError

FILES = ["dataset-1_walk_proud_001", "dataset-1_walk_tired_001", "dataset-1_bow_sad_001",
         "dataset-1_bow_normal_001", "dataset-2_raise-up-left-hand_elderly_001",
         "dataset-2_raise-up-left-hand_normal_001", "dataset-1_walk-left_masculinity_001",
         "dataset-2_walk-turn-left_masculine_001"]


@pytest.fixture(scope="module")
def bandai_src(shared_dir):
    src = shared_dir / "data" / "bandai-namco"
    if not (src / "dataset-1" / "data").is_dir():
        pytest.fail(f"Bandai-Namco data missing at {src}; set L2EMG_SHARED to the shared/ folder")
    return src


def test_plan_of_the_shared_copy(bandai_src):
    plan, scenarios, emotions, dropped = plan_bandai(bandai_src)
    assert len(plan) + sum(dropped.values()) == 314
    assert scenarios == ["Locomotion", "Turning and Stepping", "Greetings", "Raising Hands"]
    assert dropped == {"Fighting and Dance": 6}
    assert emotions[0] == "normal" and "masculinity" not in emotions and len(emotions) == 18
    row = plan.set_index("id").loc["dataset-2_wave-left-hand_exhausted_001"]
    assert row["scenario"] == "Greetings" and row["emotion"] == "exhausted"
    assert all(len(set(t)) == 3 for t in plan["texts"])
    for content in {c for cs in SCENARIO_CONTENTS.values() for c in cs}:
        assert content in {*plan["content"], "punch", "kick", "slash", "dance-short",
                           "dance-long"}


def test_captions_name_content_and_style():
    caps = captions("wave-left-hand", "tired", "x")
    assert len(caps) == 3 and caps == captions("wave-left-hand", "tired", "x")
    assert all("left hand" in c for c in caps)
    assert all(any(w in c.lower() for w in ("tired", "weary", "wearily", "sluggishly"))
               for c in caps)


def test_build_small_corpus_and_table(bandai_src, tmp_path, capsys):
    from harness.cli import main
    from benchmark.corpus import load_corpus
    from benchmark.splits import make_splits

    src = tmp_path / "src"
    (src / "cfg").mkdir(parents=True)
    (src / "cfg" / "style_label.txt").write_text(
        (bandai_src / "dataset-1" / "cfg" / "style_label.txt").read_text())
    for stem in FILES:
        (src / f"{stem}.bvh").symlink_to(bandai_src / stem.split("_")[0] / "data" / f"{stem}.bvh")
    smap = tmp_path / "map.csv"
    smap.write_text("content,scenario\nbow,Greet\nwalk,Move\nwalk-left,Move\nwalk-turn-left,Move\n"
                    "raise-up-left-hand,Raise\n")
    out = tmp_path / "corpus"
    assert main(["data", "bandai", "--src", str(src), "--out", str(out), "--scenario-map",
                 str(smap), "--min-motions", "2"]) == 0
    corpus = load_corpus(out, validate="full")
    assert corpus.scenarios == ("Greet", "Move", "Raise")
    assert corpus.emotions == ("normal", "sad", "proud", "masculine", "tired", "elderly")
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["config"]["scenario_contents"]["Move"] == ["walk", "walk-left", "walk-turn-left"]
    assert meta["config"]["licence"] == "CC BY-NC 4.0"
    assert "walks forward" in " ".join(corpus.texts("dataset-1_walk_proud_001"))
    assert set(make_splits(corpus, "mixed", 0)["subset"]) == {"Scenario1", "Scenario2",
                                                              "Scenario3"}
    capsys.readouterr()
    assert main(["data", "info", "--data", str(out)]) == 0
    table = capsys.readouterr().out
    assert "Move" in table and "masculine" in table and "8 motions" in table
    smap.write_text("content,scenario\nbow,Greet\n")
    with pytest.raises(DataError, match="have no scenario"):
        plan_bandai(src, {"bow": "Greet"})


def test_real_preset_refuses_the_shared_copy(bandai_src, tmp_path):
    """The ``real`` preset evaluates in full R-precision batches of 32; the shared copy's test
    parts (labels and parts as ``l2emg data bandai`` assigns them; stand-in features, so no BVH
    is converted) hold 6-15 motions per subset, so its Scorer refuses the stream's first subset
    with the fix, in both settings; ``--preset test`` (batch 3) fits there."""
    import numpy as np

    from benchmark.corpus import Motion, load_corpus, write_humanml3d
    from harness.run_config import RunConfig
    from benchmark.splits import make_splits
    from benchmark.streams import make_scenario
    from evaluators.protocol import Scorer

    plan, scenarios, emotions, _ = plan_bandai(bandai_src)
    rng = np.random.default_rng(0)
    motions = [Motion(id=r.id, features=rng.normal(size=(8, 263)).astype(np.float32),
                      texts=list(r.texts), scenario=r.scenario, emotion=r.emotion,
                      source="bandai-namco") for r in plan.itertuples()]
    corpus = load_corpus(write_humanml3d(tmp_path / "c", motions, scenarios=scenarios,
                                         emotions=emotions, seed=0))
    real = RunConfig.from_options(method="seq_lora", out=str(tmp_path / "r"), preset="real")
    assert (real.eval.batch, real.eval.max_test) == (32, 64)
    sizes = {}
    for setting in ("unseen", "mixed"):
        manifest = make_splits(corpus, setting, 0)
        test = manifest[manifest["part"] == "test"].groupby("subset").size()
        sizes[setting] = {k: int(v) for k, v in test.items()}
        bm = make_scenario(corpus, manifest, order=1, seed=0)
        first = bm.subset_names[0]
        with pytest.raises(DataError, match=rf"subset '{first}' has {test[first]} test motions, "
                           r"fewer than one R-precision batch of 32\. Fix: use a larger corpus"):
            Scorer(real.eval, None, bm, None)
    assert sizes["unseen"] == {"Locomotion": 13, "Turning and Stepping": 11, "Greetings": 15,
                               "Raising Hands": 6}
    assert sorted(sizes["mixed"].values()) == [11, 11, 11, 12]
    smoke = RunConfig.from_options(method="seq_lora", out=str(tmp_path / "s"), preset="test")
    assert smoke.eval.batch <= min(min(s.values()) for s in sizes.values())
