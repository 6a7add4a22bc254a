"""A corpus's own label spaces: any N >= 2 scenarios and any emotions (corpus.json), with splits,
orders and streams that follow N; the paper's 8 x 7 stay the default."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.corpus import SCENARIOS, Motion, load_corpus, write_humanml3d
from benchmark.io import DataError
from benchmark.splits import ORDERS, load_manifest, make_splits, resolve_order, summarize

SCEN = ("Locomotion", "Greetings", "Fighting", "Dance")
EMO = ("normal", "proud", "tired")


@pytest.fixture(scope="module")
def own_corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    motions = [Motion(id=f"m{k:03d}", features=rng.normal(size=(12, 263)).astype(np.float32),
                      texts=[f"a person moves {k}."], scenario=SCEN[k % 4], emotion=EMO[k % 3],
                      source="test") for k in range(80)]
    out = write_humanml3d(tmp_path_factory.mktemp("own") / "c", motions, scenarios=SCEN,
                          emotions=EMO)
    return load_corpus(out)


def test_label_spaces_recorded_and_read(own_corpus):
    meta = json.loads((own_corpus.root / "corpus.json").read_text())
    assert meta["scenarios"] == list(SCEN) and meta["emotions"] == list(EMO)
    assert own_corpus.scenarios == SCEN and own_corpus.emotions == EMO
    assert own_corpus.scenario_index("m002") == 2


def test_orders_per_corpus():
    assert resolve_order(1, "unseen", scenarios=SCEN) == list(SCEN)
    assert resolve_order(2, "unseen", scenarios=SCEN) == list(SCEN[::-1])
    third = resolve_order(3, "unseen", scenarios=SCEN)
    assert sorted(third) == sorted(SCEN) and third not in (list(SCEN), list(SCEN[::-1]))
    assert third == resolve_order("3", "unseen", scenarios=SCEN)            # fixed
    assert resolve_order(3, "mixed", scenarios=SCEN) == [f"Scenario{i + 1}" for i in
                                                         [SCEN.index(s) for s in third]]
    assert resolve_order("dance,Fighting", "unseen", scenarios=SCEN) == ["Dance", "Fighting"]
    assert resolve_order(3, "unseen") == ORDERS["unseen"][3]                # the paper's
    assert resolve_order(2, "unseen", scenarios=SCENARIOS) == list(SCENARIOS[::-1])
    with pytest.raises(DataError, match="unknown subset 'Sports'"):
        resolve_order("Sports", "unseen", scenarios=SCEN)


def test_splits_and_streams_follow_n(own_corpus, tmp_path):
    from benchmark.splits import save_manifest
    from benchmark.streams import make_scenario

    unseen = make_splits(own_corpus, "unseen", seed=0)
    mixed = make_splits(own_corpus, "mixed", seed=0)
    assert set(unseen["subset"]) == set(SCEN)
    assert sorted(mixed["subset"].unique()) == [f"Scenario{i}" for i in range(1, 5)]
    save_manifest(mixed, tmp_path / "mixed.csv")
    back = load_manifest(tmp_path / "mixed.csv", own_corpus)
    table = summarize(own_corpus, back)
    assert list(table.index[:-1]) == [f"Scenario{i}" for i in range(1, 5)]
    assert list(table.columns[:4]) == list(SCEN)
    for manifest in (unseen, mixed):
        bm = make_scenario(own_corpus, manifest, order=2)
        assert len(bm.train_stream) == 4
        item = bm.test_stream[0].dataset[0]
        assert 0 <= item["emotion"] < 3 and 0 <= item["scenario"] < 4
    bad = mixed.copy()
    bad.loc[0, "subset"] = "Scenario5"
    save_manifest(bad, tmp_path / "bad.csv")
    with pytest.raises(DataError, match="unknown subset 'Scenario5'.*Scenario1..4"):
        load_manifest(tmp_path / "bad.csv", own_corpus)


def test_labels_outside_the_corpus_spaces_are_refused(own_corpus, tmp_path):
    labels = own_corpus.labels[["id", "scenario", "emotion"]].copy()
    labels.loc[0, "scenario"] = "Sports"
    labels.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(DataError, match="unknown scenario 'Sports'.*corpus.json"):
        load_corpus(own_corpus.root, tmp_path / "labels.csv")
    rng = np.random.default_rng(1)
    one = [Motion(id="a", features=rng.normal(size=(5, 263)), texts=["x."], scenario="Odd",
                  emotion="normal", part="train")]
    with pytest.raises(DataError, match=r"scenario label\(s\) \['Odd'\] are not in"):
        write_humanml3d(tmp_path / "w", one, scenarios=SCEN, emotions=EMO)


def test_heat_map_axes_follow_the_corpus_order():
    from types import SimpleNamespace

    import pandas as pd

    from leaderboard.figures import canonical_order, mean_matrix

    assert canonical_order({"Dance", "Greetings", "Locomotion"}) == ["Dance", "Greetings",
                                                                      "Locomotion"]
    rev = list(SCEN[::-1])
    runs = [SimpleNamespace(order=o, scenario_order=names, matrices={
        "fid": pd.DataFrame(np.eye(4), columns=names, index=[f"after_{i}" for i in range(1, 5)])})
        for o, names in (("2", rev), ("1", list(SCEN)))]
    m = mean_matrix(runs, "fid")
    assert list(m.index) == list(SCEN) and list(m.columns) == list(SCEN)
    np.testing.assert_allclose(np.diag(m.to_numpy()), 1.0)
