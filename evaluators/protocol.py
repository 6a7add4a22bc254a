"""The evaluation protocol of a run: fixed test prompts per subset, generation -> VQ-VAE decode ->
Evaluator metrics; failed generations counted and scored as a static mean pose.

``Scorer(EvalSettings(...), stages, scenario, generation)`` takes its own small config
(:class:`EvalSettings`) and duck-typed inputs: ``stages`` with ``corpus`` (``features``,
``mean``), ``tokenizer`` (``decode_batch``) and ``evaluator`` (``evaluate``,
``score_ground_truth``); a strategy with ``generate(prompts, generation)``.  It never sees a
run config: the runner (``harness.runner``) builds the settings from its config tree.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.io import DataError
from benchmark.seed import hash_seed

FAILED_FRAMES = 40      # a failed generation is scored as the corpus mean pose for 2 s
FLOOR_DRAWS = 5         # draws of held-out real motions averaged into the FID/KID floor
FLOOR_PART = "train"    # the corpus part they come from (disjoint from the test and val parts)


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
    pool: str = "subset"

    def __post_init__(self):
        if self.part not in EVAL_PARTS:
            raise DataError(None, f"unknown evaluation part {self.part!r}",
                            f"choose one of: {', '.join(EVAL_PARTS)} (--eval-part)")
        if self.pool not in RP_POOLS:
            raise DataError(None, f"unknown R-precision pool {self.pool!r}",
                            f"choose one of: {', '.join(RP_POOLS)} (--rp-pool)")


EVAL_PARTS = ("test", "val")     # the corpus parts a run may be scored on
RP_POOLS = ("subset", "stream")  # where R-precision's distractors are drawn from


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
        # R-precision's distractor pool (keyword passed only when it is not the reference's)
        self.pool = ({"pool_texts": [x for t in self.tests for x in t["texts"]]}
                     if settings.pool == "stream" else {})
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
        """The real-vs-real row on exactly the test subsets and batch size of the runs, each
        subset's dict with its FID/KID floor (:meth:`floor`) added."""
        ev, s = self.stages.evaluator, self.settings
        rows = [ev.score_ground_truth(t["reference"], t["texts"], t["emotions"],
                                      repeats=s.repeats, seed=s.seed, batch_size=s.batch, **self.pool)
                for t in self.tests]
        for j, row in enumerate(rows):
            row.update(self.floor(j))
        return rows

    def floor(self, j: int) -> dict:
        """What real data scores against subset ``j``'s reference at the cells' sample size:
        ``n`` = its test motions, drawn (seeded, without replacement) from the subset's
        :data:`FLOOR_PART` part, which holds no reference motion, embedded by the same
        evaluator; FID and KID of each of :data:`FLOOR_DRAWS` draws against the reference set.
        Returns ``fid_floor``/``kid_floor`` (mean over draws), ``fid_floor_sd``/``kid_floor_sd``
        (sample std), ``floor_n`` and ``floor_draws``; NaN floors (``floor_draws`` 0) when the
        part holds fewer than ``n`` motions or the stages carry no split manifest."""
        from evaluators import metrics as M

        t, s, ev = self.tests[j], self.settings, self.stages.evaluator
        n = len(t["ids"])
        pool = self._floor_pool(t)
        nan = float("nan")
        if len(pool) < n:
            return {"fid_floor": nan, "fid_floor_sd": nan, "kid_floor": nan, "kid_floor_sd": nan,
                    "floor_n": n, "floor_draws": 0}
        rng = np.random.default_rng([s.seed, 11, j])
        draws = [rng.choice(len(pool), n, replace=False) for _ in range(FLOOR_DRAWS)]
        used = np.unique(np.concatenate(draws))
        emb = ev.embed_motions([self.stages.corpus.features(pool[i]) for i in used])
        row_of = {int(i): r for r, i in enumerate(used)}
        mu, sigma = ev.reference_statistics(t["reference"])
        ref_emb = ev.reference_embeddings(t["reference"])
        fids, kids = [], []
        for d in draws:
            x = emb[[row_of[int(i)] for i in d]]
            fids.append(M.frechet_distance(*M.activation_statistics(x), mu, sigma))
            kids.append(M.kernel_inception_distance(x, ref_emb))
        return {"fid_floor": float(np.mean(fids)), "fid_floor_sd": float(np.std(fids, ddof=1)),
                "kid_floor": float(np.mean(kids)), "kid_floor_sd": float(np.std(kids, ddof=1)),
                "floor_n": n, "floor_draws": len(draws)}

    def _floor_pool(self, t: dict) -> list[str]:
        """Ids of subset ``t``'s :data:`FLOOR_PART` motions in the split manifest (sorted; never a
        reference motion); empty without a manifest."""
        manifest = getattr(self.stages, "manifest", None)
        if manifest is None:
            return []
        sel = (manifest["subset"] == t["subset"]) & (manifest["part"] == FLOOR_PART)
        reference = set(map(str, t["ids"]))
        return sorted(i for i in manifest.loc[sel, "id"].astype(str) if i not in reference)

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
            repeats=s.repeats, seed=s.seed, batch_size=s.batch, **self.pool)
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
                                               batch_size=s.batch, **self.pool)
            out.append(float(m["r_precision_top1"]))
        return out


def floor_summary(ground_truth: list[dict]) -> dict:
    """``result.json["floors"]`` from the ground-truth row (:meth:`Scorer.floor` per subset):
    per-subset ``fid_floor``, ``kid_floor``, their sd, ``floor_n``, and ``AF_floor`` /
    ``AKID_floor``, their means over subsets (what AF / AKID would be if every generated set
    were real held-out motions of the same size).  NaN where a checkpoint predates floors."""
    nan = float("nan")
    out: dict = {k: [float(g.get(k, nan)) for g in ground_truth]
                 for k in ("fid_floor", "fid_floor_sd", "kid_floor", "kid_floor_sd")}
    out["floor_n"] = [int(g.get("floor_n", 0)) for g in ground_truth]
    out["floor_draws"] = [int(g.get("floor_draws", 0)) for g in ground_truth]
    out["part"] = FLOOR_PART
    for agg, key in (("AF_floor", "fid_floor"), ("AKID_floor", "kid_floor")):
        v = np.asarray(out[key], dtype=float)
        out[agg] = float(v.mean()) if v.size and np.isfinite(v).all() else nan
    return out


def multimodality_summary(last_row: list[dict], settings: EvalSettings) -> dict:
    """``result.json["multimodality"]``: the texts x generations behind it (``mm_texts``,
    ``mm_gens``), per subset of the last row its value and bootstrap-over-texts half-width,
    AMM's half-width ``sqrt(sum_j ci_j^2) / N`` and ``measured`` = every cell used at least
    ``min_texts`` texts (:data:`evaluators.scoring.MM_MIN_TEXTS`) and that half-width is at most
    ``max_rel_ci`` (:data:`evaluators.scoring.MM_MAX_REL_CI`) of AMM.  Not measured (False),
    the leaderboard shows AMM as such: too few texts to rank methods on it."""
    from evaluators.scoring import MM_MAX_REL_CI, MM_MIN_TEXTS

    nan = float("nan")
    values = np.array([float(c.get("multimodality", nan)) for c in last_row])
    half = np.array([float(c.get("multimodality_text_ci95", nan)) for c in last_row])
    amm = float(values.mean()) if values.size else nan
    amm_half = float(np.sqrt(np.sum(half ** 2)) / half.size) if half.size else nan
    # what the cells used (a subset with fewer test texts than mm_texts uses them all); 0 = none
    used = {k: [int(c[k]) for c in last_row if k in c] for k in ("mm_texts", "mm_gens")}
    texts = min(used["mm_texts"], default=0) if len(used["mm_texts"]) == len(last_row) else 0
    measured = bool(texts >= MM_MIN_TEXTS and np.isfinite(amm) and np.isfinite(amm_half)
                    and amm_half <= MM_MAX_REL_CI * abs(amm))
    return {"mm_texts": texts, "mm_gens": min(used["mm_gens"], default=0),
            "mm_texts_asked": int(settings.mm_texts), "mm_gens_asked": int(settings.mm_gens),
            "per_subset": values.tolist(), "text_ci95": half.tolist(), "AMM": amm,
            "AMM_text_ci95": amm_half, "max_rel_ci": MM_MAX_REL_CI, "min_texts": MM_MIN_TEXTS,
            "measured": measured}


def skipped_row() -> dict:
    """The metric dict of a cell that was not evaluated (every value NaN)."""
    from evaluators import METRIC_KEYS

    nan = float("nan")
    return {**{k: nan for k in METRIC_KEYS}, **{f"{k}_ci95": nan for k in METRIC_KEYS if k != "n"}}
