"""Leaderboard: reading run folders, merging rules, CSV and LaTeX tables, bad input."""
from __future__ import annotations

import json
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from benchmark.io import DataError
from leaderboard import build_leaderboard
from leaderboard.runs import load_run, load_runs
from leaderboard.tables import latex_escape, load_reference, summarize, to_latex
from leaderboard_fakes import make_fake_run, make_sweep  # tests/ is on sys.path (rootdir conftest)


def _table_rows(tex: str) -> list[str]:
    body = tex.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
    return [ln for ln in body.splitlines() if ln.endswith(r"\\") and not ln.startswith(r"\multicolumn")]


def _balanced(tex: str) -> bool:
    depth = 0
    i = 0
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            i += 2
            continue
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return False
        i += 1
    return depth == 0


def test_summary_known_answers(tmp_path):
    make_sweep(tmp_path / "runs", {"sapt": 0.3, "seq_lora": 0.2}, settings=("unseen", "mixed"))
    summary = build_leaderboard([tmp_path / "runs"], tmp_path / "out", figures=False)
    runs = load_runs([tmp_path / "runs"])
    expect = np.mean([r.aggregates["AR"] for r in runs if r.method == "sapt" and r.setting == "unseen"])
    row = summary[(summary.method == "sapt") & (summary.setting == "unseen") & (summary.metric == "AR")]
    assert row["n"].item() == 6 and row["n_orders"].item() == 3 and row["n_seeds"].item() == 2
    assert row["mean"].item() == pytest.approx(expect)
    # AR of the last row = mean over subsets of r[N, j], independent of my implementation
    r = load_run(runs[0].path)
    assert r.aggregates["AR"] == pytest.approx(r.matrices["r_precision_top1"].iloc[-1].mean())
    tidy = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    wide = pd.read_csv(tmp_path / "out" / "leaderboard_wide.csv")
    assert {"method", "setting", "metric", "mean", "std", "n"} <= set(tidy.columns)
    assert (tidy["source"] == "ours").all()                      # no paper rows in it
    assert list(wide["method"]) == ["seq_lora", "sapt", "chance", "ceiling"]   # paper row order
    assert {"unseen.n", "unseen.AR↑.mean", "unseen.AR↑.ci95", "mixed.FR↓.mean", "mixed.BWT↑.mean"} \
        <= set(wide.columns)
    w = wide.set_index("method")
    assert w.loc["sapt", "unseen.n"] == 6 and w.loc["sapt", "unseen.AR↑.mean"] == pytest.approx(expect)
    assert w.loc["sapt", "unseen.AR↑.ci95"] == pytest.approx(row["ci95"].item())
    assert w.loc["chance", "unseen.AR↑.mean"] == pytest.approx(1 / 32)     # result.json chance
    assert w.loc["ceiling", "mixed.AR↑.mean"] == pytest.approx(0.6)        # ground truth R@1
    assert np.isnan(w.loc["chance", "unseen.AF↓.mean"]) and np.isnan(w.loc["ceiling", "unseen.FR↓.mean"])
    md = (tmp_path / "out" / "leaderboard_wide.md").read_text()
    assert "| system | n | AF ↓ | AR ↑ |" in md and "| Chance |" in md and "Ceiling (real vs real)" in md
    assert not (tmp_path / "out" / "reference.csv").exists()


def test_summary_text_is_the_wide_table_bench_prints(tmp_path):
    from harness.pipeline import _summary_text

    make_sweep(tmp_path / "runs", {"sapt": 0.3, "seq_lora": 0.2}, seeds=(0,))
    summary = build_leaderboard([tmp_path / "runs"], tmp_path / "out", figures=False,
                                with_reference=True)
    text = _summary_text(summary)
    assert "Unseen L2-EMG" in text and "AR ↑" in text and "FR ↓" in text
    lines = {ln.split("  ")[0]: ln for ln in text.splitlines()}
    assert "Chance" in lines and "Ceiling (real vs real)" in lines and "SAPT" in lines
    sapt = summary[(summary.method == "sapt") & (summary.metric == "AR")].iloc[0]
    assert f"{sapt['mean']:.3f} ± {sapt['ci95']:.3f}" in lines["SAPT"]
    assert "(paper)" not in text                      # the published rows are in reference.csv
    ref = pd.read_csv(tmp_path / "out" / "reference.csv")
    assert list(ref.columns[:3]) == ["method", "display", "setting"] and set(ref.setting) == {"unseen"}
    assert len(ref) == 11 and ref.set_index("method").loc["sapt", "AR"] == 0.237
    tidy = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert (tidy["source"] == "ours").all() and "reference" not in tidy.columns


def _summary(rows, chance=None):
    """A hand-made summary: rows of (method, mean, ci95) for unseen AR (+ the chance row)."""
    df = pd.DataFrame([dict(source="ours", method=m, display=m, setting="unseen", metric="AR",
                            mean=v, ci95=c, n=3) for m, v, c in rows])
    if chance is not None:
        df = pd.concat([df, pd.DataFrame([dict(source="chance", method="chance", display="Chance",
                                               setting="unseen", metric="AR", mean=chance,
                                               ci95=np.nan, n=1)])], ignore_index=True)
    return df


def test_bold_only_beyond_the_runner_up_and_chance():
    from leaderboard.tables import best_cells

    # 0.40 +- 0.02 vs 0.30 +- 0.02: separated -> bold
    assert best_cells(_summary([("a", 0.40, 0.02), ("b", 0.30, 0.02)])) == {("a", "unseen", "AR")}
    # overlapping CIs (0.38..0.42 vs 0.37..0.41) -> nothing bold
    assert best_cells(_summary([("a", 0.40, 0.02), ("b", 0.39, 0.02)])) == set()
    # a missing CI (one run, no evaluation CI) -> nothing bold
    assert best_cells(_summary([("a", 0.40, np.nan), ("b", 0.10, 0.01)])) == set()
    # the case: best AR 0.333 = chance on that preset -> never bold
    assert best_cells(_summary([("es_moe", 0.333, 0.01), ("b", 0.20, 0.01)], chance=1 / 3)) == set()
    # just beyond chance's side: 0.36 - 0.02 > 1/3 -> bold
    assert best_cells(_summary([("es_moe", 0.36, 0.02), ("b", 0.20, 0.01)], chance=1 / 3)) \
        == {("es_moe", "unseen", "AR")}
    # lower is better (FR): the smallest value wins
    fr = _summary([("a", 1.0, 0.5), ("b", 5.0, 0.5)]).assign(metric="FR")
    assert best_cells(fr) == {("a", "unseen", "FR")}


def test_latex_bold_never_at_chance(tmp_path):
    make_sweep(tmp_path / "runs", {"sapt": 0.3, "seq_lora": 0.1}, seeds=(0,), noise=0.005)

    def ar_cells():
        summary = build_leaderboard([tmp_path / "runs"], tmp_path / "out", figures=False)
        rows = _table_rows((tmp_path / "out" / "leaderboard.tex").read_text())
        return summary, {row.split(" & ")[0]: row.split(" & ")[2] for row in rows}   # unseen AR

    summary, cells = ar_cells()
    assert cells["SAPT"].startswith(r"\textbf{")             # far above chance 1/32 and SeqLoRA
    sapt = summary[(summary.method == "sapt") & (summary.metric == "AR")].iloc[0]
    # the same runs on a preset whose chance equals SAPT's AR (the 0.333): not bold
    for res in (tmp_path / "runs").rglob("result.json"):
        obj = json.loads(res.read_text())
        obj["chance"]["r_precision_top1"] = float(sapt["mean"])
        res.write_text(json.dumps(obj))
    summary, cells = ar_cells()
    assert not cells["SAPT"].startswith("\\") and cells[r"\textit{Chance}"] == f"{sapt['mean']:.3f}"


def test_latex_layout_best_and_second(tmp_path):
    make_sweep(tmp_path / "runs", {"es_moe": 0.35, "sapt": 0.3, "seq_lora": 0.2, "mtl": 0.4},
               settings=("unseen", "mixed"), seeds=(0,))
    build_leaderboard([tmp_path / "runs"], tmp_path / "out", figures=False, with_reference=True)
    tex = (tmp_path / "out" / "leaderboard.tex").read_text()
    assert _balanced(tex) and r"\toprule" in tex and r"\bottomrule" in tex
    rows = _table_rows(tex)
    assert all(row.count(" & ") == 12 for row in rows), rows
    names = [row.split(" & ")[0] for row in rows]
    assert names[:4] == ["MTL", "SeqLoRA", "SAPT", "ES-MoE"]
    assert "ES-MoE (paper)" in names and r"w/o $\mathcal{L}_{emo}$ (paper)" in names
    assert "AF$\\downarrow$" in tex and "AR$\\uparrow$" in tex
    assert names[4:6] == [r"\textit{Chance}", r"\textit{Ceiling (real vs real)}"]
    ar_col = 2  # AR (unseen) is the 2nd metric column
    cells = {row.split(" & ")[0]: row.split(" & ")[ar_col] for row in rows}
    # MTL (quality 0.4) is ahead of ES-MoE (0.35) beyond both CIs over the 3 orders: bold; no
    # second place is marked (the CIs decide, not the rank)
    assert cells["MTL"].startswith(r"\textbf{") and "underline" not in tex
    assert not cells["SAPT"].startswith("\\") and not cells["SAPT (paper)"].startswith("\\")
    assert cells[r"\textit{Chance}"] == "0.031"
    # a plain `table` (one column); table* only when asked; the standalone file is a document
    assert r"\begin{table}[t]" in tex and "table*" not in tex and r"\documentclass" not in tex
    alone = (tmp_path / "out" / "leaderboard_standalone.tex").read_text()
    assert alone.startswith(r"\documentclass") and r"\usepackage{booktabs}" in alone
    assert alone.rstrip().endswith(r"\end{document}") and tex in alone
    summary = summarize(load_runs([tmp_path / "runs"]))
    assert r"\begin{table*}[t]" in to_latex(summary, wide=True)
    if shutil.which("pdflatex"):
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                               "leaderboard_standalone.tex"], cwd=tmp_path / "out",
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:]


def test_latex_escapes_special_characters(tmp_path):
    assert latex_escape(r"a&b%c$d#e_f{g}h~i^j\k") == (r"a\&b\%c\$d\#e\_f\{g\}h\textasciitilde{}i"
                                                     r"\textasciicircum{}j\textbackslash{}k")
    make_fake_run(tmp_path / "runs", "my_method&v2 {50%}", seed=0)
    make_fake_run(tmp_path / "runs", "sapt", seed=0)
    summary = summarize(load_runs([tmp_path / "runs"]))
    tex = to_latex(summary, with_std=True)
    assert r"my\_method\&v2 \{50\%\}" in tex and _balanced(tex)
    assert all(row.count(" & ") == 6 for row in _table_rows(tex))


def test_reference_matches_paper_table2():
    ref = load_reference()
    assert len(ref) == 11 * 2 * 6 and ref["reference"].str.contains("published").all()
    assert (ref["source"] == "paper").all()
    get = lambda m, s, k: ref[(ref.method == m) & (ref.setting == s) & (ref.metric == k)]["mean"].item()  # noqa: E731
    assert get("seq_lora", "unseen", "FR") == 6.70 and get("es_moe", "mixed", "FR") == -3.03
    assert get("sapt", "unseen", "AR") == 0.237 and get("prog_prompt", "mixed", "AF") == 5.77
    assert np.isnan(get("mtl", "unseen", "FR"))


def test_mixed_configs_refused_unless_allowed(tmp_path):
    make_fake_run(tmp_path / "runs", "sapt", seed=0)
    odd = make_fake_run(tmp_path / "runs", "seq_lora", seed=0, stages={"tokenizer": "other"})
    with pytest.raises(DataError, match="tokenizer") as err:
        load_runs([tmp_path / "runs"])
    assert str(odd) in str(err.value)
    with pytest.warns(UserWarning, match="mixed"):
        assert len(load_runs([tmp_path / "runs"], allow_mixed=True)) == 2
    # runs scored on the val part (model selection) never merge with test-part runs
    val = make_fake_run(tmp_path / "parts", "sapt", seed=0)
    make_fake_run(tmp_path / "parts", "seq_lora", seed=0)
    res = json.loads((val / "result.json").read_text())
    res["eval"] = {**res.get("eval", {}), "part": "val"}
    (val / "result.json").write_text(json.dumps(res))
    with pytest.raises(DataError, match="eval_part"):
        load_runs([tmp_path / "parts"])
    # different presets: one error naming both runs and what differs
    make_fake_run(tmp_path / "presets", "sapt", seed=0, preset="test")
    tiny = make_fake_run(tmp_path / "presets", "seq_lora", seed=0, preset="tiny")
    with pytest.raises(DataError, match=r"preset differs \('test' vs 'tiny'\)") as err:
        load_runs([tmp_path / "presets"])
    assert str(tiny) in str(err.value) and str(tiny.parent.parent.parent.parent / "sapt") in str(err.value)
    # stages_version (when present): l2emg-ref-v1 vs rebuilt stages never merge
    a = make_fake_run(tmp_path / "ver", "sapt", result_extra={"stages_version": "l2emg-ref-v1"})
    b = make_fake_run(tmp_path / "ver", "seq_lora", result_extra={"stages_version": "rebuilt"})
    make_fake_run(tmp_path / "ver", "epi")         # an older run without the field: not compared
    with pytest.raises(DataError, match="stages_version differs") as err:
        load_runs([tmp_path / "ver"])
    assert str(a) in str(err.value) and str(b) in str(err.value)
    assert "'l2emg-ref-v1' vs 'rebuilt'" in str(err.value)
    # two stage hashes at once: both named in the one message
    make_fake_run(tmp_path / "two", "sapt")
    make_fake_run(tmp_path / "two", "epi", stages={"evaluator": "e1", "backbone": "b1"})
    with pytest.raises(DataError, match="evaluator stage hash differs .*backbone stage hash differs"):
        load_runs([tmp_path / "two"])
    # splits may differ between settings, not within one
    make_fake_run(tmp_path / "ok", "sapt", setting="unseen")
    make_fake_run(tmp_path / "ok", "sapt", setting="mixed", stages={"split": "s-mixed"})
    assert len(load_runs([tmp_path / "ok"])) == 2


def test_unfinished_run_warns_or_errors(tmp_path):
    make_fake_run(tmp_path / "runs", "sapt", seed=0)
    make_fake_run(tmp_path / "runs", "sapt", seed=1, finished=False)
    with pytest.warns(UserWarning, match="unfinished"):
        assert len(load_runs([tmp_path / "runs"])) == 1
    with pytest.raises(DataError, match="unfinished"):
        load_runs([tmp_path / "runs"], strict=True)


def test_stale_summary_uses_matrices(tmp_path):
    run = make_fake_run(tmp_path / "runs", "sapt", stale=True)
    with pytest.warns(UserWarning, match="stale"):
        r = load_run(run)
    assert r.aggregates["AR"] == pytest.approx(r.matrices["r_precision_top1"].iloc[-1].mean())
    with pytest.raises(DataError, match="stale"):
        load_run(run, strict=True)


def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no finished run"):
        build_leaderboard([tmp_path / "empty"], tmp_path / "out")
    make_fake_run(tmp_path / "runs", "sapt")
    with pytest.raises(DataError, match="unknown metric 'XYZ'.*AF, AR"):
        build_leaderboard([tmp_path / "runs"], tmp_path / "out", metrics=["XYZ"])
    assert not (tmp_path / "out").exists()
    bad = make_fake_run(tmp_path / "bad", "sapt")
    (bad / "result.json").write_text('{"method": "sapt", ')
    with pytest.raises(DataError, match="not valid JSON"):
        load_runs([tmp_path / "bad"])
    with pytest.raises(DataError, match="does not exist"):
        load_runs([tmp_path / "nope"])


def test_cli(tmp_path, capsys):
    from harness.cli import main

    make_sweep(tmp_path / "runs", {"sapt": 0.3, "epi": 0.2}, seeds=(0,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["leaderboard", str(tmp_path / "runs"), "--out", str(tmp_path / "o"),
                     "--no-figures", "--metrics", "AR", "af", "--with-reference"]) == 0
    out = capsys.readouterr().out
    assert "SAPT" in out and "SAPT (paper)" in out
    assert (tmp_path / "o" / "leaderboard.tex").exists()
    (tmp_path / "empty").mkdir()
    assert main(["leaderboard", str(tmp_path / "empty"), "--out", str(tmp_path / "o2")]) == 2
    assert "l2emg: error:" in capsys.readouterr().err


def test_one_run_shows_its_evaluation_ci_and_a_zero_width_one_is_no_ci(tmp_path):
    make_fake_run(tmp_path / "runs", "sapt", result_extra={"aggregates_ci95": {"AR": 0.01, "AF": 0.0}})
    make_fake_run(tmp_path / "runs", "epi", quality=0.1, result_extra={"aggregates_ci95": {"AR": 0.02}})
    s = summarize(load_runs([tmp_path / "runs"])).set_index(["method", "metric"])
    assert s.loc[("sapt", "AR"), "ci95"] == 0.01 and s.loc[("sapt", "AR"), "ci_kind"] == "eval"
    assert np.isnan(s.loc[("sapt", "AF"), "ci95"]) and s.loc[("sapt", "AF"), "ci_kind"] == ""
    assert s.loc[("sapt", "AR"), "mean_ci"].endswith("± 0.010")
    from leaderboard.tables import wide_text

    text = wide_text(s.reset_index())
    assert "± 0.010†" in text and "*" in text.split("SAPT")[1].split("\n")[0]   # beyond epi's CI


def test_fid_floor_row_and_unmeasured_multimodality(tmp_path):
    """AF and AKID get the real-vs-real floor of the same n (result.json floors) as their bound
    row, not the reference set against itself; AMM from too few texts shows n.m. and is never
    bold."""
    from leaderboard.tables import wide_text

    for order, (floor, measured) in enumerate([(2.0, False), (4.0, True)], start=1):
        for method, q in (("seq_lora", 0.2), ("sapt", 0.3)):
            make_fake_run(tmp_path / "runs", method, order=order, quality=q, result_extra={
                "floors": {"AF_floor": floor, "AKID_floor": 0.001},
                "multimodality_measured": measured})
    summary = build_leaderboard([tmp_path / "runs"], tmp_path / "out", figures=False)
    floor = summary[(summary.source == "floor") & (summary.metric == "AF")]
    assert floor["mean"].item() == pytest.approx(3.0)
    assert summary[(summary.source == "ceiling") & (summary.metric == "AF")].empty
    amm = summary[(summary.source == "ours") & (summary.metric == "AMM")]
    assert not amm["measured"].any()
    text = wide_text(summary)
    assert "Floor (real vs real, same n)" in text and "n.m." in text


def test_routed_methods_get_a_route_own_column(tmp_path):
    """route_own (the final row of matrices/route_own.csv, mean over subsets) is a leaderboard
    column for routed methods; other methods show '-'."""
    from leaderboard.tables import wide_frames

    for order in (1, 2):
        make_fake_run(tmp_path / "runs", "seq_lora", order=order)
        run = make_fake_run(tmp_path / "runs", "epi", order=order)
        names = pd.read_csv(run / "matrices" / "r_precision_top1.csv", index_col=0).columns
        share = np.full((len(names), len(names)), np.nan)
        share[-1] = [1.0, 0.5] + [0.75] * (len(names) - 2)
        pd.DataFrame(share, index=[f"after_{i + 1}" for i in range(len(names))],
                     columns=names).to_csv(run / "matrices" / "route_own.csv")
    summary = build_leaderboard([tmp_path / "runs"], tmp_path / "out", figures=False)
    row = summary[(summary.method == "epi") & (summary.metric == "route_own")]
    assert row["mean"].item() == pytest.approx((1.0 + 0.5 + 0.75 * 6) / 8)
    table = wide_frames(summary)["unseen"]
    assert table.loc["SeqLoRA", "route_own ↑"] == "-" and table.loc["EPI", "route_own ↑"].startswith("0.75")
