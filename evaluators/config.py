"""Typed evaluator configuration and its presets (``test``, ``tiny``, ``paper``)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from benchmark.io import DataError


@dataclass
class EvaluatorConfig:
    """Network sizes, training recipe and (after training) vocabulary/emotions/data identity."""

    preset: str = "tiny"
    # T2M networks (names as the released evaluator's options)
    dim_word: int = 128
    dim_pos: int = 15
    dim_text_hidden: int = 128
    dim_movement_hidden: int = 128
    dim_movement_latent: int = 128
    dim_motion_hidden: int = 128
    dim_coemb: int = 128
    # emotion classifier
    dim_emo_movement: int = 128
    dim_emo_hidden: int = 128
    # training
    epochs: int = 15
    emo_epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: str = "infonce"          # "infonce" (symmetric, logits -dist/T) or "margin" (original)
    temperature: float = 0.1
    margin: float = 10.0
    min_count: int = 1
    max_text_len: int = 20
    max_motion_len: int = 196
    feat_bias: float = 5.0
    word_vectors: str | None = None   # GloVe-style text file; frozen word embeddings if given
    # filled by training
    feature_dim: int = 263
    vocab: list[str] = field(default_factory=list)
    emotions: list[str] = field(default_factory=list)
    corpus_hash: str | None = None

    def __post_init__(self) -> None:
        if self.loss not in ("infonce", "margin"):
            raise ValueError(f"loss must be 'infonce' or 'margin', got {self.loss!r}")
        if self.batch_size < 2 or self.epochs < 1 or self.emo_epochs < 1:
            raise ValueError("batch_size >= 2 and epochs >= 1 required")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, path=None) -> "EvaluatorConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise DataError(path, f"unknown evaluator config keys {sorted(unknown)}",
                            "use a config.json written by this version of l2emg")
        return cls(**d)


PRESETS: dict[str, dict] = {
    # seconds on CPU: for unit tests
    "test": dict(dim_word=32, dim_text_hidden=32, dim_movement_hidden=32, dim_movement_latent=32,
                 dim_motion_hidden=48, dim_coemb=32, dim_emo_movement=32, dim_emo_hidden=32,
                 epochs=4, emo_epochs=4, lr=2e-3),
    # ~2-3 min on 2 CPU cores for ~2,000 motions
    "tiny": dict(),
    # the released evaluator's sizes (GPU)
    "paper": dict(dim_word=300, dim_text_hidden=512, dim_movement_hidden=512,
                  dim_movement_latent=512, dim_motion_hidden=1024, dim_coemb=512,
                  dim_emo_movement=512, dim_emo_hidden=512, epochs=100, emo_epochs=50, lr=1e-4),
}


def preset_config(name: str, **overrides) -> EvaluatorConfig:
    """The config of a preset, with keyword overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown evaluator preset {name!r}; valid: {', '.join(PRESETS)}")
    return EvaluatorConfig(preset=name, **{**PRESETS[name], **overrides})
