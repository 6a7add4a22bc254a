"""Evaluator API: save/load round trip, padding-correct embeddings, metric row, errors, cache, CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from benchmark.io import DataError
from evaluators import METRIC_KEYS, Evaluator
from evaluators.vocab import POS_ENUMERATOR, Vocabulary, load_vectors, pos_of


@pytest.fixture(scope="module")
def test_set(tiny_corpus):
    ids = tiny_corpus.part_ids("test")
    return ([tiny_corpus.features(i) for i in ids], [tiny_corpus.texts(i)[0] for i in ids],
            [tiny_corpus.emotion_index(i) for i in ids])


def test_folder_round_trip(tiny_evaluator, test_set):
    root = tiny_evaluator.root
    assert {p.name for p in root.iterdir()} >= {"config.json", "evaluator.safetensors", "report.json"}
    report = json.loads((root / "report.json").read_text())
    assert 0.0 <= report["emotion"]["test_weighted_f1"] <= 1.0
    assert len(report["test_real_vs_real"]["r_precision"]) == 3
    loaded = Evaluator.load(root)
    motions, texts, _ = test_set
    np.testing.assert_allclose(loaded.embed_motions(motions[:8]), tiny_evaluator.embed_motions(motions[:8]),
                               atol=1e-5)
    np.testing.assert_allclose(loaded.embed_texts(texts[:8]), tiny_evaluator.embed_texts(texts[:8]), atol=1e-5)
    assert loaded.content_hash == tiny_evaluator.content_hash


def test_the_hash_is_known_before_saving_and_a_legacy_torch_folder_loads(tiny_evaluator, test_set, tmp_path):
    """An unsaved evaluator's content hash is the one its saved folder will have; a folder written
    before the safetensors switch (evaluator.pt) loads to the same embeddings; damaged weights are
    a DataError naming the file."""
    ev = tiny_evaluator
    fresh = Evaluator(ev.config, ev.net, ev.emotion, ev.mean, ev.std)
    before = fresh.content_hash
    fresh.save(tmp_path / "new")
    assert before == Evaluator.load(tmp_path / "new").content_hash == ev.content_hash
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "config.json").write_bytes((ev.root / "config.json").read_bytes())
    torch.save({"t2m": ev.net.state_dict(), "emotion": ev.emotion.state_dict(),
                "mean": torch.from_numpy(ev.mean), "std": torch.from_numpy(ev.std)}, legacy / "evaluator.pt")
    old = Evaluator.load(legacy)
    motions, texts, _ = test_set
    np.testing.assert_array_equal(old.embed_motions(motions[:4]), ev.embed_motions(motions[:4]))
    np.testing.assert_array_equal(old.predict_emotions(motions[:4]), ev.predict_emotions(motions[:4]))
    assert old.content_hash != ev.content_hash          # a file hash: another format, another hash
    blob = (tmp_path / "new" / "evaluator.safetensors").read_bytes()
    (tmp_path / "new" / "evaluator.safetensors").write_bytes(blob[:100])
    with pytest.raises(DataError, match="evaluator.safetensors"):
        Evaluator.load(tmp_path / "new")


def test_embeddings_are_padding_and_batch_invariant(tiny_evaluator, test_set):
    motions, texts, _ = test_set
    ev = tiny_evaluator
    d = ev.config.dim_coemb
    short, long_ = min(motions, key=len), max(motions, key=len)
    alone = ev.embed_motions([short])
    batched = ev.embed_motions([long_, short, long_])
    assert alone.shape == (1, d) and batched.shape == (3, d)
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-5)      # packed: padding ignored
    t_alone = ev.embed_texts(["a person walks"])
    t_batch = ev.embed_texts(["someone jumps up and down happily while turning left twice", "a person walks"])
    np.testing.assert_allclose(t_batch[1], t_alone[0], atol=1e-5)
    # longer than 196 frames: only the first 196 count; shorter than 4: padded, still embedded
    very_long = np.concatenate([long_] * (1 + 200 // len(long_)))
    np.testing.assert_allclose(ev.embed_motions([very_long]), ev.embed_motions([very_long[:196]]), atol=1e-5)
    assert np.isfinite(ev.embed_motions([short[:2]])).all()
    assert ev.predict_emotions(motions[:5]).shape == (5,)


def test_evaluate_real_vs_real(tiny_evaluator, test_set, tmp_path):
    motions, texts, emotions = test_set
    ev = Evaluator.load(tiny_evaluator.root, cache_dir=tmp_path)
    row = ev.evaluate(motions, texts, emotions, motions, repeats=3, seed=0, batch_size=32)
    assert set(METRIC_KEYS) <= set(row)
    assert row["n"] == len(motions) and row["r_precision_batch"] == min(32, len(motions))
    assert row["fid"] == pytest.approx(0.0, abs=1e-6)
    assert row["r_precision_top1"] <= row["r_precision_top2"] <= row["r_precision_top3"]
    assert row["r_precision_top3"] > 3.0 / row["r_precision_batch"]  # trained: above chance
    assert math.isnan(row["multimodality"]) and "r_precision_top1_ci95" in row
    # the second evaluation reads the cached ground-truth statistics
    assert len(list(tmp_path.glob("gt_stats_*.npz"))) == 1
    ev.embed_motions_orig = ev.embed_motions
    calls = []
    ev.embed_motions = lambda ms, **kw: calls.append(len(ms)) or ev.embed_motions_orig(ms)
    again = ev.evaluate(motions, texts, emotions, motions, seed=0)
    assert calls == [len(motions)]                # only the generated set was embedded
    assert again["fid"] == pytest.approx(row["fid"], abs=1e-6)


def test_kid_uses_the_cached_reference_embeddings_and_refreshes_an_old_cache(tiny_evaluator, test_set,
                                                                             tmp_path):
    from evaluators import metrics as M

    motions, texts, emotions = test_set
    ev = Evaluator.load(tiny_evaluator.root, cache_dir=tmp_path)
    half = len(motions) // 2
    row = ev.evaluate(motions[:32], texts[:32], emotions[:32], motions[half:], seed=0)
    expected = M.kernel_inception_distance(ev.embed_motions(motions[:32]), ev.embed_motions(motions[half:]))
    assert row["kid"] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    # a cache written before KID (mu and sigma only) is refreshed, not trusted without embeddings
    (path,) = tmp_path.glob("gt_stats_*.npz")
    with np.load(path) as z:
        mu, sigma = z["mu"], z["sigma"]
    np.savez(path, mu=mu, sigma=sigma)
    assert ev.evaluate(motions[:32], texts[:32], emotions[:32], motions[half:], seed=0)["kid"] == \
        pytest.approx(row["kid"], rel=1e-6, abs=1e-9)
    with np.load(path) as z:
        assert "emb" in z


def test_evaluate_multimodality_and_small_batch(tiny_evaluator, test_set):
    motions, texts, emotions = test_set
    ev = tiny_evaluator
    n = 10
    mm = [[m, m[: max(4, len(m) // 2)], m[::-1].copy()] for m in motions[:n]]
    # fewer motions than one full batch of 32: refused, never a smaller batch with another chance
    with pytest.raises(DataError, match="full batch of 32"):
        ev.evaluate(motions[:n], texts[:n], emotions[:n], motions, mm_generated=mm, batch_size=32)
    # an explicit smaller batch (smoke tests only) is recorded with its chance level
    row = ev.evaluate(motions[:n], texts[:n], emotions[:n], motions, mm_generated=mm, batch_size=5)
    assert row["r_precision_batch"] == 5 and row["chance_top1"] == pytest.approx(1 / 5)
    assert row["diversity_pairs"] == 45 and row["multimodality_pairs"] == 3   # all distinct pairs
    assert np.isfinite(row["multimodality"]) and row["multimodality"] > 0


@pytest.mark.parametrize("bad, match", [
    ([], "empty"),
    ([np.zeros((10, 200), np.float32)], "shape"),
    ([np.full((10, 263), np.nan, np.float32)], "NaN"),
])
def test_evaluate_bad_input(tiny_evaluator, test_set, bad, match):
    motions, texts, emotions = test_set
    with pytest.raises(DataError, match=match):
        tiny_evaluator.evaluate(bad, texts[: len(bad)], emotions[: len(bad)], motions)
    with pytest.raises(DataError, match="same length"):
        tiny_evaluator.evaluate(motions[:4], texts[:3], emotions[:4], motions)


def test_load_errors(tiny_evaluator, tmp_path):
    with pytest.raises(DataError, match="missing"):
        Evaluator.load(tmp_path)
    broken = tmp_path / "broken"
    tiny_evaluator.save(broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["vocab"] = cfg["vocab"] + ["extraword"]
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="do not match"):
        Evaluator.load(broken)


def test_check_corpus(tiny_evaluator, tiny_corpus):
    tiny_evaluator.check_corpus(tiny_corpus)
    ev = Evaluator.load(tiny_evaluator.root)
    ev.config.emotions = list(reversed(ev.config.emotions))
    with pytest.raises(DataError, match="emotions"):
        ev.check_corpus(tiny_corpus)


def test_vocabulary_pos_and_vectors(tmp_path):
    vocab = Vocabulary.build(["A person walks forward.", "a man jumps#a/DET man/NOUN#0.0#0.0"])
    ids, pos = vocab.encode("a person walks to the moon")
    assert vocab.words[ids[0]] == "sos" and vocab.words[ids[-1]] == "eos"
    assert ids[-2] == 0                                       # "moon" unknown -> unk
    assert pos[1] == POS_ENUMERATOR["DET"] and pos_of("walks") == "Act_VIP" and pos_of("left") == "Loc_VIP"
    glove = tmp_path / "vec.txt"
    glove.write_text("person 1 2\nwalks 3 4\nunk 9 9\n")
    table, coverage = load_vectors(glove, vocab)
    assert table.shape == (len(vocab), 2)
    assert table[vocab.index["walks"]].tolist() == [3, 4] and table[vocab.index["man"]].tolist() == [9, 9]
    assert 0 < coverage < 1
    with pytest.raises(DataError):
        load_vectors(tmp_path / "missing.txt", vocab)


def test_cli_score(tiny_evaluator, tiny_corpus_dir, capsys):
    from harness.cli import main

    rc = main(["evaluator", "score", "--evaluator", str(tiny_evaluator.root), "--data",
               str(tiny_corpus_dir), "--repeats", "2"])
    out = capsys.readouterr().out
    assert rc == 0 and "r_precision_top1" in out and "real vs real" in out


def test_margin_loss_matches_definition():
    from evaluators.config import preset_config
    from evaluators.train import contrastive_loss

    cfg = preset_config("test", loss="margin", margin=2.0)
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    m = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    # positives at distance 0, negatives (rolled by 1) at distance 1: (2 - 1)^2 = 1
    assert contrastive_loss(t, m, cfg).item() == pytest.approx(1.0)
    cfg = preset_config("test")
    far = torch.tensor([[0.0, 0.0], [100.0, 0.0]])
    assert contrastive_loss(far, far, cfg).item() == pytest.approx(0.0, abs=1e-6)
