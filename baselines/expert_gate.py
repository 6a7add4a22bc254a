"""Expert Gate: Lifelong Learning with a Network of Experts (Aljundi, Chakravarty and Tuytelaars,
CVPR 2017); the same task-free selector as the auto-selector of MoE-Adapters4CL (Yu et al.,
CVPR 2024).  A routed, rehearsal-free baseline.

* Experts: one LoRA adapter per scenario (it alone trains on its scenario, then is frozen;
  its motion-token rows start from the previous adapter's, the protocol rule).
* Gate: one small undercomplete autoencoder per scenario, trained after the scenario on the
  frozen features of its training prompts only
  (:class:`~benchmark.strategy.experts.AutoencoderSelector`: standardise, Linear(D, code),
  ReLU, Linear(code, D), MSE).  At test time a prompt goes to the expert whose autoencoder
  reconstructs its features best (Expert Gate's relevance ``softmax(-error / t)``, t = 2, and
  the most relevant expert is the one used: hard routing, per prompt, with that adapter's own
  token rows).  No task identity is given at test time.
* Features: the frozen pooled input embeddings of the prompt
  (:func:`~benchmark.strategy.experts.frozen_prompt_embedding`; the text rows never train),
  standing in for Expert Gate's frozen pretrained conv features.

Differences from the paper: Expert Gate initialises a new expert from the most related
earlier one and may use LwF when fine-tuning it; here each expert is a fresh LoRA (as EPI's),
so the experts stay isolated and only the selector differs from EPI.
Memory per scenario: one adapter + its token rows + one autoencoder (2 D code + D + code floats).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from benchmark.strategy import MotionLMStrategy, Route, register_strategy
from benchmark.strategy.config import StrategyConfig
from benchmark.strategy.experts import AutoencoderSelector, frozen_prompt_embedding


@dataclass
class ExpertGateConfig(StrategyConfig):
    ae_code: int = field(default=16, metadata={"help": "autoencoder code size (undercomplete)"})
    ae_epochs: int = field(default=300, metadata={"help": "full-batch Adam steps per autoencoder"})
    ae_lr: float = field(default=1e-2, metadata={"help": "autoencoder learning rate"})
    temperature: float = field(default=2.0, metadata={
        "help": "relevance softmax(-error / t) (Expert Gate: 2); reported, the argmax routes"})

    def __post_init__(self):
        super().__post_init__()
        if self.ae_code < 1 or self.ae_epochs < 1 or self.ae_lr <= 0 or self.temperature <= 0:
            raise ValueError("ExpertGateConfig: ae_code, ae_epochs >= 1; ae_lr, temperature > 0")


@register_strategy("expert_gate", config=ExpertGateConfig)
class ExpertGate(MotionLMStrategy):
    """One isolated LoRA per scenario + per-scenario autoencoders that pick the expert."""

    display_name = "Expert Gate"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.config
        self.tasks: list[str] = self.keep("tasks", [])           # adapter of each scenario
        self.selector = self.keep("selector", AutoencoderSelector(
            code=c.ae_code, epochs=c.ae_epochs, lr=c.ae_lr, temperature=c.temperature,
            seed=self.seed))

    def before_experience(self, experience) -> None:
        prev = self.tasks[-1] if self.tasks else None
        self.add_lora(self.adapter_name(), copy_tokens_from=prev)

    def after_experience(self, experience) -> None:
        self.selector.add(self.frozen_prompt_features([it["text"] for it in experience.dataset]))
        self.tasks.append(self.adapter_name())

    def relevance(self, texts: Sequence[str]) -> np.ndarray:
        """(N, E) Expert Gate relevance of each trained expert for each prompt."""
        return self.selector.relevance(self.frozen_prompt_features(list(texts)), len(self.tasks)).numpy()

    def route(self, batch):
        """Each prompt to the adapter whose autoencoder reconstructs it best (hard routing)."""
        if not self.tasks:
            return None
        feats = frozen_prompt_embedding(self.model, batch["input_ids"],
                                        self.prompt_mask(batch["input_ids"], batch["attention_mask"]))
        k = self.selector.errors(feats, len(self.tasks)).argmin(1).numpy()
        return Route(adapters=[self.tasks[i] for i in k])
