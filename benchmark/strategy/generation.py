"""Generation of a strategy: motion codes for prompts, routed as the method's ``route`` says.

:class:`Route` is what ``MotionLMStrategy.route`` returns for a batch of prompts (expert-bank
weights, replacement prompt embeddings, or one LoRA adapter per prompt); :class:`GenerationMixin`
is the part of ``MotionLMStrategy`` that applies it while sampling (``generate``) and
:class:`RoutedModel` wraps the LM for callers that drive ``model.generate`` themselves.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from benchmark.strategy import lora, speed


@dataclass
class Route:
    """How one batch of prompts is generated (what :meth:`MotionLMStrategy.route` returns).

    ``weights`` (B, E): gate weights of the strategy's :class:`ExpertBank` while sampling;
    ``inputs_embeds`` (B, L, d): replace the prompt's token embeddings (with ``input_ids`` kept);
    ``adapters`` (B,): the LoRA adapter each prompt is generated with (hard routing: the prompts
    are generated in groups, one per adapter in creation order, each adapter with its own
    motion-token rows).  Fields may be combined except ``adapters`` with the others."""

    weights: torch.Tensor | None = None
    inputs_embeds: torch.Tensor | None = None
    adapters: Sequence[str] | None = None


class RoutedModel(torch.nn.Module):
    """The strategy's LM with :meth:`MotionLMStrategy.route` applied to every ``generate`` call
    (weights / inputs_embeds routes; for callers that drive ``model.generate`` themselves)."""

    def __init__(self, strategy: "MotionLMStrategy"):
        super().__init__()
        self.inner = strategy.model
        self._strategy = [strategy]          # not a submodule

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, **kwargs):
        s = self._strategy[0]
        route = s.route({"input_ids": input_ids, "attention_mask": attention_mask, "texts": None})
        if route is not None and route.adapters is not None:
            raise ValueError("RoutedModel cannot split a batch by adapter; use strategy.generate")
        with s._routing(route) as extra:
            return self.inner.generate(input_ids=input_ids, attention_mask=attention_mask,
                                       **extra, **kwargs)


class GenerationMixin:
    """``MotionLMStrategy``'s generation (uses its ``model``, ``motion_lm``, ``bank``,
    ``method_modules``, ``config``, ``device``, :meth:`route` and :meth:`eval_mode`)."""

    @torch.no_grad()
    def generate(self, texts: Sequence[str], settings=None) -> list[np.ndarray]:
        """Motion codes for each text (empty array = failed output), in chunks of
        ``settings.batch_size`` prompts, each generated as :meth:`route` says."""
        from benchmark.backbone.motion_lm import GenerationSettings

        texts, settings = list(texts), settings or GenerationSettings()
        self.model.to(self.device)
        self.method_modules.to(self.device)
        out: list[np.ndarray] = []
        with self.eval_mode():
            for start in range(0, len(texts), settings.batch_size):
                out.extend(self._generate_chunk(texts[start: start + settings.batch_size], settings))
        return out

    def _inputs(self, texts: list[str]) -> dict:
        return {k: v.to(self.device) for k, v in self.motion_lm.generation_inputs(texts).items()}

    def _generate_chunk(self, texts: list[str], settings) -> list[np.ndarray]:
        batch = self._inputs(texts)
        route = self.route({**batch, "texts": texts})
        if route is None or route.adapters is None:
            with self._routing(route) as extra, self._merged_lora():
                return self.motion_lm.generate_batch(batch, settings, **extra)
        if route.weights is not None or route.inputs_embeds is not None:
            raise ValueError("a Route with adapters cannot also carry weights or inputs_embeds")
        names = list(route.adapters)
        order = list(self.motion_lm.adapters)
        out: list = [None] * len(texts)
        active = list(self.model.base_model.active_adapters)
        try:
            for name in sorted(set(names), key=order.index):
                idx = [i for i, n in enumerate(names) if n == name]
                self.model.base_model.set_adapter(name)
                with self._merged_lora():
                    codes = self.motion_lm.generate_batch(self._inputs([texts[i] for i in idx]),
                                                          settings)
                for i, c in zip(idx, codes):
                    out[i] = c
        finally:
            lora.set_active(self.motion_lm, active if len(active) > 1 else active[0])
        return out

    def _merged_lora(self):
        """``merge_for_generation``: the active adapters merged into weight copies while one
        batch is sampled (not with an expert bank, whose hooks mix the adapters per prompt)."""
        if self.config.merge_for_generation and self.bank is None and lora.is_peft(self.model):
            return speed.merged_lora(self.model)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _routing(self, route: Route | None):
        """Apply a weights / inputs_embeds route: yields the extra ``generate`` arguments."""
        if route is None:
            yield {}
            return
        extra = {} if route.inputs_embeds is None else {"inputs_embeds": route.inputs_embeds}
        if route.weights is None:
            yield extra
            return
        if self.bank is None:
            raise RuntimeError(f"{type(self).__name__}.route gave weights but there is no expert bank")
        with self.bank.route(weights=route.weights):
            yield extra

    def routed_model(self) -> RoutedModel:
        """The LM wrapped so that ``model.generate(input_ids, attention_mask, ...)`` is routed."""
        return RoutedModel(self)
