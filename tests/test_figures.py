"""Figures: heat maps in scenario-name space, motion renders, CD diagram."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmark.corpus.labels import SCENARIOS
from benchmark.io import DataError
from leaderboard import compare
from leaderboard.figures import load_samples, mean_matrix, write_heatmaps, write_motion_renders
from leaderboard.runs import load_runs
from leaderboard_fakes import ORDERS, make_fake_run, make_sweep, truth


def test_mean_matrix_aligns_orders_by_scenario_name(tmp_path):
    for order in (1, 2, 3):
        make_fake_run(tmp_path / "runs", "sapt", order=order, quality=0.3)
    runs = load_runs([tmp_path / "runs"])
    m = mean_matrix(runs, "r_precision_top1")
    assert list(m.index) == list(SCENARIOS) == list(m.columns)
    # r[a, b] = truth(a, b) - 0.1 when b was not yet trained after a; averaged over the 3 orders
    for a in SCENARIOS:
        for b in SCENARIOS:
            expect = np.mean([truth(a, b, 0.3) - 0.1 * (o.index(b) > o.index(a)) for o in ORDERS.values()])
            assert m.loc[a, b] == pytest.approx(expect), (a, b)

def test_heatmaps_written(tmp_path):
    make_sweep(tmp_path / "runs", {"sapt": 0.3, "es_moe": 0.35}, settings=("mixed",),
               orders=(1, 2), seeds=(0,))
    files = write_heatmaps(load_runs([tmp_path / "runs"]), tmp_path / "fig", pdf=True)
    names = {f.name for f in files}
    assert {"heatmap_fid_mixed.png", "heatmap_r_precision_top1_mixed.pdf"} <= names
    assert Image.open(tmp_path / "fig" / "heatmap_fid_mixed.png").size[0] > 300


def test_motion_renders(tmp_path, humanml3d_sample):
    feats = humanml3d_sample / "new_joint_vecs" / "012314.npy"
    make_fake_run(tmp_path / "runs", "sapt", samples=feats, n_frames=16)
    make_fake_run(tmp_path / "runs", "es_moe", samples=feats, n_frames=16)
    runs = load_runs([tmp_path / "runs"])
    files = write_motion_renders(runs, tmp_path / "fig")
    assert {f.name for f in files} == {"motion_unseen_p0.png", "motion_unseen_p0.gif"}
    gif = Image.open(tmp_path / "fig" / "motion_unseen_p0.gif")
    assert gif.n_frames == 16
    # bad sample features -> clear error
    np.save(runs[0].path / "samples" / "p0.npy", np.zeros((5, 10), np.float32))
    with pytest.raises(DataError, match="263"):
        write_motion_renders(runs, tmp_path / "fig2", gif=False)
    (runs[0].path / "samples" / "index.json").write_text(json.dumps({"p0": {"text": "x"}}))
    with pytest.raises(DataError, match="reference"):
        load_samples(runs[0])


def test_compare_writes_stats_and_cd_diagram(tmp_path):
    make_sweep(tmp_path / "runs", {"sapt": 0.3, "es_moe": 0.35, "seq_lora": 0.2}, seeds=(0, 1),
               noise=0.005)
    rows = compare([tmp_path / "runs"], tmp_path / "out", metric="af", setting="unseen")
    assert (tmp_path / "out" / "cd_diagram_AF.png").exists()
    assert "Friedman" in (tmp_path / "out" / "stats.md").read_text()
    ranks = rows[rows.analysis == "methods_rank"].set_index("method").statistic
    assert ranks.idxmin() == "es_moe"                     # lowest FID ranks first
    with pytest.raises(DataError, match="setting"):
        compare([tmp_path / "runs"], tmp_path / "out", setting="mixed")


def test_a_figure_not_drawn_says_why(tmp_path):
    from leaderboard import build_leaderboard

    # one order, one seed: one block per method -> no CD diagram, and a note saying why
    make_sweep(tmp_path / "runs", {"sapt": 0.3, "es_moe": 0.35, "seq_lora": 0.2}, orders=(1,),
               seeds=(0,))
    out = tmp_path / "out"
    (out).mkdir()
    (out / "cd_diagram_AR.png").write_bytes(b"stale")                 # from an earlier, bigger set
    rows = compare([tmp_path / "runs"], out, metric="AR")
    assert not (out / "cd_diagram_AR.png").exists()
    note = (out / "cd_diagram_AR.txt").read_text()
    assert note.count("\n") == 1 and "needs >= 2 methods on >= 2 complete blocks" in note
    assert "3 methods, 1 blocks" in note
    assert "## Figures not drawn" in (out / "stats.md").read_text()
    assert rows.attrs["missing_figures"] == [f"cd_diagram_AR: {note.split(': ', 1)[1].strip()}"]
    # with a second order the diagram is drawn and the note goes away
    make_sweep(tmp_path / "runs", {"sapt": 0.3, "es_moe": 0.35, "seq_lora": 0.2}, orders=(2,),
               seeds=(0,))
    compare([tmp_path / "runs"], out, metric="AR")
    assert (out / "cd_diagram_AR.png").exists() and not (out / "cd_diagram_AR.txt").exists()
    # the leaderboard lists the figures it could not draw (no run saved samples)
    summary = build_leaderboard([tmp_path / "runs"], tmp_path / "lb", max_samples=1)
    missing = (tmp_path / "lb" / "figures" / "NOT_DRAWN.txt").read_text()
    assert "motion_unseen_*: no unseen run saved generated samples" in missing
    assert summary.attrs["missing_figures"] == missing.splitlines()
    assert "## Figures not drawn" in (tmp_path / "lb" / "leaderboard_wide.md").read_text()
