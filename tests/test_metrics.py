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
    assert M.diversity(emb, n_pairs=1, seed=3) == 2.0       # the one distinct pair
    # all points equidistant (distance sqrt 2), reference regime (n >= 2 x pairs):
    # diversity = sqrt(2) * fraction of pairs that are two different points
    simplex = np.eye(600)
    for s in range(3):
        rng = np.random.default_rng(s)
        a, b = rng.choice(600, 300, replace=False), rng.choice(600, 300, replace=False)
        assert M.diversity(simplex, 300, seed=s) == pytest.approx(np.sqrt(2) * (a != b).mean())
    assert M.diversity(simplex, 300, seed=7) == M.diversity(simplex, 300, seed=7)
    # fewer items than pairs: distinct pairs only (10 items -> 45 pairs; 300 cannot be drawn)
    assert M.diversity(simplex[:10], n_pairs=45, seed=1) == pytest.approx(np.sqrt(2))
    with pytest.raises(ValueError, match="distinct pairs"):
        M.diversity(simplex[:10], n_pairs=300)


def test_multimodality_shape_and_value():
    emb = np.zeros((4, 20, 3))
    emb[:, :, 0] = np.arange(20)[None, :]          # gens along a line; reference regime (20 >= 2 x 10)
    mm = M.multimodality(emb, n_pairs=10, seed=0)
    rng = np.random.default_rng(0)
    a, b = rng.choice(20, 10, replace=False), rng.choice(20, 10, replace=False)
    assert mm == pytest.approx(np.abs(a - b).mean())
    # 5 generations, 10 pairs: exactly the 10 distinct pairs; mean |i - j| over i < j in 0..4 = 2
    assert M.multimodality(emb[:, :5], n_pairs=10, seed=3) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="distinct pairs"):
        M.multimodality(emb[:, :4], n_pairs=10)
    with pytest.raises(ValueError):
        M.multimodality(emb[0], n_pairs=2)


def test_pair_indices_never_pair_an_item_with_itself_below_the_pool_size():
    rng = np.random.default_rng(0)
    for n, k in ((3, 3), (5, 10), (64, 300)):
        a, b = M.pair_indices(n, k, rng)
        assert len(a) == len(b) == k and (a < b).all()                # distinct, unordered
        assert len(set(zip(a.tolist(), b.tolist()))) == k              # without replacement
    # 3 generations and 3 pairs: the three distinct pairs, mean distance of points on a line
    emb = np.arange(3.0)[None, :, None]                                # (1 text, 3 gens, 1)
    assert M.multimodality(emb, n_pairs=3) == pytest.approx((1 + 2 + 1) / 3)
    # the reference draw (pool >= pairs) is unchanged: two independent permutation prefixes
    a, b = M.pair_indices(600, 300, np.random.default_rng(5))
    r = np.random.default_rng(5)
    assert (a == r.choice(600, 300, replace=False)).all() and (b == r.choice(600, 300, replace=False)).all()
    assert M.max_pairs(3, 10) == 3 and M.max_pairs(64, 300) == 300 and M.max_pairs(500, 300) == 300


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
