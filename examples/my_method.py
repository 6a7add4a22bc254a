"""Add your own method: one file, one config, one class (``l2emg run --method l2_lora
--plugin examples/my_method.py --out runs/l2``).  L2-LoRA: SeqLoRA plus
a quadratic pull of the adapter towards its weights after the previous scenario."""
from dataclasses import dataclass, field

import torch

from benchmark.strategy import MotionLMStrategy, StrategyConfig, register_strategy


@dataclass
class L2LoRAConfig(StrategyConfig):
    strength: float = field(default=0.1, metadata={"help": "weight of the L2 pull"})


@register_strategy("l2_lora", config=L2LoRAConfig)
class L2LoRA(MotionLMStrategy):
    """SeqLoRA + L2 pull towards the previous scenario's adapter."""

    def before_experience(self, experience):
        if "l2" not in self.motion_lm.adapters:
            self.add_lora("l2")
            self.anchor = {}

    def after_experience(self, experience):
        self.anchor = {n: p.detach().clone() for n, p in self.trainable_named_parameters()}

    def extra_loss(self, batch, outputs):
        if not self.anchor:
            return None
        pull = sum(((p - self.anchor[n]) ** 2).sum() for n, p in self.trainable_named_parameters())
        return self.config.strength * pull

    def state_dict(self):
        return {**super().state_dict(), "anchor": self.anchor}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.anchor = {n: t.to(self.device) for n, t in state["anchor"].items()}
