"""Pre-registered claims (`l2emg claims`): known answers on synthetic runs, the family rules,
and bad claims files."""
from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from harness.cli import main
from benchmark.io import DataError
from leaderboard.claims import evaluate_claims, read_claims
from leaderboard.commands import check_claims
from leaderboard.runs import load_runs
from leaderboard_fakes import make_fake_run

HEADER = "family,metric,a,relation,b"


@pytest.fixture()
def runs(tmp_path):
    root = tmp_path / "runs"
    for order in (1, 2, 3):
        make_fake_run(root, "strong", order=order, quality=0.5)
        make_fake_run(root, "weak", order=order, quality=0.3)
    make_fake_run(root, "strong", order=1, seed=1, quality=0.5)
    return root


def write(tmp_path, *lines, name="claims.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_known_answers_hold_reverse_and_holm_within_family(tmp_path, runs):
    spec = read_claims(write(tmp_path, HEADER + ",order,seed",
                             "ar,AR,strong,>,weak,1,0",    # true: 8/8 subsets
                             "ar,AR,weak,>,strong,1,0",    # the same pair, claimed the wrong way
                             "fid,AF,strong,<,weak,1,0"))  # FID = 10 (0.5 - R@1): lower for strong
    res = evaluate_claims(spec, load_runs([runs])).set_index("claim")
    right, wrong = res.loc["strong > weak on AR"], res.loc["weak > strong on AR"]
    assert right.n_blocks == 8 and right.in_direction == 8 and wrong.in_direction == 0
    assert right.p_value == pytest.approx(2 / 2 ** 8)          # exact two-sided, all 8 one way
    assert right.p_holm == pytest.approx(2 * 2 / 2 ** 8)       # Holm over the family of 2
    assert right.best_p_holm == pytest.approx(right.p_holm)
    assert right.verdict == "holds" and wrong.verdict == "reversed"
    assert right.effect_size == pytest.approx(1.0) and wrong.effect_size == pytest.approx(-1.0)
    assert right.mean_a == pytest.approx(right.mean_b + right.mean_diff)
    fid = res.loc["strong < weak on AF"]
    assert fid.verdict == "holds" and fid.p_holm == pytest.approx(2 / 2 ** 8)  # its own family


def test_blocks_pool_orders_and_the_restrictions_apply(tmp_path, runs):
    spec = read_claims(write(tmp_path, HEADER + ",seed", "a,AR,strong,>,weak,", "b,AR,strong,>,weak,1"))
    res = evaluate_claims(spec, load_runs([runs])).set_index("family")
    assert res.loc["a", "n_blocks"] == 24       # 3 orders x 8 subsets (seed 1 has no weak run)
    assert res.loc["b", "n_blocks"] == 0 and res.loc["b", "verdict"] == "not tested"


def test_small_designs_say_they_cannot_reach_significance(tmp_path, runs):
    # FR has 7 per-subset terms; 4 claims in one family -> smallest Holm p 4 x 2/128 = 0.0625
    lines = [HEADER + ",order,seed"] + [f"fr,FR,strong,{r},weak,1,0" for r in "><><"]
    res = evaluate_claims(read_claims(write(tmp_path, *lines)), load_runs([runs]))
    assert (res.n_blocks == 7).all() and res.best_p_holm.tolist() == pytest.approx([0.0625] * 4)
    assert res.note.str.contains("cannot reach p < 0.05 with 7 blocks in a family of 4").all()
    assert not res.verdict.isin(["holds", "reversed"]).any()
    # BWT has no per-subset terms: its blocks are runs (3 orders of seed 0)
    res = evaluate_claims(read_claims(write(tmp_path, HEADER, "bwt,BWT,strong,>,weak", name="b.csv")),
                          load_runs([runs]))
    assert res.iloc[0].n_blocks == 3

def test_smallest_reachable_p_is_holm_over_the_claims_floors(tmp_path, runs):
    # one claim on 24 blocks (all orders), one on 8 (order 1): floors 2/2^24 and 2/2^8
    spec = read_claims(write(tmp_path, HEADER + ",order", "f,AR,strong,>,weak,", "f,AR,strong,>,weak,1"))
    res = evaluate_claims(spec, load_runs([runs]))
    assert res.n_blocks.tolist() == [24, 8]
    assert res.best_p_holm.tolist() == pytest.approx([2 * 2 / 2 ** 24, 2 / 2 ** 8])
    assert res.p_holm.iloc[1] == pytest.approx(res.best_p_holm.iloc[1])  # 8/8 one way reaches it


def test_missing_method_is_not_run_and_unknown_metric_is_refused(tmp_path, runs):
    res = evaluate_claims(read_claims(write(tmp_path, HEADER, "x,AR,es_moe,>,weak", "x,AR,strong,>,weak")),
                          load_runs([runs]))
    assert res.iloc[0].verdict == "not run" and "es_moe" in res.iloc[0].note
    assert res.iloc[1].p_holm == pytest.approx(res.iloc[1].p_value)  # a family of one tested claim
    with pytest.raises(DataError, match="unknown metric"):
        evaluate_claims(read_claims(write(tmp_path, HEADER, "x,ARR,strong,>,weak", name="m.csv")),
                        load_runs([runs]))


@pytest.mark.parametrize("lines, message", [
    (["family,metric,a,b", "x,AR,p,q"], "missing column"),
    ([HEADER + ",orderr", "x,AR,p,>,q,1"], "unknown column"),
    ([HEADER, "x,AR,p,>=,q"], "relation"),
    ([HEADER, "x,AR,p,>,p"], "with itself"),
    ([HEADER, "x,,p,>,q"], "empty 'metric'"),
    ([HEADER + ",seed", "x,AR,p,>,q,zero"], "not an integer"),
    ([HEADER], "no claims"),
])
def test_bad_claims_files_are_refused(tmp_path, lines, message):
    with pytest.raises(DataError, match=message):
        read_claims(write(tmp_path, *lines))


def test_comments_and_default_family(tmp_path):
    spec = read_claims(write(tmp_path, "# fixed before the runs", HEADER, ",FR, p ,<,q  # p forgets less"))
    assert spec.iloc[0].family == "FR" and spec.iloc[0].a == "p" and spec.iloc[0].b == "q"


def test_files_name_the_claims_and_cli(tmp_path, runs, capsys):
    path = write(tmp_path, HEADER, "ar,AR,strong,>,weak")
    check_claims([runs], tmp_path / "out", spec_path=path)
    table = pd.read_csv(tmp_path / "out" / "claims.csv")
    assert table.claims_sha256.iloc[0] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["claims", str(runs), "--claims", str(path), "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "strong > weak on AR" in out and "**holds**" in out
    assert (tmp_path / "cli" / "claims.md").read_text() == (tmp_path / "out" / "claims.md").read_text()
    assert main(["claims", str(runs), "--claims", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "l2emg: error:" in err and "nope.csv" in err
    assert not (tmp_path / "e").exists()


def test_the_paper_claims_follow_table_2(tmp_path, runs):
    from importlib import resources

    from leaderboard.tables import load_reference

    with resources.as_file(resources.files("leaderboard") / "reference" / "paper_claims.csv") as path:
        spec = read_claims(path)
    ref = load_reference().set_index(["setting", "method", "metric"])["mean"]
    assert len(spec) == 2 * (3 * 9 + 10)        # per setting: ES-MoE vs 9 on AR/FR/AF, MTL vs 10
    for c in spec.itertuples():
        a, b = ref[(c.setting, c.a, c.metric)], ref[(c.setting, c.b, c.metric)]
        assert (a > b) == (c.relation == ">"), c
    # w/o CGED's Unseen AR is above ES-MoE's in the paper: the claim follows the table
    row = spec[(spec.setting == "unseen") & (spec.metric == "AR") & (spec.b == "es_moe_no_cged")].iloc[0]
    assert row.relation == "<"
    # the default claims file is what `l2emg claims` tests without --claims
    res = check_claims([runs], tmp_path / "paper")
    assert len(res) == len(spec) and set(res.verdict) >= {"not run"}
    assert "paper_claims.csv" in (tmp_path / "paper" / "claims.md").read_text()


def test_bench_refuses_a_bad_claims_file_before_any_run(tmp_path, capsys):
    bad = write(tmp_path, HEADER, "x,AR,p,=,q")
    assert main(["bench", "--claims", str(bad), "--out", str(tmp_path / "bench")]) == 2
    assert "relation" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()


def test_ties_are_counted_and_reported_not_dropped(tmp_path, runs):
    import json

    # "twin" = strong's order-1 run, except 2 of the 8 subsets' final R@1 raised by 0.05
    twin = make_fake_run(runs, "twin", order=1, quality=0.5)
    path = twin / "matrices" / "r_precision_top1.csv"
    mat = pd.read_csv(path, index_col=0)
    mat.iloc[-1, :2] += 0.05
    mat.to_csv(path)
    res_path = twin / "result.json"
    res_path.write_text(json.dumps({**json.loads(res_path.read_text()), "aggregates": {}}))
    spec = read_claims(write(tmp_path, HEADER + ",order,seed", "t,AR,twin,>,strong,1,0",
                             "u,AR,es_moe,>,strong,1,0", "u,AR,sapt,<,strong,1,0"))
    res = evaluate_claims(spec, load_runs([runs])).set_index("claim")
    row = res.loc["twin > strong on AR"]
    assert row.n_blocks == 8 and row.in_direction == 2 and row.ties == 6
    assert row.best_p_holm == pytest.approx(2 / 2 ** 2)          # 2 untied blocks: p >= 0.5
    assert "6 tied block(s)" in row.note and "2 untied blocks" in row.note
    from leaderboard.claims import to_markdown

    md = to_markdown(res.reset_index(), spec_path="c.csv", spec_sha256="x", n_runs=8, alpha=0.05)
    assert "| 2/8, 6 ties |" in md
    # the claims that ran lead; the rest are counted, not listed one row each
    assert md.index("twin > strong on AR") < md.index("claims not run")
    assert "**1 of 3 claims ran**" in md
    assert "2 claims not run: systems missing: es_moe (1), sapt (1)" in md
    assert "es_moe > strong" not in md
