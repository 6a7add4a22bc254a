"""Unseen/Mixed split manifests, orders and manifest validation (labels-only fake corpora)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from benchmark.corpus.labels import (EMOTIONS, SCENARIOS, TABLE1_COUNTS, TABLE1_MIXED_SIZES)
from benchmark.corpus.parts import assign_parts
from benchmark.io import DataError
from benchmark.splits import (ORDERS, load_manifest, make_splits, resolve_order, save_manifest,
                              summarize)


def labels_corpus(counts: dict[str, int], seed: int = 0) -> SimpleNamespace:
    """A Corpus stand-in: labels (id, scenario, emotion, part) and the label spaces only."""
    rng = np.random.default_rng(seed)
    scen = np.repeat(list(counts), list(counts.values()))
    df = pd.DataFrame({"id": [f"{k:06d}" for k in range(len(scen))], "scenario": scen,
                       "emotion": np.array(EMOTIONS)[rng.integers(0, 7, len(scen))]})
    df["part"] = assign_parts(df, seed)
    return SimpleNamespace(root="/fake", labels=df, scenarios=SCENARIOS, emotions=EMOTIONS)


@pytest.fixture(scope="module")
def full():
    return labels_corpus(TABLE1_COUNTS)


@pytest.fixture(scope="module")
def small():
    return labels_corpus({s: max(3, n // 40) for s, n in TABLE1_COUNTS.items()})


def test_table1_sizes_at_full_scale(full):
    unseen = make_splits(full, "unseen", seed=0)
    assert unseen.groupby("subset").size().to_dict() == TABLE1_COUNTS
    mixed = make_splits(full, "mixed", seed=0)
    sizes = mixed.groupby("subset").size()
    assert [sizes[f"Scenario{i}"] for i in range(1, 9)] == list(TABLE1_MIXED_SIZES)
    for m in (unseen, mixed):
        assert sorted(m["id"]) == sorted(full.labels["id"])  # every motion exactly once


def test_unseen_composition_and_parts(full):
    m = make_splits(full, "unseen", seed=3).merge(full.labels[["id", "scenario"]], on="id")
    for subset, g in m.groupby("subset"):
        primary = (g["scenario"] == subset).mean()
        assert 0.79 < primary < 0.81, (subset, primary)
        assert g["scenario"].nunique() == 8  # donors come from every other scenario
        # a subset's part counts equal its primary scenario's (parts are drawn part by part)
        own = full.labels[full.labels["scenario"] == subset]["part"].value_counts()
        assert g["part"].value_counts().to_dict() == own.to_dict()
    # part column is the corpus's, unchanged
    assert (m.set_index("id")["part"] == full.labels.set_index("id")["part"]).all()


def test_share_zero_gives_pure_subsets(small):
    m = make_splits(small, "unseen", seed=0, share=0.0).merge(small.labels, on="id")
    assert (m["subset"] == m["scenario"]).all()


def test_mixed_is_stratified_by_part(full):
    m = make_splits(full, "mixed", seed=1)
    t = pd.crosstab(m["subset"], m["part"])
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.to_numpy().sum()
    assert np.abs(t.to_numpy() - expected).max() <= 1.0


def test_deterministic_and_seeded(small):
    a, b = make_splits(small, "unseen", 5), make_splits(small, "unseen", 5)
    pd.testing.assert_frame_equal(a, b)
    assert not make_splits(small, "unseen", 6)["subset"].equals(a["subset"])
    assert not make_splits(small, "mixed", 5)["subset"].equals(make_splits(small, "mixed", 6)["subset"])


def test_dominant_scenario_is_capped():
    # one scenario has nearly everything: its donations are capped, nobody returns home
    c = labels_corpus({"Daily Life": 60, "Sports": 3, "Dance": 2})
    m = make_splits(c, "unseen", 0, share=0.5).merge(c.labels, on="id")
    assert m.groupby("subset").size().to_dict() == {"Daily Life": 60, "Sports": 3, "Dance": 2}
    donors = m[m["subset"] != m["scenario"]]
    assert len(donors) > 0 and (donors["subset"] != donors["scenario"]).all()


def test_manifest_round_trip_and_summary(small, tmp_path):
    m = make_splits(small, "mixed", 0)
    path = save_manifest(m, tmp_path / "m.csv")
    back = load_manifest(path, small)
    pd.testing.assert_frame_equal(back, m)
    table = summarize(small, back)
    assert table.loc["total", "total"] == len(small.labels)
    assert (table[["train", "val", "test"]].sum(axis=1) == table["total"]).all()
    assert list(table.index[:-1]) == [f"Scenario{i}" for i in range(1, 9)]


@pytest.mark.parametrize("edit, message", [
    (lambda df: df.assign(id=["nope"] + df["id"].tolist()[1:]), "not in the corpus"),
    (lambda df: pd.concat([df, df.iloc[[3]]]), "more than once"),
    (lambda df: df.assign(part=["holdout"] + df["part"].tolist()[1:]), "unknown part"),
    (lambda df: df.assign(subset=["Cooking"] + df["subset"].tolist()[1:]), "unknown subset"),
    (lambda df: df.drop(columns=["part"]), "missing column"),
])
def test_load_manifest_rejects_bad_files(small, tmp_path, edit, message):
    path = tmp_path / "bad.csv"
    edit(make_splits(small, "unseen", 0)).to_csv(path, index=False)
    with pytest.raises(DataError, match=message) as err:
        load_manifest(path, small)
    assert str(path) in str(err.value)


def test_load_manifest_names_offending_lines(small, tmp_path):
    df = make_splits(small, "unseen", 0)
    df.loc[[4, 7], "id"] = ["ghost1", "ghost2"]
    df.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(DataError, match=r"2 id\(s\).*'ghost1'.*lines 6, 9"):
        load_manifest(tmp_path / "m.csv", small)


def test_resolve_order():
    assert resolve_order(1, "unseen") == list(SCENARIOS)
    assert resolve_order("2", "unseen") == list(SCENARIOS)[::-1]
    assert sorted(resolve_order(3, "mixed")) == sorted(ORDERS["mixed"][1])
    assert resolve_order("dance, SPORTS,instrument_play", "unseen") == \
        ["Dance", "Sports", "Instrument Play"]
    assert resolve_order(["scenario3", "Scenario1"], "mixed") == ["Scenario3", "Scenario1"]
    with pytest.raises(DataError, match="Cooking.*Daily Life, Sports"):
        resolve_order("Dance,Cooking", "unseen")
    with pytest.raises(DataError, match="distinct"):
        resolve_order("Dance,dance", "unseen")
    with pytest.raises(DataError, match="unknown order"):
        resolve_order(4, "unseen")
    with pytest.raises(DataError, match="lacks"):
        resolve_order(1, "unseen", available=["Dance", "Sports"])


def test_bad_setting_and_share(small):
    with pytest.raises(DataError, match="unknown setting"):
        make_splits(small, "random", 0)
    with pytest.raises(DataError, match="share"):
        make_splits(small, "unseen", 0, share=1.5)


def test_subsample_train_is_nested_per_subset_and_leaves_val_test_alone(full):
    from benchmark.splits import subsample_train

    man = make_splits(full, "unseen", seed=0)
    assert subsample_train(man, 1.0) is man
    half, quarter = subsample_train(man, 0.5), subsample_train(man, 0.25)
    for part in ("val", "test"):                        # untouched
        assert set(half.loc[half.part == part, "id"]) == set(man.loc[man.part == part, "id"])
    for name, rows in man[man.part == "train"].groupby("subset"):
        n = len(rows)
        h = set(half.loc[(half.part == "train") & (half.subset == name), "id"])
        q = set(quarter.loc[(quarter.part == "train") & (quarter.subset == name), "id"])
        assert len(h) == -(-n // 2) and len(q) == -(-n // 4)          # ceil(f * n)
        assert q <= h <= set(rows["id"])                               # nested
    # the choice depends on the ids only: not on the row order
    shuffled = man.sample(frac=1.0, random_state=3)
    assert (set(subsample_train(shuffled, 0.5)["id"]) == set(half["id"]))
    # a tiny fraction keeps at least one training motion per subset
    tiny = subsample_train(man, 1e-6)
    assert (tiny[tiny.part == "train"].groupby("subset").size() == 1).all()
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(DataError, match="not in \\(0, 1\\]"):
            subsample_train(man, bad)
    for bad in (True, "0.5", None, float("nan")):                  # not a share at all
        with pytest.raises(DataError, match="not in \\(0, 1\\]"):
            subsample_train(man, bad)


def test_check_train_fraction_is_the_one_range_check():
    from harness.run_config import TrainSettings
    from benchmark.splits import check_train_fraction

    assert check_train_fraction(1) == 1.0 and isinstance(check_train_fraction(1), float)
    assert check_train_fraction(np.float32(0.25)) == 0.25
    with pytest.raises(DataError, match="train_fraction 0 is not in"):   # the config names its field
        TrainSettings(train_fraction=0)
    with pytest.raises(DataError, match="--train-fraction"):             # and says how to fix it
        check_train_fraction(2.0)
