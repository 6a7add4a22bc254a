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


def seeded(seed: int):
    """Context manager: torch's CPU RNG seeded with ``seed`` inside, restored after (modules
    built inside get the same initial weights in every process, whatever ran before)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def _ctx():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    return _ctx()


def isolated():
    """Context manager: the process-wide state a build step may change is restored after it
    (python / numpy / torch RNG states, torch intra-op threads, grad mode, default dtype), so
    what runs after does not depend on whether the step ran in this process.  Stage builders run
    inside it (``harness.stages``): a run that builds its stages gives the numbers of a run that
    finds them built."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def _ctx():
        py, npy = random.getstate(), np.random.get_state()
        threads, grad, dtype = torch.get_num_threads(), torch.is_grad_enabled(), torch.get_default_dtype()
        try:
            with torch.random.fork_rng(devices=[]):
                yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            torch.set_grad_enabled(grad)
            torch.set_default_dtype(dtype)

    return _ctx()


def eval_mode(*modules):
    """Context manager: ``modules`` in eval mode inside, each back to its own mode after."""
    import contextlib

    @contextlib.contextmanager
    def _ctx():
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        try:
            yield
        finally:
            for m, mode in zip(modules, modes):
                m.train(mode)

    return _ctx()
