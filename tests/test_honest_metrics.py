"""Known answers for the honest metric protocol: KID beside FID, FID/KID floors of held-out real
motions, multimodality's CI over texts, paired CIs of FR/BWT/FWT over subsets."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluators import METRIC_DIRECTIONS, METRIC_KEYS
from evaluators import metrics as M
from evaluators.continual import (DIRECTIONS, aggregates, backward_transfer, forgetting_rate,
                                  forward_transfer, transfer_ci95, transfer_terms)
from evaluators.scoring import MM_MAX_REL_CI, multimodality_check, score_embeddings


def _kid_brute_force(x, y):
    d = x.shape[1]
    k = lambda a, b: (sum(ai * bi for ai, bi in zip(a, b)) / d + 1.0) ** 3   # noqa: E731
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_kid_equals_a_double_loop_on_a_tiny_example():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)) + 0.3
    assert M.kernel_inception_distance(x, y) == pytest.approx(_kid_brute_force(x, y), rel=1e-12)
    # hand case, D = 1: k(a, b) = (ab + 1)^3; x = {0, 1}, y = {0, 2}
    # within x: 2 k(0,1) / 2 = 1; within y: k(0,2) = 1; across: (1 + 1 + 1 + 27) / 4 = 7.5
    assert M.kernel_inception_distance(np.array([[0.0], [1.0]]),
                                       np.array([[0.0], [2.0]])) == pytest.approx(1 + 1 - 15)


def test_kid_of_one_distribution_is_unbiased_near_zero_and_grows_with_a_mean_shift():
    rng = np.random.default_rng(0)
    d, n = 16, 64
    same = [M.kernel_inception_distance(rng.normal(size=(n, d)), rng.normal(size=(n, d)))
            for _ in range(200)]
    se = np.std(same) / np.sqrt(len(same))
    assert abs(np.mean(same)) < 3 * se                 # unbiased: mean over seeds ~ 0
    assert min(same) < 0                               # a single estimate can be negative
    shifts = [np.mean([M.kernel_inception_distance(rng.normal(size=(n, d)) + s,
                                                   rng.normal(size=(n, d))) for _ in range(20)])
              for s in (0.0, 0.5, 1.0)]
    assert shifts[0] < shifts[1] < shifts[2] and shifts[1] > 10 * se
    with pytest.raises(ValueError, match="same dimension"):
        M.kernel_inception_distance(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        M.kernel_inception_distance(np.zeros((1, 2)), np.zeros((3, 2)))


def test_fid_floor_of_two_samples_of_one_gaussian_is_large_at_64_and_shrinks_with_n():
    """FID's sample-size bias: two disjoint samples of N(0, I_128) are far apart at n = 64
    (both covariances singular) and much closer at n = 1,024; KID stays near 0 at both."""
    rng = np.random.default_rng(1)
    d = 128
    fid, kid = {}, {}
    for n in (64, 256, 1024):
        x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        fid[n] = M.frechet_distance(*M.activation_statistics(x), *M.activation_statistics(y))
        kid[n] = M.kernel_inception_distance(x, y)
    assert fid[64] > 30 and fid[64] > fid[256] > fid[1024] and fid[1024] < fid[64] / 5
    assert all(abs(v) < 0.05 for v in kid.values())


def test_kid_is_a_metric_key_and_scored_beside_fid():
    assert "kid" in METRIC_KEYS and METRIC_DIRECTIONS["kid"] == "lower"
    assert DIRECTIONS["AKID"] == "lower"
    rng = np.random.default_rng(0)
    t, m = rng.normal(size=(64, 8)), rng.normal(size=(64, 8))
    ref = rng.normal(size=(64, 8)) + 1.0
    stats_ref = M.activation_statistics(ref)
    labels = np.zeros(64, int)
    row = score_embeddings(t, m, stats_ref, labels, labels, repeats=2, ref_emb=ref)
    assert row["kid"] == pytest.approx(M.kernel_inception_distance(m, ref)) and row["kid_ci95"] == 0
    assert math.isnan(score_embeddings(t, m, stats_ref, labels, labels)["kid"])
    out = aggregates({"fid": np.ones((2, 2)), "kid": np.array([[1.0, 2.0], [3.0, 5.0]])})
    assert out["AKID"] == pytest.approx(4.0)


def test_multimodality_per_text_and_its_bootstrap_ci_over_texts():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 5, 4)) * np.arange(1, 7)[:, None, None]   # texts differ in spread
    per = M.multimodality_per_text(emb, 10, seed=3)
    assert per.shape == (6,) and per.mean() == pytest.approx(M.multimodality(emb, 10, seed=3))
    assert np.all(np.diff(per) > 0)
    assert M.bootstrap_ci95([2.0, 2.0, 2.0]) == 0.0 and math.isnan(M.bootstrap_ci95([1.0]))
    # against the normal-theory half-width 1.96 sd / sqrt(T) on many texts
    v = rng.normal(10.0, 2.0, size=400)
    assert M.bootstrap_ci95(v, seed=1) == pytest.approx(1.96 * v.std() / 20, rel=0.1)
    # few texts with a large spread: not measured; many close ones: measured
    few = multimodality_check(np.array([1.0, 3.0, 2.0, 6.0]))
    assert few["multimodality_text_ci95"] > MM_MAX_REL_CI * 3.0 and not few["multimodality_measured"]
    many = multimodality_check(rng.normal(5.0, 0.5, size=100))
    assert many["multimodality_measured"]
    # a tight CI from fewer than MM_MIN_TEXTS texts is not trusted (the bootstrap undercovers)
    tight = multimodality_check(np.array([5.0, 5.1, 4.9, 5.0]))
    assert tight["multimodality_text_ci95"] < MM_MAX_REL_CI * 5.0 and not tight["multimodality_measured"]
    labels = np.zeros(32, int)
    x = rng.normal(size=(32, 4))
    row = score_embeddings(x, x, M.activation_statistics(x), labels, labels, mm_emb=emb, repeats=3)
    assert row["mm_texts"] == 6 and row["mm_gens"] == 5
    assert row["multimodality_text_ci95"] > 0 and isinstance(row["multimodality_measured"], bool)


R = np.array([[0.50, 0.10, 0.05, 0.00],
              [0.30, 0.60, 0.20, 0.10],
              [0.40, 0.50, 0.70, 0.30],
              [0.45, 0.40, 0.55, 0.80]])


def test_transfer_terms_average_to_fr_bwt_fwt_and_their_paired_ci():
    b = np.array([0.0, 0.05, 0.10, 0.20])
    terms = transfer_terms(R, b)
    assert terms["BWT"] == pytest.approx([0.45 - 0.50, 0.40 - 0.60, 0.55 - 0.70])
    assert terms["FR"] == pytest.approx([0.50 - 0.45, 0.60 - 0.40, 0.70 - 0.55])
    assert terms["BWT"].mean() == pytest.approx(backward_transfer(R))
    assert terms["FR"].mean() == pytest.approx(forgetting_rate(R))
    assert terms["FWT"].mean() == pytest.approx(forward_transfer(R, b))
    ci = transfer_ci95(R, b)
    d = terms["BWT"]
    assert ci["BWT"] == pytest.approx(100 * stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3))
    # the same mean with no spread over subsets has a zero-width CI
    flat = np.array([[0.5, 0.0, 0.0], [0.4, 0.5, 0.0], [0.4, 0.4, 0.5]])
    assert transfer_ci95(flat)["BWT"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(transfer_ci95(flat)["FWT"])                 # no baseline
    assert all(math.isnan(v) for v in transfer_ci95(R[:2, :2], b[:2]).values())   # one term


class _Exp:
    def __init__(self, name, ids):
        self.subset_name = name
        self.dataset = [{"id": i, "text": "a person walks", "emotion": 0, "scenario": 0}
                        for i in ids]


class _Scenario:
    def __init__(self, tests):
        self.test_stream = [_Exp(name, ids) for name, ids in tests.items()]
        self.valid_stream = self.test_stream


class _Corpus:
    """Every motion is a constant (T, 4) array of its value; the fake evaluator embeds it as
    that value (plus a per-id pattern) so that FID / KID are known functions of the ids."""
    mean = np.zeros(4, np.float32)

    def __init__(self, value):
        self.value = value

    def features(self, id_):
        return np.full((8, 4), self.value(id_), np.float32)


class _Evaluator:
    dim = 6

    def __init__(self):
        self.embedded = []

    def embed_motions(self, motions):
        self.embedded.append(len(motions))
        v = np.array([m[0, 0] for m in motions], dtype=float)
        return np.stack([v * (k + 1) % 7 + np.sin(v * (k + 2)) for k in range(self.dim)], axis=1)

    def reference_statistics(self, reference):
        return M.activation_statistics(self.reference_embeddings(reference))

    def reference_embeddings(self, reference):
        return self.embed_motions(reference)

    def score_ground_truth(self, motions, texts, emotions, repeats, seed, batch_size):
        return {"fid": 0.0, "kid": 0.0, "n": len(motions)}


class _Stages:
    def __init__(self, manifest, value):
        self.manifest, self.corpus, self.evaluator = manifest, _Corpus(value), _Evaluator()


def _manifest(per_part):
    rows = [(f"{s}-{p}-{k}", s, p) for s, parts in per_part.items() for p, n in parts.items()
            for k in range(n)]
    return pd.DataFrame(rows, columns=["id", "subset", "part"])


def test_scorer_floor_draws_held_out_real_motions_of_the_test_size_disjoint_from_the_reference():
    from evaluators.protocol import FLOOR_DRAWS, EvalSettings, Scorer, floor_summary

    manifest = _manifest({"A": {"train": 50, "val": 40, "test": 40},
                          "B": {"train": 10, "val": 40, "test": 40}})
    value = {i: float(k) for k, i in enumerate(manifest["id"])}.__getitem__
    tests = {s: list(manifest.loc[(manifest.subset == s) & (manifest.part == "test"), "id"])
             for s in ("A", "B")}
    stages = _Stages(manifest, value)
    scorer = Scorer(EvalSettings(max_test=32, batch=32), stages, _Scenario(tests), None)
    gt = scorer.ground_truth()
    a, b = gt
    assert a["floor_n"] == 32 and a["floor_draws"] == FLOOR_DRAWS and a["fid_floor"] > 0
    # B's train part holds 10 < 32 motions: no floor, never a smaller or repeated sample
    assert b["floor_draws"] == 0 and math.isnan(b["fid_floor"]) and math.isnan(b["kid_floor"])
    # the known answer: recompute draw by draw from the same seeded choices
    pool = scorer._floor_pool(scorer.tests[0])
    assert len(pool) == 50 and all("-train-" in i for i in pool)
    assert not set(pool) & set(scorer.tests[0]["ids"])
    rng = np.random.default_rng([0, 11, 0])
    ev = _Evaluator()
    ref = ev.embed_motions(scorer.tests[0]["reference"])
    fids, kids = [], []
    for _ in range(FLOOR_DRAWS):
        x = ev.embed_motions([stages.corpus.features(pool[i])
                              for i in rng.choice(50, 32, replace=False)])
        fids.append(M.frechet_distance(*M.activation_statistics(x), *M.activation_statistics(ref)))
        kids.append(M.kernel_inception_distance(x, ref))
    assert a["fid_floor"] == pytest.approx(np.mean(fids))
    assert a["kid_floor"] == pytest.approx(np.mean(kids))
    assert a["fid_floor_sd"] == pytest.approx(np.std(fids, ddof=1))
    # a second scorer of the same seed draws the same floor
    again = Scorer(EvalSettings(max_test=32, batch=32), _Stages(manifest, value),
                   _Scenario(tests), None).ground_truth()
    assert again[0]["fid_floor"] == a["fid_floor"]
    summary = floor_summary(gt)
    assert summary["fid_floor"][0] == a["fid_floor"] and math.isnan(summary["AF_floor"])
    summary = floor_summary([a, a])
    assert summary["AF_floor"] == pytest.approx(a["fid_floor"]) and summary["part"] == "train"
    assert math.isnan(floor_summary([{"fid": 0.0}])["AF_floor"])     # a checkpoint without floors


def test_multimodality_summary_marks_too_wide_a_ci_not_measured():
    from evaluators.protocol import EvalSettings, multimodality_summary

    s = EvalSettings(mm_texts=12, mm_gens=5)
    cell = {"multimodality": 2.0, "multimodality_text_ci95": 0.2, "mm_texts": 12, "mm_gens": 5}
    ok = multimodality_summary([cell, cell], s)
    assert ok["AMM_text_ci95"] == pytest.approx(np.sqrt(2 * 0.04) / 2) and ok["measured"]
    assert ok["mm_texts"] == 12 and ok["mm_gens"] == 5
    wide = multimodality_summary([cell, {**cell, "multimodality_text_ci95": 1.5}], s)
    assert not wide["measured"]
    few = multimodality_summary([cell, {**cell, "mm_texts": 4}], s)     # one subset used 4 texts
    assert few["mm_texts"] == 4 and not few["measured"]
    none = multimodality_summary([{"multimodality": float("nan")}], EvalSettings(mm_texts=0))
    assert not none["measured"] and none["mm_texts"] == 0
