"""The train/val/test *part* of every motion, decided once per corpus.

Stratified by scenario and emotion: within each scenario the motions are ordered by emotion and,
inside an emotion, by a seeded random key; the test and val picks are then spread evenly along
that order (Bresenham-style), so every scenario gets exactly ``round(f * n)`` test and val
motions and every emotion gets its proportional share.  The result depends only on the ids,
their labels and the seed (not on row order).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from benchmark.corpus.labels import PART_FRACTIONS


def _key(seed: int, text: str) -> float:
    """A uniform number in [0, 1) from (seed, text), stable across runs and platforms."""
    digest = hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def _spread(n: int, frac: float, phase: float) -> np.ndarray:
    """Boolean mask of ``round(frac * n)``-ish picks spread evenly over ``n`` positions."""
    i = np.arange(n, dtype=np.float64)
    return np.floor((i + 1) * frac + phase) - np.floor(i * frac + phase) >= 1


def assign_parts(labels: pd.DataFrame, seed: int = 0,
                 fractions: dict[str, float] = PART_FRACTIONS) -> pd.Series:
    """``labels`` with columns id, scenario, emotion -> Series of 'train'/'val'/'test' (same index)."""
    f_test = fractions["test"]
    f_val = fractions["val"] / max(1e-12, 1.0 - f_test)
    out = pd.Series("train", index=labels.index, dtype=object)
    for scenario, group in labels.groupby("scenario", sort=True):
        keys = np.array([_key(seed, str(i)) for i in group["id"]])
        order = np.lexsort((group["id"].astype(str).to_numpy(), keys,
                            group["emotion"].astype(str).to_numpy()))
        idx = group.index.to_numpy()[order]
        n = len(idx)
        test = _spread(n, f_test, _key(seed, f"test-phase:{scenario}"))
        out.loc[idx[test]] = "test"
        rest = idx[~test]
        val = _spread(len(rest), f_val, _key(seed, f"val-phase:{scenario}"))
        out.loc[rest[val]] = "val"
    return out
