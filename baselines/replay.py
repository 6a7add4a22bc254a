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
Built from :class:`~benchmark.strategy.plugins.ReplayPlugin`: SeqLoRA ``--with replay`` is the
same method (same numbers, tested).
"""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.strategy import register_strategy
from benchmark.strategy.plugins import ReplayOptions, ReplayPlugin
from baselines.seq_lora import SeqLoRA, SeqLoRAConfig


@dataclass
class ReplayConfig(SeqLoRAConfig, ReplayOptions):
    def __post_init__(self):
        SeqLoRAConfig.__post_init__(self)
        ReplayOptions.__post_init__(self)


@register_strategy("replay", config=ReplayConfig)
class Replay(SeqLoRA):
    """One LoRA trained sequentially on each scenario mixed with a reservoir memory."""

    display_name = "Replay"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.replay = self.use_plugin(ReplayPlugin.from_config(self.config, seed=self.seed))

    @property
    def buffer(self):
        return self.replay.buffer
