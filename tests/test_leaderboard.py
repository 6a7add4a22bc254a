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
    assert list(wide["method"]) == ["seq_lora", "sapt"]          # paper row order
    assert "unseen.AR.mean" in wide.columns and "mixed.FR.std" in wide.columns


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
    ar_col = 2  # AR (unseen) is the 2nd metric column
    cells = {row.split(" & ")[0]: row.split(" & ")[ar_col] for row in rows}
    assert cells["MTL"].startswith(r"\textbf{") and cells["ES-MoE"].startswith(r"\underline{")
    assert not cells["SAPT"].startswith("\\") and not cells["SAPT (paper)"].startswith("\\")
    if shutil.which("pdflatex"):
        doc = tmp_path / "doc.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
                       + tex + "\\end{document}\n")
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", doc.name], cwd=tmp_path,
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
    from benchmark.cli import main

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
