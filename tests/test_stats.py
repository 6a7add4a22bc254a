"""Statistics on synthetic result sets with a known ordering."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leaderboard.stats import (_holm, _wilcoxon, critical_difference, order_tests, run_stats,
                               runs_to_resolve, t_halfwidth, to_markdown)


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


def _subsets(values: dict[str, list[float]], order="1", seed=0) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "setting": "unseen", "order": order, "seed": seed,
                          "subset": f"S{j}", "value": v}
                         for m, vals in values.items() for j, v in enumerate(vals)])


def test_methods_paired_by_subset_known_answers():
    """One run per method (8 subsets): a beats b on every subset -> exact two-sided Wilcoxon
    p = 2/2^8, r = +1, 8/8 wins; direction-aware for a lower-is-better metric; Holm over the
    3 pairs; a method without common blocks is reported as not tested."""
    from leaderboard.stats import subset_pair_tests

    a = [0.30, 0.25, 0.28, 0.31, 0.22, 0.27, 0.26, 0.29]
    b = [v - 0.05 - 0.01 * k for k, v in enumerate(a)]          # a - b all > 0, distinct
    c = [v + (0.01 if k % 2 else -0.01) * (k + 1) for k, v in enumerate(a)]
    frame = _subsets({"a": a, "b": b, "c": c})
    rows = {(r["group_a"], r["group_b"]): r for r in subset_pair_tests(frame, "AR")}
    ab = rows[("a", "b")]
    assert ab["n_blocks"] == 8 and ab["p_value"] == pytest.approx(2 / 2 ** 8)
    assert ab["effect_size"] == pytest.approx(1.0) and ab["wins"] == 8 and "a better on 8/8" in ab["note"]
    ps = [rows[k]["p_value"] for k in (("a", "b"), ("a", "c"), ("b", "c"))]
    assert [rows[k]["p_holm"] for k in (("a", "b"), ("a", "c"), ("b", "c"))] == pytest.approx(_holm(ps))
    assert ab["significant"] and not rows[("a", "c")]["significant"]
    fr = {(r["group_a"], r["group_b"]): r for r in subset_pair_tests(frame, "FR")}   # lower is better
    assert fr[("a", "b")]["wins"] == 0 and "a better on 0/8" in fr[("a", "b")]["note"] and fr[("a", "b")]["effect_size"] == pytest.approx(1.0)
    other = pd.concat([frame, _subsets({"d": a}, order="2")])     # d has no block in common
    nd = {(r["group_a"], r["group_b"]): r for r in subset_pair_tests(other, "AR")}
    assert nd[("a", "d")]["note"].startswith("not tested") and nd[("a", "d")]["n_blocks"] == 0
    md = to_markdown(run_stats(per_run({"a": 0.3, "b": 0.2}, seeds=[0], orders=[1]), "AR",
                               per_subset=frame[frame.method != "c"]))
    assert "## Methods paired by test subset" in md and "| a | b | 8 |" in md and "8/8" in md


def test_runs_to_resolve_known_answers():
    # mean 1, sd 1: t(5) 2.571 / sqrt 6 = 1.05 (not yet), t(6) 2.447 / sqrt 7 = 0.925 (excludes 0)
    assert runs_to_resolve(1.0, 1.0) == 7 and runs_to_resolve(-1.0, 1.0) == 7
    assert runs_to_resolve(1.0, 0.0) == 2
    assert runs_to_resolve(0.0, 1.0) is None and runs_to_resolve(float("nan"), 1.0) is None
    n = runs_to_resolve(0.65, 4.7)              # the replicate's forgetting excess and spread
    assert t_halfwidth(4.7, n) < 0.65 <= t_halfwidth(4.7, n - 1) and 150 < n < 250
    assert runs_to_resolve(1e-6, 1.0, limit=1000) is None
