"""Prog-Prompt: Progressive Prompts (Razdaibiedina et al., "Progressive Prompts: Continual
Learning for Language Models", ICLR 2023), a baseline of the L2-EMG paper (Table 2).

The backbone is frozen (no LoRA).  Each scenario gets a new soft prompt of
``prompt_length`` virtual tokens (learned input embeddings); the prompts of earlier scenarios
are frozen and kept, and the model reads ``[P_1; ...; P_{k-1}; P_k; x]`` (all prompts so far,
then the token embeddings of the instruction/text/motion sequence) both in training and at
generation (no task id needed).  The newest prompt goes first, ``[P_k; ...; P_1; x]``, as in
the reference code (arazd/ProgressivePrompts, ``T5_codebase/t5_continual.py``:
``previous_prompts = concat([new_prompt, previous_prompts])``); ``prompt_order=newest_last``
puts it last instead, so that in a causal LM the earlier prompts' hidden states stay exactly
those of earlier scenarios (old prompts stay bit-identical either way).

Residual MLP reparameterisation (the reference's ``ResMLP``, ``MLP1``): while scenario k
trains, its prompt is ``P_k = MLP(raw_k) + raw_k`` with ``MLP = Linear(d, bottleneck) Tanh
Linear(bottleneck, d)`` (a fresh MLP per scenario, trained with the shared lr); after the
scenario the reparameterised prompt is stored and the MLP dropped, as in the reference.

Motion vocabulary (fair to the LoRA methods): the ``<motion_k>/<som>/<eom>`` rows of the input
embedding and of the lm_head are trained (``train_motion_tokens``), held here in one copy that
continues from scenario to scenario -- what the LoRA methods do with the newest adapter's
rows.  They are swapped in by forward hooks on the embedding and the lm_head, so the frozen
backbone weights are never touched.

Hyperparameters: ``prompt_length`` = 10 tokens per scenario (the paper's T5 setting; 10-50 in
its ablations); prompts initialised from embeddings of random text-vocabulary tokens (Lester
et al., 2021).  Prompt step: the prompt is stored as ``raw * mult`` with mult chosen so that one
AdamW step moves it by about ``prompt_step`` (0.05) x the std of the embedding matrix
(0.02 x 0.05 = 1e-3 on the tiny backbone, whatever the shared lr): the reference's lr 0.3 on
T5, whose embeddings are O(10), is a step of a few percent of the embedding scale too.  (The
earlier fixed multiplier of 50 gave a step of 0.1 at lr 2e-3, five times the embeddings' scale.)
Memory per scenario: ``prompt_length x d_model`` floats (10 x 4096 x 4 B = 160 kB for
LLaMA-2-7B); the input grows by ``prompt_length`` tokens per scenario.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from benchmark.io import DataError
from benchmark.strategy import MotionLMStrategy, register_strategy
from benchmark.strategy.config import StrategyConfig


@dataclass
class ProgPromptConfig(StrategyConfig):
    prompt_length: int = field(default=10, metadata={"help": "virtual tokens per scenario"})
    prompt_step: float = field(default=0.05, metadata={
        "help": "AdamW step of the prompt relative to the std of the embedding matrix (the "
                "prompt is stored as raw * mult, mult = prompt_step * std / lr)"})
    prompt_order: str = field(default="newest_first", metadata={
        "help": "'newest_first' [P_k; ...; P_1; x] (reference) or 'newest_last' [P_1; ...; P_k; x]"})
    residual_mlp: bool = field(default=True, metadata={
        "help": "reparameterise the training prompt as MLP(P) + P (reference ResMLP, MLP1)"})
    mlp_bottleneck: int = field(default=800, metadata={
        "help": "bottleneck of the residual MLP (reference T5 default 800)"})
    prompt_init: str = field(default="vocab", metadata={
        "help": "'vocab': embeddings of random text tokens; 'random': N(0, std of the embeddings)"})
    max_prompts: int = field(default=16, metadata={"help": "scenarios (prompts) at most"})

    def __post_init__(self):
        super().__post_init__()
        checks = [(self.prompt_length >= 1, "prompt_length must be >= 1"),
                  (self.prompt_step > 0, "prompt_step must be > 0"),
                  (self.prompt_order in ("newest_first", "newest_last"),
                   "prompt_order must be 'newest_first' or 'newest_last'"),
                  (self.mlp_bottleneck >= 1, "mlp_bottleneck must be >= 1"),
                  (self.prompt_init in ("vocab", "random"), "prompt_init must be 'vocab' or 'random'"),
                  (self.max_prompts >= 1, "max_prompts must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"{type(self).__name__}: {msg}")


class ResMLP(nn.Module):
    """The reference's prompt reparameterisation: ``MLP(p) + p``, MLP = Linear Tanh Linear."""

    def __init__(self, dim: int, bottleneck: int):
        super().__init__()
        self.module = nn.Sequential(nn.Linear(dim, bottleneck), nn.Tanh(), nn.Linear(bottleneck, dim))

    def reset(self, generator: torch.Generator) -> None:
        """Fresh nn.Linear-style init from ``generator`` (one new MLP per scenario)."""
        with torch.no_grad():
            for lin in (self.module[0], self.module[2]):
                bound = 1.0 / lin.in_features ** 0.5
                for t in (lin.weight, lin.bias):
                    t.copy_(torch.rand(t.shape, generator=generator) * 2 * bound - bound)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.module(p) + p


class ProgressivePrompts(nn.Module):
    """One (n, d) soft prompt per scenario; :meth:`forward` returns them concatenated (newest
    first unless ``newest_first=False``) as (B, n * k, d).  Stored as ``raw`` and scaled by
    ``mult`` on use; ``transform`` (the residual MLP) is applied to the newest one."""

    def __init__(self, length: int, dim: int, mult: float = 1.0, newest_first: bool = True):
        super().__init__()
        self.length, self.dim, self.mult = int(length), int(dim), float(mult)
        self.newest_first = bool(newest_first)
        self.raw = nn.ParameterList()

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def total_length(self) -> int:
        return self.length * len(self.raw)

    def add(self, init: torch.Tensor) -> None:
        """Append a trainable prompt initialised to ``init`` (n, d); earlier ones are frozen."""
        if tuple(init.shape) != (self.length, self.dim):
            raise ValueError(f"prompt init {tuple(init.shape)} != ({self.length}, {self.dim})")
        for p in self.raw:
            p.requires_grad_(False)
        self.raw.append(nn.Parameter(init.detach().float().clone() / self.mult))

    def prompt(self, index: int) -> torch.Tensor:
        return self.raw[index] * self.mult

    def forward(self, batch: int, transform=None) -> torch.Tensor:
        if not len(self.raw):
            raise RuntimeError("no prompt yet: train on a scenario first")
        blocks = [p * self.mult for p in self.raw]
        if transform is not None:
            blocks[-1] = transform(blocks[-1])
        if self.newest_first:
            blocks = blocks[::-1]
        return torch.cat(blocks, 0).unsqueeze(0).expand(batch, -1, -1)


class MotionRows(nn.Module):
    """Trainable rows of the motion tokens (ids ``offset .. offset + K + 1``) for a frozen LM:
    hooks replace those rows of the input embedding and those columns of the lm_head."""

    def __init__(self, model, offset: int, count: int):
        super().__init__()
        emb, head = model.get_input_embeddings(), model.get_output_embeddings()
        rows = slice(offset, offset + count)
        self.offset, self.count = int(offset), int(count)
        self.embed = nn.Parameter(emb.weight[rows].detach().float().clone())
        self.head = nn.Parameter(head.weight[rows].detach().float().clone())
        self._bias = [getattr(head, "bias", None)]        # a list: not registered here
        self._hooks = [emb.register_forward_hook(self._embed_hook),
                       head.register_forward_hook(self._head_hook)]

    def _embed_hook(self, module, args, out):
        ids = args[0]
        local = ids - self.offset
        mine = (local >= 0) & (local < self.count)
        if not bool(mine.any()):
            return out
        rows = self.embed.to(out.dtype)[local.clamp(0, self.count - 1)]
        return torch.where(mine[..., None], rows, out)

    def _head_hook(self, module, args, out):
        cols = args[0].to(self.head.dtype) @ self.head.T
        if self._bias[0] is not None:
            cols = cols + self._bias[0][self.offset: self.offset + self.count]
        out[..., self.offset: self.offset + self.count] = cols.to(out.dtype)  # frozen head: safe
        return out

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()


@register_strategy("prog_prompt", config=ProgPromptConfig)
class ProgPrompt(MotionLMStrategy):
    """Frozen LM + one soft prompt per scenario, all earlier prompts prepended (frozen)."""

    display_name = "Prog-Prompt"
    paper_row = 6

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        lm, c = self.motion_lm, self.config
        if lm.adapters:
            raise DataError(None, "Prog-Prompt needs a backbone without LoRA adapters",
                            "build the strategy on a freshly loaded MotionLM")
        weight = lm.model.get_input_embeddings().weight
        dim = weight.shape[1]
        self.prompt_mult = c.prompt_step * float(weight.detach().float().std()) / c.lr
        self.method_modules["prompts"] = ProgressivePrompts(
            c.prompt_length, dim, self.prompt_mult, newest_first=c.prompt_order == "newest_first")
        if c.residual_mlp:
            self.method_modules["mlp"] = ResMLP(dim, c.mlp_bottleneck)
        self._mlp_on = False          # True while a scenario's prompt trains through the MLP
        self.method_modules["rows"] = MotionRows(lm.model, lm.motion_offset, lm.n_codes + 2)
        self.method_modules["rows"].requires_grad_(c.train_motion_tokens)
        self._gen = self.keep("_gen", torch.Generator().manual_seed(self.seed))   # checkpointed

    @property
    def prompts(self) -> ProgressivePrompts:
        return self.method_modules["prompts"]

    def _init_prompt(self) -> torch.Tensor:
        weight = self.model.get_input_embeddings().weight.detach()
        n = self.config.prompt_length
        if self.config.prompt_init == "vocab":
            ids = torch.randint(0, self.motion_lm.motion_offset, (n,), generator=self._gen)
            return weight[ids.to(weight.device)].float().cpu()
        return torch.randn(n, weight.shape[1], generator=self._gen) * weight.float().std().item()

    def before_experience(self, experience) -> None:
        if len(self.prompts) >= self.config.max_prompts:
            raise DataError(None, f"experience {len(self.prompts) + 1} needs more than max_prompts="
                            f"{self.config.max_prompts} prompts", "raise --set max_prompts=N")
        self.model.requires_grad_(False)                       # the backbone never trains
        self.prompts.add(self._init_prompt())
        if self.config.residual_mlp:
            self.method_modules["mlp"].reset(self._gen)
            self.method_modules["mlp"].requires_grad_(True)
            self._mlp_on = True
        self.method_modules.to(self.device)

    def after_experience(self, experience) -> None:
        """Store the reparameterised prompt MLP(P) + P and drop the MLP (reference)."""
        if self.config.residual_mlp and self._mlp_on:
            raw = self.prompts.raw[-1]
            with torch.no_grad():
                raw.copy_(self.method_modules["mlp"](raw * self.prompts.mult) / self.prompts.mult)
            raw.requires_grad_(False)
            self.method_modules["mlp"].requires_grad_(False)
            self._mlp_on = False

    def freeze_token_rows(self) -> None:
        self.method_modules["rows"].requires_grad_(False)

    # ------------------------------------------------------------------ inputs
    def prepend(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None):
        """(B, L) ids -> inputs_embeds (B, P + L, d), mask (B, P + L), labels (-100 on prompts)."""
        x = self.model.get_input_embeddings()(input_ids)
        mlp = self.method_modules["mlp"] if self._mlp_on else None
        p = self.prompts(len(input_ids), transform=mlp).to(x.device, x.dtype)
        ones = attention_mask.new_ones(len(input_ids), p.shape[1])
        out = [torch.cat([p, x], 1), torch.cat([ones, attention_mask], 1)]
        if labels is not None:
            out.append(torch.cat([torch.full_like(ones, -100), labels], 1))
        return tuple(out)

    def forward(self):
        b = self.mbatch
        x, mask, labels = self.prepend(b["input_ids"], b["attention_mask"], b["labels"])
        return self.model(inputs_embeds=x, attention_mask=mask, labels=labels)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, texts: Sequence[str], settings=None) -> list[np.ndarray]:
        """Left-padded [prompts; instruction + text; <som>] embeddings -> sampled motion codes.
        Before the first scenario there is no prompt: the frozen backbone generates (the
        runner's untrained baseline row)."""
        if not len(self.method_modules["prompts"].raw):
            return super().generate(texts, settings)
        from transformers import GenerationConfig, LogitsProcessorList

        from benchmark.backbone.motion_lm import GenerationSettings, MotionTokenConstraint

        lm, s = self.motion_lm, settings or GenerationSettings()
        self.model.to(self.device)
        self.method_modules.to(self.device)
        allowed = torch.cat([lm.motion_token_ids, torch.tensor([lm.eom_id])])
        constraint = LogitsProcessorList([MotionTokenConstraint(allowed, lm.vocab_size)])
        gen = GenerationConfig(do_sample=s.do_sample, top_k=s.top_k if s.do_sample else None,
                               temperature=s.temperature if s.do_sample else None, top_p=None,
                               max_new_tokens=s.max_new_tokens, eos_token_id=lm.eom_id,
                               pad_token_id=lm.tokenizer.pad_token_id, use_cache=True)
        out: list[np.ndarray] = []
        with self.eval_mode():
            for start in range(0, len(texts), s.batch_size):
                x, mask = self._generation_embeds(list(texts[start: start + s.batch_size]))
                new = self.model.generate(inputs_embeds=x, attention_mask=mask, generation_config=gen,
                                          logits_processor=constraint)
                out.extend(lm.parse_generated(new))       # inputs_embeds only: new tokens only
        return out

    def _generation_embeds(self, texts: list[str]):
        seqs = [torch.tensor(p + [self.motion_lm.som_id]) for p in self.motion_lm.prompt_ids(texts)]
        width = max(len(q) for q in seqs)
        ids = torch.full((len(seqs), width), self.motion_lm.tokenizer.pad_token_id, dtype=torch.int64)
        mask = torch.zeros_like(ids)
        for i, q in enumerate(seqs):                        # right-aligned: pads first
            ids[i, width - len(q):], mask[i, width - len(q):] = q, 1
        x, mask = self.prepend(ids.to(self.device), mask.to(self.device))
        # move each row's padding in front of its prompts: [pad; P; text]
        order = torch.argsort(mask, dim=1, stable=True)
        return x.gather(1, order[..., None].expand_as(x)), mask.gather(1, order)

    def memory_per_scenario(self) -> dict[str, int]:
        """Bytes added per scenario: one prompt (the motion-token rows are a single copy)."""
        p = self.prompts.raw[0] if len(self.prompts) else None
        return {"prompt_bytes": 0 if p is None else p.numel() * p.element_size()}
