"""Distillation term shared by every method that keeps a teacher (LwF, ablations of MoE methods).

Knowledge distillation in the form of Hinton et al. (2015) as used by LwF (Li & Hoiem, 2016):
temperature-scaled KL divergence between the teacher's and the student's next-token
distributions, averaged over the target positions only (label != -100) and multiplied by
``T**2`` so that its gradient scale does not depend on the temperature.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def target_mask(labels: torch.Tensor) -> torch.Tensor:
    """(B, L) labels -> (B, L-1) bool mask of the positions whose *next* token is a target
    (the causal shift of a Hugging Face LM loss: logits[:, t] predicts labels[:, t+1])."""
    return labels[:, 1:] != -100


def shift_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, L, V) -> (B, L-1, V): drop the last position (it predicts nothing)."""
    return logits[:, :-1]


def distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    mask: torch.Tensor | None = None, temperature: float = 2.0,
                    vocab: torch.Tensor | None = None) -> torch.Tensor:
    """``T**2 * KL(softmax(teacher/T) || softmax(student/T))`` averaged over masked positions.

    ``student_logits``, ``teacher_logits``: (..., V) (teacher is detached here);
    ``mask``: (...) bool, positions to average over (None = all);
    ``vocab``: optional (K,) ids restricting both distributions to those columns (e.g. the
    motion tokens + ``<eom>``, the only ones generation may sample).  Returns a scalar >= 0;
    0 when no position is selected.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    s, t = student_logits.float(), teacher_logits.detach().float()
    if vocab is not None:
        vocab = vocab.to(s.device)
        s, t = s.index_select(-1, vocab), t.index_select(-1, vocab)
    if mask is not None:
        if mask.shape != s.shape[:-1]:
            raise ValueError(f"mask {tuple(mask.shape)} does not match logits {tuple(s.shape[:-1])}")
        s, t = s[mask.bool()], t[mask.bool()]
    else:
        s, t = s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1])
    if s.shape[0] == 0:
        return student_logits.sum() * 0.0
    log_p_s = F.log_softmax(s / temperature, dim=-1)
    log_p_t = F.log_softmax(t / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)       # (N,)
    return kl.mean() * temperature ** 2


def lm_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    labels: torch.Tensor, temperature: float = 2.0,
                    vocab: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`distillation_kl` of two causal-LM outputs (B, L, V) on the target positions of
    ``labels`` (B, L) (the motion tokens and ``<eom>``; prompt and padding are -100)."""
    return distillation_kl(shift_logits(student_logits), shift_logits(teacher_logits),
                           target_mask(labels), temperature, vocab)
