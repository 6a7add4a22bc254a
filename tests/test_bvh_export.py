"""``l2emg export``: run samples -> BVH on the SMPL skeleton; importing the files back gives the
same joints."""
from __future__ import annotations

import json

import numpy as np
import pytest

from harness.cli import main
from benchmark.corpus.bvh import read_bvh
from benchmark.corpus.bvh_import import bvh_joints, convert_bvh
from benchmark.motion import features_to_joints


@pytest.fixture(scope="module")
def run_dir(shared_dir, tmp_path_factory):
    src = shared_dir / "data" / "bandai-namco" / "dataset-1" / "data"
    run = tmp_path_factory.mktemp("run")
    (run / "samples").mkdir()
    index = {}
    for stem in ("dataset-1_bow_sad_001", "dataset-1_walk_happy_001"):
        feats, _, _ = convert_bvh(src / f"{stem}.bvh")
        np.save(run / "samples" / f"{stem}.npy", feats[::-1].copy())    # a "generated" motion
        np.save(run / "samples" / f"{stem}_gt.npy", feats)
        index[stem] = {"text": "x", "emotion": "sad", "scenario": "s", "subset": "s",
                       "reference": f"{stem}_gt.npy"}
    (run / "samples" / "index.json").write_text(json.dumps(index))
    return run


def test_export_round_trip(run_dir, tmp_path, capsys):
    out = tmp_path / "bvh"
    assert main(["export", "--run", str(run_dir), "--bvh", str(out)]) == 0
    files = sorted(p.name for p in out.glob("*.bvh"))
    assert files == ["dataset-1_bow_sad_001.bvh", "dataset-1_bow_sad_001_gt.bvh",
                     "dataset-1_walk_happy_001.bvh", "dataset-1_walk_happy_001_gt.bvh"]
    for name in files:
        feats = np.load(run_dir / "samples" / name.replace(".bvh", ".npy"))
        ref = features_to_joints(feats.astype(np.float64))
        back, info = bvh_joints(out / name)
        assert info["map"] == "smpl" and info["unit"] == "m" and info["source_fps"] == 20.0
        assert back.shape == ref.shape and np.abs(back - ref).max() <= 1e-3
    bvh = read_bvh(out / "dataset-1_walk_happy_001_gt.bvh")
    rows = bvh.motion.reshape(bvh.n_frames, -1, 6)[..., :3]
    limbs = [k for k, j in enumerate(b for b in bvh.joints if not b.end_site)
             if j.name in ("l_knee", "r_knee", "l_elbow", "r_elbow", "l_wrist", "r_wrist")]
    offsets = np.stack([j.offset for j in bvh.joints if not j.end_site])
    assert np.abs(rows[:, limbs] - offsets[limbs]).max() < 0.01   # rotations carry the limbs
    assert main(["export", "--run", str(run_dir), "--bvh", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_export_bad_run(tmp_path, capsys):
    assert main(["export", "--run", str(tmp_path), "--bvh", str(tmp_path / "o")]) == 2
    assert "index.json: missing" in capsys.readouterr().err and not (tmp_path / "o").exists()
