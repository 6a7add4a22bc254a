"""The measuring instrument: T2M evaluator (text/motion embeddings), emotion classifier,
text-to-motion metrics and continual-learning aggregates.

``from evaluators import METRIC_KEYS`` is light (numpy only); ``Evaluator`` and
``train_evaluator`` import torch on first use.
"""
from __future__ import annotations

from evaluators.metrics import METRIC_DIRECTIONS, METRIC_KEYS

__all__ = ["Evaluator", "train_evaluator", "METRIC_KEYS", "METRIC_DIRECTIONS"]


def __getattr__(name: str):
    if name == "Evaluator":
        from evaluators.evaluator import Evaluator

        return Evaluator
    if name == "train_evaluator":
        from evaluators.train import train_evaluator

        return train_evaluator
    raise AttributeError(f"module 'evaluators' has no attribute {name!r}")
