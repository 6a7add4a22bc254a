"""O-LoRA: Orthogonal Subspace Learning for Language Model Continual Learning
(Wang et al., EMNLP 2023 Findings).

A new LoRA adapter per scenario; the earlier ones are frozen and, during training and at
inference, every adapter's update is summed (the expert bank with a uniform gate; the
motion-token rows follow the newest adapter, which starts from its predecessor's rows).
The new adapter's A (r, d_in) is pushed towards a subspace orthogonal to every earlier A:

    L = LM + lambda1 * sum_layers sum_old sum_ij |(A_old A_new^T)_ij|
           + lambda2 * sum_layers (||A_new||_2 + ||B_new||_2)

Both terms are logged separately in ``history`` (``orth_loss``, ``l2_loss``, weighted as added
to the loss; ``l2_loss`` only when lambda2 > 0): the orthogonality sum grows with the number of
scenarios and can dwarf the LM loss.
Hyperparameters: lambda1 = 0.5, lambda2 = 0 (the O-LoRA scripts' ``--lamda_1 0.5
--lamda_2 0``); learning rate: the shared ``lr`` on the first scenario and ``lr *
later_lr_scale`` (0.1) on every later one, the reference's schedule (cmnfriend/O-LoRA
``scripts_llama/order_1.sh``: 1e-3 on the first task, 1e-4 after; the absolute value follows
the preset's lr for the backbone); LoRA r = 8, alpha 16 on q/k/v/o (shared defaults; O-LoRA
used q/v).
Memory per scenario: one adapter (r x (d_in + d_out) per target layer + token rows).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from benchmark.strategy import ExpertBank, MotionLMStrategy, lora, register_strategy
from benchmark.strategy.config import StrategyConfig
from benchmark.strategy.regularizers import lora_l2, lora_orthogonality


@dataclass
class OLoRAConfig(StrategyConfig):
    lambda1: float = field(default=0.5, metadata={"help": "weight of the orthogonality loss"})
    lambda2: float = field(default=0.0, metadata={"help": "weight of the L2 loss on the new LoRA"})
    later_lr_scale: float = field(default=0.1, metadata={
        "help": "lr of every scenario after the first = lr * this (reference: 1e-3 then 1e-4)"})

    def __post_init__(self):
        super().__post_init__()
        if self.lambda1 < 0 or self.lambda2 < 0:
            raise ValueError("OLoRAConfig: lambda1 and lambda2 must be >= 0")
        if self.later_lr_scale <= 0:
            raise ValueError("OLoRAConfig: later_lr_scale must be > 0")


@register_strategy("o_lora", config=OLoRAConfig)
class OLoRA(MotionLMStrategy):
    """A new LoRA per scenario kept orthogonal to the frozen earlier ones; all summed."""

    display_name = "O-LoRA"
    paper_row = 5

    @property
    def experts(self) -> list[str]:
        return lora.adapter_names(self.motion_lm)

    def _attach(self, names: list[str]) -> None:
        """(Re)build the uniform-sum bank over ``names``; only the newest one trains."""
        if self.bank is not None:
            self.bank.detach()
        lora.set_active(self.motion_lm, names[-1])          # token rows + trainable = newest
        self.bank = ExpertBank(self.model, names).attach()
        self.bank.set_weights(torch.ones(len(names)))

    def before_experience(self, experience) -> None:
        old = self.experts
        if self.bank is not None:
            self.bank.detach()
        self.add_lora(self.adapter_name(), copy_tokens_from=old[-1] if old else None)
        self._attach(old + [self.adapter_name()])

    def experience_lr(self) -> float:
        return self.config.lr * (self.config.later_lr_scale if self.exp_counter > 0 else 1.0)

    def loss_terms(self, batch, outputs):
        new, old = self.experts[-1], self.experts[:-1]
        terms = {"orth_loss": self.config.lambda1 * lora_orthogonality(self.model, new, old)}
        if self.config.lambda2 > 0:
            terms["l2_loss"] = self.config.lambda2 * lora_l2(self.model, new)
        return terms
