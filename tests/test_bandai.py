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
    from benchmark.cli import main
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
