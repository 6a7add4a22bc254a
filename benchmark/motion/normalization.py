"""Feature normalisation with a dataset's Mean/Std (numpy or torch, any batch shape)."""
from __future__ import annotations

import numpy as np
import torch

from ..io import DataError

STD_EPS = 1e-8


def _stats_like(feats, mean, std):
    if isinstance(feats, torch.Tensor):
        m = torch.as_tensor(np.asarray(mean) if not isinstance(mean, torch.Tensor) else mean)
        s = torch.as_tensor(np.asarray(std) if not isinstance(std, torch.Tensor) else std)
        m, s = m.to(feats), s.to(feats)
        s = torch.where(s.abs() < STD_EPS, torch.ones_like(s), s)
    else:
        m = np.asarray(mean.cpu() if isinstance(mean, torch.Tensor) else mean)
        s = np.asarray(std.cpu() if isinstance(std, torch.Tensor) else std)
        dtype = feats.dtype if np.asarray(feats).dtype.kind == "f" else np.float64
        m, s = m.astype(dtype), s.astype(dtype)
        s = np.where(np.abs(s) < STD_EPS, 1.0, s).astype(dtype)
    if m.shape[-1:] != feats.shape[-1:] or s.shape[-1:] != feats.shape[-1:]:
        raise DataError(None, f"mean/std of shape {tuple(m.shape)}/{tuple(s.shape)} do not match "
                        f"features of shape {tuple(feats.shape)}",
                        "use the Mean.npy/Std.npy of the same feature layout")
    return m, s


def normalize(feats, mean, std):
    """``(feats - mean) / std`` over the last dim; a zero std is treated as 1 (no scaling)."""
    m, s = _stats_like(feats, mean, std)
    return (feats - m) / s


def denormalize(feats, mean, std):
    """Inverse of :func:`normalize`: ``feats * std + mean`` (zero std treated as 1)."""
    m, s = _stats_like(feats, mean, std)
    return feats * s + m
