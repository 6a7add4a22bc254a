"""The ``conflict`` stream: shared phrases with conflicting per-scenario actions, a shared emotion
style, held-out emotions, no cross-scenario share in Unseen; and the ``paper`` stream's 0.2."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.corpus import EMOTIONS, SCENARIOS, SynthConfig, build_corpus, load_corpus
from benchmark.corpus.conflict import (CELL_COUNTS, CONCEPTS, CONFLICT_ACTIONS, CUES,
                                       REALISATIONS, action_name, cell_counts, held_out_emotions)
from benchmark.corpus.emotion_style import EMOTION_STYLES, IDENTITY_SHIFT
from benchmark.corpus.generator import generate_chunk, make_tracks
from benchmark.corpus.synth import STREAM_SPLIT_SHARE, plan_corpus
from benchmark.io import DataError, hash_json
from benchmark.splits import make_splits
from harness.stages import STAGE_VERSION, corpus_stage, split_stage


@pytest.fixture(scope="module")
def conflict_dir(tmp_path_factory):
    # scale 0.05: per scenario x emotion 2 train / 1 val / 1 test motions (208 in all)
    return build_corpus(tmp_path_factory.mktemp("conflict") / "c", scale=0.05, seed=0,
                        stream="conflict")


@pytest.fixture(scope="module")
def conflict(conflict_dir):
    return load_corpus(conflict_dir)


def _cfg(**kw):
    return SynthConfig(stream="conflict", duration_s=(3.2, 3.2), **kw)


# ----------------------------------------------------------------------------- design
def test_default_size_meets_the_protocol():
    """Scale 1: every scenario's test part >= 64 and val >= 32, balanced across scenarios."""
    plans = plan_corpus(_cfg(scale=1.0))
    assert len(plans) == len({p["id"] for p in plans}) == 3144
    for s in SCENARIOS:
        mine = [p for p in plans if p["scenario"] == s]
        parts = {q: sum(p["part"] == q for p in mine) for q in ("train", "val", "test")}
        assert parts == {"train": 6 * CELL_COUNTS["train"], "val": 7 * CELL_COUNTS["val"],
                         "test": 7 * CELL_COUNTS["test"]} == {"train": 288, "val": 35, "test": 70}
        # concepts balanced within each scenario (+-1 per emotion x part cell)
        per_concept = np.bincount([list(CONCEPTS).index(p["concept"]) for p in mine])
        assert per_concept.max() - per_concept.min() <= 3 * 7
    assert cell_counts(0.01) == {"train": 1, "val": 1, "test": 1}


def test_same_phrase_realised_by_different_actions_in_every_scenario():
    """The conflicting mapping: each concept has one action per scenario, all different, with
    the same phrases everywhere."""
    for concept, phrases in CONCEPTS.items():
        fns = [REALISATIONS[s][concept][0] for s in SCENARIOS]
        assert len(set(map(id, fns))) == len(SCENARIOS), concept
        for s in SCENARIOS:
            a = CONFLICT_ACTIONS[action_name(s, concept)]
            assert a.scenario == s and a.phrases == phrases
    # and the motions differ: one seed, one emotion, one concept, two scenarios
    cfg = _cfg(scale=0.05, mirror_prob=0.0, noise=0.0)
    plan = {"id": "x", "emotion": "neutral", "concept": "arms", "part": "train", "seed": 7}
    a, b = generate_chunk([{**plan, "scenario": "Daily Life", "action": "daily_life_arms"},
                           {**plan, "scenario": "Game", "action": "game_arms"}], cfg)
    assert a.features.shape == b.features.shape == (64, 263)
    ric = slice(4, 67)
    assert np.abs(a.features[:, ric] - b.features[:, ric]).mean() > 0.05


def test_emotion_style_is_shared_across_scenarios():
    """Every scenario applies the same style parameters to an emotion (no scenario shift)."""
    cfg = _cfg(scale=0.05)
    for emotion in EMOTIONS:
        styles = []
        for s in SCENARIOS:
            tr = make_tracks({"id": "x", "scenario": s, "emotion": emotion, "concept": "legs",
                              "action": action_name(s, "legs"), "part": "test", "seed": 1}, cfg)
            assert tr.shift is IDENTITY_SHIFT
            styles.append(tr.style)
        assert all(st == EMOTION_STYLES[emotion] for st in styles)
    # control: with the opt-in scenario style, the same emotion is expressed differently
    styled = _cfg(scale=0.05, scenario_style=1.0)
    base = {"id": "x", "emotion": "sad", "concept": "turn", "part": "test", "seed": 3}
    a, b = (make_tracks({**base, "scenario": s, "action": action_name(s, "turn")}, styled).shift
            for s in ("Sports", "Instrument Play"))
    assert a != b and a != IDENTITY_SHIFT


def test_held_out_emotions_absent_from_train_present_in_test(conflict):
    held = conflict.meta["config"]["held_out_train"]
    assert held == {s: list(e) for s, e in held_out_emotions(SCENARIOS, EMOTIONS).items()}
    assert len(held) == len(SCENARIOS) and all(len(e) == 1 and e[0] != "neutral" for e in held.values())
    # every non-neutral emotion is held out somewhere and seen in training elsewhere
    assert {e[0] for e in held.values()} == set(EMOTIONS[1:])
    lab = conflict.labels
    for s, (emotion,) in held.items():
        cell = lab[(lab["scenario"] == s) & (lab["emotion"] == emotion)]
        assert set(cell["part"]) == {"val", "test"}
        assert ((lab["scenario"] != s) & (lab["emotion"] == emotion) & (lab["part"] == "train")).any()
        others = lab[(lab["scenario"] == s) & (lab["emotion"] != emotion)]
        assert set(others["part"]) == {"train", "val", "test"}


def test_corpus_columns_lengths_and_captions(conflict):
    lab = conflict.labels
    assert len(conflict) == 8 * (6 * 2 + 7 + 7)
    assert (lab["n_frames"] == 64).all()
    assert conflict.meta["config"]["stream"] == "conflict"
    all_cues = {s: c for s, c in CUES.items()}
    for _, row in lab.sample(40, random_state=0).iterrows():
        assert row["action"] == action_name(row["scenario"], row["concept"])
        for cap in conflict.texts(row["id"]):
            low = cap.lower()
            assert any(c in low for c in all_cues[row["scenario"]]), cap
            assert not any(c in low for s, cues in all_cues.items() if s != row["scenario"]
                           for c in cues), cap
            stems = [p.split()[0][:-1] for p in CONCEPTS[row["concept"]]]  # base verb forms
            assert any(stem in low for stem in stems), cap


# ----------------------------------------------------------------------------- splits
def _share(corpus, manifest) -> float:
    scen = corpus.labels.set_index("id")["scenario"]
    return float((manifest["subset"].to_numpy() != scen.loc[manifest["id"]].to_numpy()).mean())


def test_split_share_zero_in_conflict_and_point_two_in_paper(conflict, tmp_path):
    assert STREAM_SPLIT_SHARE == {"paper": 0.2, "conflict": 0.0}
    pure, _ = split_stage(tmp_path, conflict, "unseen", 0, stream="conflict")
    assert _share(conflict, pure) == 0.0
    for part in ("train", "val", "test"):
        sub = pure[pure["part"] == part]
        scen = conflict.labels.set_index("id").loc[sub["id"], "scenario"].to_numpy()
        assert (sub["subset"].to_numpy() == scen).all()
    shared, _ = split_stage(tmp_path, conflict, "unseen", 0, stream="paper")
    # paper: round(0.2 * n) of every scenario's n motions of each part come from the others
    n = conflict.labels.groupby(["scenario", "part"]).size().to_numpy()
    assert _share(conflict, shared) == np.floor(0.2 * n + 0.5).sum() / n.sum() > 0.14
    assert shared.equals(make_splits(conflict, "unseen", 0))    # paper = the old default
    mixed, _ = split_stage(tmp_path, conflict, "mixed", 0, stream="conflict")
    assert mixed["subset"].nunique() == 8 and _share(conflict, mixed) > 0.5
    with pytest.raises(DataError, match="unknown stream"):
        split_stage(tmp_path, conflict, "unseen", 0, stream="nope")


def test_corpus_stage_keys(tmp_path, monkeypatch):
    """The stream joins the key only when it is not "paper"; the generator version is in it
    (synth-2 corpora have other bytes than cached synth-1 ones)."""
    import benchmark.corpus as corpus_mod

    built = []
    monkeypatch.setattr(corpus_mod, "build_corpus",
                        lambda p, **kw: built.append((p, kw)) or p.mkdir(parents=True))
    monkeypatch.setattr(corpus_mod, "load_corpus", lambda p: p)
    paper = corpus_stage(tmp_path, None, 0.45, 0)
    from benchmark.corpus.synth import GENERATOR_VERSION

    key = {"v": STAGE_VERSION, "scale": 0.45, "seed": 0, "generator": GENERATOR_VERSION}
    assert GENERATOR_VERSION == "synth-2" and paper.name == f"synth-{hash_json(key)}"
    conflict = corpus_stage(tmp_path, None, 1.0, 0, stream="conflict")
    assert conflict != paper and built[-1][1]["stream"] == "conflict"
    with pytest.raises(DataError, match="unknown stream"):
        corpus_stage(tmp_path, None, 1.0, 0, stream="nope")


def test_unknown_stream_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown stream"):
        SynthConfig(stream="nope")
    with pytest.raises(DataError, match="unknown stream"):
        build_corpus(tmp_path / "x", scale=0.01, stream="nope")
