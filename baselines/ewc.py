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
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch.utils.data import DataLoader

from benchmark.strategy import MotionLMStrategy, register_strategy
from benchmark.strategy.config import StrategyConfig
from benchmark.strategy.regularizers import EWC


@dataclass
class EWCConfig(StrategyConfig):
    ewc_lambda: float = field(default=100.0, metadata={"help": "weight lambda of the EWC penalty"})
    mode: str = field(default="separate", metadata={"help": "separate | online"})
    gamma: float = field(default=1.0, metadata={"help": "online mode: decay of the old Fisher"})
    fisher_samples: int = field(default=256, metadata={
        "help": "training samples (one gradient each) for the empirical Fisher (0 = all)"})

    def __post_init__(self):
        super().__post_init__()
        if self.fisher_samples < 0:
            raise ValueError("EWCConfig: fisher_samples must be >= 0")
        EWC(self.ewc_lambda, self.mode, self.gamma)        # validates lambda, mode, gamma


@register_strategy("ewc", config=EWCConfig)
class EWCLoRA(MotionLMStrategy):
    """One LoRA trained sequentially with a diagonal-Fisher quadratic penalty."""

    ADAPTER = "seq"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ewc = EWC(self.config.ewc_lambda, self.config.mode, self.config.gamma)

    def before_experience(self, experience) -> None:
        self.use_lora(self.ADAPTER)

    def _named(self):
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def extra_loss(self, batch, outputs):
        return self.ewc.penalty(self._named())

    def after_experience(self, experience) -> None:
        loader = DataLoader(experience.dataset, batch_size=1, shuffle=False,   # per sample
                            collate_fn=self.collate, num_workers=0)
        device = self.device

        def loss(batch):
            return self.model(input_ids=batch["input_ids"].to(device),
                              attention_mask=batch["attention_mask"].to(device),
                              labels=batch["labels"].to(device)).loss

        named = self._named()
        was_training = self.model.training
        self.model.eval()
        try:
            fisher = EWC.fisher(named, loss, loader, self.config.fisher_samples)
        finally:
            self.model.train(was_training)
        self.ewc.consolidate(named, fisher)

    def state_dict(self):
        return {**super().state_dict(), "ewc": self.ewc.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.ewc.load_state_dict(state["ewc"])
