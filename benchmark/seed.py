"""One place to seed every random number generator the project uses."""
from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def hash_seed(*parts) -> int:
    """A stable 32-bit seed derived from ``parts`` (e.g. ``(run seed, "train", experience)``): the
    same in every process and Python version, unlike ``hash()``."""
    from benchmark.io import hash_json

    return int(hash_json(list(parts), n=8), 16)
