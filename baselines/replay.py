"""Replay: experience replay with a reservoir memory (the classic rehearsal reference).

One LoRA adapter is fine-tuned scenario after scenario (as SeqLoRA); after each scenario its
training items are offered to a reservoir buffer (Vitter 1985; "ER" with reservoir sampling
as in Chaudhry et al., 2019, "On Tiny Episodic Memories in Continual Learning"), so the
buffer stays a uniform sample of all earlier scenarios.  Every training mini-batch of a new
scenario is extended with ``replay_batch_size`` items drawn from the buffer (one LM loss
over the joint batch).  Hyperparameters: ``mem_size`` = 200 items in total (about 2% of an
8-scenario stream at full scale; text + <= 50 motion codes per item, a few kB in total),
``replay_batch_size`` = 8 (= the current batch size: half of each step is memory).
Memory per scenario: none beyond the fixed buffer; compute: batches twice as large.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from benchmark.strategy import MotionLMStrategy, register_strategy
from benchmark.strategy.config import StrategyConfig
from benchmark.strategy.replay import ReservoirBuffer

_KEEP = ("id", "features", "motion_ids", "text", "emotion", "scenario", "subset")


@dataclass
class ReplayConfig(StrategyConfig):
    mem_size: int = field(default=200, metadata={"help": "reservoir buffer capacity (items)"})
    replay_batch_size: int = field(default=8, metadata={
        "help": "buffer items added to every training mini-batch"})

    def __post_init__(self):
        super().__post_init__()
        if self.mem_size < 0 or self.replay_batch_size < 0:
            raise ValueError("ReplayConfig: mem_size and replay_batch_size must be >= 0")


@register_strategy("replay", config=ReplayConfig)
class Replay(MotionLMStrategy):
    """One LoRA trained sequentially on each scenario mixed with a reservoir memory."""

    ADAPTER = "seq"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.buffer = ReservoirBuffer(self.config.mem_size, seed=self.seed)

    def before_experience(self, experience) -> None:
        self.use_lora(self.ADAPTER)

    def collate(self, items: Sequence[dict]) -> dict:
        """Current items + ``replay_batch_size`` buffer items in one LM batch (training only)."""
        extra = self.buffer.sample(self.config.replay_batch_size) if self.is_training else []
        return super().collate(list(items) + extra)

    def after_experience(self, experience) -> None:
        data = experience.dataset
        self.buffer.extend({k: v for k, v in data[i].items() if k in _KEEP} for i in range(len(data)))

    def state_dict(self):
        return {**super().state_dict(), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.buffer.load_state_dict(state["buffer"])
