"""Pretraining the default ``tiny`` backbone before the stream, as LLaMA-2 is pretrained before
the paper's stream: a stage built once by content hash and reused by every run.

Recipes (``PretrainConfig.recipe``):

* ``none``   the random-init LLaMA (the behaviour before this stage existed);
* ``text``   causal language modelling, all parameters, on the instruction + the captions of the
  corpus's *train* part (never a val/test caption): the analogue of an LLM that knows the
  language of the prompts but no motion;
* ``text+motion``  ``text``, then a motion-language warm-up: the motion tokens are added to the
  vocabulary and the model learns to continue the instruction with the motion tokens of a
  separate pool of *generic* motions that belongs to no scenario (a synthetic corpus built
  with its own seed, neutral emotion only, every caption replaced by one generic sentence), so
  it learns the grammar of motion tokens (lengths, ``<eom>``, smooth code sequences) but no
  caption -> motion mapping of any scenario.

The output is a normal Hugging Face model folder (``MotionLM.from_pretrained`` loads it like
any other); ``backbone.json`` records the recipe, its settings, the hash of the pretraining
texts (and of the motion pool) and the final training losses.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmark.io import DataError, atomic_dir, atomic_write_json, hash_json
from benchmark.seed import seeded

RECIPES = ("none", "text", "text+motion")
GENERIC_CAPTION = "a person moves."


@dataclass
class PretrainConfig:
    """How the tiny backbone is pretrained (part of the backbone stage's hash)."""

    recipe: str = "text"
    text_steps: int = 800
    motion_steps: int = 400
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    motion_pool_scale: float = 0.01     # generic pool: synthetic corpus scale (neutral only)
    motion_pool_seed: int = 1234
    seed: int = 0

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown pretraining recipe {self.recipe!r}; choose one of {RECIPES}")
        for name in ("text_steps", "motion_steps", "batch_size"):
            if getattr(self, name) < 0 or (name == "batch_size" and self.batch_size < 1):
                raise ValueError(f"{name} must be >= 0 (batch_size >= 1), got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


def _train(model, batches, steps: int, cfg: PretrainConfig, rng: np.random.Generator) -> list[float]:
    """AdamW with a cosine schedule over ``steps`` steps of ``batches(rng)``; loss per step."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 20)) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    losses = []
    from benchmark import progress

    bar = progress.bar(steps, "backbone pretraining", unit="step")
    for _ in range(steps):
        batch = batches(rng)
        out = model(**batch)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(float(out.loss.detach()))
        bar.update(1)
        if len(losses) % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
    bar.close()
    model.eval()
    return losses


def _text_batches(tokenizer, texts: Sequence[str], batch_size: int):
    """Sampler of LM batches ``<s> instruction caption </s>`` (pads masked out of the loss)."""
    import torch

    from benchmark.backbone.tiny import INSTRUCTION

    encoded = [tokenizer(f"{INSTRUCTION} {t}")["input_ids"] + [tokenizer.eos_token_id] for t in texts]

    def sample(rng):
        rows = [encoded[i] for i in rng.integers(0, len(encoded), batch_size)]
        return _pad(rows, tokenizer.pad_token_id, torch)
    return sample


def _pad(rows: list[list[int]], pad_id: int, torch):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pretrain_backbone(folder: str | Path, texts: Sequence[str], cfg: PretrainConfig,
                      motion_codes: Sequence[np.ndarray] | None = None, n_codes: int = 0,
                      max_motion_tokens: int = 49) -> dict:
    """Pretrain the model saved in ``folder`` in place (call inside the stage's ``atomic_dir``);
    returns the record written into ``backbone.json["pretrain"]``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    record: dict = {"config": dataclasses.asdict(cfg), "texts_hash": hash_json(sorted(texts)),
                    "n_texts": len(texts)}
    if cfg.recipe == "none":
        return record
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    rng = np.random.default_rng([cfg.seed, 11])
    with seeded(cfg.seed):
        losses = _train(model, _text_batches(tokenizer, texts, cfg.batch_size), cfg.text_steps, cfg, rng)
        record["text_loss"] = {"first": float(np.mean(losses[:20])) if losses else None,
                               "last": float(np.mean(losses[-50:])) if losses else None}
        if cfg.recipe == "text+motion":
            if not motion_codes:
                raise DataError(folder, "the text+motion recipe needs a motion pool",
                                "pass the generic pool's motion codes (built by the stage)")
            from benchmark.backbone.motion_lm import MotionLM, MotionLMConfig

            mlm = MotionLM(model, tokenizer, n_codes, MotionLMConfig(max_motion_tokens=max_motion_tokens))
            codes = [np.asarray(c) for c in motion_codes if len(c)]

            def motion_batches(r):
                pick = r.integers(0, len(codes), cfg.batch_size)
                return mlm.build_batch([GENERIC_CAPTION] * cfg.batch_size, [codes[i] for i in pick])
            m_losses = _train(mlm.model, motion_batches, cfg.motion_steps, cfg, rng)
            record["motion_loss"] = {"first": float(np.mean(m_losses[:20])),
                                     "last": float(np.mean(m_losses[-50:]))}
            record["motion_pool"] = {"n_motions": len(codes), "n_codes": int(n_codes),
                                     "caption": GENERIC_CAPTION}
            model = mlm.model
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    meta_path = folder / "backbone.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["pretrain"] = record
    atomic_write_json(meta_path, meta)
    return record
