"""LwF-LoRA: Learning without Forgetting (Li & Hoiem, ECCV 2016 / TPAMI 2017) on one LoRA.

One LoRA adapter is fine-tuned scenario after scenario (as SeqLoRA).  Before every scenario
after the first, the current adapter's tensors (LoRA A/B and its motion-token rows) are
copied as the *teacher*; on each mini-batch of the new scenario the teacher's next-token
logits come from a no-grad forward with those tensors swapped in, and the loss is

    L = LM(current data) + alpha * T^2 * KL(softmax(z_teacher/T) || softmax(z_student/T))

averaged over the target positions (``<som> m_1..m_L <eom>``), with both distributions
restricted to the tokens generation may emit (motion tokens + ``<eom>``) unless
``distill_full_vocab``.  Hyperparameters: alpha = 1, T = 2 (Li & Hoiem's lambda_o = 1,
T = 2; also Avalanche's LwF defaults); LoRA r = 8, alpha 16 on q/k/v/o (shared defaults).
Memory: one extra copy of the adapter (teacher) whatever the number of scenarios; compute:
one extra no-grad forward per step.
Built from :class:`~benchmark.strategy.plugins.LwFPlugin` (``--with lwf`` adds it to any method).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.strategy import register_strategy
from benchmark.strategy.plugins import LwFOptions, LwFPlugin
from baselines.seq_lora import SeqLoRA, SeqLoRAConfig


@dataclass
class LwFLoRAConfig(SeqLoRAConfig, LwFOptions):
    def __post_init__(self):
        SeqLoRAConfig.__post_init__(self)
        LwFOptions.__post_init__(self)


@register_strategy("lwf_lora", config=LwFLoRAConfig)
class LwFLoRA(SeqLoRA):
    """One LoRA trained sequentially + distillation from the previous model on new data."""

    display_name = "LwF-LoRA"
    paper_row = 3

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lwf = self.use_plugin(LwFPlugin.from_config(self.config, seed=self.seed))

    @property
    def teacher(self) -> dict[str, torch.Tensor] | None:
        return self.lwf.teacher

    def teacher_logits(self, batch: dict) -> torch.Tensor:
        """(B, L, V) logits of the previous model (the student is left untouched)."""
        return self.lwf.teacher_logits(self, batch)
