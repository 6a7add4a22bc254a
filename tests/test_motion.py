"""HumanML3D motion representation: known answers on the real sample, round trips, failures."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.io import DataError
from benchmark.motion import (DEFAULT_OFFSETS, FEATURE_DIM, FEATURE_SLICES, KINEMATIC_CHAIN,
                              PARENTS, FeatureConfig, bone_lengths, canonicalize, denormalize,
                              features_to_joints, forward_kinematics, inverse_kinematics,
                              joints_to_features, normalize, offsets_from_joints, retarget)
from benchmark.motion import rotation as R

SMOOTH_RADIUS = 80  # frames the heading filter (sigma 20, truncate 4) reaches


@pytest.fixture(scope="module")
def sample(humanml3d_sample):
    vecs = np.load(humanml3d_sample / "new_joint_vecs" / "012314.npy")
    joints = np.load(humanml3d_sample / "new_joints" / "012314.npy")
    return vecs, joints


def random_quats(rng, shape):
    q = rng.normal(size=shape + (4,))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def plausible_motion(rng, n_frames=120, turns=1.0, scale=1.0):
    """A smooth walking-like motion posed by FK: the root yaws ``turns`` full circles, limbs
    swing by up to ~40 degrees, bones are the reference ones times ``scale``."""
    t = np.linspace(0, 1, n_frames)[:, None]
    n = len(PARENTS)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    phase, freq = rng.uniform(0, 2 * np.pi, n), rng.uniform(0.5, 3, n)
    angle = 0.35 * np.sin(2 * np.pi * freq * t + phase)                     # (T, 22)
    local = np.concatenate([np.cos(angle / 2)[..., None],
                            np.sin(angle / 2)[..., None] * axis], axis=-1)  # (T, 22, 4)
    yaw = 2 * np.pi * turns * t[:, 0] + rng.uniform(-np.pi, np.pi)
    local[:, 0] = np.stack([np.cos(yaw / 2), 0 * yaw, np.sin(yaw / 2), 0 * yaw], -1)
    root = np.stack([np.cumsum(0.02 * np.sin(yaw)), 0.9 + 0.02 * np.sin(9 * t[:, 0]),
                     np.cumsum(0.02 * np.cos(yaw))], -1) + rng.normal(size=3) * [3, 0, 3]
    return forward_kinematics(local, root, DEFAULT_OFFSETS * scale)


# ----------------------------------------------------------------------------- real data
def test_features_to_joints_reproduces_humanml3d(sample):
    vecs, joints = sample
    # HumanML3D writes new_joints = recover_from_ric(new_joint_vecs): same frame count, frame t
    # of the features is frame t of the joints (our sample: 170 and 170 frames).
    assert len(vecs) == len(joints)
    out = features_to_joints(vecs)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == joints.shape
    assert np.abs(out - joints).max() <= 1e-4
    out_t = features_to_joints(torch.from_numpy(vecs)[None].repeat(2, 1, 1))
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (2,) + joints.shape
    assert (out_t - torch.from_numpy(joints)).abs().max() <= 1e-4


def test_joints_to_features_reproduces_humanml3d(sample):
    vecs, joints = sample
    feats = joints_to_features(joints.astype(np.float64))
    assert feats.shape == (len(joints) - 1, FEATURE_DIM)
    # new_joints lacks the source's last frame, which the heading filter sees near the end.
    n = len(joints) - 1 - SMOOTH_RADIUS
    assert np.abs(feats[:n] - vecs[:n]).max() <= 1e-4
    assert np.array_equal(feats[:, FEATURE_SLICES["foot_contact"]], vecs[:-1, -4:])
    plain = joints_to_features(joints, FeatureConfig(legacy_arm_chains=False))
    assert np.abs(plain[:n, FEATURE_SLICES["rot6d"]] - vecs[:n, 67:193]).max() > 0.1


def test_round_trip_real_sample(sample):
    _, joints = sample
    rec = features_to_joints(joints_to_features(joints))
    assert np.abs(rec - canonicalize(joints)[:-1]).max() <= 1e-3


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("turns", [0.0, 1.3, -2.0])
def test_round_trip_random_motions(turns):
    rng = np.random.default_rng(7)
    batch = np.stack([plausible_motion(rng, turns=turns) for _ in range(3)])   # (3, 120, 22, 3)
    feats = joints_to_features(batch)
    assert feats.shape == (3, 119, FEATURE_DIM)
    rec = features_to_joints(feats)
    canon = canonicalize(batch)
    assert np.abs(rec - canon[:, :-1]).max() <= 1e-3
    # canonical: floor at 0, first root at the xz origin
    assert np.allclose(canon[..., 1].min(axis=(1, 2)), 0, atol=1e-9)
    assert np.allclose(canon[:, 0, 0, [0, 2]], 0, atol=1e-9)
    # torch float32 agrees with numpy float64
    rec_t = features_to_joints(joints_to_features(torch.from_numpy(batch).float()))
    assert (rec_t.double() - torch.from_numpy(canon[:, :-1])).abs().max() <= 1e-3


def test_retarget_option():
    rng = np.random.default_rng(3)
    small = plausible_motion(rng, scale=0.8)
    lengths = bone_lengths(retarget(small))
    assert np.allclose(lengths, np.linalg.norm(DEFAULT_OFFSETS, axis=-1), atol=1e-6)
    same = plausible_motion(rng)
    assert np.abs(retarget(same) - same).max() < 1e-6
    feats = joints_to_features(small, FeatureConfig(retarget=True))
    rec = features_to_joints(feats)
    assert np.abs(rec - canonicalize(retarget(small))[:-1]).max() <= 1e-3


def test_foot_contact_threshold():
    joints = np.zeros((5, 22, 3)) + DEFAULT_OFFSETS.cumsum(0)
    joints[:, 7, 2] += np.array([0, 0.01, 0.02, 0.2, 0.4])   # left ankle: slow, slow, fast, fast
    fc = joints_to_features(joints)[:, FEATURE_SLICES["foot_contact"]]
    assert fc[:, 0].tolist() == [1, 1, 0, 0] and fc[:, 1:].min() == 1


# ----------------------------------------------------------------------------- kinematics
def test_skeleton_tables():
    for chain in KINEMATIC_CHAIN:
        for parent, child in zip(chain[:-1], chain[1:]):
            assert PARENTS[child] == parent
    assert len(PARENTS) == 22 and PARENTS[0] == -1


@pytest.mark.parametrize("legacy", [True, False])
def test_fk_inverts_ik(legacy):
    rng = np.random.default_rng(1)
    joints = plausible_motion(rng, n_frames=30)
    quats = inverse_kinematics(joints, smooth_forward=False, legacy_arm_chains=legacy)
    rebuilt = forward_kinematics(quats, joints[:, 0], offsets_from_joints(joints[0]),
                                 legacy_arm_chains=legacy)
    assert np.abs(rebuilt - joints).max() < 1e-9
    mats = forward_kinematics(R.quat_to_matrix(quats), joints[:, 0],
                              offsets_from_joints(joints[0]), legacy_arm_chains=legacy)
    assert np.abs(mats - joints).max() < 1e-9


def test_fk_known_answer():
    rot = np.tile([1.0, 0, 0, 0], (22, 1))
    rot[0] = [np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0]      # root yaw +90 deg: +x -> -z
    pos = forward_kinematics(rot, np.zeros(3))
    assert np.allclose(pos[1], [0, 0, -DEFAULT_OFFSETS[1, 0]])  # left hip rest offset is +x


# ----------------------------------------------------------------------------- rotations
def test_rotation_helpers_agree():
    rng = np.random.default_rng(0)
    q, r = random_quats(rng, (50,)), random_quats(rng, (50,))
    v = rng.normal(size=(50, 3))
    m = R.quat_to_matrix(q)
    assert np.allclose(R.qrot(q, v), np.einsum("nij,nj->ni", m, v))
    assert np.allclose(R.quat_to_matrix(R.qmul(q, r)), m @ R.quat_to_matrix(r))
    assert np.allclose(R.qrot(R.qinv(q), R.qrot(q, v)), v)
    assert np.allclose(R.matrix_to_quat(m), R.qfix_sign(q))
    assert np.allclose(R.rot6d_to_matrix(R.quat_to_6d(q)), m)
    assert np.allclose(R.rot6d_to_quat(R.matrix_to_6d(m)), R.qfix_sign(q))
    b = R.qbetween(v, v[::-1])
    unit = v[::-1] / np.linalg.norm(v[::-1], axis=-1, keepdims=True)
    assert np.allclose(R.qrot(b, v) / np.linalg.norm(v, axis=-1, keepdims=True), unit)
    qt = R.qmul(torch.from_numpy(q), torch.from_numpy(r))
    assert isinstance(qt, torch.Tensor) and np.allclose(qt.numpy(), R.qmul(q, r))


# ----------------------------------------------------------------------------- errors, stats
@pytest.mark.parametrize("bad", [np.zeros((10, 262)), np.zeros((2, 3, 10, 263)), np.zeros((0, 263))])
def test_bad_feature_shapes(bad):
    with pytest.raises(DataError, match="features"):
        features_to_joints(bad)


def test_nan_and_bad_joints():
    feats = np.zeros((10, 263))
    feats[3, 5] = np.nan
    with pytest.raises(DataError, match="NaN"):
        features_to_joints(feats)
    with pytest.raises(DataError, match="joints"):
        joints_to_features(np.zeros((10, 21, 3)))
    with pytest.raises(DataError, match="at least 2"):
        joints_to_features(np.zeros((1, 22, 3)))


def test_normalize_round_trip(sample, humanml3d_sample):
    vecs, _ = sample
    mean = np.load(humanml3d_sample / "Mean.npy")
    std = np.load(humanml3d_sample / "Std.npy")
    std[5] = 0.0
    z = normalize(vecs, mean, std)
    assert np.isfinite(z).all() and np.allclose(z[:, 5], vecs[:, 5] - mean[5])
    assert np.allclose(denormalize(z, mean, std), vecs, atol=1e-5)
    zt = normalize(torch.from_numpy(vecs), mean, torch.from_numpy(std))
    assert isinstance(zt, torch.Tensor) and np.allclose(zt.numpy(), z, atol=1e-6)
    with pytest.raises(DataError):
        normalize(vecs, mean[:10], std[:10])


def test_features_to_joints_is_differentiable(sample):
    vecs, _ = sample
    f = torch.from_numpy(vecs).clone().requires_grad_(True)
    features_to_joints(f).square().sum().backward()
    assert f.grad is not None and torch.isfinite(f.grad).all() and f.grad[:, :4].abs().sum() > 0
