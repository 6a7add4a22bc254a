"""Avalanche streams over split manifests, on a small real HumanML3D-format corpus."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.corpus.labels import EMOTIONS, SCENARIOS
from benchmark.io import DataError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """160 motions (20 per scenario), random features, 3 captions each, written and re-read."""
    from benchmark.corpus import Motion, load_corpus, write_humanml3d

    rng = np.random.default_rng(0)
    motions = [Motion(id=f"m{k:04d}", features=rng.normal(size=(12 + k % 9, 263)).astype(np.float32),
                      texts=[f"a person waves number {k} take {j}" for j in range(3)],
                      scenario=SCENARIOS[k % 8], emotion=EMOTIONS[k % 7]) for k in range(160)]
    return load_corpus(write_humanml3d(tmp_path_factory.mktemp("streams") / "c", motions))


@pytest.fixture(scope="module")
def unseen(corpus):
    from benchmark.splits import make_splits

    return make_splits(corpus, "unseen", seed=0)


@pytest.fixture(scope="module")
def scenario(corpus, unseen):
    from benchmark.streams import make_scenario

    return make_scenario(corpus, unseen, order=2, seed=0)


def test_real_avalanche_scenario(scenario, unseen):
    from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
    from avalanche.benchmarks.utils import AvalancheDataset

    assert isinstance(scenario, CLScenario)
    names = list(SCENARIOS)[::-1]
    for stream, part in ((scenario.train_stream, "train"), (scenario.valid_stream, "val"),
                         (scenario.test_stream, "test")):
        assert [e.subset_name for e in stream] == names
        assert [e.scenario_id for e in stream] == list(range(8))
        for e in stream:
            assert isinstance(e.dataset, AvalancheDataset)
            want = ((unseen["subset"] == e.subset_name) & (unseen["part"] == part)).sum()
            assert len(e.dataset) == want
    assert scenario.subset_names == names and scenario.setting == "unseen"


def test_items_match_corpus(scenario, corpus):
    data = scenario.train_stream[3].dataset
    item = data[0]
    assert set(item) == {"id", "features", "text", "emotion", "scenario", "subset"}
    np.testing.assert_array_equal(item["features"], corpus.features(item["id"]))
    assert item["features"].dtype == np.float32 and item["features"].shape[1] == 263
    assert item["emotion"] == corpus.emotions.index(corpus.row(item["id"])["emotion"])
    assert item["scenario"] == corpus.scenarios.index(corpus.row(item["id"])["scenario"])
    assert item["subset"] == 3
    assert list(data.targets) == [data[i]["emotion"] for i in range(len(data))]


def test_train_captions_resample_eval_captions_fixed(scenario, corpus, unseen):
    from benchmark.streams import make_scenario

    train = scenario.train_stream[0].dataset
    seen = {train[0]["text"] for _ in range(30)}
    assert len(seen) > 1 and seen <= set(corpus.texts(train[0]["id"]))
    test = scenario.test_stream[0].dataset
    texts = [test[i]["text"] for i in range(len(test))]
    assert texts == [test[i]["text"] for i in range(len(test))]
    again = make_scenario(corpus, unseen, order=2, seed=0).test_stream[0].dataset
    assert texts == [again[i]["text"] for i in range(len(again))]


def test_collate_keeps_variable_lengths(scenario):
    import torch
    from torch.utils.data import DataLoader

    data = scenario.train_stream[0].dataset
    batch = next(iter(DataLoader(data, batch_size=5, collate_fn=data.collate_fn)))
    assert isinstance(batch["features"], list) and len(batch["features"]) == 5
    assert len({f.shape[0] for f in batch["features"]}) > 1  # lengths differ, nothing padded
    assert batch["emotion"].dtype == torch.int64 and batch["subset"].tolist() == [0] * 5
    # replay-style subset/concat keep the collate function
    mixed = data.subset([0, 1]).concat(scenario.train_stream[1].dataset)
    assert mixed.collate_fn is data.collate_fn and mixed[2]["subset"] == 1


def test_payload_and_short_order(corpus, unseen):
    from benchmark.streams import make_scenario

    sc = make_scenario(corpus, unseen, order="dance,Sports", payload=lambda i: f"tokens:{i}")
    assert [e.subset_name for e in sc.train_stream] == ["Dance", "Sports"]
    item = sc.valid_stream[1].dataset[0]
    assert item["features"] == f"tokens:{item['id']}" and item["subset"] == 1


def test_mixed_orders_and_errors(corpus, unseen):
    from benchmark.splits import ORDERS, make_splits
    from benchmark.streams import make_scenario

    mixed = make_splits(corpus, "mixed", seed=0)
    sc = make_scenario(corpus, mixed, order=3)
    assert [e.subset_name for e in sc.train_stream] == ORDERS["mixed"][3]
    with pytest.raises(DataError, match="Daily Life, Sports"):
        make_scenario(corpus, unseen, order="Dance,Ballet")
    with pytest.raises(DataError, match="lacks"):
        make_scenario(corpus, unseen[unseen["subset"] != "Game"], order=1)
