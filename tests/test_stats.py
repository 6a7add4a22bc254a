"""Statistics on synthetic result sets with a known ordering."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leaderboard.stats import (_holm, _wilcoxon, critical_difference, order_tests, run_stats,
                               to_markdown)


def per_run(means: dict[str, float], metric="AR", orders=(1, 2, 3), seeds=range(5), noise=0.01,
            order_effect: dict | None = None, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"method": m, "setting": "unseen", "order": str(o), "seed": s, "metric": metric,
             "value": mu + (order_effect or {}).get(o, 0.0) + noise * rng.standard_normal()}
            for m, mu in means.items() for o in orders for s in seeds]
    return pd.DataFrame(rows)


def test_clearly_better_method_is_significant_and_ranked_first():
    res = run_stats(per_run({"good": 0.5, "mid": 0.3, "bad": 0.1}), "AR")
    fr = res.rows[res.rows.analysis == "methods_friedman"].iloc[0]
    assert fr.p_value < 1e-4 and fr.significant and fr.effect_size == pytest.approx(1.0)  # Kendall W
    assert list(res.avg_ranks.index) == ["good", "mid", "bad"]
    assert res.nemenyi.loc["good", "bad"] < 0.05
    md = to_markdown(res)
    assert "methods differ" in md and "good" in md


def test_direction_lower_is_better():
    res = run_stats(per_run({"low_fid": 1.0, "high_fid": 3.0, "mid": 2.0}, metric="AF"), "AF")
    assert res.avg_ranks.index[0] == "low_fid" and res.avg_ranks["low_fid"] == 1.0


def test_identical_methods_not_significant():
    df = per_run({"a": 0.3}, noise=0.02)
    df = pd.concat([df, df.assign(method="b"), df.assign(method="c")], ignore_index=True)
    res = run_stats(df, "AR")
    fr = res.rows[res.rows.analysis == "methods_friedman"].iloc[0]
    assert fr.p_value == 1.0 and not fr.significant
    nem = res.rows[res.rows.analysis == "methods_nemenyi"]
    assert (nem.p_value == 1.0).all() and not nem.significant.any()


def test_order_effect_found_and_effect_sizes():
    df = per_run({"m": 0.3}, seeds=range(8), order_effect={1: 0.1, 2: 0.0, 3: -0.1})
    rows = pd.DataFrame(order_tests(df, "AR"))
    fr = rows[rows.analysis == "orders_friedman"].iloc[0]
    assert fr.significant and fr.effect_size == pytest.approx(1.0)
    pw = rows[rows.analysis == "orders_wilcoxon"]
    assert len(pw) == 3 and (pw.p_holm >= pw.p_value).all()
    assert pw[(pw.group_a == "1") & (pw.group_b == "3")].effect_size.item() == pytest.approx(1.0)
    flat = pd.DataFrame(order_tests(per_run({"m": 0.3}, noise=0.05, seed=3), "AR"))
    assert not flat[flat.analysis == "orders_friedman"].significant.item()


def test_too_few_blocks_is_a_message_not_a_crash():
    res = run_stats(per_run({"a": 0.3, "b": 0.2, "c": 0.1}, orders=(1,), seeds=(0,)), "AR")
    assert "not tested" in res.rows[res.rows.analysis == "methods_friedman"].note.item()
    orders = res.rows[res.rows.analysis == "orders_friedman"]
    assert orders.note.str.contains("needs >= 3 scenario orders").all()
    assert orders.note.str.contains(r"needs >= 2 complete blocks \(seed\)").all()
    assert "no CI" in res.rows[res.rows.analysis == "bootstrap_mean"].note.iloc[0]
    assert "not tested" in to_markdown(res)


def test_known_answers_helpers():
    stat, p, r = _wilcoxon(np.array([2.0, 3, 4, 5, 6]), np.array([1.0, 1, 1, 1, 1]))
    assert r == 1.0 and p == pytest.approx(0.0625)
    assert _wilcoxon(np.ones(4), np.ones(4)) == (0.0, 1.0, 0.0)
    assert _holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert critical_difference(5, 10) == pytest.approx(2.728 * np.sqrt(5 * 6 / 60), rel=1e-3)


def test_bootstrap_ci_brackets_mean():
    res = run_stats(per_run({"a": 0.3, "b": 0.1}, noise=0.05), "AR")
    boot = res.rows[res.rows.analysis == "bootstrap_mean"]
    assert ((boot.ci_low <= boot["mean"]) & (boot["mean"] <= boot.ci_high)).all()
    assert (boot.ci_high < 0.35).all() or (boot.ci_low > 0.05).all()
    assert res.rows[res.rows.analysis == "methods_wilcoxon"].significant.item()
