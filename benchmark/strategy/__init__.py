"""The pluggable strategy protocol: :class:`MotionLMStrategy` (an Avalanche template), the
registries (``@register_strategy``; ``@register_plugin`` for CL plugins), typed configs, and the
shared LoRA / expert-bank plumbing.

Attributes are imported lazily (avalanche takes seconds to import)."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "MotionLMStrategy": "benchmark.strategy.base",
    "Route": "benchmark.strategy.generation",
    "StrategyConfig": "benchmark.strategy.config",
    "register_strategy": "benchmark.strategy.registry",
    "discover": "benchmark.strategy.registry",
    "get_strategy": "benchmark.strategy.registry",
    "make_config": "benchmark.strategy.registry",
    "available": "benchmark.strategy.registry",
    "load_strategy_file": "benchmark.strategy.registry",
    "CLPlugin": "benchmark.strategy.plugins",
    "register_plugin": "benchmark.strategy.plugins",
    "ExpertBank": "benchmark.strategy.experts",
    "hard_gate": "benchmark.strategy.experts",
    "uniform_gate": "benchmark.strategy.experts",
    "topk_softmax": "benchmark.strategy.experts",
}
__all__ = sorted(_EXPORTS) + ["lora"]


def __getattr__(name: str):
    if name == "lora":
        return importlib.import_module("benchmark.strategy.lora")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'benchmark.strategy' has no attribute {name!r}")
