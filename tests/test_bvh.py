"""BVH import: parser and kinematics known answers, retargeting maps, units and axes, the real
Bandai-Namco files (body size, floor, walking speed, feature round trip), every bad input."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmark.corpus.bvh import forward_kinematics, parse_bvh, read_bvh
from benchmark.corpus.bvh_import import BvhImportConfig, bvh_joints, import_bvh
from benchmark.corpus.bvh_retarget import BANDAI_MAP, resolve_map
from benchmark.io import DataError
from benchmark.motion import features_to_joints
from bvh_fakes import MIXAMO, bvh_text, cmu_skeleton

BANDAI_FILES = ["dataset-1_walk_normal_001", "dataset-1_walk_happy_001", "dataset-1_bow_sad_001",
                "dataset-1_punch_normal_001", "dataset-2_walk_elderly_001"]
FEET = [7, 8, 10, 11]


@pytest.fixture(scope="module")
def bandai_dir(shared_dir) -> Path:
    path = shared_dir / "data" / "bandai-namco"
    if not (path / "dataset-1" / "data").is_dir():
        pytest.fail(f"Bandai-Namco data missing at {path}; set L2EMG_SHARED to the shared/ folder")
    return path


def _src(bandai_dir: Path, stem: str) -> Path:
    return bandai_dir / stem.split("_")[0] / "data" / f"{stem}.bvh"


@pytest.fixture(scope="module")
def bandai_corpus(bandai_dir, tmp_path_factory):
    from benchmark.corpus import load_corpus

    src = tmp_path_factory.mktemp("bvh_src")
    for stem in BANDAI_FILES:
        (src / f"{stem}.bvh").symlink_to(_src(bandai_dir, stem))
    out = tmp_path_factory.mktemp("bvh_out") / "corpus"
    import_bvh(src, out, name_pattern="{dataset}_{content}_{emotion}_{take}",
               scenario_map={"walk": "Locomotion", "bow": "Greetings", "punch": "Fighting"})
    return load_corpus(out, validate="full")


# ----------------------------------------------------------------------------- parser + FK
def test_euler_order_and_offsets_known_answer():
    text = """HIERARCHY
ROOT a
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
  JOINT b
  {
    OFFSET 1 2 3
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 0 4
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.05
1 2 3 10 20 30 40 50 60
0 0 0 0 0 0 0 0 0
"""
    bvh = parse_bvh(text.replace("\n", "\r\n").replace("  ", "\t"))
    assert bvh.names == ["a", "b", "b/End"] and bvh.fps == 20.0
    pos = forward_kinematics(bvh)
    ra = Rotation.from_euler("YXZ", [10, 20, 30], degrees=True).as_matrix()   # intrinsic
    rb = Rotation.from_euler("ZXY", [40, 50, 60], degrees=True).as_matrix()
    b = np.array([1, 2, 3]) + ra @ [1, 2, 3]
    np.testing.assert_allclose(pos[0, 1], b, atol=1e-12)
    np.testing.assert_allclose(pos[0, 2], b + ra @ rb @ [0, 0, 4], atol=1e-12)
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [1, 2, 3], [1, 2, 7]], atol=1e-12)


def test_position_channels_replace_offsets_on_real_file(bandai_dir):
    bvh = read_bvh(_src(bandai_dir, "dataset-1_walk_normal_001"))
    assert bvh.fps == 30.0 and all(len(j.channels) == 6 for j in bvh.joints if not j.end_site)
    spine = bvh.joints[bvh.index("Spine")]
    cols = bvh.motion[:, spine.column:spine.column + 3]
    np.testing.assert_allclose(cols, np.broadcast_to(spine.offset, cols.shape), atol=1e-3)
    pos = forward_kinematics(bvh)
    bones = np.linalg.norm(pos[:, bvh.index("LowerLeg_L")] - pos[:, bvh.index("Foot_L")], axis=-1)
    assert bones.std() < 1e-3 and abs(bones.mean() - 40.9854) < 1e-3   # rigid shin, in cm


# ----------------------------------------------------------------------------- maps, units, axes
def test_maps_detected_by_names_and_missing_joints_interpolated(tmp_path):
    for skeleton, prefix, name in ((MIXAMO, "mixamorig:", "mixamo"), (cmu_skeleton(), "", "cmu")):
        path = tmp_path / f"{name}.bvh"
        path.write_text(bvh_text(skeleton, prefix=prefix))
        joints, info = bvh_joints(path)
        assert info["map"] == name and info["unit"] == "cm" and info["up"] == "y"
    bvh = parse_bvh(bvh_text(cmu_skeleton()))
    pos = forward_kinematics(bvh) * 0.01
    s1, n1 = pos[0, bvh.index("Spine1")], pos[0, bvh.index("Neck1")]
    raw, _ = bvh_joints(tmp_path / "cmu.bvh", BvhImportConfig(fps=30.0))
    np.testing.assert_allclose(raw[0, 9], s1 + 0.33 * (n1 - s1), atol=1e-9)   # spine3


def test_units_and_up_axis_detected(tmp_path):
    ref, _ = bvh_joints(_write(tmp_path / "cm.bvh", bvh_text()))
    for scale, unit in ((10.0, "mm"), (1 / 5.644, "cmu"), (0.01, "m")):
        joints, info = bvh_joints(_write(tmp_path / f"{unit}.bvh", bvh_text(scale=scale)))
        assert info["unit"] == unit
        np.testing.assert_allclose(joints, ref, atol=2e-4 if unit != "cmu" else 0.02)
    joints, info = bvh_joints(_write(tmp_path / "z.bvh", bvh_text(z_up=True)))
    assert info["up"] == "z"
    np.testing.assert_allclose(joints, ref, atol=1e-6)
    forced, _ = bvh_joints(tmp_path / "cm.bvh", BvhImportConfig(unit=0.02))
    np.testing.assert_allclose(forced, 2 * ref, atol=1e-6)


def test_json_map_for_other_skeletons(tmp_path):
    rename = {n: f"bone{i}" for i, (n, _, _) in enumerate(MIXAMO)}
    text = re.sub(r"^(\s*(?:ROOT|JOINT)) (\w+)$", lambda m: f"{m.group(1)} {rename[m.group(2)]}",
                  bvh_text(), flags=re.M)
    path = _write(tmp_path / "other.bvh", text)
    with pytest.raises(DataError, match="unknown skeleton.*--skeleton MAP.json"):
        bvh_joints(path)
    from benchmark.corpus.bvh_retarget import MIXAMO_MAP

    m = {k: rename[v] if isinstance(v, str) else [rename[v[0]], rename[v[1]], v[2]]
         for k, v in MIXAMO_MAP.items()}
    (tmp_path / "map.json").write_text(json.dumps(m))
    joints, info = bvh_joints(path, BvhImportConfig(skeleton=str(tmp_path / "map.json")))
    ref, _ = bvh_joints(_write(tmp_path / "mixamo.bvh", bvh_text()))
    np.testing.assert_allclose(joints, ref, atol=1e-9)
    del m["l_knee"]
    (tmp_path / "bad.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match=r"bad.json.*missing key\(s\) \['l_knee'\]"):
        bvh_joints(path, BvhImportConfig(skeleton=str(tmp_path / "bad.json")))
    with pytest.raises(DataError, match="no joint 'Hips', which map 'bandai' needs"):
        bvh_joints(path, BvhImportConfig(skeleton="bandai"))


def test_skeleton_missing_a_mapped_joint(tmp_path):
    text = bvh_text().replace("JOINT LeftFoot", "JOINT LeftFootX")
    with pytest.raises(DataError, match="no joint 'LeftFoot', which map 'mixamo' needs for SMPL "
                       "joint 'l_ankle'"):
        bvh_joints(_write(tmp_path / "m.bvh", text), BvhImportConfig(skeleton="mixamo"))
    names = ["joint_Root"] + [v for v in BANDAI_MAP.values() if isinstance(v, str)]
    assert resolve_map(names, "auto", "x.bvh")[0] == "bandai"
    with pytest.raises(DataError, match="unknown skeleton"):
        resolve_map(names[:-1], "auto", "x.bvh")


# ----------------------------------------------------------------------------- real data
def test_bandai_body_size_floor_and_pose(bandai_corpus):
    for motion_id in bandai_corpus.ids:
        j = bandai_corpus.joints(motion_id)
        height = (j[:, 15, 1] - j[:, FEET, 1].min(axis=1)).max()
        assert 1.4 <= height <= 2.1, (motion_id, height)
        lowest = j[:, FEET, 1].min(axis=1)
        assert abs(j[..., 1].min()) < 1e-6 and np.median(lowest) < 0.03, motion_id
        assert (j[:, 15, 1] > j[:, 0, 1]).all(), motion_id            # head above pelvis


def test_bandai_walk_moves_forward_at_human_speed(bandai_corpus):
    for motion_id in [i for i in bandai_corpus.ids if "_walk_" in i]:
        j = bandai_corpus.joints(motion_id)
        seconds = (len(j) - 1) / 20.0
        dz = j[-1, 0, 2] - j[0, 0, 2]         # canonical frame: first frame faces +z
        speed = np.linalg.norm(j[-1, 0, [0, 2]] - j[0, 0, [0, 2]]) / seconds
        assert dz > 0.8 * speed * seconds and 0.5 <= speed <= 2.0, (motion_id, speed)


def test_bandai_features_reproduce_joints_and_frame_counts(bandai_corpus, bandai_dir):
    for motion_id in bandai_corpus.ids:
        feats, joints = bandai_corpus.features(motion_id), bandai_corpus.joints(motion_id)
        rec = features_to_joints(feats)
        assert np.abs(rec - joints[:-1]).max() <= 1e-4
        src = read_bvh(_src(bandai_dir, motion_id))
        assert len(joints) == int(np.floor((src.n_frames - 1) * 20 / 30 + 1e-6)) + 1
        assert abs((len(joints) - 1) / 20 - (src.n_frames - 1) / 30) < 0.05
    labels = bandai_corpus.labels
    assert bandai_corpus.scenarios == ("Locomotion", "Greetings", "Fighting")
    assert set(bandai_corpus.emotions) == {"normal", "happy", "sad", "elderly"}
    assert labels.set_index("id").loc["dataset-1_bow_sad_001", "scenario"] == "Greetings"


def test_bandai_without_retarget_keeps_actor_size(bandai_dir):
    joints, info = bvh_joints(_src(bandai_dir, "dataset-1_walk_normal_001"))
    assert info == {"map": "bandai", "unit": "cm", "metres_per_unit": 0.01, "up": "y",
                    "source_fps": 30.0, "source_frames": info["source_frames"]}
    assert 1.2 < (joints[:, 15, 1] - joints[:, FEET, 1].min(1)).max() < 1.6   # head joint
    assert np.median(joints[:, FEET, 1].min(axis=1)) < 0.06                     # on the floor


# ----------------------------------------------------------------------------- bad input
def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.mark.parametrize("case, pattern", [
    ("truncated", r"bad.bvh:\d+: the MOTION block is truncated: Frames says 31, found 29"),
    ("cut_line", r"bad.bvh:\d+: frame 31 has \d+ values.*truncated file"),
    ("wrong_count", r"bad.bvh:(\d+): frame 5 has \d+ values, the HIERARCHY declares 69 channels"),
    ("non_numeric", r"bad.bvh:\d+: frame 3 has the non-numeric value 'abc'"),
    ("zero_frames", r"bad.bvh:\d+: has 0 frames"),
    ("no_motion", r"bad.bvh: has no MOTION line"),
    ("unbalanced", r"bad.bvh:\d+: the HIERARCHY block ends inside joint"),
])
def test_bad_files_name_file_line_and_fix(tmp_path, case, pattern):
    lines = _lines(bvh_text())
    start = lines.index("MOTION") + 3
    if case == "truncated":
        lines = lines[:-2]
    elif case == "cut_line":
        lines[-1] = " ".join(lines[-1].split()[:10])
    elif case == "wrong_count":
        lines[start + 4] += " 1.0"
    elif case == "non_numeric":
        parts = lines[start + 2].split()
        parts[7] = "abc"
        lines[start + 2] = " ".join(parts)
    elif case == "zero_frames":
        lines = lines[:start - 2] + ["Frames: 0", lines[start - 1]]
    elif case == "no_motion":
        lines = lines[:lines.index("MOTION")]
    elif case == "unbalanced":
        lines = lines[:lines.index("MOTION") - 1] + lines[lines.index("MOTION"):]
    path = _write(tmp_path / "bad.bvh", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=pattern) as info:
        read_bvh(path)
    assert "Fix:" in str(info.value)
    if case == "wrong_count":
        assert int(re.search(pattern, str(info.value)).group(1)) == start + 5   # 1-based line


def test_folder_import_refuses_or_skips_bad_files(tmp_path, capsys):
    from harness.cli import main

    src = tmp_path / "src"
    src.mkdir()
    for k, emo in enumerate(("happy", "sad")):
        for sc in ("walk", "wave"):
            _write(src / f"{sc}_{emo}_{k}.bvh", bvh_text(frames=25 + k))
    _write(src / "walk_angry_9.bvh", "\n".join(_lines(bvh_text())[:-3]) + "\n")
    (tmp_path / "map.json").write_text(json.dumps({"walk": "Moving", "wave": "Gestures"}))
    args = ["data", "import-bvh", "--bvh-dir", str(src), "--out", str(tmp_path / "out"),
            "--name-pattern", "{content}_{emotion}_{take}",
            "--scenario-map", str(tmp_path / "map.json")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "walk_angry_9.bvh" in err and "truncated" in err and "--skip-bad" in err
    assert not (tmp_path / "out").exists()
    assert main(args + ["--skip-bad"]) == 0
    out = capsys.readouterr()
    assert "skipped" in out.err and "walk_angry_9.bvh" in out.err
    from benchmark.corpus import load_corpus

    corpus = load_corpus(tmp_path / "out")
    assert len(corpus) == 4 and corpus.scenarios == ("Moving", "Gestures")
    assert corpus.emotions == ("happy", "sad")
    meta = json.loads((tmp_path / "out" / "corpus.json").read_text())
    assert meta["scenarios"] == ["Moving", "Gestures"] and meta["emotions"] == ["happy", "sad"]


def test_labels_csv_import_and_its_errors(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        _write(src / f"{name}.bvh", bvh_text())
    labels = tmp_path / "labels.csv"
    labels.write_text("file,scenario,emotion,text\na.bvh,One,Calm,a person walks.|someone "
                      "strolls.\nb,Two,calm,\nc.bvh,Two,tense,\n")
    out = import_bvh(src, tmp_path / "out", labels=labels)
    from benchmark.corpus import load_corpus

    corpus = load_corpus(out)
    assert corpus.scenarios == ("One", "Two") and corpus.emotions == ("calm", "tense")
    assert corpus.texts("a") == ["a person walks.", "someone strolls."]
    labels.write_text("file,scenario,emotion\na.bvh,One,calm\nzzz.bvh,Two,calm\n")
    with pytest.raises(DataError, match=r"labels.csv:3: file 'zzz.bvh' is not a .bvh file"):
        import_bvh(src, tmp_path / "out2", labels=labels)
    with pytest.raises(DataError, match="no --scenario-map"):
        import_bvh(src, tmp_path / "out3", name_pattern="{content}_{emotion}")
