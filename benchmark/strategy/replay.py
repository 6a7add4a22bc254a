"""Reservoir replay buffer shared by every rehearsal method.

Reservoir sampling (Vitter, 1985, "Algorithm R"): after ``n`` items were offered, every one of
them is in the buffer with probability ``capacity / n``, whatever the stream's order or
length; the buffer never holds more than ``capacity`` items.  Items are any picklable
objects (here ``MotionItem`` dicts).  All randomness comes from one seeded
``numpy.random.Generator`` whose state is part of :meth:`state_dict`, so a resumed run
draws exactly what an uninterrupted one would.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable

import numpy as np


class ReservoirBuffer:
    """At most ``capacity`` items, a uniform sample of everything offered so far."""

    def __init__(self, capacity: int, seed: int = 0):
        if int(capacity) < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = int(capacity)
        self.items: list[Any] = []
        self.n_seen = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: Any) -> bool:
        """Offer one item; returns whether it was stored."""
        self.n_seen += 1
        if self.capacity == 0:
            return False
        if len(self.items) < self.capacity:
            self.items.append(item)
            return True
        j = int(self.rng.integers(0, self.n_seen))        # uniform in [0, n_seen)
        if j < self.capacity:
            self.items[j] = item
            return True
        return False

    def extend(self, items: Iterable[Any]) -> int:
        """Offer every item in order; returns how many were stored."""
        return sum(self.add(it) for it in items)

    def sample(self, n: int) -> list[Any]:
        """``min(n, len)`` distinct buffer items drawn uniformly (seeded)."""
        n = min(int(n), len(self.items))
        if n <= 0:
            return []
        idx = self.rng.choice(len(self.items), size=n, replace=False)
        return [self.items[i] for i in idx]

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "n_seen": self.n_seen,
                "items": copy.deepcopy(self.items), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"buffer capacity {state['capacity']} in the checkpoint, "
                             f"{self.capacity} in the config")
        self.items = list(state["items"])
        self.n_seen = int(state["n_seen"])
        self.rng.bit_generator.state = state["rng"]
