"""Typed configuration of the VQ-VAE tokenizer (model + optimisation) and its presets.

The ``paper`` preset is T2M-GPT's recipe (codebook 512 x 512, width 512, x4 temporal
downsampling, batch 256 of 64-frame windows, 300k AdamW iterations); ``tiny`` trains in a few CPU
minutes and ``test`` in seconds (used by the test fixtures).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

AUX_MODES = ("joints", "velocity", "none")


def _check_positive(obj, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ValueError(f"{type(obj).__name__}.{name} must be > 0, got {value!r}")


@dataclass(frozen=True)
class VQVAEConfig:
    """Shape of the VQ-VAE.

    feature_dim: per-frame feature size (263 for HumanML3D); nb_code x code_dim: codebook;
    width: conv channels; down_t: number of stride-2 downsamplings (ids = frames // 2**down_t);
    depth / dilation_growth: residual blocks per stage and their dilation factor (1, 3, 9, ...);
    mu: EMA decay of the codebook.
    """

    feature_dim: int = 263
    nb_code: int = 512
    code_dim: int = 512
    width: int = 512
    down_t: int = 2
    depth: int = 3
    dilation_growth: int = 3
    mu: float = 0.99

    def __post_init__(self):
        _check_positive(self, ("feature_dim", "nb_code", "code_dim", "width", "down_t", "depth",
                               "dilation_growth"))
        if not 0.0 < self.mu < 1.0:
            raise ValueError(f"VQVAEConfig.mu must be in (0, 1), got {self.mu!r}")

    @property
    def downsample(self) -> int:
        """Frames per token."""
        return 2 ** self.down_t


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of the VQ-VAE (T2M-GPT's train_vq.py recipe).

    Loss = smooth-L1(recon, target) on normalised features + aux_weight * aux term
    + commit * ||z_e - sg(z_q)||^2.  aux_mode "joints" (T2M-GPT, the default) is smooth-L1 on the
    local joint-position dims 4:67; "velocity" is smooth-L1 on frame-to-frame differences of all
    dims; "none" switches it off.  lr: linear warm-up over ``warmup`` iterations, then multiplied
    by ``gamma`` at each of ``milestones`` (fractions of ``iters``).
    """

    iters: int = 300_000
    batch_size: int = 256
    window: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup: int = 1000
    milestones: tuple[float, ...] = (2 / 3,)
    gamma: float = 0.05
    commit: float = 0.02
    aux_weight: float = 0.5
    aux_mode: str = "joints"
    log_every: int = 100

    def __post_init__(self):
        _check_positive(self, ("iters", "batch_size", "window", "lr", "log_every"))
        if self.aux_mode not in AUX_MODES:
            raise ValueError(f"TrainConfig.aux_mode must be one of {AUX_MODES}, got {self.aux_mode!r}")
        if self.warmup < 0 or self.commit < 0 or self.aux_weight < 0:
            raise ValueError("TrainConfig.warmup, commit and aux_weight must be >= 0")
        if any(not 0.0 < m < 1.0 for m in self.milestones):
            raise ValueError(f"TrainConfig.milestones are fractions in (0, 1), got {self.milestones}")
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "milestones", tuple(self.milestones))


@dataclass(frozen=True)
class Preset:
    """A named pair of model and training configs."""

    name: str
    model: VQVAEConfig = field(default_factory=VQVAEConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS: dict[str, Preset] = {
    "test": Preset("test",
                   VQVAEConfig(nb_code=32, code_dim=16, width=32, depth=2),
                   TrainConfig(iters=200, batch_size=32, window=32, lr=2e-3, warmup=20,
                               milestones=(0.8,), gamma=0.2, log_every=50)),
    "tiny": Preset("tiny",
                   VQVAEConfig(nb_code=128, code_dim=64, width=64, depth=3),
                   TrainConfig(iters=1500, batch_size=64, window=64, lr=1e-3, warmup=100,
                               milestones=(0.8,), gamma=0.1, log_every=100)),
    "paper": Preset("paper", VQVAEConfig(), TrainConfig()),
}


def get_preset(name: str, iters: int | None = None) -> Preset:
    """Look up a preset by name, optionally overriding its number of iterations."""
    if name not in PRESETS:
        raise ValueError(f"unknown tokenizer preset {name!r}; valid: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if iters is not None:
        preset = dataclasses.replace(preset, train=dataclasses.replace(preset.train, iters=int(iters)))
    return preset
