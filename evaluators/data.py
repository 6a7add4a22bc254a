"""Motion batches for the evaluator: validation, evaluator statistics, cropping and padding.

Raw HumanML3D features ``(T, 263)`` are normalised with the *evaluator's own* statistics
(the training corpus Mean/Std with the std of the root dims 0:4 and of the foot-contact dims
259:263 divided by ``feat_bias`` = 5, as the released T2M evaluator), never the generator's.
Lengths are cut to a multiple of the unit length 4 and to at most ``max_len`` = 196 frames;
a motion shorter than 4 frames is padded by repeating its last frame up to 4 frames.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from benchmark.io import DataError
from benchmark.motion import FEATURE_DIM, normalize
from evaluators.modules import UNIT_LENGTH

MAX_MOTION_LEN = 196


def evaluator_statistics(mean: np.ndarray, std: np.ndarray, feat_bias: float = 5.0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Evaluator mean/std ``(263,)``: the std of dims 0:4 and 259:263 divided by ``feat_bias``."""
    mean = np.asarray(mean, np.float32).copy()
    std = np.asarray(std, np.float32).copy()
    std[0:4] /= feat_bias
    std[FEATURE_DIM - 4:] /= feat_bias
    return mean, std


def check_motions(motions: Sequence[np.ndarray], what: str = "motions") -> list[np.ndarray]:
    """Validate a list of raw ``(T, 263)`` arrays; DataError naming the first bad one."""
    if motions is None or len(motions) == 0:
        raise DataError(None, f"{what}: empty list", "pass at least one (T, 263) motion")
    out = []
    for k, m in enumerate(motions):
        a = np.asarray(m, dtype=np.float32)
        if a.ndim != 2 or a.shape[1] != FEATURE_DIM:
            raise DataError(None, f"{what}[{k}] has shape {a.shape}, expected (T, {FEATURE_DIM})",
                            "pass raw HumanML3D features (decode tokens before evaluating)")
        if a.shape[0] == 0:
            raise DataError(None, f"{what}[{k}] has no frames", "drop empty generations")
        if not np.isfinite(a).all():
            raise DataError(None, f"{what}[{k}] contains NaN/inf",
                            "drop or count failed generations before evaluating")
        out.append(a)
    return out


def crop_length(n_frames: int, max_len: int = MAX_MOTION_LEN) -> int:
    """Frames used: ``min(T, max_len)`` rounded down to a multiple of 4 (at least 4)."""
    return max(UNIT_LENGTH, (min(n_frames, max_len) // UNIT_LENGTH) * UNIT_LENGTH)


def random_crop(motion: np.ndarray, rng: np.random.Generator, max_len: int = MAX_MOTION_LEN) -> np.ndarray:
    """Training/ground-truth crop as the reference loaders: length a multiple of 4, one unit
    shorter with probability 1/3, random start."""
    n = crop_length(len(motion), max_len)
    if n > UNIT_LENGTH and rng.random() < 1 / 3:
        n -= UNIT_LENGTH
    start = int(rng.integers(0, max(1, len(motion) - n + 1)))
    return motion[start:start + n]


def pad_batch(motions: Sequence[np.ndarray], mean: np.ndarray, std: np.ndarray,
              device: torch.device | str = "cpu", max_len: int = MAX_MOTION_LEN
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised, zero-padded ``(B, Tmax, 263)`` float32 and lengths ``(B,)`` (frames, mult. of 4).

    Deterministic: each motion keeps its first :func:`crop_length` frames; shorter than 4 frames
    -> last frame repeated.
    """
    lens = np.array([crop_length(len(m), max_len) for m in motions], dtype=np.int64)
    out = np.zeros((len(motions), int(lens.max()), FEATURE_DIM), dtype=np.float32)
    for k, (m, n) in enumerate(zip(motions, lens)):
        seg = m[:n]
        if len(seg) < n:
            seg = np.concatenate([seg, np.repeat(seg[-1:], n - len(seg), axis=0)])
        out[k, :n] = normalize(seg, mean, std)
    return torch.from_numpy(out).to(device), torch.from_numpy(lens).to(device)
