"""MTL: multi-task learning, one LoRA trained jointly on all scenarios at once (upper bound).

The non-continual reference of the L2-EMG paper (Table 2, "MTL, which trains a model on
multiple tasks simultaneously"; LLaMA-2-7B + LoRA; the same numbers in both settings).
``joint = True``: the runner hands it the union of every training experience as a single
experience, then evaluates on every scenario; forgetting (FR, BWT) is undefined (NaN).
Hyperparameters are the shared :class:`StrategyConfig` defaults (r=8, alpha=16, q/k/v/o).
"""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.strategy import MotionLMStrategy, register_strategy
from benchmark.strategy.config import StrategyConfig


@dataclass
class MTLConfig(StrategyConfig):
    pass


@register_strategy("mtl", config=MTLConfig)
class MTL(MotionLMStrategy):
    """Joint LoRA fine-tuning on the union of all scenarios (non-continual upper bound)."""

    display_name = "MTL"
    paper_row = 1
    role = "upper_bound"      # the joint multi-task model

    joint = True
    ADAPTER = "joint"

    def before_experience(self, experience) -> None:
        self.use_lora(self.ADAPTER)
