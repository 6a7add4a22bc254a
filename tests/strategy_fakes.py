"""Small fakes for strategy tests: a real avalanche scenario whose items carry motion codes."""
from __future__ import annotations

import numpy as np

TEXTS = {0: ["a person walks forward happily", "someone jumps with joy"],
         1: ["a sad man sits down slowly", "an angry person stomps and punches"],
         2: ["a fearful woman backs away", "the dancer spins in surprise"]}


def fake_items(task: int, n: int, n_codes: int = 16, length: int = 6, seed: int = 0) -> list[dict]:
    """Items of task ``task``: its own texts and a disjoint code range (task t uses codes
    [t*n_codes/3, (t+1)*n_codes/3)), so one shared adapter must forget earlier tasks."""
    rng = np.random.default_rng([seed, task])
    lo, hi = task * n_codes // 3, (task + 1) * n_codes // 3
    return [{"id": f"t{task}_{i}", "features": rng.integers(lo, hi, size=length).astype(np.int64),
             "text": TEXTS[task][i % 2], "emotion": i % 7, "scenario": task, "subset": task}
            for i in range(n)]


def fake_scenario(n_tasks: int = 2, n_train: int = 16, n_test: int = 4, n_codes: int = 16):
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.utils import AvalancheDataset

    def ds(items):
        return AvalancheDataset([items])

    return benchmark_from_datasets(
        train=[ds(fake_items(t, n_train, n_codes)) for t in range(n_tasks)],
        test=[ds(fake_items(t, n_test, n_codes, seed=1)) for t in range(n_tasks)])
