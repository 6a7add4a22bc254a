"""Evaluation inside a run: fixed test prompts per subset, generation -> VQ-VAE decode ->
Evaluator metrics; failed generations counted and scored as a static mean pose.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from benchmark.io import DataError, hash_json

if TYPE_CHECKING:
    from benchmark.runner import RunConfig

FAILED_FRAMES = 40      # a failed generation is scored as the corpus mean pose for 2 s


class Scorer:
    """The fixed test set of every subset (at most ``cfg.max_test`` motions, seeded choice) and
    its scoring: ``score(strategy, row)`` generates for every test text (+ ``mm_texts`` x
    ``mm_gens`` prompts for multimodality) in one call per subset, decodes codes -> raw
    ``(T, 263)`` features with the VQ-VAE and runs ``Evaluator.evaluate`` against the subset's
    ground-truth features.  Sampling is seeded per (run seed, row, subset)."""

    def __init__(self, cfg: RunConfig, stages, scenario, generation):
        self.cfg, self.stages, self.gen = cfg, stages, generation
        rng = np.random.default_rng([cfg.seed, 7])
        self.tests = []
        for exp in scenario.test_stream:
            data = exp.dataset
            idx = np.arange(len(data))
            if cfg.max_test and len(idx) > cfg.max_test:
                idx = np.sort(rng.choice(idx, cfg.max_test, replace=False))
            items = [data[int(i)] for i in idx]
            if len(items) < 2:
                raise DataError(None, f"subset {exp.subset_name!r} has {len(items)} test motion(s)",
                                "use a larger corpus (the evaluator needs >= 2)")
            self.tests.append({"subset": exp.subset_name, "ids": [it["id"] for it in items],
                               "texts": [it["text"] for it in items],
                               "emotions": [it["emotion"] for it in items],
                               "scenarios": [it["scenario"] for it in items],
                               "reference": [stages.corpus.features(it["id"]) for it in items]})
        self.failed_pose = np.tile(stages.corpus.mean.astype(np.float32), (FAILED_FRAMES, 1))

    def decode(self, codes: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
        ok = [i for i, c in enumerate(codes) if len(c) > 0]
        feats = [self.failed_pose] * len(codes)
        if ok:
            for i, f in zip(ok, self.stages.tokenizer.decode_batch([codes[i] for i in ok])):
                feats[i] = f.astype(np.float32)
        return feats, len(codes) - len(ok)

    def ground_truth(self) -> list[dict]:
        ev = self.stages.evaluator
        return [ev.score_ground_truth(t["reference"], t["texts"], t["emotions"],
                                      repeats=self.cfg.eval_repeats, seed=self.cfg.seed)
                for t in self.tests]

    def score(self, strategy, row: int) -> tuple[list[dict], list[list[np.ndarray]], int, int]:
        """Metric dict per subset, generated features per subset, failures, outputs."""
        import torch

        metrics, generated, failed, total = [], [], 0, 0
        g = self.cfg.mm_gens if self.cfg.mm_texts and self.cfg.mm_gens >= 2 else 0
        for j, t in enumerate(self.tests):
            torch.manual_seed(hash_seed(self.cfg.seed, "eval", row, j))
            n = len(t["texts"])
            mm_texts = t["texts"][: self.cfg.mm_texts] if g else []
            prompts = t["texts"] + [x for x in mm_texts for _ in range(g)]   # one batched call
            feats, bad = self.decode(strategy.generate(prompts, self.gen))
            mm = [feats[n + k * g: n + (k + 1) * g] for k in range(len(mm_texts))] or None
            failed, total = failed + bad, total + len(feats)
            metrics.append(self.stages.evaluator.evaluate(
                feats[:n], t["texts"], t["emotions"], t["reference"], mm_generated=mm,
                repeats=self.cfg.eval_repeats, seed=self.cfg.seed))
            generated.append(feats[:n])
        return metrics, generated, failed, total


def hash_seed(*parts) -> int:
    return int(hash_json(list(parts), n=8), 16)
