"""Scenario-adapted gate of ES-MoE (Eq. 4): a down/up projection maps the pooled
emotion-highlighted input h to a query; expert j's weight is softmax_j(query . K_j) over the
experts trained so far.  The projection is SAPT's ``trans_input``, which the paper cites for it:
bias-free Linear d -> d_down, bias-free Linear d_down -> d_key, SiLU, LayerNorm.  Keys are rows of
one orthogonally initialised (max_experts, d_key) matrix, kept as one ``Parameter`` per expert so
that only the current expert's key trains.

During training, earlier experts are dropped from the weighting at random (each independently,
per sample) with probability ``p = p0 * (1 - progress)``, progress in [0, 1] within the
experience: early steps make the new expert learn alone, later steps let the gate use old
experts.  The current expert is never masked (it is not yet a *trained* expert).  Among the
remaining experts the top-k by score are kept and renormalised with a softmax
(:func:`benchmark.strategy.experts.topk_softmax`).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from benchmark.strategy.experts import topk_softmax


def mask_probability(p0: float, progress: float) -> float:
    """Masking probability of a trained expert at ``progress`` in [0, 1] of the experience."""
    return float(p0) * (1.0 - min(max(float(progress), 0.0), 1.0))


class ExpertGate(nn.Module):
    """Query network (down/up projection) + orthogonal expert keys.

    ``d_model`` size of h, ``d_down`` bottleneck, ``d_key`` key size (>= ``max_experts`` so
    that the keys can be mutually orthogonal).
    """

    def __init__(self, d_model: int, d_key: int = 64, d_down: int = 32, max_experts: int = 8):
        super().__init__()
        if d_key < max_experts:
            raise ValueError(f"d_key ({d_key}) must be >= max_experts ({max_experts}) for "
                             "orthogonal keys")
        self.down = nn.Linear(d_model, d_down, bias=False)
        self.up = nn.Linear(d_down, d_key, bias=False)
        self.act = nn.SiLU()
        self.ln = nn.LayerNorm(d_key)
        keys = torch.empty(max_experts, d_key)
        nn.init.orthogonal_(keys)                          # orthonormal rows
        self.keys = nn.ParameterList([nn.Parameter(k.clone()) for k in keys])
        self.max_experts = max_experts

    def query(self, h_pooled: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, d_key): LN(SiLU(up(down(h)))) (SAPT's ``trans_input``)."""
        return self.ln(self.act(self.up(self.down(h_pooled.float()))))

    def scores(self, h_pooled: torch.Tensor, n_experts: int) -> torch.Tensor:
        """(B, d) -> (B, n_experts) query . K_j for the first ``n_experts`` keys."""
        if not 1 <= n_experts <= self.max_experts:
            raise ValueError(f"n_experts must be in [1, {self.max_experts}], got {n_experts}")
        keys = torch.stack([self.keys[j] for j in range(n_experts)])
        return self.query(h_pooled) @ keys.T

    def random_mask(self, batch: int, n_experts: int, p: float, generator=None,
                    device=None) -> torch.Tensor:
        """(B, n_experts) bool: True = may take part; each earlier expert dropped with prob. p,
        the last (current) expert always kept."""
        keep = torch.rand(batch, n_experts, generator=generator, device=device) >= p
        keep[:, -1] = True
        return keep

    def forward(self, h_pooled: torch.Tensor, n_experts: int, top_k: int | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) -> gate weights (B, n_experts): softmax over the allowed top-k, 0 elsewhere."""
        return topk_softmax(self.scores(h_pooled, n_experts), k=top_k, mask=mask)
