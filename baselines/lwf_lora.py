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
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from benchmark.strategy import MotionLMStrategy, lora, register_strategy
from benchmark.strategy.config import StrategyConfig
from benchmark.strategy.distill import lm_distillation


@dataclass
class LwFLoRAConfig(StrategyConfig):
    alpha: float = field(default=1.0, metadata={"help": "weight of the distillation term"})
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature T"})
    distill_full_vocab: bool = field(default=False, metadata={
        "help": "distil the full-vocabulary distribution (default: motion tokens + <eom> only)"})

    def __post_init__(self):
        super().__post_init__()
        if self.alpha < 0 or self.temperature <= 0:
            raise ValueError("LwFLoRAConfig: need alpha >= 0 and temperature > 0")


@register_strategy("lwf_lora", config=LwFLoRAConfig)
class LwFLoRA(MotionLMStrategy):
    """One LoRA trained sequentially + distillation from the previous model on new data."""

    ADAPTER = "seq"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.teacher: dict[str, torch.Tensor] | None = None    # parameter name -> tensor

    def before_experience(self, experience) -> None:
        if self.use_lora(self.ADAPTER):
            return
        self.teacher = {n: p.detach().clone()
                        for n, p in lora.adapter_parameters(self.motion_lm, self.ADAPTER).items()}

    def _vocab(self) -> torch.Tensor | None:
        if self.config.distill_full_vocab:
            return None
        m = self.motion_lm
        return torch.cat([m.motion_token_ids, torch.tensor([m.eom_id])])

    @torch.no_grad()
    def teacher_logits(self, batch: dict) -> torch.Tensor:
        """(B, L, V) logits of the previous model: swap the teacher tensors in, forward, swap back."""
        params = lora.adapter_parameters(self.motion_lm, self.ADAPTER)
        student = {n: p.detach().clone() for n, p in params.items()}
        was_training = self.model.training
        try:
            for n, p in params.items():
                p.copy_(self.teacher[n])
            self.model.eval()
            return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        finally:
            for n, p in params.items():
                p.copy_(student[n])
            self.model.train(was_training)

    def forward(self):
        # the teacher pass must run before the student's graph exists (it swaps tensors in place)
        self._teacher_out = self.teacher_logits(self.mbatch) if self.teacher is not None else None
        return super().forward()

    def extra_loss(self, batch, outputs):
        if self._teacher_out is None:
            return None
        kl = lm_distillation(outputs.logits, self._teacher_out, batch["labels"],
                             self.config.temperature, self._vocab())
        self._teacher_out = None
        return self.config.alpha * kl

    def state_dict(self):
        teacher = None if self.teacher is None else {n: t.cpu() for n, t in self.teacher.items()}
        return {**super().state_dict(), "teacher": teacher}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        t = state.get("teacher")
        self.teacher = None if t is None else {n: v.to(self.device) for n, v in t.items()}
