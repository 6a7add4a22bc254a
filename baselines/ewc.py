"""EWC: Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017) on one LoRA adapter.

One LoRA adapter is fine-tuned scenario after scenario (as SeqLoRA).  After each scenario the
diagonal empirical Fisher of the trainable parameters (the LoRA A/B matrices and the
adapter's motion-token rows) is the mean over training samples of the squared *per-sample*
gradient of the LM loss (the empirical Fisher of Kirkpatrick et al.; at most
``fisher_samples`` samples of the scenario, dropout off), and the current values are kept as
the anchor.  (It used to be the squared mini-batch gradient, about B times smaller.)  Training on later scenarios adds

    lambda/2 * sum_k sum_i F_k,i (theta_i - theta*_k,i)^2

(``mode="separate"``: one term per earlier scenario, as in the paper; ``"online"``: one
accumulated term, F <- gamma F + F_new, anchored at the latest values; Schwarz et al., 2018).
Hyperparameters: lambda = 100 (the earlier 1000 on the ~B = 8-16 times smaller mini-batch
Fisher, re-set for the per-sample Fisher so that the penalty keeps about the same strength),
mode separate, Fisher from at most ``fisher_samples`` = 256 samples.
Memory per scenario: 2 x the adapter's parameters (anchor + Fisher) in separate mode, a
fixed 2 x in online mode.
Built from :class:`~benchmark.strategy.plugins.EWCPlugin` (``--with ewc`` adds it to any method).
"""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.strategy import register_strategy
from benchmark.strategy.plugins import EWCOptions, EWCPlugin
from baselines.seq_lora import SeqLoRA, SeqLoRAConfig


@dataclass
class EWCConfig(SeqLoRAConfig, EWCOptions):
    def __post_init__(self):
        SeqLoRAConfig.__post_init__(self)
        EWCOptions.__post_init__(self)


@register_strategy("ewc", config=EWCConfig)
class EWCLoRA(SeqLoRA):
    """One LoRA trained sequentially with a diagonal-Fisher quadratic penalty."""

    display_name = "EWC"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ewc_plugin = self.use_plugin(EWCPlugin.from_config(self.config, seed=self.seed))

    @property
    def ewc(self):
        return self.ewc_plugin.ewc
