"""SeqLoRA: one LoRA adapter fine-tuned on scenario after scenario (no forgetting remedy).

The lower-bound baseline of the L2-EMG paper (Table 2, "SEQ-LoRA: sequentially fine-tuning the
model using the LoRA method in a predefined order"), on LLaMA-2-7B with LoRA.  The paper gives
no LoRA hyperparameters; we use the shared defaults of :class:`StrategyConfig` (r=8, alpha=16,
dropout 0.05 on q/k/v/o, AdamW) and keep the AdamW state across scenarios
(``reset_optimizer=False``), i.e. plain sequential fine-tuning.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from benchmark.strategy import MotionLMStrategy, register_strategy
from benchmark.strategy.config import StrategyConfig


@dataclass
class SeqLoRAConfig(StrategyConfig):
    reset_optimizer: bool = field(default=False, metadata={
        "help": "fresh AdamW state at every experience (plain fine-tuning keeps it)"})


@register_strategy("seq_lora", config=SeqLoRAConfig)
class SeqLoRA(MotionLMStrategy):
    """One LoRA adapter trained sequentially on every scenario (forgets)."""

    ADAPTER = "seq"

    def before_experience(self, experience) -> None:
        self.use_lora(self.ADAPTER)
