"""Parameter regularisers shared by the LoRA continual-learning methods.

* :func:`orthogonality_penalty` / :func:`lora_orthogonality` - O-LoRA (Wang et al., EMNLP 2023
  Findings): ``sum_layers sum_old sum_ij |(A_old A_new^T)_ij|`` between the row spaces of
  the LoRA ``A`` matrices (r, d_in); zero iff the new subspace is orthogonal to every old one.
* :func:`lora_l2` - O-LoRA's second term: the L2 (Frobenius) norms of the new LoRA's A and B
  matrices, summed (not squared, as in the O-LoRA code).
* :class:`EWC` - Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017): diagonal
  empirical Fisher of the trainable parameters after each experience, and the quadratic
  penalty ``lambda/2 * sum_k F_k (theta - theta*_k)^2``; ``mode="separate"`` keeps one
  (anchor, Fisher) pair per experience, ``mode="online"`` (Schwarz et al., 2018) one pair
  with ``F <- gamma F + F_new`` and the latest anchor.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

from benchmark.strategy.lora import lora_layers


# ---------------------------------------------------------------------- orthogonality (O-LoRA)
def orthogonality_penalty(a_new: torch.Tensor, a_olds: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_old sum |A_old @ A_new^T|``: a_new (r, d), each a_old (r_k, d) -> scalar >= 0."""
    total = a_new.new_zeros(())
    for a_old in a_olds:
        if a_old.shape[-1] != a_new.shape[-1]:
            raise ValueError(f"A matrices disagree on d_in: {tuple(a_old.shape)} vs {tuple(a_new.shape)}")
        total = total + (a_old.detach().to(a_new.dtype) @ a_new.T).abs().sum()
    return total


def lora_orthogonality(model, new: str, olds: Iterable[str]) -> torch.Tensor:
    """:func:`orthogonality_penalty` of adapter ``new`` against adapters ``olds``, summed over
    every LoRA layer holding them (scalar; 0 when ``olds`` is empty)."""
    olds = list(olds)
    total = None
    for layer in lora_layers(model).values():
        if new not in layer.lora_A:
            continue
        a_new = layer.lora_A[new].weight
        term = orthogonality_penalty(a_new, [layer.lora_A[o].weight for o in olds if o in layer.lora_A])
        total = term if total is None else total + term
    if total is None:
        raise KeyError(f"adapter {new!r} is in no LoRA layer")
    return total


def lora_l2(model, name: str) -> torch.Tensor:
    """Sum over layers of ``||A||_2 + ||B||_2`` (Frobenius norms) of adapter ``name``."""
    total = None
    for layer in lora_layers(model).values():
        if name in layer.lora_A:
            term = layer.lora_A[name].weight.norm() + layer.lora_B[name].weight.norm()
            total = term if total is None else total + term
    if total is None:
        raise KeyError(f"adapter {name!r} is in no LoRA layer")
    return total


# ---------------------------------------------------------------------- EWC
NamedParams = Callable[[], Iterable[tuple[str, torch.nn.Parameter]]]


class EWC:
    """Diagonal-Fisher EWC over named parameters (the trainable LoRA / token rows)."""

    def __init__(self, lam: float, mode: str = "separate", gamma: float = 1.0):
        if lam < 0:
            raise ValueError(f"EWC lambda must be >= 0, got {lam}")
        if mode not in ("separate", "online"):
            raise ValueError(f"EWC mode must be 'separate' or 'online', got {mode!r}")
        if not 0 < gamma <= 1:
            raise ValueError(f"EWC gamma must be in (0, 1], got {gamma}")
        self.lam, self.mode, self.gamma = float(lam), mode, float(gamma)
        self.terms: list[dict[str, dict[str, torch.Tensor]]] = []   # [{name: {anchor, fisher}}]

    @staticmethod
    @torch.enable_grad()
    def fisher(named: Sequence[tuple[str, torch.nn.Parameter]], loss_fn: Callable[[object], torch.Tensor],
               batches: Iterable, max_batches: int = 0) -> dict[str, torch.Tensor]:
        """Empirical diagonal Fisher: the mean over mini-batches of the squared gradient of
        ``loss_fn(batch)`` w.r.t. each parameter of ``named``; returns {name: tensor (cpu)}."""
        params = [p for _, p in named]
        acc = [torch.zeros_like(p, dtype=torch.float32) for p in params]
        n = 0
        for batch in batches:
            if max_batches and n >= max_batches:
                break
            grads = torch.autograd.grad(loss_fn(batch), params, allow_unused=True)
            for a, g in zip(acc, grads):
                if g is not None:
                    a += g.detach().float() ** 2
            n += 1
        if n == 0:
            raise ValueError("EWC.fisher needs at least one batch")
        return {name: (a / n).cpu() for (name, _), a in zip(named, acc)}

    def consolidate(self, named: Sequence[tuple[str, torch.nn.Parameter]],
                    fisher: dict[str, torch.Tensor]) -> None:
        """Store the current values of ``named`` as an anchor with importance ``fisher``."""
        new = {n: {"anchor": p.detach().cpu().clone(), "fisher": fisher[n].detach().cpu().clone()}
               for n, p in named}
        if self.mode == "online" and self.terms:
            old = self.terms[0]
            for n, t in new.items():
                if n in old and old[n]["fisher"].shape == t["fisher"].shape:
                    t["fisher"] += self.gamma * old[n]["fisher"]
            self.terms = [new]
        else:
            self.terms.append(new)

    def penalty(self, named: Iterable[tuple[str, torch.nn.Parameter]]) -> torch.Tensor | None:
        """``lambda/2 * sum_terms sum_n F_n (p_n - anchor_n)^2`` (None before any consolidation)."""
        if not self.terms:
            return None
        total = None
        for n, p in named:
            for term in self.terms:
                if n in term:
                    t = term[n]
                    if t["fisher"].device != p.device:     # moved once, not every step
                        t["fisher"], t["anchor"] = t["fisher"].to(p.device), t["anchor"].to(p.device)
                    v = (t["fisher"] * (p.float() - t["anchor"]) ** 2).sum()
                    total = v if total is None else total + v
        return None if total is None else 0.5 * self.lam * total

    def state_dict(self) -> dict:
        terms = [{n: {k: v.cpu() for k, v in t.items()} for n, t in term.items()} for term in self.terms]
        return {"terms": terms, "mode": self.mode, "gamma": self.gamma}

    def load_state_dict(self, state: dict) -> None:
        self.terms = [{n: dict(t) for n, t in term.items()} for term in state["terms"]]

    def nbytes(self) -> int:
        return sum(t[k].numel() * t[k].element_size() for term in self.terms for t in term.values()
                   for k in ("anchor", "fisher"))
