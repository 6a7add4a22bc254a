"""HumanML3D-format reader/writer: real sample data, round trips and every bad-input case."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from benchmark.corpus import EMOTIONS, SCENARIOS, Motion, assign_parts, load_corpus, write_humanml3d
from benchmark.io import DataError


@pytest.fixture()
def sample_copy(humanml3d_sample, tmp_path):
    """A writable copy of the real sample with a texts file and a labels.csv for id 012314."""
    root = tmp_path / "hml"
    shutil.copytree(humanml3d_sample, root)
    root.chmod(0o755)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (root / "texts").mkdir()
    (root / "texts" / "012314.txt").write_text(
        "a person walks forward happily.#a/DET person/NOUN walk/VERB forward/ADV happily/ADV#0.0#0.0\n"
        "someone strolls cheerfully.#someone/PRON stroll/VERB cheerfully/ADV#0.0#0.0\n")
    (tmp_path / "labels.csv").write_text("id,scenario,emotion\n012314,daily_life,happy\n")
    return root


def test_reads_real_humanml3d_sample(sample_copy, humanml3d_sample):
    c = load_corpus(sample_copy, sample_copy.parent / "labels.csv", validate="full")
    assert c.ids == ["012314"]                                     # leading zeros kept
    row = c.row("012314")
    assert row["scenario"] == "Daily Life" and row["emotion"] == "happy"
    assert row["part"] in ("train", "val", "test") and row["n_frames"] == 170
    feats = c.features("012314")
    assert feats.shape == (170, 263) and feats.dtype == np.float32
    assert np.array_equal(feats, np.load(humanml3d_sample / "new_joint_vecs" / "012314.npy"))
    assert c.texts("012314") == ["a person walks forward happily.", "someone strolls cheerfully."]
    assert np.array_equal(c.mean, np.load(humanml3d_sample / "Mean.npy"))
    assert c.scenario_index("012314") == 0 and c.emotion_index("012314") == EMOTIONS.index("happy")
    assert len(c.content_hash) == 16


def _motions(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [Motion(id=f"{i:06d}", features=rng.normal(i % 3, 1, size=(30 + i, 263)).astype(np.float32),
                   texts=[f"a person does thing {i}."], scenario=SCENARIOS[i % 8],
                   emotion=EMOTIONS[i % 7], joints=rng.normal(size=(31 + i, 22, 3)))
            for i in range(n)]


def test_writer_round_trip(tmp_path):
    motions = _motions()
    root = write_humanml3d(tmp_path / "c", motions, config={"origin": "test"})
    c = load_corpus(root)
    assert c.ids == [m.id for m in motions]
    for m in motions[::5]:
        assert np.array_equal(c.features(m.id), m.features)
        assert c.texts(m.id) == [m.texts[0]]
        assert c.joints(m.id).shape == (len(m.features) + 1, 22, 3)
    train = np.concatenate([m.features for m, p in zip(motions, c.labels["part"]) if p == "train"])
    assert np.allclose(c.mean, train.mean(0), atol=1e-5)
    assert c.meta["config"] == {"origin": "test"} and c.meta["n_motions"] == 40


def test_parts_are_stratified_and_deterministic():
    ids = [f"m{i:04d}" for i in range(700)]
    df = pd.DataFrame({"id": ids, "scenario": [SCENARIOS[i % 2] for i in range(700)],
                       "emotion": [EMOTIONS[i % 7] for i in range(700)]})
    parts = assign_parts(df, seed=0)
    assert parts.equals(assign_parts(df.sample(frac=1, random_state=1), seed=0).loc[df.index])
    assert not parts.equals(assign_parts(df, seed=1))
    counts = pd.crosstab([df["scenario"], df["emotion"]], parts)
    assert counts["test"].between(6, 9).all() and counts["val"].between(1, 4).all()
    assert (parts == "test").sum() == pytest.approx(0.15 * 700, abs=2)


def _broken(tmp_path, edit):
    root = write_humanml3d(tmp_path / "c", _motions(12))
    edit(root)
    return root


@pytest.mark.parametrize("case, match", [
    ("wrong_dim", "expected \\(T, 263\\)"),
    ("truncated", "truncated"),
    ("not_float", "expected floats"),
    ("garbage", "not a readable .npy"),
    ("no_text", "missing or empty"),
    ("empty_text", "missing or empty"),
    ("bad_scenario", "unknown scenario"),
    ("bad_emotion", "unknown emotion"),
    ("ghost_id", "no motion file"),
    ("duplicate_id", "repeats id"),
    ("missing_column", "lacks column"),
])
def test_bad_inputs_raise_dataerror_naming_the_file(tmp_path, case, match):
    def edit(root):
        vec = root / "new_joint_vecs" / "000003.npy"
        labels = root / "labels.csv"
        df = pd.read_csv(labels, dtype=str)
        if case == "wrong_dim":
            np.save(vec, np.zeros((20, 251), np.float32))
        elif case == "truncated":
            vec.write_bytes(vec.read_bytes()[:-100])
        elif case == "not_float":
            np.save(vec, np.zeros((20, 263), np.int32))
        elif case == "garbage":
            vec.write_bytes(b"not numpy at all")
        elif case == "no_text":
            (root / "texts" / "000003.txt").unlink()
        elif case == "empty_text":
            (root / "texts" / "000003.txt").write_text("")
        elif case == "bad_scenario":
            df.loc[3, "scenario"] = "Cooking"
        elif case == "bad_emotion":
            df.loc[3, "emotion"] = "bored"
        elif case == "ghost_id":
            df.loc[len(df)] = ["999999", "Dance", "sad", "synthetic", "train"]
        elif case == "duplicate_id":
            df = pd.concat([df, df.iloc[[3]]])
        elif case == "missing_column":
            df = df.drop(columns=["emotion"])
        df.to_csv(labels, index=False)

    root = _broken(tmp_path, edit)
    with pytest.raises(DataError, match=match) as err:
        load_corpus(root)
    assert err.value.path and err.value.fix
    name = err.value.path
    assert name.endswith(("000003.npy", "000003.txt", "labels.csv")), name


def test_nan_frames_found_on_access_and_by_full_validation(tmp_path):
    def edit(root):
        f = np.zeros((20, 263), np.float32)
        f[7, 5] = np.nan
        np.save(root / "new_joint_vecs" / "000003.npy", f)

    root = _broken(tmp_path, edit)
    c = load_corpus(root)                                  # cheap validation: headers only
    with pytest.raises(DataError, match="frame 7") as err:
        c.features("000003")
    assert err.value.path.endswith("000003.npy")
    with pytest.raises(DataError, match="NaN"):
        load_corpus(root, validate="full")


def test_missing_part_column_assigned_like_the_writer(tmp_path):
    root = write_humanml3d(tmp_path / "c", _motions(30))
    df = pd.read_csv(root / "labels.csv", dtype=str)
    df.drop(columns=["part"]).to_csv(tmp_path / "user.csv", index=False)
    c = load_corpus(root, tmp_path / "user.csv")
    assert c.labels["part"].tolist() == df["part"].tolist()


def test_writer_rejects_nan_and_missing_text(tmp_path):
    bad = _motions(3)
    bad[1].features[2, 0] = np.inf
    with pytest.raises(DataError, match="finite"):
        write_humanml3d(tmp_path / "c", bad)
    assert not (tmp_path / "c").exists()                  # nothing half-written
    bad = _motions(3)
    bad[0].texts = ["  "]
    with pytest.raises(DataError, match="no text"):
        write_humanml3d(tmp_path / "d", bad)
