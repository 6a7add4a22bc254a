"""Known answers for `l2emg validity`'s checks, on hand-made runs (no training)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leaderboard.runs import Run
from leaderboard.validity import check_chance, check_forgetting, check_noise, check_upper, validity


def _run(method="seq_lora", *, ar=0.2, fr=None, floor=(4.6, 8.9), order="1", seed=0,
         baseline_r1=None, n_test=(64, 64), diag=0.3, below=0.2) -> Run:
    names = ["A", "B"]
    r1 = pd.DataFrame([[diag, 0.1], [below, diag]], index=["after_1", "after_2"], columns=names)
    base = None
    if baseline_r1 is not None:
        base = pd.DataFrame([[baseline_r1] * 2], index=["r_precision_top1"], columns=names)
    info = {"fr_floor": {"mean": floor[0], "q95": floor[1]},
            "chance": {"r_precision_top1": 1 / 32}, "eval": {"batch": 32},
            "n_test": list(n_test), "ground_truth": {"r_precision_top1": 0.56}}
    agg = {"AR": ar} if fr is None else {"AR": ar, "FR": fr}
    return Run(path=Path("."), method=method, setting="unseen", order=order, seed=seed,
               preset="test", scenario_order=names, stage_hashes={}, method_config_hash="",
               matrices={"r_precision_top1": r1}, baseline=base, aggregates=agg, info=info)


def test_forgetting_passes_when_fr_exceeds_its_floor_mean_beyond_run_noise():
    runs = [_run(fr=f, seed=i) for i, f in enumerate([7.0, 7.5, 6.8, 7.2])]
    row = check_forgetting(runs, "unseen", "seq_lora")
    excess = np.array([7.0, 7.5, 6.8, 7.2]) - 4.6
    half = 3.182446 * excess.std(ddof=1) / 2            # t(0.975, 3) x sd / sqrt(4)
    assert row["value"] == pytest.approx(excess.mean())
    assert row["ci_low"] == pytest.approx(excess.mean() - half, rel=1e-5)
    assert row["passed"] is True
    assert "0/4 run(s) above their floor's q95" in row["detail"]   # no single run is flagged


def test_forgetting_fails_when_fr_is_what_no_forgetting_gives():
    runs = [_run(fr=f, seed=i) for i, f in enumerate([4.0, 5.3, 3.9, 5.1])]   # mean 4.575
    row = check_forgetting(runs, "unseen", "seq_lora")
    assert row["ci_low"] < 0 < row["ci_high"]
    assert row["passed"] is False
    assert "the mean excess is not positive" in row["detail"]


def test_a_failing_forgetting_check_says_how_many_runs_would_resolve_it():
    from leaderboard.stats import runs_to_resolve

    frs = [5.0, 6.0, 4.0, 6.2]                  # excess over 4.6: mean 0.7, sd 1.0
    row = check_forgetting([_run(fr=f, seed=i) for i, f in enumerate(frs)], "unseen", "seq_lora")
    excess = np.array(frs) - 4.6
    need = runs_to_resolve(excess.mean(), excess.std(ddof=1))
    assert row["passed"] is False and need > 4
    assert f"about {need} runs would exclude 0" in row["detail"]


def test_forgetting_uses_the_measured_floor_only_when_every_run_has_one():
    frs = [4.0, 5.3, 3.9, 5.1]                  # inside the binomial floor (4.6), above 2.0
    runs = [_run(fr=f, seed=i) for i, f in enumerate(frs)]
    for r in runs:
        r.info["fr_floor_measured"] = {"mean": 2.0, "q95": 3.5}
    row = check_forgetting(runs, "unseen", "seq_lora")
    assert row["value"] == pytest.approx(np.mean(frs) - 2.0) and row["passed"] is True
    assert "measured floor" in row["detail"] and "4/4 run(s) above" in row["detail"]
    assert f"against the binomial floor: {np.mean(frs) - 4.6:.2f}" in row["detail"]
    del runs[0].info["fr_floor_measured"]       # one run without: all on the binomial floor
    row = check_forgetting(runs, "unseen", "seq_lora")
    assert row["passed"] is False and "binomial floor" in row["detail"]


def test_forgetting_is_not_measurable_from_one_run():
    row = check_forgetting([_run(fr=20.0)], "unseen", "seq_lora")
    assert row["passed"] is None and row["value"] == pytest.approx(15.4)


def test_noise_floor_compares_the_seed_std_with_a_quarter_of_the_gap():
    mtl = [_run("mtl", ar=0.32)]
    calm = [_run(ar=0.20, seed=0), _run(ar=0.22, seed=1)]          # std 0.0141, gap/4 0.0275
    row = check_noise(calm, mtl, "unseen", "seq_lora")
    assert row["value"] == pytest.approx(np.std([0.20, 0.22], ddof=1))
    assert row["passed"] is True
    noisy = [_run(ar=0.15, seed=0), _run(ar=0.25, seed=1)]         # std 0.0707, gap/4 0.03
    assert check_noise(noisy, mtl, "unseen", "seq_lora")["passed"] is False
    one = check_noise([_run(ar=0.2)], mtl, "unseen", "seq_lora")
    assert one["passed"] is None and "2 seeds" in one["detail"]


def test_upper_bound_names_a_method_above_the_joint_model_beyond_the_ci():
    by = {"mtl": [_run("mtl", ar=0.30, seed=s) for s in (0, 1)],
          "good": [_run("good", ar=a, seed=s) for s, a in ((0, 0.29), (1, 0.31))],
          "too_good": [_run("too_good", ar=a, seed=s) for s, a in ((0, 0.50), (1, 0.51))]}
    by["mtl"][1].aggregates["AR"] = 0.31
    upper, above = check_upper(by, "mtl", ceiling=0.56, setting="unseen")
    assert upper["passed"] is True                                   # 0.305 >= 0.28
    assert above["value"] == 1 and above["passed"] is False
    assert "too_good" in above["detail"] and "good (" not in above["detail"].replace("too_good", "")


def test_chance_check_uses_the_pooled_hits_of_the_ranked_texts():
    at_chance = check_chance([_run(baseline_r1=1 / 32)], "unseen")
    assert at_chance["passed"] is True and at_chance["value"] == pytest.approx(1 / 32)
    assert "128 ranked test texts" in at_chance["detail"]
    above = check_chance([_run(baseline_r1=0.25)], "unseen")      # 32 hits of 128: far above
    assert above["passed"] is False and above["ci_low"] > 1 / 32


def test_validity_table_has_each_check_once_per_setting():
    runs = [_run(fr=8.0, seed=s, baseline_r1=1 / 32) for s in (0, 1)] + [_run("mtl", ar=0.35)]
    table = validity(runs)
    assert table["check"].tolist() == ["chance", "learning", "upper bound",
                                       "no method above the upper bound", "forgetting",
                                       "noise floor", "heat map fade"]
    fade = table.set_index("check").loc["heat map fade"]
    assert fade["passed"] and fade["value"] == pytest.approx(0.1)


def test_forgetting_detail_breaks_the_excess_down_by_order():
    from scipy import stats

    # orders 1 and 3 forget (excess over 4.6 of +3 to +4), order 2 does not (about -2)
    frs = {"1": [7.6, 8.1, 8.6], "2": [2.6, 2.4], "3": [8.0]}
    runs = [_run(fr=f, order=o, seed=i) for o, v in frs.items() for i, f in enumerate(v)]
    row = check_forgetting(runs, "unseen", "seq_lora")
    one = np.array(frs["1"]) - 4.6
    half = 4.302653 * one.std(ddof=1) / np.sqrt(3)          # t(0.975, 2)
    assert f"order 1 {one.mean():+.2f} [{one.mean() - half:+.2f}, {one.mean() + half:+.2f}] (3 run(s))" \
        in row["detail"]
    assert "order 2 -2.10 [" in row["detail"] and "order 3 +3.40 (1 run(s))" in row["detail"]
    p = stats.kruskal(one, np.array(frs["2"]) - 4.6).pvalue     # the two orders with >= 2 runs
    assert f"Kruskal-Wallis across orders p = {p:.3g}" in row["detail"]
    # the verdict is still the pooled one, and one order alone gives no breakdown
    assert row["value"] == pytest.approx(np.mean(sum(frs.values(), [])) - 4.6)
    same = check_forgetting([_run(fr=f, seed=i) for i, f in enumerate(frs["1"])], "unseen", "seq_lora")
    assert "by order" not in same["detail"]


def _at_chance(run: Run, chance: float, ceiling: float) -> Run:
    run.info["chance"] = {"r_precision_top1": chance}
    run.info["ground_truth"] = {"r_precision_top1": ceiling}
    return run


def test_learning_fails_below_chance_even_above_half_the_ceiling():
    from leaderboard.validity import check_learning

    # the numbers: diagonal R@1 0.292, chance 1/3 (batch 3), ceiling 0.5 -> 0.292 >= 0.25
    runs = [_at_chance(_run(diag=0.292, seed=s), 1 / 3, 0.5) for s in (0, 1)]
    runs[1].matrices["r_precision_top1"].iloc[:, :] = [[0.30, 0.1], [0.2, 0.30]]
    row = check_learning(runs, 0.5, "unseen", "seq_lora")
    assert row["passed"] is False and row["value"] < 1 / 3
    assert "BELOW CHANCE" in row["detail"] and "chance 0.333" in row["target"]
    # well above chance and half the ceiling: passes
    ok = [_at_chance(_run(diag=d, seed=s), 1 / 32, 0.5) for s, d in ((0, 0.30), (1, 0.32))]
    assert check_learning(ok, 0.5, "unseen", "seq_lora")["passed"] is True


def test_learning_fails_when_the_ci_reaches_chance():
    from leaderboard.validity import check_learning

    # mean 0.36 > chance 1/3, but the 2-run t interval (0.30, 0.42 -> +-0.76) includes it
    runs = [_at_chance(_run(diag=d, seed=s), 1 / 3, 0.5) for s, d in ((0, 0.30), (1, 0.42))]
    row = check_learning(runs, 0.5, "unseen", "seq_lora")
    assert row["ci_low"] <= 1 / 3 < row["value"]
    assert row["passed"] is False and "not beyond chance" in row["detail"]
    # one run: the Clopper-Pearson interval of its 128 ranked texts (R@1 0.5 -> 64 hits)
    one = check_learning([_at_chance(_run(diag=0.5), 1 / 3, 0.5)], 0.5, "unseen", "seq_lora")
    from scipy import stats

    ci = stats.binomtest(64, 128).proportion_ci(0.95)
    assert one["ci_low"] == pytest.approx(ci.low) and one["passed"] is True
    assert "Clopper-Pearson over 128 ranked test texts" in one["detail"]


def test_upper_bound_fails_below_chance():
    # the "upper bound pass" at AR 0.323 where chance is 0.333 (ceiling 0.56 -> 0.28)
    by = {"mtl": [_at_chance(_run("mtl", ar=a, seed=s), 1 / 3, 0.56) for s, a in ((0, 0.32), (1, 0.326))]}
    upper, _ = check_upper(by, "mtl", ceiling=0.56, setting="unseen")
    assert upper["passed"] is False and "BELOW CHANCE" in upper["detail"]


def test_fade_at_chance_is_no_fade():
    from leaderboard.validity import check_fade

    run = _at_chance(_run(diag=0.30, below=0.2), 1 / 3, 0.5)
    row = check_fade([run], "unseen", "seq_lora")
    assert row["passed"] is False and "BELOW CHANCE" in row["detail"]
    assert check_fade([_run(diag=0.30, below=0.2)], "unseen", "seq_lora")["passed"] is True
