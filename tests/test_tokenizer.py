"""VQ-VAE motion tokenizer: quantiser known answers, shapes, batching, save/load, training."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from benchmark.io import DataError
from benchmark.tokenizer import PRESETS, MotionTokenizer, VQVAEConfig, fit_vqvae, get_preset
from benchmark.tokenizer.quantizer import EMAQuantizer, perplexity_of
from benchmark.tokenizer.train import WindowSampler, lr_factor
from benchmark.tokenizer.vqvae import VQVAE

F = 263


def synth_motions(n: int, seed: int, lo: int = 40, hi: int = 120) -> list[np.ndarray]:
    """Smooth low-rank motions: 3 random sinusoids mixed into 263 dims."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(123).normal(size=(3, F)).astype(np.float32)
    out = []
    for _ in range(n):
        t = np.arange(rng.integers(lo, hi))[:, None] / 20.0
        out.append((np.sin(2 * np.pi * rng.uniform(0.2, 1, 3) * t + rng.uniform(0, 6, 3)) @ mix)
                   .astype(np.float32))
    return out


@pytest.fixture(scope="module")
def data():
    train, test = synth_motions(80, 0), synth_motions(20, 1)
    allf = np.concatenate(train)
    return train, test, allf.mean(0), allf.std(0)


@pytest.fixture(scope="module")
def trained(data):
    train, _, mean, std = data
    return fit_vqvae(train, mean, std, get_preset("test"), seed=0)


def feature_error(tok: MotionTokenizer, motions: list[np.ndarray]) -> float:
    recon = tok.decode_batch(tok.encode_batch(motions))
    std = tok.std.numpy()
    return float(np.mean([np.abs((m[: len(r)] - r) / std).mean() for m, r in zip(motions, recon)]))


# ----------------------------------------------------------------------------- quantiser
def test_nearest_code_on_hand_built_vectors():
    q = EMAQuantizer(3, 2)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    x = torch.tensor([[1.0, 1.0], [9.0, -1.0], [-1.0, 7.0], [4.0, 0.0], [6.0, 0.0]])
    assert q.nearest(x).tolist() == [0, 1, 2, 0, 1]
    assert q.lookup(torch.tensor([[2, 1]])).shape == (1, 2, 2)


def test_ema_update_moves_codes_toward_assigned_vectors():
    q = EMAQuantizer(2, 2, mu=0.5)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    q.code_sum.copy_(q.codebook * 2.0)
    q.code_count.fill_(2.0)
    x = torch.tensor([[2.0, 0.0], [4.0, 0.0], [12.0, 10.0]])
    q.ema_update(x, q.nearest(x))
    # code 0: sum 0.5*0 + 0.5*(6,0) = (3,0); count 0.5*2 + 0.5*2 = 2 -> (1.5, 0)
    # code 1: sum 0.5*(20,20) + 0.5*(12,10) = (16,15); count 0.5*2 + 0.5*1 = 1.5
    assert torch.allclose(q.codebook, torch.tensor([[1.5, 0.0], [16 / 1.5, 10.0]]))


def test_dead_code_is_reset_to_a_current_encoder_output():
    torch.manual_seed(0)
    q = EMAQuantizer(2, 2, mu=0.5)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0]]))
    q.code_sum.copy_(q.codebook)
    q.code_count.fill_(1.0)
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])   # all nearest to code 0
    q.ema_update(x, q.nearest(x))                              # code 1 count: 0.5 < 1 -> reset
    assert q.code_count[1] == pytest.approx(0.5)
    assert any(torch.equal(q.codebook[1], row) for row in x)


def test_codebook_initialised_from_first_batch_and_perplexity():
    torch.manual_seed(0)
    q = EMAQuantizer(4, 3).train()
    z = torch.randn(2, 3, 5)
    out = q(z)
    rows = z.permute(0, 2, 1).reshape(-1, 3)
    assert bool(q.initialised) and out.quantized.shape == z.shape and out.ids.shape == (2, 5)
    assert q.code_count.sum() > 0
    fresh = EMAQuantizer(4, 3)
    fresh.init_codebook(rows)
    assert all((rows == fresh.codebook[k]).all(1).any() for k in range(4))   # init rows are inputs
    assert torch.equal(fresh.code_count, torch.ones(4))
    assert float(perplexity_of(torch.tensor([0, 0, 0, 0]), 4)) == pytest.approx(1.0, abs=1e-4)
    assert float(perplexity_of(torch.tensor([0, 1, 2, 3]), 4)) == pytest.approx(4.0, abs=1e-4)


# ----------------------------------------------------------------------------- model and wrapper
def test_vqvae_shapes_and_straight_through_gradient():
    cfg = PRESETS["test"].model
    model = VQVAE(cfg).train()
    x = torch.randn(3, 32, F, requires_grad=True)
    out = model(x)
    assert out.recon.shape == (3, 32, F) and out.ids.shape == (3, 8) and out.ids.dtype == torch.int64
    out.recon.sum().backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0      # gradient passes the quantiser


def test_encode_decode_shapes_dtypes_and_batched_equals_single(trained, data):
    tok, _ = trained
    motions = data[1][:6] + [data[1][0][:13]]                       # 13 frames -> 3 ids (crop)
    ids = tok.encode_batch(motions)
    for m, i in zip(motions, ids):
        assert i.dtype == np.int64 and i.shape == (len(m) // 4,)
        assert i.min() >= 0 and i.max() < tok.codebook_size
    assert all(np.array_equal(a, tok.encode(m)) for a, m in zip(ids, motions))
    feats = tok.decode_batch(ids)
    for f, i in zip(feats, ids):
        assert f.shape == (4 * len(i), F) and f.dtype == np.float32
        np.testing.assert_allclose(f, tok.decode(i), atol=1e-4)
    assert tok.downsample == 4 and tok.codebook_size == PRESETS["test"].model.nb_code


def test_bad_inputs_raise_clear_errors(trained):
    tok, _ = trained
    good = np.zeros((16, F), np.float32)
    with pytest.raises(DataError, match=r"shape \(T, 263\)"):
        tok.encode(np.zeros((16, 200), np.float32))
    bad = good.copy()
    bad[3, 7] = np.nan
    with pytest.raises(DataError, match="NaN"):
        tok.encode_batch([good, bad])
    with pytest.raises(DataError, match="fewer than one token"):
        tok.encode(good[:3])
    with pytest.raises(DataError, match="outside"):
        tok.decode(np.array([0, tok.codebook_size]))
    with pytest.raises(DataError, match="integer"):
        tok.decode(np.array([0.5, 1.0]))


# ----------------------------------------------------------------------------- save / load
def test_save_load_round_trip_gives_identical_ids(trained, data, tmp_path):
    tok, _ = trained
    tok.save(tmp_path / "vq")
    assert sorted(p.name for p in (tmp_path / "vq").iterdir()) == ["config.json", "mean.npy",
                                                                   "std.npy", "vqvae.safetensors"]
    back = MotionTokenizer.load(tmp_path / "vq")
    assert back.content_hash == tok.content_hash and back.config == tok.config
    for a, b in zip(tok.encode_batch(data[1]), back.encode_batch(data[1])):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match="already exists"):
        tok.save(tmp_path / "vq")


def test_a_legacy_torch_folder_loads_to_the_same_tokenizer(trained, data, tmp_path):
    """Folders written before the safetensors switch (vqvae.pt) still load, with the same content
    hash (it is over tensors, not file bytes); a damaged safetensors file is a DataError."""
    import torch

    tok, _ = trained
    tok.save(tmp_path / "vq")
    torch.save(tok.vqvae.state_dict(), tmp_path / "vq" / "vqvae.pt")
    (tmp_path / "vq" / "vqvae.safetensors").rename(tmp_path / "vqvae.safetensors")
    legacy = MotionTokenizer.load(tmp_path / "vq")
    assert legacy.content_hash == tok.content_hash
    np.testing.assert_array_equal(legacy.encode(data[1][0]), tok.encode(data[1][0]))
    (tmp_path / "vq" / "vqvae.pt").unlink()
    with pytest.raises(DataError, match="vqvae.safetensors"):
        MotionTokenizer.load(tmp_path / "vq")                           # no weights at all
    blob = (tmp_path / "vqvae.safetensors").read_bytes()
    (tmp_path / "vq" / "vqvae.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="cannot be read as safetensors"):
        MotionTokenizer.load(tmp_path / "vq")


def test_load_validates_folder(trained, tmp_path):
    tok, _ = trained
    with pytest.raises(DataError, match="not found"):
        MotionTokenizer.load(tmp_path / "nope")
    tok.save(tmp_path / "a")
    (tmp_path / "a" / "std.npy").unlink()
    with pytest.raises(DataError, match="lacks std.npy"):
        MotionTokenizer.load(tmp_path / "a")
    tok.save(tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "config.json").read_text())
    meta["model"]["feature_dim"] = 251
    (tmp_path / "b" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="feature_dim"):
        MotionTokenizer.load(tmp_path / "b")
    tok.save(tmp_path / "c")
    np.save(tmp_path / "c" / "mean.npy", np.ones(F, np.float32))
    with pytest.raises(DataError, match="content_hash"):
        MotionTokenizer.load(tmp_path / "c")


# ----------------------------------------------------------------------------- training
def test_training_lowers_reconstruction_error(trained, data):
    train, test, mean, std = data
    untrained, _ = fit_vqvae(train, mean, std, get_preset("test", iters=1), seed=0)
    tok, history = trained
    before, after = feature_error(untrained, test), feature_error(tok, test)
    assert after < 0.5 * before, (before, after)
    assert history[-1]["rec"] < history[0]["rec"]
    assert history[-1]["iter"] == PRESETS["test"].train.iters


def test_training_is_reproducible_per_seed(data):
    train, _, mean, std = data
    preset = get_preset("test", iters=5)
    a = fit_vqvae(train, mean, std, preset, seed=3)[0]
    b = fit_vqvae(train, mean, std, preset, seed=3)[0]
    c = fit_vqvae(train, mean, std, preset, seed=4)[0]
    assert a.content_hash == b.content_hash != c.content_hash


def test_window_sampler_and_lr_schedule():
    motions = [np.arange(10 * 2, dtype=np.float32).reshape(10, 2), np.zeros((3, 2), np.float32),
               100 + np.arange(8 * 2, dtype=np.float32).reshape(8, 2)]
    s = WindowSampler(motions, 5, torch.device("cpu"), torch.Generator().manual_seed(0))
    w = s.sample(64)
    assert w.shape == (64, 5, 2) and s.n_motions == 2                 # the 3-frame motion is skipped
    assert torch.all(w[:, 1:, 0] - w[:, :-1, 0] == 2)                 # contiguous frames of one motion
    assert torch.all((w[:, 0, 0] <= 10) | (w[:, -1, 0] <= 114))       # never past a motion's end
    with pytest.raises(DataError, match="no training motion"):
        WindowSampler(motions, 11, torch.device("cpu"), torch.Generator())
    cfg = dataclasses.replace(PRESETS["paper"].train, iters=300, warmup=10, milestones=(0.5,), gamma=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1) and lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(149, cfg) == 1.0 and lr_factor(150, cfg) == pytest.approx(0.1)


def test_config_validation():
    with pytest.raises(ValueError, match="mu"):
        VQVAEConfig(mu=1.5)
    with pytest.raises(ValueError, match="unknown tokenizer preset"):
        get_preset("huge")
    assert VQVAEConfig(down_t=3).downsample == 8
    paper = PRESETS["paper"]
    assert (paper.model.nb_code, paper.model.code_dim, paper.model.width) == (512, 512, 512)
    assert (paper.train.batch_size, paper.train.window, paper.train.iters) == (256, 64, 300_000)


# ----------------------------------------------------------------------------- corpus + CLI
def test_train_tokenizer_on_corpus_writes_report(tiny_tokenizer, tiny_corpus):
    tok = tiny_tokenizer
    report = tok.report
    assert report["n_train_motions"] == int((tiny_corpus.labels["part"] == "train").sum())
    test = report["test"]
    assert test["n_motions"] == int((tiny_corpus.labels["part"] == "test").sum())
    assert 0 < test["codebook_usage"] <= 1 and 1 <= test["perplexity"] <= tok.codebook_size
    assert np.isfinite(test["mpjpe_mm"]) and test["mpjpe_mm"] > 0
    assert tok.corpus_hash == tiny_corpus.content_hash
    ids = tok.encode(tiny_corpus.features(tiny_corpus.ids[0]))
    assert ids.dtype == np.int64


@pytest.mark.slow
def test_cli_tokenizer_train(tiny_corpus_dir, tmp_path):
    from harness.cli import main

    out = tmp_path / "vq"
    args = ["tokenizer", "train", "--data", str(tiny_corpus_dir), "--out", str(out), "--preset", "test",
            "--iters", "20"]
    assert main(args) == 0
    assert {"config.json", "vqvae.safetensors", "mean.npy", "std.npy", "report.json"} <= {p.name for p in out.iterdir()}
    report = json.loads((out / "report.json").read_text())
    assert report["iters"] == 20 and "mpjpe_mm" in report["test"]
    assert MotionTokenizer.load(out).content_hash == json.loads((out / "config.json").read_text())["content_hash"]
    assert main(args) == 2                                              # exists, no --overwrite
