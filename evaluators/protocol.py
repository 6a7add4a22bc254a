"""The evaluation protocol of a run: fixed test prompts per subset, generation -> VQ-VAE decode ->
Evaluator metrics; failed generations counted and scored as a static mean pose.

``Scorer(EvalSettings(...), stages, scenario, generation)`` takes its own small config
(:class:`EvalSettings`) and duck-typed inputs: ``stages`` with ``corpus`` (``features``,
``mean``), ``tokenizer`` (``decode_batch``) and ``evaluator`` (``evaluate``,
``score_ground_truth``); a strategy with ``generate(prompts, generation)``.  It never sees a
run config: the runner (``benchmark.runner``) builds the settings from its config tree.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.io import DataError
from benchmark.seed import hash_seed

FAILED_FRAMES = 40      # a failed generation is scored as the corpus mean pose for 2 s


@dataclass(frozen=True)
class EvalSettings:
    """The evaluation protocol of a run (what the Scorer needs, nothing else).

    ``max_test``: test motions per subset (seeded choice; 0 = all); ``batch``: R-precision batch
    (32, the reference; a subset with fewer test motions is refused); ``repeats``: reshuffled
    evaluations per cell (mean and 95% CI); ``mm_texts`` x ``mm_gens``: multimodality prompts;
    ``full_matrix``: evaluate every cell, not only ``j <= i + 1``; ``part``: the corpus part the
    cells are scored on, ``test`` (results) or ``val`` (model selection: choose a method's
    settings there, never on the test part; the leaderboard refuses to merge the two)."""

    seed: int = 0
    max_test: int = 64
    batch: int = 32
    repeats: int = 5
    mm_texts: int = 4
    mm_gens: int = 5
    full_matrix: bool = False
    part: str = "test"

    def __post_init__(self):
        if self.part not in EVAL_PARTS:
            raise DataError(None, f"unknown evaluation part {self.part!r}",
                            f"choose one of: {', '.join(EVAL_PARTS)} (--eval-part)")


EVAL_PARTS = ("test", "val")     # the corpus parts a run may be scored on


class Scorer:
    """The fixed test set of every subset (``max_test`` motions, seeded choice) and its scoring:
    ``score(strategy, row)`` generates for every test text (+ ``mm_texts`` x ``mm_gens`` prompts
    for multimodality) in one call per subset, decodes codes -> raw ``(T, 263)`` features with
    the VQ-VAE and runs ``Evaluator.evaluate`` against the subset's ground-truth features.
    Row ``i`` (after ``i`` experiences; 0 = untrained) evaluates the subsets ``j <= i`` (0-based:
    those trained so far and the next one) unless ``full_matrix``; the baseline row and the last
    row evaluate every subset.  Sampling is seeded per (run seed, row, subset)."""

    def __init__(self, settings: EvalSettings, stages, scenario, generation):
        self.settings, self.stages, self.gen = settings, stages, generation
        rng = np.random.default_rng([settings.seed, 7])
        self.tests = []
        stream = scenario.test_stream if settings.part == "test" else scenario.valid_stream
        for exp in stream:
            data = exp.dataset
            idx = np.arange(len(data))
            if len(idx) < settings.batch:
                fix = ("use a larger corpus (--data, or a preset with a larger corpus scale); only "
                       "the smoke-test preset may lower the batch size")
                if settings.part != "test":
                    fix = ("select on subsets whose val part holds a full batch (--order with "
                           "their names), or " + fix)
                raise DataError(None, f"subset {exp.subset_name!r} has {len(idx)} {settings.part} "
                                f"motions, fewer than one R-precision batch of {settings.batch}", fix)
            if settings.max_test and len(idx) > settings.max_test:
                idx = np.sort(rng.choice(idx, settings.max_test, replace=False))
            items = [data[int(i)] for i in idx]
            self.tests.append({"subset": exp.subset_name, "ids": [it["id"] for it in items],
                               "texts": [it["text"] for it in items],
                               "emotions": [it["emotion"] for it in items],
                               "scenarios": [it["scenario"] for it in items],
                               "reference": [stages.corpus.features(it["id"]) for it in items]})
        self.failed_pose = np.tile(stages.corpus.mean.astype(np.float32), (FAILED_FRAMES, 1))

    @property
    def sizes(self) -> list[int]:
        """Test motions per subset."""
        return [len(t["ids"]) for t in self.tests]

    def subsets_for(self, row: int, n_rows: int) -> list[int]:
        """Subsets row ``row`` evaluates (``n_rows`` = experiences in the stream)."""
        n = len(self.tests)
        if self.settings.full_matrix or row == 0 or row >= n_rows:
            return list(range(n))
        return list(range(min(n, row + 1)))

    def decode(self, codes: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
        ok = [i for i, c in enumerate(codes) if len(c) > 0]
        feats = [self.failed_pose] * len(codes)
        if ok:
            for i, f in zip(ok, self.stages.tokenizer.decode_batch([codes[i] for i in ok])):
                feats[i] = f.astype(np.float32)
        return feats, len(codes) - len(ok)

    def ground_truth(self) -> list[dict]:
        """The real-vs-real row on exactly the test subsets and batch size of the runs."""
        ev, s = self.stages.evaluator, self.settings
        return [ev.score_ground_truth(t["reference"], t["texts"], t["emotions"],
                                      repeats=s.repeats, seed=s.seed, batch_size=s.batch)
                for t in self.tests]

    def score(self, strategy, row: int, n_rows: int | None = None
              ) -> tuple[list[dict], list[list[np.ndarray] | None], int, int]:
        """Metric dict per subset (NaN metrics for a subset this row skips), generated features
        per subset (None where skipped), failures, outputs."""
        n_rows = len(self.tests) if n_rows is None else n_rows
        todo = set(self.subsets_for(row, n_rows))
        metrics, generated, failed, total = [], [], 0, 0
        for j in range(len(self.tests)):
            if j not in todo:
                metrics.append(skipped_row())
                generated.append(None)
                continue
            m, feats, bad, outputs = self.cell(strategy, row, j)
            metrics.append(m)
            generated.append(feats)
            failed, total = failed + bad, total + outputs
        return metrics, generated, failed, total

    def cell(self, strategy, row: int, j: int) -> tuple[dict, list[np.ndarray], int, int]:
        """Cell ``r[row, j]``: generate (test texts + multimodality prompts, one batched call,
        seeded by (run seed, row, subset)), decode, score.  Returns the metric dict, the test
        texts' features, failures and outputs."""
        import torch

        s, t = self.settings, self.tests[j]
        g = s.mm_gens if s.mm_texts and s.mm_gens >= 2 else 0
        torch.manual_seed(hash_seed(s.seed, "eval", row, j))
        n = len(t["texts"])
        mm_texts = t["texts"][: s.mm_texts] if g else []
        prompts = t["texts"] + [x for x in mm_texts for _ in range(g)]   # one batched call
        feats, bad = self.decode(strategy.generate(prompts, self.gen))
        mm = [feats[n + k * g: n + (k + 1) * g] for k in range(len(mm_texts))] or None
        m = self.stages.evaluator.evaluate(
            feats[:n], t["texts"], t["emotions"], t["reference"], mm_generated=mm,
            repeats=s.repeats, seed=s.seed, batch_size=s.batch)
        return m, feats[:n], bad, len(feats)

    def redraw(self, strategy, subsets: list[int], replicate: int) -> list[float]:
        """Top-1 R-precision of ``strategy`` on ``subsets``, regenerated with the seeds of
        replicate ``replicate`` (``hash_seed(seed, "redraw", replicate, j)``, never a row's own)
        and scored with the rows' batch composition: one draw of the evaluation's own noise
        (:func:`evaluators.continual.empirical_forgetting_floor`).  Test texts only, no
        multimodality prompts."""
        import torch

        s = self.settings
        out = []
        for j in subsets:
            t = self.tests[j]
            torch.manual_seed(hash_seed(s.seed, "redraw", replicate, j))
            feats, _ = self.decode(strategy.generate(list(t["texts"]), self.gen))
            m = self.stages.evaluator.evaluate(feats, t["texts"], t["emotions"], t["reference"],
                                               mm_generated=None, repeats=s.repeats, seed=s.seed,
                                               batch_size=s.batch)
            out.append(float(m["r_precision_top1"]))
        return out


def skipped_row() -> dict:
    """The metric dict of a cell that was not evaluated (every value NaN)."""
    from evaluators import METRIC_KEYS

    nan = float("nan")
    return {**{k: nan for k in METRIC_KEYS}, **{f"{k}_ci95": nan for k in METRIC_KEYS if k != "n"}}
