"""Scenario-adapted gate of ES-MoE (Eq. 4): a down/up projection maps the pooled
emotion-highlighted input h to a query; expert j's weight is softmax_j(query . K_j) over the
experts trained so far.  The projection is SAPT's ``trans_input`` (which the paper cites for it):
bias-free Linear d -> d_down, bias-free Linear d_down -> d_key, SiLU, LayerNorm: no bias can
swamp a small input (embeddings of std 0.02 otherwise give nearly the same routing for every
prompt) and the query has a fixed size whatever the scale of h.  ``norm=False`` is the earlier
Linear-SiLU-Linear with biases.  ``center``: the input is first centred and scaled by running
statistics of the training batches (:meth:`ExpertGate.observe`), since pooled h is dominated by
a component every prompt shares.  Keys are rows of one orthogonally initialised (max_experts, d_key)
matrix, kept as one ``Parameter`` per expert so that only the current expert's key trains.

During training, earlier experts are dropped from the weighting at random (each independently,
per sample) with probability ``p = p0 * (1 - progress)``, progress in [0, 1] within the
experience: early steps force the new expert to learn alone, later steps let the gate use old
experts.  The current expert is never masked, and while it trains it is always among the
top-k (``force``), so it gets gradient on every sample.  Among the remaining experts the top-k
by score are kept and renormalised with a softmax (:func:`benchmark.strategy.experts.topk_softmax`).
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

    def __init__(self, d_model: int, d_key: int = 64, d_down: int = 32, max_experts: int = 8,
                 norm: bool = True, center: bool = False):
        super().__init__()
        if d_key < max_experts:
            raise ValueError(f"d_key ({d_key}) must be >= max_experts ({max_experts}) for "
                             "orthogonal keys")
        self.norm = bool(norm)
        self.down = nn.Linear(d_model, d_down, bias=not norm)
        self.act = nn.SiLU()
        self.up = nn.Linear(d_down, d_key, bias=not norm)
        self.ln = nn.LayerNorm(d_key) if norm else nn.Identity()
        keys = torch.empty(max_experts, d_key)
        nn.init.orthogonal_(keys)                          # orthonormal rows
        self.keys = nn.ParameterList([nn.Parameter(k.clone()) for k in keys])
        self.max_experts = max_experts
        self.center = bool(center)
        # running statistics of the gate input over every training batch seen (count-weighted,
        # all scenarios alike): mean (d,) and the mean squared norm of the centred input
        self.register_buffer("in_count", torch.zeros(()))
        self.register_buffer("in_mean", torch.zeros(d_model))
        self.register_buffer("in_sq", torch.ones(()))

    @torch.no_grad()
    def observe(self, h_pooled: torch.Tensor) -> None:
        """Add a training batch (B, d) to the running input statistics (``center``)."""
        x = h_pooled.detach().float()
        n, c = float(len(x)), float(self.in_count)
        mean = (self.in_mean * c + x.sum(0)) / (c + n)
        sq_new = (x - mean).pow(2).sum(-1).mean()
        # old centred second moment, moved to the new mean, then mixed by counts
        sq_old = self.in_sq + (self.in_mean - mean).pow(2).sum()
        self.in_sq.copy_((sq_old * c + sq_new * n) / (c + n) if c else sq_new)
        self.in_mean.copy_(mean)
        self.in_count.add_(n)

    def standardize(self, h_pooled: torch.Tensor) -> torch.Tensor:
        """(h - running mean) / running RMS of the centred input (identity if not ``center``)."""
        x = h_pooled.float()
        if not self.center or float(self.in_count) == 0:
            return x
        return (x - self.in_mean) / self.in_sq.clamp_min(1e-12).sqrt()

    def query(self, h_pooled: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, d_key): LN(SiLU(up(down(h)))) (SAPT's order), or up(SiLU(down(h)))."""
        x = self.standardize(h_pooled)
        if self.norm:
            return self.ln(self.act(self.up(self.down(x))))
        return self.up(self.act(self.down(x)))

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
                mask: torch.Tensor | None = None, force: int | None = None) -> torch.Tensor:
        """(B, d) -> gate weights (B, n_experts): softmax over the allowed top-k, 0 elsewhere.
        ``force``: index of an expert that is always among the k (the one being trained)."""
        return forced_topk_softmax(self.scores(h_pooled, n_experts), top_k, mask, force)


def forced_topk_softmax(scores: torch.Tensor, k: int | None = None,
                        mask: torch.Tensor | None = None, force: int | None = None) -> torch.Tensor:
    """:func:`topk_softmax`, except that expert ``force`` always takes one of the k places
    (the other k-1 go to the best remaining scores); the weights are the softmax of the real
    scores over the selected experts."""
    if force is None or k is None or k >= scores.shape[-1]:
        return topk_softmax(scores, k=k, mask=mask)
    rank = scores.detach().clone()
    if mask is not None:
        rank = rank.masked_fill(~mask.bool(), float("-inf"))
    rank[..., force] = float("inf")
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, rank.topk(k, dim=-1).indices, True)
    if mask is not None:
        keep &= mask.bool()
    keep[..., force] = True
    return torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
