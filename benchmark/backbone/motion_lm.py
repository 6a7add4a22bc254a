"""``MotionLM``: any Hugging Face causal LM + its text tokenizer, with motion tokens.

The vocabulary gains ``<motion_0> .. <motion_{K-1}>`` (one per VQ-VAE code) and the
``<som>``/``<eom>`` markers (``tokenizer.add_tokens`` + ``model.resize_token_embeddings``);
their ids are contiguous, so motion code ``k`` is token ``motion_offset + k``.
A training example is ``INSTRUCTION + "\\n" + text + "\\n"`` (the prompt, labels -100) followed by
``<som> m_1 .. m_L <eom>`` (the target).  Generation appends ``<som>`` to the prompt and
samples with the KV cache under a logits processor that allows only motion tokens and
``<eom>``.  The new embedding / lm_head rows are trained through peft's
``trainable_token_indices`` of each LoRA adapter (see :mod:`benchmark.strategy.lora`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmark.backbone.tiny import INSTRUCTION
from benchmark.io import DataError
from benchmark.seed import eval_mode, seeded

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class MotionLMConfig:
    """How examples are built: caps on text tokens and motion tokens per example."""

    max_text_tokens: int = 64
    max_motion_tokens: int = 50          # 196 frames / downsample 4
    dtype: str = "float32"
    mean_resizing: bool = False          # HF's mean/cov init of new rows (slow on CPU for 7B)
    init_seed: int = 0                   # seeds the init of the new rows (done on CPU)

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} unknown; valid: {', '.join(DTYPES)}")
        if self.max_text_tokens < 1 or self.max_motion_tokens < 1:
            raise ValueError("max_text_tokens and max_motion_tokens must be >= 1")


@dataclass
class GenerationSettings:
    """Sampling settings of :meth:`MotionLM.generate` (max_new_tokens counts motion tokens + eom)."""

    do_sample: bool = True
    top_k: int = 50
    temperature: float = 1.0
    max_new_tokens: int = 51
    min_new_tokens: int = 0              # > 0 forbids <eom> before that many tokens
    batch_size: int = 32

    def __post_init__(self):
        if self.temperature <= 0 or self.top_k < 0 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("need temperature > 0, top_k >= 0, max_new_tokens >= 1, batch_size >= 1")


def motion_vocab(n_codes: int) -> list[str]:
    return [f"<motion_{k}>" for k in range(n_codes)] + ["<som>", "<eom>"]


class MotionTokenConstraint:
    """``LogitsProcessor``: after ``<som>`` only motion tokens and ``<eom>`` may be sampled.
    ``scores`` (B, V) -> scores with every other column set to -inf."""

    def __init__(self, allowed: torch.Tensor, vocab_size: int):
        mask = torch.full((vocab_size,), float("-inf"))
        mask[allowed] = 0.0
        self.mask = mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = self.mask.to(scores.device, scores.dtype)
        return scores + mask[: scores.shape[-1]]


class MotionLM:
    """A causal LM that speaks motion tokens.  ``model`` becomes a ``PeftModel`` once the first
    LoRA adapter is added (:func:`benchmark.strategy.lora.add_adapter`)."""

    def __init__(self, model, tokenizer, n_codes: int, config: MotionLMConfig | None = None,
                 source: str = ""):
        self.config = config or MotionLMConfig()
        self.tokenizer = tokenizer
        self.source = source
        self.n_codes = int(n_codes)
        if self.n_codes < 1:
            raise ValueError(f"n_codes must be >= 1, got {n_codes}")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        tokenizer.add_tokens(motion_vocab(self.n_codes), special_tokens=True)
        ids = tokenizer.convert_tokens_to_ids(motion_vocab(self.n_codes))
        self.motion_offset = int(ids[0])
        if ids != list(range(self.motion_offset, self.motion_offset + self.n_codes + 2)):
            raise DataError(source or None, "the tokenizer already holds some <motion_k> tokens "
                            "at non-contiguous ids", "use a backbone folder without motion tokens")
        self.som_id = self.motion_offset + self.n_codes
        self.eom_id = self.som_id + 1
        rows = max(len(tokenizer), model.get_input_embeddings().weight.shape[0])
        with seeded(self.config.init_seed):      # new rows: the same init in every process
            model.resize_token_embeddings(rows, mean_resizing=self.config.mean_resizing)
        self.model = model
        self.vocab_size = rows
        self.adapters: dict[str, dict] = {}      # name -> LoraConfig dict (creation order)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, path: str | Path, n_codes: int, config: MotionLMConfig | None = None,
                        device: str | torch.device = "cpu") -> "MotionLM":
        """Load ``AutoModelForCausalLM`` + ``AutoTokenizer`` from one local folder (no download)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        config = config or MotionLMConfig()
        if not (path / "config.json").exists():
            raise DataError(path, "not a Hugging Face model folder (no config.json)",
                            "pass --backbone tiny or a folder saved with save_pretrained")
        if not any((path / f).exists() for f in ("tokenizer.json", "tokenizer.model",
                                                  "tokenizer_config.json")):
            raise DataError(path, "the backbone folder has no tokenizer",
                            "save the model's tokenizer into the same folder (save_pretrained)")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[config.dtype],
                                                     local_files_only=True)
        mlm = cls(model, tokenizer, n_codes, config, source=str(path))
        mlm.model.to(device)
        return mlm

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each decoder layer's activations during backward instead of keeping them
        (HF ``gradient_checkpointing_enable``, non-reentrant, so LoRA / peft needs no input-grad
        hook).  The same arithmetic in the same order, and torch's checkpoint replays the RNG
        state (dropout), so losses and gradients are unchanged; only memory and time change.
        Methods that route through an :class:`~benchmark.strategy.experts.ExpertBank` (EPI,
        O-LoRA, SAPT, ES-MoE) do not support it yet: their backward raises a clear error."""
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        if not getattr(base, "supports_gradient_checkpointing", False):
            raise DataError(self.source or None, f"{type(base).__name__} does not support gradient "
                            "checkpointing", "drop --gradient-checkpointing")
        if hasattr(base, "activation_checkpointing_enable"):        # transformers >= 5.x name
            base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    # ------------------------------------------------------------------ token ids
    @property
    def motion_token_ids(self) -> torch.Tensor:
        """(K,) vocabulary ids of ``<motion_0> .. <motion_{K-1}>``."""
        return torch.arange(self.motion_offset, self.motion_offset + self.n_codes)

    def prompt_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of ``INSTRUCTION\ntext\n`` per text (BOS included, text capped)."""
        cached = getattr(self, "_head_ids", None)    # the instruction's ids, once per tokenizer
        if cached is None or cached[0] is not self.tokenizer:
            cached = self._head_ids = (self.tokenizer, list(self.tokenizer(INSTRUCTION + "\n")["input_ids"]))
        head = cached[1]
        bodies = self.tokenizer([f"{t}\n" for t in texts], add_special_tokens=False)["input_ids"]
        return [head + b[: self.config.max_text_tokens] for b in bodies]

    def build_batch(self, texts: Sequence[str], motion_ids: Sequence[np.ndarray]) -> dict:
        """Texts + motion code sequences -> right-padded LM batch.

        Returns ``input_ids``, ``attention_mask``, ``labels`` (B, L) int64; labels are -100 on
        the prompt and the padding, so the loss covers ``<som> m_1..m_L <eom>``.
        """
        if len(texts) != len(motion_ids):
            raise ValueError(f"{len(texts)} texts but {len(motion_ids)} motion sequences")
        prompts = self.prompt_ids(texts)
        motions = [np.asarray(m, dtype=np.int64)[: self.config.max_motion_tokens] for m in motion_ids]
        for m in motions:
            if len(m) and (int(m.min()) < 0 or int(m.max()) >= self.n_codes):
                raise ValueError(f"motion ids must lie in [0, {self.n_codes}), got "
                                 f"[{int(m.min())}, {int(m.max())}]")
        lengths = [len(p) + len(m) + 2 for p, m in zip(prompts, motions)]
        width = max(lengths)
        input_ids = np.full((len(prompts), width), self.tokenizer.pad_token_id, dtype=np.int64)
        labels = np.full((len(prompts), width), -100, dtype=np.int64)
        for i, (p, m) in enumerate(zip(prompts, motions)):
            n = len(p)
            input_ids[i, :n] = p
            target = np.concatenate([[self.som_id], m + self.motion_offset, [self.eom_id]])
            input_ids[i, n: n + len(target)] = target
            labels[i, n: n + len(target)] = target
        mask = (np.arange(width)[None] < np.asarray(lengths)[:, None]).astype(np.int64)
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels)}

    def generation_inputs(self, texts: Sequence[str]) -> dict:
        """Left-padded prompts ending in ``<som>``: ``input_ids``, ``attention_mask`` (B, L)."""
        seqs = [torch.tensor(p + [self.som_id]) for p in self.prompt_ids(texts)]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.int64)
        mask = torch.zeros((len(seqs), width), dtype=torch.int64)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = s
            mask[i, width - len(s):] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def parse_generated(self, new_tokens: torch.Tensor) -> list[np.ndarray]:
        """(B, N) generated ids after ``<som>`` -> motion codes up to the first ``<eom>``
        (tokens outside the motion range are dropped; an empty array = a failed output)."""
        tok = new_tokens.cpu()
        is_eom = tok == self.eom_id
        n = tok.shape[1]
        stop = torch.where(is_eom.any(1), is_eom.float().argmax(1), torch.full((len(tok),), n))
        codes = tok - self.motion_offset
        valid = (codes >= 0) & (codes < self.n_codes) & (torch.arange(n)[None] < stop[:, None])
        return [codes[i][valid[i]].numpy().astype(np.int64) for i in range(len(tok))]

    @torch.no_grad()
    def generate(self, texts: Sequence[str], settings: GenerationSettings | None = None,
                 device: str | torch.device = "cpu", model=None) -> list[np.ndarray]:
        """Sample motion codes for each text (KV cache, constrained to motion tokens).

        Returns one int64 array of codes per text; empty arrays are failed outputs.
        ``model`` overrides ``self.model`` (e.g. a routed wrapper).
        """
        settings = settings or GenerationSettings()
        model = model if model is not None else self.model
        out: list[np.ndarray] = []
        with eval_mode(model):
            for start in range(0, len(texts), settings.batch_size):
                batch = self.generation_inputs(texts[start: start + settings.batch_size])
                batch = {k: v.to(device) for k, v in batch.items()}
                out.extend(self.generate_batch(batch, settings, model))
        return out

    @torch.no_grad()
    def generate_batch(self, batch: dict, settings: GenerationSettings | None = None, model=None,
                       **extra) -> list[np.ndarray]:
        """Codes for one prepared batch (``generation_inputs`` on the device); ``extra`` goes to
        ``model.generate`` (e.g. ``inputs_embeds``).  The caller sets eval mode."""
        from transformers import GenerationConfig, LogitsProcessorList

        settings = settings or GenerationSettings()
        model = model if model is not None else self.model
        allowed = torch.cat([self.motion_token_ids, torch.tensor([self.eom_id])])
        constraint = LogitsProcessorList([MotionTokenConstraint(allowed, self.vocab_size)])
        gen = GenerationConfig(
            do_sample=settings.do_sample, top_k=settings.top_k if settings.do_sample else None,
            temperature=settings.temperature if settings.do_sample else None,
            top_p=None, max_new_tokens=settings.max_new_tokens,
            min_new_tokens=settings.min_new_tokens or None, eos_token_id=self.eom_id,
            pad_token_id=self.tokenizer.pad_token_id, use_cache=True)
        seq = model.generate(**batch, **extra, generation_config=gen, logits_processor=constraint)
        return self.parse_generated(seq[:, batch["input_ids"].shape[1]:])
