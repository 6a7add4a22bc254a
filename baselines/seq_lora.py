"""SeqLoRA: one LoRA adapter fine-tuned on scenario after scenario (no forgetting remedy).

The lower-bound baseline of the L2-EMG paper (Table 2, "SEQ-LoRA: sequentially fine-tuning the
model using the LoRA method in a predefined order"), on LLaMA-2-7B with LoRA.  The paper gives
no LoRA hyperparameters; we use the shared defaults of :class:`StrategyConfig` (r=8, alpha=16,
dropout 0.05 on q/k/v/o, AdamW).  The AdamW state is reset at every scenario like every other
method's (the protocol's one optimiser-reset policy, docs/CONTRACTS.md "Protocol rules"; it used
to be carried over here); ``--set reset_optimizer=false`` carries it.
"""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.strategy import MotionLMStrategy, register_strategy
from benchmark.strategy.config import StrategyConfig


@dataclass
class SeqLoRAConfig(StrategyConfig):
    pass


@register_strategy("seq_lora", config=SeqLoRAConfig)
class SeqLoRA(MotionLMStrategy):
    """One LoRA adapter trained sequentially on every scenario (forgets)."""

    display_name = "SeqLoRA"
    paper_row = 2
    role = "lower_bound"      # plain sequential fine-tuning

    ADAPTER = "seq"

    def before_experience(self, experience) -> None:
        self.use_lora(self.ADAPTER)
