"""MotionLM: vocabulary, batches (prompt masking), constrained KV-cache generation, loading errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmark.backbone import GenerationSettings, MotionLM, MotionTokenConstraint
from benchmark.backbone.tiny import INSTRUCTION
from benchmark.io import DataError

K = 16


@pytest.fixture()
def mlm(tiny_backbone_dir):
    return MotionLM.from_pretrained(tiny_backbone_dir, n_codes=K)


def test_tiny_backbone_folder_is_a_hf_model(tiny_backbone_dir):
    meta = json.loads((tiny_backbone_dir / "backbone.json").read_text())
    cfg = json.loads((tiny_backbone_dir / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["num_hidden_layers"] == 2
    assert meta["vocab_size"] == cfg["vocab_size"] and meta["n_texts"] == 6


def test_motion_tokens_are_contiguous_and_resized(mlm):
    tok = mlm.tokenizer
    assert tok.convert_tokens_to_ids("<motion_0>") == mlm.motion_offset
    assert tok.convert_tokens_to_ids(f"<motion_{K - 1}>") == mlm.motion_offset + K - 1
    assert tok.convert_tokens_to_ids("<som>") == mlm.som_id == mlm.motion_offset + K
    assert tok.convert_tokens_to_ids("<eom>") == mlm.eom_id == mlm.som_id + 1
    assert mlm.model.get_input_embeddings().weight.shape[0] == mlm.vocab_size >= mlm.eom_id + 1
    assert mlm.model.get_output_embeddings().weight.shape[0] == mlm.vocab_size


def test_build_batch_masks_prompt_and_padding(mlm):
    codes = [np.array([3, 1, 4, 1, 5]), np.array([9])]
    b = mlm.build_batch(["a person walks forward happily", "someone jumps"], codes)
    ids, mask, labels = b["input_ids"], b["attention_mask"], b["labels"]
    assert ids.shape == mask.shape == labels.shape and ids.dtype == torch.int64
    for i, c in enumerate(codes):
        target = [mlm.som_id, *(c + mlm.motion_offset).tolist(), mlm.eom_id]
        kept = labels[i][labels[i] != -100].tolist()
        assert kept == target                                 # only <som> codes <eom> supervised
        n = int(mask[i].sum())
        assert ids[i, n - len(target): n].tolist() == target  # target ends the real tokens
        assert (labels[i, n:] == -100).all() and (mask[i, n:] == 0).all()
    prompt = mlm.tokenizer.decode(ids[0, : int(mask[0].sum()) - len(codes[0]) - 2])
    assert INSTRUCTION.lower().rstrip(".") in prompt.lower()
    with pytest.raises(ValueError, match="motion ids"):
        mlm.build_batch(["x"], [np.array([K])])


def test_build_batch_pads_caps_and_takes_empty_motions(mlm):
    """Known answer, row by row: prompt ids + <som> codes <eom>, pad id after; motions capped at
    max_motion_tokens; an empty motion is <som> <eom>; lists and int32 arrays accepted."""
    cap = mlm.config.max_motion_tokens
    codes = [[k % K for k in range(cap + 7)], np.array([], dtype=np.int64), np.array([2, 0], dtype=np.int32)]
    texts = ["someone jumps", "a sad man sits down slowly", "x"]
    b = mlm.build_batch(texts, codes)
    prompts = mlm.prompt_ids(texts)
    pad = mlm.tokenizer.pad_token_id
    width = max(len(p) + min(len(c), cap) + 2 for p, c in zip(prompts, codes))
    assert b["input_ids"].shape == (3, width)
    for i, (p, c) in enumerate(zip(prompts, codes)):
        target = [mlm.som_id, *(mlm.motion_offset + np.asarray(c[:cap], dtype=np.int64)).tolist(), mlm.eom_id]
        row = p + target
        assert b["input_ids"][i].tolist() == row + [pad] * (width - len(row))
        assert b["labels"][i].tolist() == [-100] * len(p) + target + [-100] * (width - len(row))
        assert b["attention_mask"][i].tolist() == [1] * len(row) + [0] * (width - len(row))


def test_constraint_allows_only_motion_and_eom(mlm):
    allowed = torch.cat([mlm.motion_token_ids, torch.tensor([mlm.eom_id])])
    proc = MotionTokenConstraint(allowed, mlm.vocab_size)
    scores = proc(torch.zeros(2, 3, dtype=torch.long), torch.randn(2, mlm.vocab_size))
    finite = torch.isfinite(scores[0]).nonzero().flatten()
    assert finite.tolist() == allowed.tolist()


def test_generate_returns_codes_and_respects_eom(mlm):
    torch.manual_seed(0)
    out = mlm.generate(["a sad man sits down slowly"] * 3, GenerationSettings(max_new_tokens=8))
    assert len(out) == 3
    for codes in out:
        assert codes.dtype == np.int64 and len(codes) <= 8
        assert ((codes >= 0) & (codes < K)).all()
    # parse: codes stop at the first <eom>; an immediate <eom> is an empty (failed) output
    o = mlm.motion_offset
    new = torch.tensor([[o + 2, o + 3, mlm.eom_id, o + 1], [mlm.eom_id, o, o, o]])
    parsed = mlm.parse_generated(new)
    assert parsed[0].tolist() == [2, 3] and parsed[1].size == 0


def test_greedy_generation_follows_a_trained_model(mlm):
    """After fitting one (text -> codes) pair, greedy KV-cache decoding reproduces it."""
    target = np.array([5, 5, 7, 2])
    batch = mlm.build_batch(["a fearful woman backs away"], [target])
    opt = torch.optim.AdamW(mlm.model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for _ in range(60):
        opt.zero_grad()
        mlm.model(**batch).loss.backward()
        opt.step()
    out = mlm.generate(["a fearful woman backs away"], GenerationSettings(do_sample=False))
    assert out[0].tolist() == target.tolist()


def test_backbone_without_tokenizer_is_refused(tiny_backbone_dir, tmp_path):
    (tmp_path / "config.json").write_text((tiny_backbone_dir / "config.json").read_text())
    with pytest.raises(DataError, match="no tokenizer"):
        MotionLM.from_pretrained(tmp_path, n_codes=K)
    with pytest.raises(DataError, match="config.json"):
        MotionLM.from_pretrained(tmp_path / "nowhere", n_codes=K)
