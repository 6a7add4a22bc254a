"""Known-answer tests for evaluators.metrics."""
from __future__ import annotations

import numpy as np
import pytest

from evaluators import metrics as M


def test_fid_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 8))
    mu, sigma = M.activation_statistics(x)
    assert M.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_fid_diagonal_gaussians_hand_computed():
    # FID = |m1-m2|^2 + sum(s1 + s2 - 2 sqrt(s1 s2)) for diagonal covariances
    mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, -1.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    expected = (9 + 4) + (1 + 9 - 2 * 3) + (4 + 1 - 2 * 2)
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected)
    # 1-D: (m1-m2)^2 + (sd1 - sd2)^2
    assert M.frechet_distance(np.array([2.0]), np.array([[4.0]]), np.array([0.0]),
                              np.array([[1.0]])) == pytest.approx(4 + 1)


def test_fid_singular_covariance_is_finite():
    x = np.random.default_rng(1).normal(size=(5, 16))  # N < D: rank-deficient covariance
    y = x + 0.1
    mu1, s1 = M.activation_statistics(x)
    mu2, s2 = M.activation_statistics(y)
    fid = M.frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(fid) and fid == pytest.approx(16 * 0.01, abs=1e-3)


def test_r_precision_perfect_alignment():
    x = np.random.default_rng(0).normal(size=(64, 16))
    r = M.r_precision(x, x, top_k=3, batch_size=32)
    assert r.shape == (3,) and np.allclose(r, 1.0)
    assert M.matching_score(x, x) == pytest.approx(0.0, abs=1e-12)


def test_r_precision_shuffled_is_chance():
    rng = np.random.default_rng(0)
    vals = []
    for _ in range(20):
        t = rng.normal(size=(320, 8))
        m = rng.normal(size=(320, 8))
        vals.append(M.r_precision(t, m, batch_size=32))
    mean = np.mean(vals, axis=0)
    assert mean == pytest.approx([1 / 32, 2 / 32, 3 / 32], abs=0.012)


def test_r_precision_hand_case_and_dropped_batch():
    # batch of 2: text0 is nearest to motion1 (wrong), text1 to motion1 (right)
    t = np.array([[0.0], [1.0], [50.0]])
    m = np.array([[2.0], [1.1], [0.0]])
    r = M.r_precision(t, m, top_k=2, batch_size=2)   # third pair dropped (incomplete batch)
    assert np.allclose(r, [0.5, 1.0])
    with pytest.raises(ValueError, match="batch_size"):
        M.r_precision(t, m, batch_size=32)


def test_matching_score_known():
    t = np.zeros((2, 2))
    m = np.array([[3.0, 4.0], [0.0, 1.0]])
    assert M.matching_score(t, m) == pytest.approx(3.0)


def test_diversity_hand_built_and_seeded():
    # two points at distance 2: any pair is (a,a)=0 or (a,b)=2 -> mean = 2 * fraction of mismatches
    emb = np.array([[0.0, 0.0], [2.0, 0.0]])
    d = M.diversity(emb, n_pairs=2, seed=3)
    assert d in (0.0, 1.0, 2.0)
    # all points equidistant (distance sqrt 2): diversity = sqrt(2) * fraction of distinct pairs
    simplex = np.eye(400)
    for s in range(3):
        rng = np.random.default_rng(s)
        a, b = rng.choice(400, 300, replace=False), rng.choice(400, 300, replace=False)
        assert M.diversity(simplex, 300, seed=s) == pytest.approx(np.sqrt(2) * (a != b).mean())
    assert M.diversity(simplex, 300, seed=7) == M.diversity(simplex, 300, seed=7)
    with pytest.raises(ValueError):
        M.diversity(simplex[:10], n_pairs=300)


def test_multimodality_shape_and_value():
    emb = np.zeros((4, 10, 3))
    emb[:, :, 0] = np.arange(10)[None, :]          # gens along a line
    mm = M.multimodality(emb, n_pairs=10, seed=0)
    rng = np.random.default_rng(0)
    a, b = rng.choice(10, 10, replace=False), rng.choice(10, 10, replace=False)
    assert mm == pytest.approx(np.abs(a - b).mean())
    with pytest.raises(ValueError):
        M.multimodality(emb[:, :5], n_pairs=10)
    with pytest.raises(ValueError):
        M.multimodality(emb[0], n_pairs=2)


def test_emotion_f1_and_ci():
    assert M.emotion_f1([0, 1, 2], [0, 1, 2]) == pytest.approx(1.0)
    # class 0 (support 2): P=1,R=0.5,F1=2/3; class 1 (support 1): P=0.5,R=1,F1=2/3
    assert M.emotion_f1([0, 1, 1], [0, 0, 1]) == pytest.approx(2 / 3)
    mean, ci = M.mean_ci95([1.0, 3.0])
    assert mean == 2.0 and ci == pytest.approx(1.96 * 1.0 / np.sqrt(2))


def test_nan_rejected():
    x = np.ones((40, 3))
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.r_precision(x, x)
