"""Add your own method: one file, one config, one class (``l2emg run --method l2_lora
--strategy-file examples/my_method.py --out runs/l2``).  L2-LoRA: SeqLoRA plus
a quadratic pull of the adapter towards its weights after the previous scenario."""
from dataclasses import dataclass, field

from benchmark.strategy import MotionLMStrategy, StrategyConfig, register_strategy


@dataclass
class L2LoRAConfig(StrategyConfig):
    strength: float = field(default=0.1, metadata={"help": "weight of the L2 pull"})


@register_strategy("l2_lora", config=L2LoRAConfig)
class L2LoRA(MotionLMStrategy):
    """SeqLoRA + L2 pull towards the previous scenario's adapter."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.keep("anchor", {})          # carried across scenarios, checkpointed for --resume

    def before_experience(self, experience):
        self.use_lora("l2")

    def after_experience(self, experience):
        self.anchor = {n: p.detach().clone() for n, p in self.trainable_named_parameters()}

    def loss_terms(self, batch, outputs):
        if not self.anchor:
            return {}
        pull = sum(((p - self.anchor[n]) ** 2).sum() for n, p in self.trainable_named_parameters())
        return {"l2_pull": self.config.strength * pull}
