"""The valid-evaluation rules: full R-precision batches, chance levels and CIs, the cells a run
evaluates, the FR no-forgetting floor, and order tests whose blocks exist with one seed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.io import DataError
from evaluators import continual as C
from evaluators.scoring import score_embeddings


def _embeddings(n: int, d: int = 8, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n, d))
    return text, text + noise * rng.normal(size=(n, d))


def test_r_precision_always_in_full_batches_of_32_with_its_chance_level():
    text, motion = _embeddings(70)
    stats = (motion.mean(0), np.cov(motion, rowvar=False))
    row = score_embeddings(text, motion, stats, np.zeros(70, int), np.zeros(70, int), repeats=5)
    assert row["r_precision_batch"] == 32 and row["chance_top1"] == pytest.approx(1 / 32)
    assert row["chance_top3"] == pytest.approx(3 / 32)
    assert row["r_precision_top1"] == 1.0 and row["r_precision_top1_ci95"] == 0.0   # perfect
    with pytest.raises(ValueError, match="at least 32 pairs"):
        score_embeddings(text[:31], motion[:31], stats, np.zeros(31, int), np.zeros(31, int))


def test_repeats_give_a_ci_that_covers_the_chance_level_of_random_pairs():
    rng = np.random.default_rng(3)
    text, motion = rng.normal(size=(64, 8)), rng.normal(size=(64, 8))      # unrelated: chance
    stats = (motion.mean(0), np.cov(motion, rowvar=False))
    row = score_embeddings(text, motion, stats, np.zeros(64, int), np.zeros(64, int), repeats=20)
    assert row["r_precision_top1_ci95"] > 0
    assert abs(row["r_precision_top1"] - 1 / 32) < 0.06


def test_needed_cells_and_nan_rule():
    need = C.needed_cells(4)
    assert need.tolist() == [[True, True, False, False], [True, True, True, False],
                             [True, True, True, True], [True, True, True, True]]
    r = np.where(need, 0.5, np.nan)
    assert C.aggregates({"r_precision_top1": r})["FR"] == pytest.approx(0.0)
    r[1, 2] = np.nan                                    # the superdiagonal feeds FWT: required
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        C.validate_matrix(r)


def test_forgetting_floor_matches_fr_of_simulated_runs_without_forgetting():
    n, n_test, p = 8, 64, 0.3
    rng = np.random.default_rng(0)
    sims = []
    for _ in range(400):           # constant true R@1, binomial evaluation noise: FR > 0 by noise
        r = rng.binomial(n_test, p, size=(n, n)) / n_test
        sims.append(100 * C.forgetting_rate(r))
    floor = C.forgetting_floor(np.full((n, n), p), n_test, sims=4000, seed=1)
    assert np.mean(sims) > 2                                          # the bias is real
    assert floor["mean"] == pytest.approx(np.mean(sims), abs=0.6)
    assert floor["q95"] > floor["mean"]
    # a forgetting run (diagonal 0.6, final row 0.1) is far outside the floor
    forget = np.full((n, n), 0.1)
    np.fill_diagonal(forget, 0.6)
    forget[-1] = 0.1
    fr = C.aggregates({"r_precision_top1": forget})["FR"]
    assert fr > C.forgetting_floor(forget, n_test)["q95"]
    with pytest.raises(ValueError, match="n_test"):
        C.forgetting_floor(forget, 0)


def test_empirical_floor_has_its_closed_form_and_is_below_the_binomial_for_mixed_items():
    # N = 3: FR = (E[max(X0, X1) - X2] + E[X1' - X2']) / 2 = (sd / sqrt(pi) + 0) / 2 (x 100)
    sd = 0.02
    draws = np.array([[0.25 - sd, 0.5, np.nan], [0.25 + sd, 0.5, np.nan]])   # column 0: std (ddof 1) = sd * sqrt(2)
    f = C.empirical_forgetting_floor(draws, sims=400_000, seed=0)
    assert f["sd"][0] == pytest.approx(sd * np.sqrt(2)) and f["sd"][1] == 0.0 and np.isnan(f["sd"][2])
    assert f["mean"] == pytest.approx(100 * sd * np.sqrt(2) / np.sqrt(np.pi) / 2, rel=0.02)
    assert C.empirical_forgetting_floor(np.full((4, 8), 0.3))["q95"] == 0.0    # no spread, no floor
    # half the texts always retrieved, half never (rate 0.5, no noise at all): the binomial
    # floor still sees a coin per text, the measured one sees what the evaluation does
    n_test, items = 64, np.r_[np.ones(32), np.zeros(32)]
    draws = np.tile(items.mean(), (5, 8))
    assert C.forgetting_floor(np.full((8, 8), 0.5), n_test)["mean"] > 3
    assert C.empirical_forgetting_floor(draws)["mean"] == 0.0
    for bad in (np.zeros((1, 8)), np.zeros(8), np.full((3, 8), np.nan)):
        with pytest.raises(ValueError, match="draws"):
            C.empirical_forgetting_floor(bad)
    assert np.isnan(C.empirical_forgetting_floor(np.zeros((3, 1)))["mean"])


class _Exp:
    def __init__(self, name, n):
        self.subset_name = name
        self.dataset = [{"id": f"{name}{i}", "text": "a person walks", "emotion": 0,
                         "scenario": 0} for i in range(n)]


class _Scenario:
    def __init__(self, sizes, val_sizes=None):
        self.test_stream = [_Exp(f"S{k}", n) for k, n in enumerate(sizes)]
        self.valid_stream = [_Exp(f"V{k}", n) for k, n in enumerate(val_sizes or sizes)]


class _Corpus:
    mean = np.zeros(263, np.float32)

    def features(self, _id):
        return np.zeros((40, 263), np.float32)


class _Stages:
    corpus = _Corpus()


def test_scorer_refuses_a_subset_smaller_than_one_batch_and_caps_the_rest():
    from evaluators.protocol import EvalSettings, Scorer

    settings = EvalSettings(max_test=64, batch=32)
    with pytest.raises(DataError, match="'S1' has 31 test motions.*batch of 32"):
        Scorer(settings, _Stages(), _Scenario([80, 31]), None)
    scorer = Scorer(settings, _Stages(), _Scenario([80, 64, 40]), None)
    assert scorer.sizes == [64, 64, 40]
    # rows evaluate j <= i + 1 (row i = after i experiences; 0 = untrained: all), last row all
    assert scorer.subsets_for(0, 3) == [0, 1, 2]
    assert scorer.subsets_for(1, 3) == [0, 1]
    assert scorer.subsets_for(3, 3) == [0, 1, 2]
    full = Scorer(EvalSettings(full_matrix=True), _Stages(), _Scenario([64, 64, 64]), None)
    assert full.subsets_for(1, 3) == [0, 1, 2]


def test_scorer_on_the_val_part_reads_the_valid_stream_and_refuses_small_subsets():
    from evaluators.protocol import EvalSettings, Scorer

    with pytest.raises(DataError, match="unknown evaluation part 'train'"):
        EvalSettings(part="train")
    scorer = Scorer(EvalSettings(part="val"), _Stages(), _Scenario([80, 80], [70, 40]), None)
    assert scorer.sizes == [64, 40]
    assert all(i.startswith("V") for t in scorer.tests for i in t["ids"])   # no test motion
    assert all(i.startswith("S") for t in Scorer(EvalSettings(), _Stages(), _Scenario(
        [80, 80], [70, 40]), None).tests for i in t["ids"])
    with pytest.raises(DataError, match="'V1' has 25 val motions.*--order"):
        Scorer(EvalSettings(part="val"), _Stages(), _Scenario([80, 80], [70, 25]), None)


def test_the_eval_part_is_hashed_only_when_it_is_not_test():
    from harness.run_config import RunConfig

    test = RunConfig.from_options(method="seq_lora", out="x", preset="tiny")
    val = test.replace(eval_part="val")
    assert "eval_part" not in test.hashed()            # old runs keep their config hash
    assert val.hashed()["eval_part"] == "val" and val.eval.part == "val"
    assert test.replace(eval_part="test").hashed() == test.hashed()
    # the CLI flag reaches the config (run, sweep and bench share these options)
    from harness.cli import build_parser
    from harness.runner import shared_options

    argv = ["run", "--method", "seq_lora", "--out", "x", "--eval-part", "val"]
    opts = shared_options(build_parser(argv)[0].parse_args(argv))
    assert RunConfig.from_options(method="seq_lora", out="x", **opts).eval.part == "val"
    argv = ["run", "--method", "seq_lora", "--out", "x", "--eval-part", "train"]
    with pytest.raises(SystemExit):
        build_parser(argv)[0].parse_args(argv)


def test_order_tests_use_subset_blocks_with_one_seed():
    from leaderboard.stats import order_tests

    rows = []
    rng = np.random.default_rng(0)
    for j in range(8):
        base = rng.uniform(0.2, 0.4)
        for order, shift in (("1", 0.0), ("2", 0.0), ("3", 0.1)):      # order 3 is better
            rows.append(dict(method="m", setting="unseen", order=order, seed=0, subset=f"S{j}",
                             value=base + shift + rng.normal(0, 0.002)))
    per_subset = pd.DataFrame(rows)
    per_run = per_subset.groupby(["method", "setting", "order", "seed"], as_index=False)["value"].mean()
    res = order_tests(per_run, "AR", per_subset=per_subset)
    fried = [r for r in res if r["analysis"] == "orders_friedman"][0]
    assert fried["n_blocks"] == 8 and fried["p_value"] < 0.01 and fried["effect_size"] > 0.5
    # seeds as blocks: one seed is not enough
    res = order_tests(per_run, "AR")
    assert res[0]["note"].startswith("not tested")


def test_the_train_fraction_is_hashed_only_below_one_and_reaches_the_config():
    from harness.cli import build_parser
    from benchmark.io import DataError
    from harness.run_config import RunConfig
    from harness.runner import shared_options

    full = RunConfig.from_options(method="seq_lora", out="x", preset="tiny")
    assert "train_fraction" not in full.hashed()       # old runs keep their config hash
    assert full.replace(train_fraction=1).hashed() == full.hashed()
    half = full.replace(train_fraction=0.5)
    assert half.hashed()["train_fraction"] == 0.5 and half.hashed() != full.hashed()
    argv = ["run", "--method", "seq_lora", "--out", "x", "--train-fraction", "0.25"]
    opts = shared_options(build_parser(argv)[0].parse_args(argv))
    assert RunConfig.from_options(method="seq_lora", out="x", **opts).train.train_fraction == 0.25
    for bad in (0, 1.5, True):
        with pytest.raises(DataError, match="train_fraction"):
            full.replace(train_fraction=bad)
