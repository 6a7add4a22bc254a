"""Motion-X import through the real ``smplx`` code path, with a synthetic SMPL-X model file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.io import DataError

FPS_IN = 30.0
SPEED = 1.2  # m/s


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from benchmark.corpus.motionx import write_synthetic_smplx_model

    root = tmp_path_factory.mktemp("smplx_models")
    write_synthetic_smplx_model(root / "smplx" / "SMPLX_NEUTRAL.npz")
    return root


@pytest.fixture(scope="module")
def body(model_dir):
    from benchmark.corpus.motionx import MotionXConfig, load_body_model

    return load_body_model(MotionXConfig(model_dir))


def walking_clip(n: int = 61) -> np.ndarray:
    """A Motion-X-style clip: standing body stood up along world +z (root_orient = +90 deg
    about x, as in Motion-X's z-up world), translating along its facing direction (world -y)."""
    clip = np.zeros((n, 322), np.float32)
    clip[:, 0] = np.pi / 2
    clip[:, 310] = -SPEED * np.arange(n) / FPS_IN
    return clip


def test_body_model_runs_real_smplx(body):
    import smplx

    assert isinstance(body, smplx.SMPLX)
    from benchmark.corpus.motionx import smplx_joints

    joints = smplx_joints(walking_clip(5), body, batch_frames=2)  # several body-model calls
    assert joints.shape == (5, 22, 3)
    # z-up world: the head is above the pelvis along +z, the feet below
    assert joints[0, 15, 2] - joints[0, 0, 2] > 0.4 and joints[0, 10, 2] < joints[0, 0, 2] - 0.7


def test_fast_joints_equal_full_smplx_forward(body):
    from benchmark.corpus.motionx import smplx_joints

    rng = np.random.default_rng(0)
    clip = walking_clip(7)
    clip[:, 3:159] = rng.normal(0.0, 0.4, (7, 156))   # body, hand and jaw poses
    clip[:, 312:] = rng.normal(0.0, 1.0, (7, 10))     # body shape
    fast = smplx_joints(clip, body, batch_frames=4)
    full = smplx_joints(clip, body, batch_frames=4, full_forward=True)
    np.testing.assert_allclose(fast, full, atol=1e-5)
    assert np.abs(np.diff(fast, axis=0)).max() > 0.01  # the poses really moved the joints


def test_convert_clip_known_answers(body, model_dir):
    from benchmark.corpus.motionx import MotionXConfig, convert_clip

    cfg = MotionXConfig(model_dir, retarget=False)
    feats, joints = convert_clip(walking_clip(61), body, cfg)
    # 61 frames at 30 fps = 2 s -> 41 frames at 20 fps -> 40 feature frames
    assert joints.shape == (41, 22, 3) and feats.shape == (40, 263)
    # y-up and upright: feet on the floor, head ~0.55 m above the pelvis
    assert abs(joints[:, [7, 8, 10, 11], 1].min()) < 1e-5
    assert joints[0, 15, 1] - joints[0, 0, 1] > 0.5
    # walking forward (+z after canonicalisation) at 1.2 m/s = 0.06 m per 20-fps frame
    np.testing.assert_allclose(feats[:, 2], SPEED / 20, atol=1e-4)
    np.testing.assert_allclose(feats[:, 1], 0.0, atol=1e-4)
    # the same data read as if it were y-up gives a body lying on the floor
    _, lying = convert_clip(walking_clip(61), body, MotionXConfig(model_dir, retarget=False,
                                                                  up_axis="y"))
    assert lying[0, 15, 1] - lying[0, 0, 1] < 0.2


def test_resample_linear():
    from benchmark.corpus.motionx import resample

    x = np.arange(31, dtype=float)[:, None] * np.array([1.0, -2.0])  # linear ramp, 30 fps
    y = resample(x, 30.0, 20.0)
    assert y.shape == (21, 2)
    np.testing.assert_allclose(y[:, 0], np.arange(21) * 1.5)


def test_bad_inputs(model_dir, tmp_path):
    from benchmark.corpus.motionx import MotionXConfig, check_smplx_array, find_smplx_model

    with pytest.raises(DataError, match=r"\(T, 322\)"):
        check_smplx_array(np.zeros((10, 165)), "clip.npy")
    with pytest.raises(DataError, match="NaN"):
        check_smplx_array(np.full((10, 322), np.nan), "clip.npy")
    with pytest.raises(DataError, match="not found"):
        find_smplx_model(tmp_path / "nowhere")
    with pytest.raises(DataError, match="SMPLX_FEMALE"):
        find_smplx_model(model_dir, "female")
    with pytest.raises(DataError, match="gender"):
        MotionXConfig(model_dir, gender="robot")


def _write_inputs(root: Path, clips: dict[str, np.ndarray]) -> tuple[Path, Path, Path]:
    motion_dir, texts_dir = root / "motion" / "idea400", root / "texts" / "idea400"
    motion_dir.mkdir(parents=True)
    texts_dir.mkdir(parents=True)
    rows = ["id,scenario,emotion,path"]
    for k, (name, clip) in enumerate(clips.items()):
        np.save(motion_dir / f"{name}.npy", clip)
        (texts_dir / f"{name}.txt").write_text(f"a person walks forward {k}\nsomeone strolls {k}\n")
        rows.append(f"mx{k},{['Daily Life', 'sports'][k % 2]},{['Happy', 'sad'][k % 2]},"
                    f"idea400/{name}")
    labels = root / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return root / "motion", root / "texts", labels


def test_import_writes_a_loadable_corpus(model_dir, tmp_path):
    from benchmark.corpus import load_corpus
    from benchmark.corpus.motionx import MotionXConfig, import_motionx

    clips = {f"{k:06d}": walking_clip(40 + 7 * k) for k in range(4)}
    motion_dir, texts_dir, labels = _write_inputs(tmp_path, clips)
    out = import_motionx(motion_dir, texts_dir, labels, tmp_path / "out", MotionXConfig(model_dir))
    corpus = load_corpus(out)
    assert corpus.ids == ["mx0", "mx1", "mx2", "mx3"]
    assert corpus.texts("mx2") == ["a person walks forward 2", "someone strolls 2"]
    assert corpus.row("mx1")["scenario"] == "Sports" and corpus.row("mx1")["emotion"] == "sad"
    n20 = int((40 + 7 * 3 - 1) * 20 / 30) + 1
    assert corpus.features("mx3").shape == (n20 - 1, 263)
    assert corpus.joints("mx3").shape == (n20, 22, 3)


def test_import_bad_clip_leaves_nothing(model_dir, tmp_path):
    from benchmark.corpus.motionx import MotionXConfig, import_motionx

    clips = {"000000": walking_clip(30), "000001": np.zeros((30, 172), np.float32)}
    motion_dir, texts_dir, labels = _write_inputs(tmp_path, clips)
    with pytest.raises(DataError, match=r"000001\.npy.*\(30, 172\)"):
        import_motionx(motion_dir, texts_dir, labels, tmp_path / "out", MotionXConfig(model_dir))
    assert not (tmp_path / "out").exists()
