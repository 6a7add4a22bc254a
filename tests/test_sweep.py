"""Sweep grid, resumability and failure isolation (with a stub runner), and the `l2emg bench`
pipeline end to end on the test preset (slow)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from harness import sweep as sw
from benchmark.io import DataError


def _cfg(tmp_path, **kw):
    base = dict(methods=["mtl", "seq_lora"], settings=["unseen", "mixed"], orders=["1", "2", "3"],
                seeds=[0, 1], out=tmp_path / "runs", jobs=1)
    base.update(kw)
    return sw.SweepConfig(**base)


def test_plan_covers_the_grid_once(tmp_path):
    specs = sw.plan(_cfg(tmp_path))
    # MTL trains jointly (order-free): once per setting x seed; SeqLoRA: settings x orders x seeds
    assert sum(s.method == "mtl" for s in specs) == 2 * 2
    assert sum(s.method == "seq_lora" for s in specs) == 2 * 3 * 2
    assert len({s.out for s in specs}) == len(specs)
    assert {s.order for s in specs if s.method == "seq_lora"} == {"1", "2", "3"}


def test_parse_orders():
    assert sw.parse_orders("1,2,3") == ["1", "2", "3"]
    assert sw.parse_orders("Dance,Sports") == ["Dance,Sports"]
    assert sw.parse_orders("Dance,Sports;Sports,Dance") == ["Dance,Sports", "Sports,Dance"]
    with pytest.raises(DataError):
        sw.parse_orders(" , ")


def test_bad_grid_is_refused(tmp_path):
    with pytest.raises(DataError, match="setting"):
        _cfg(tmp_path, settings=["unseen", "weird"])
    with pytest.raises(DataError, match="jobs"):
        _cfg(tmp_path, jobs=0)


def test_status_reads_the_folder(tmp_path):
    spec = sw.RunSpec("seq_lora", "unseen", "1", 0, tmp_path / "r")
    assert sw.status(spec) == "new"
    spec.out.mkdir()
    (spec.out / "progress.json").write_text("{}")
    assert sw.status(spec) == "partial"
    (spec.out / "result.json").write_text("{}")
    assert sw.status(spec) == "done"


def test_sweep_skips_finished_resumes_partial_and_isolates_failures(tmp_path, monkeypatch):
    from harness import runner

    calls = []

    def fake_run(cfg):
        k = cfg.key
        calls.append((k.method, k.setting, k.order, k.seed, cfg.execution.resume))
        if k.method == "seq_lora" and k.order == "2":
            raise RuntimeError("boom")
        Path(cfg.execution.out).mkdir(parents=True, exist_ok=True)
        (Path(cfg.execution.out) / "result.json").write_text("{}")
        return Path(cfg.execution.out)

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.setattr(sw, "prepare_stages", lambda cfg: None)
    cfg = _cfg(tmp_path, settings=["unseen"], seeds=[0])
    # one run was interrupted before: it must resume, not restart
    partial = cfg.out / "seq_lora" / "unseen" / "order3" / "seed0"
    partial.mkdir(parents=True)
    (partial / "progress.json").write_text("{}")

    report = sw.sweep_runs(cfg, progress=False)
    assert report["planned"] == 4 and len(report["done"]) == 3
    assert list(report["failed"]) == ["seq_lora/unseen/order2/seed0"]
    assert "boom" in report["failed"]["seq_lora/unseen/order2/seed0"]
    assert ("seq_lora", "unseen", "3", 0, True) in calls          # resumed
    assert ("seq_lora", "unseen", "1", 0, False) in calls         # fresh

    calls.clear()
    again = sw.sweep_runs(cfg, progress=False)                     # finished runs are skipped
    assert len(again["skipped"]) == 3 and calls == [("seq_lora", "unseen", "2", 0, False)]


@pytest.mark.slow
def test_bench_end_to_end(tiny_corpus_dir, tiny_tokenizer, tiny_evaluator, tmp_path):
    """The README's main command, reduced (2 methods, 1 setting, 1 short order): every artefact
    exists and parses."""
    from harness.cli import main

    out = tmp_path / "bench"
    argv = ["bench", "--preset", "test", "--methods", "seq_lora,mtl", "--settings", "unseen",
            "--orders", "Daily Life,Sports,Dance", "--seeds", "0", "--jobs", "1",
            "--data", str(tiny_corpus_dir), "--tokenizer", str(tiny_tokenizer.saved_dir),
            "--evaluator", str(tiny_evaluator.root), "--max-test", "6", "--no-progress",
            "--floor-gens", "2", "--out", str(out)]
    assert main(argv) == 0
    # every continual run got its measured floor (the default, --floor all); the joint run has no FR
    assert [p.parent.parent.parent.parent.name for p in (out / "runs").rglob("fr_floor.json")] == ["seq_lora"]
    # each result.json carries its method's facts (the class's; the leaderboard reads them)
    info = {p.parent.parent.parent.parent.name: json.loads(p.read_text())["method_info"]
            for p in (out / "runs").rglob("result.json")}
    assert info == {"seq_lora": {"display_name": "SeqLoRA", "latex_name": "", "role": "lower_bound",
                                 "paper_row": 2},
                    "mtl": {"display_name": "MTL", "latex_name": "", "role": "upper_bound",
                            "paper_row": 1}}
    lb = pd.read_csv(out / "leaderboard" / "leaderboard.csv")
    ours = lb[lb["source"] != "paper"]
    assert set(ours["method"]) == {"seq_lora", "mtl"}
    ar = ours[(ours["method"] == "seq_lora") & (ours["metric"] == "AR")]["mean"].iloc[0]
    assert 0.0 <= ar <= 1.0
    fr_mtl = ours[(ours["method"] == "mtl") & (ours["metric"] == "FR")]["mean"]
    assert fr_mtl.isna().all()                                     # MTL has no forgetting rate
    tex = (out / "leaderboard" / "leaderboard.tex").read_text()
    assert "\\toprule" in tex and "SeqLoRA" in tex and tex.count("{") == tex.count("}")
    assert list((out / "leaderboard" / "figures").glob("heatmap_*.png"))
    assert "Statistics for AR" in (out / "stats" / "AR" / "stats.md").read_text()
    validity = pd.read_csv(out / "stats" / "validity.csv")
    assert {"chance", "learning", "upper bound", "forgetting"} <= set(validity["check"])
    assert "Is the instrument valid?" in (out / "stats" / "validity.md").read_text()
    assert "measured floor" in validity.set_index("check").loc["forgetting", "detail"]
    claims = pd.read_csv(out / "stats" / "claims.csv").set_index(["family", "claim"])
    upper = claims.loc[("unseen AR MTL upper bound", "mtl > seq_lora on AR")]
    assert upper.n_blocks >= 2 and upper.verdict != "not run"       # tested on the runs made
    assert (claims.xs("unseen AR ES-MoE vs baselines", level="family").verdict == "not run").all()
    page = (out / "report" / "index.html").read_text()               # the self-contained report
    assert 'id="leaderboard-unseen"' in page and ">Chance<" in page and "data:image/png" in page
    info = json.loads((out / "bench.json").read_text())
    assert info["runs_failed"] == {} and len(info["runs_finished_now"]) == 2
    assert info["floors_measured_now"] == 1
    assert not math.isnan(info["wall_time_s"])
    # rerun: nothing left to do, same leaderboard
    assert main(argv) == 0
    info2 = json.loads((out / "bench.json").read_text())
    assert info2["runs_finished_now"] == [] and info2["floors_measured_now"] == 0
