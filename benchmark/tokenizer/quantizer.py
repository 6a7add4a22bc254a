"""EMA vector quantiser with dead-code reset (T2M-GPT's QuantizeEMAReset recipe).

Codebook ``(K, D)``.  In training mode each forward pass:
  * on the very first batch initialises the codebook from (shuffled) encoder outputs;
  * assigns every vector to its nearest code (squared Euclidean distance);
  * updates EMA statistics ``code_sum`` (K, D) and ``code_count`` (K,) with decay ``mu``;
  * sets each code to ``code_sum / code_count`` when ``code_count >= 1``, otherwise resets it to a
    random encoder output of the current batch (dead-code reset).
Gradients reach the encoder through the straight-through estimator; the commitment loss is
``mse(z_e, sg(z_q))``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class QuantizerOutput(NamedTuple):
    quantized: torch.Tensor      # (B, D, T) straight-through quantised latents
    ids: torch.Tensor            # (B, T) int64 code ids
    commit_loss: torch.Tensor    # scalar
    perplexity: torch.Tensor     # scalar, exp(entropy of the batch's code histogram)


def perplexity_of(ids: torch.Tensor, nb_code: int) -> torch.Tensor:
    """exp(entropy) of the code histogram of ``ids`` (any shape): 1 = one code, K = uniform."""
    counts = torch.bincount(ids.reshape(-1), minlength=nb_code).float()
    prob = counts / counts.sum().clamp_min(1.0)
    return torch.exp(-(prob * torch.log(prob + 1e-10)).sum())


class EMAQuantizer(nn.Module):
    """Nearest-code quantiser over ``nb_code`` codes of size ``code_dim`` with EMA updates."""

    def __init__(self, nb_code: int, code_dim: int, mu: float = 0.99):
        super().__init__()
        self.nb_code, self.code_dim, self.mu = nb_code, code_dim, mu
        self.register_buffer("codebook", torch.zeros(nb_code, code_dim))
        self.register_buffer("code_sum", torch.zeros(nb_code, code_dim))
        self.register_buffer("code_count", torch.zeros(nb_code))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def _random_rows(self, x: torch.Tensor) -> torch.Tensor:
        """``nb_code`` random rows of ``x`` (N, D); repeated with tiny noise when N < nb_code."""
        if x.shape[0] < self.nb_code:
            reps = -(-self.nb_code // x.shape[0])
            std = 0.01 / self.code_dim ** 0.5
            x = x.repeat(reps, 1) + torch.randn_like(x.repeat(reps, 1)) * std
        return x[torch.randperm(x.shape[0], device=x.device)[: self.nb_code]]

    @torch.no_grad()
    def init_codebook(self, x: torch.Tensor) -> None:
        """Codebook := random encoder outputs ``x`` (N, D); counts := 1."""
        self.codebook.copy_(self._random_rows(x))
        self.code_sum.copy_(self.codebook)
        self.code_count.fill_(1.0)
        self.initialised.fill_(True)

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Ids ``(N,)`` of the nearest code for each row of ``x`` (N, D)."""
        dist = (x.pow(2).sum(1, keepdim=True) - 2.0 * x @ self.codebook.t()
                + self.codebook.pow(2).sum(1)[None, :])
        return dist.argmin(dim=1)

    @torch.no_grad()
    def ema_update(self, x: torch.Tensor, ids: torch.Tensor) -> None:
        """EMA step of the code statistics from ``x`` (N, D) assigned to ``ids`` (N,), then reset
        codes whose EMA count fell below 1 to random rows of ``x``."""
        onehot = F.one_hot(ids, self.nb_code).to(x.dtype)          # (N, K)
        batch_sum = onehot.t() @ x                                   # (K, D)
        batch_count = onehot.sum(0)                                  # (K,)
        self.code_sum.mul_(self.mu).add_(batch_sum, alpha=1.0 - self.mu)
        self.code_count.mul_(self.mu).add_(batch_count, alpha=1.0 - self.mu)
        alive = (self.code_count >= 1.0)[:, None]
        updated = self.code_sum / self.code_count.clamp_min(1e-12)[:, None]
        self.codebook.copy_(torch.where(alive, updated, self._random_rows(x)))

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``(B, T)`` -> latents ``(B, D, T)``."""
        return F.embedding(ids, self.codebook).permute(0, 2, 1)

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        """Quantise encoder outputs ``z`` (B, D, T).  ``mask`` (B, 1, T) excludes padded frames from
        the EMA update, the commitment loss and the perplexity."""
        b, d, t = z.shape
        flat = z.permute(0, 2, 1).reshape(-1, d)                     # (B*T, D)
        keep = None if mask is None else mask.reshape(-1) > 0
        real = flat if keep is None else flat[keep]
        if self.training and not bool(self.initialised):
            self.init_codebook(real.detach())
        ids = self.nearest(flat.detach())
        quant = self.codebook[ids].clone()                            # (B*T, D), pre-update codes
        if self.training:
            self.ema_update(real.detach(), ids if keep is None else ids[keep])
        real_q = quant if keep is None else quant[keep]
        commit = F.mse_loss(real, real_q.detach())
        quant = flat + (quant - flat).detach()                        # straight-through
        out = quant.reshape(b, t, d).permute(0, 2, 1)
        ids = ids.reshape(b, t)
        ppl = perplexity_of(ids if keep is None else ids.reshape(-1)[keep], self.nb_code)
        return QuantizerOutput(out, ids, commit, ppl)
