"""The default ``tiny`` backbone: a small LLaMA-architecture causal LM built from a
``LlamaConfig`` (random init, no download) plus a word-level text tokenizer trained offline
with the ``tokenizers`` library on the corpus captions and the instruction.

The folder it writes is a normal Hugging Face model folder (``config.json``,
``model.safetensors``, ``tokenizer.json`` ...), so :meth:`MotionLM.from_pretrained` loads it
exactly like a LLaMA-2-7B folder.  ``backbone.json`` records the build config and the hash
of the training texts.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from benchmark.io import DataError, atomic_dir, atomic_write_json, hash_json
from benchmark.seed import seeded

INSTRUCTION = "Generate a motion sequence that aligns with the following emotional text description."
SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "bos_token": "<s>", "eos_token": "</s>"}


@dataclass
class TinyBackboneConfig:
    """Size of the tiny LLaMA (defaults: ~0.5 M transformer parameters + embeddings)."""

    hidden_size: int = 96
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    max_positions: int = 256
    vocab_size: int = 4000          # upper bound for the word-level vocabulary
    min_frequency: int = 1
    seed: int = 0

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by "
                             f"num_heads {self.num_heads}")
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size",
                     "max_positions", "vocab_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


def train_text_tokenizer(texts: Iterable[str], vocab_size: int = 4000, min_frequency: int = 1):
    """Word-level tokenizer (lower-cased, split on whitespace and punctuation) trained on
    ``texts`` + the instruction; returns a ``PreTrainedTokenizerFast`` that prepends ``<s>``."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values())
    tok = Tokenizer(WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    trainer = WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                               special_tokens=specials)
    tok.train_from_iterator(_with_instruction(texts), trainer=trainer)
    bos = SPECIAL_TOKENS["bos_token"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def _with_instruction(texts: Iterable[str]):
    yield INSTRUCTION
    yield from texts


def build_tiny_backbone(texts: list[str], out: str | Path, config: TinyBackboneConfig | None = None,
                        overwrite: bool = False) -> Path:
    """Train the text tokenizer on ``texts``, build a random-init ``LlamaForCausalLM`` (seeded)
    and save both to ``out`` atomically; returns ``out``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = config or TinyBackboneConfig()
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise DataError(out, "no caption texts to train the backbone's text tokenizer on",
                        "build the tiny backbone from a corpus that has texts/*.txt captions")
    tokenizer = train_text_tokenizer(texts, config.vocab_size, config.min_frequency)
    llama = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size, num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads, num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_positions, tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id)
    with seeded(config.seed):
        model = LlamaForCausalLM(llama)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(Path(tmp) / "backbone.json", {
            "kind": "tiny", "config": dataclasses.asdict(config),
            "texts_hash": hash_json(sorted(texts)), "n_texts": len(texts),
            "vocab_size": len(tokenizer),
            "n_parameters": sum(p.numel() for p in model.parameters())})
    return Path(out)
