"""The 22-joint SMPL skeleton of HumanML3D (the "t2m" skeleton): topology, rest offsets,
bone lengths, forward and inverse kinematics (numpy or torch, any batch shape).

Joint order (SMPL): 0 pelvis, 1 l_hip, 2 r_hip, 3 spine1, 4 l_knee, 5 r_knee, 6 spine2,
7 l_ankle, 8 r_ankle, 9 spine3, 10 l_foot, 11 r_foot, 12 neck, 13 l_collar, 14 r_collar,
15 head, 16 l_shoulder, 17 r_shoulder, 18 l_elbow, 19 r_elbow, 20 l_wrist, 21 r_wrist.
Coordinates are metres, y up; a body faces +z in the canonical frame.

Rotation convention (HumanML3D's): the local rotation ``q[j]`` of joint ``j`` orients the bone
``parent(j) -> j``; its global rotation is ``G[j] = G[parent(j)] * q[j]`` and
``p[j] = p[parent(j)] + G[j] · offset[j]`` where ``offset[j]`` is the rest bone vector.
"""
from __future__ import annotations

import numpy as np
import torch

from .rotation import as_tensor, like, qbetween, qinv, qmul, qnormalize, quat_to_matrix

N_JOINTS = 22
KINEMATIC_CHAIN: list[list[int]] = [[0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15],
                                    [9, 14, 17, 19, 21], [9, 13, 16, 18, 20]]
PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "l_hip", "r_hip", "spine1", "l_knee", "r_knee", "spine2", "l_ankle", "r_ankle",
    "spine3", "l_foot", "r_foot", "neck", "l_collar", "r_collar", "head", "l_shoulder",
    "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist")
#: Face direction joints as HumanML3D lists them: r_hip, l_hip, r_shoulder, l_shoulder.
FACE_JOINTS: tuple[int, int, int, int] = (2, 1, 17, 16)
FOOT_LEFT: tuple[int, int] = (7, 10)
FOOT_RIGHT: tuple[int, int] = (8, 11)
#: Lower-leg joints whose bone lengths set the retargeting scale (r_knee, r_ankle).
LEG_JOINTS: tuple[int, int] = (5, 8)

#: Unit rest directions of each bone ``parent -> j`` (HumanML3D ``t2m_raw_offsets``).
RAW_OFFSETS = np.array([
    [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
    [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
    [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0]], dtype=np.float64)

#: Bone lengths (m) of HumanML3D's reference skeleton (motion 000021, the target of its
#: ``uniform_skeleton`` retargeting), measured on the real sample's joints (std < 3e-7 m).
DEFAULT_BONE_LENGTHS = np.array([
    0.0, 0.103074, 0.1098834, 0.1315682, 0.3936232, 0.3901882, 0.1431902, 0.432433, 0.4256434,
    0.0573647, 0.1433818, 0.1494191, 0.21936, 0.1374868, 0.1433828, 0.1030392, 0.131614,
    0.1229844, 0.2568399, 0.2630919, 0.2660118, 0.2698763], dtype=np.float64)
#: Rest bone vectors ``(22, 3)`` of the reference skeleton: ``RAW_OFFSETS * DEFAULT_BONE_LENGTHS``.
DEFAULT_OFFSETS = RAW_OFFSETS * DEFAULT_BONE_LENGTHS[:, None]

_PARENT_IDX = torch.tensor([0] + list(PARENTS[1:]))
# HumanML3D starts both arm chains (at joints 13, 14) from the *root* rotation instead of the
# spine3 rotation (EricGuo5513/HumanML3D issue 119); its released features use that convention.
_LEGACY_PARENT_IDX = _PARENT_IDX.clone()
_LEGACY_PARENT_IDX[[13, 14]] = 0


def bone_lengths(joints):
    """``(..., 22, 3)`` positions -> ``(..., 22)`` bone lengths ``|p[j] - p[parent(j)]|`` (root 0)."""
    t, tok = as_tensor(joints)
    diff = t - t[..., _PARENT_IDX.to(t.device), :]
    return like(diff.norm(dim=-1), tok)


def offsets_from_joints(joints):
    """Rest offsets ``(..., 22, 3)`` with the bone lengths of ``joints`` (``(..., 22, 3)``)."""
    t, tok = as_tensor(joints)
    lengths = bone_lengths(t)
    return like(lengths[..., None] * torch.as_tensor(RAW_OFFSETS).to(t), tok)


def forward_kinematics(rotations, root_pos, offsets=None, legacy_arm_chains: bool = False):
    """Pose a skeleton.

    rotations: ``(..., 22, 4)`` unit quaternions (w, x, y, z) or ``(..., 22, 3, 3)`` matrices,
        local rotations in the convention of the module docstring (joint 0 = global root).
    root_pos: ``(..., 3)`` root (pelvis) positions in metres.
    offsets: ``(22, 3)`` or ``(..., 22, 3)`` rest bone vectors; default :data:`DEFAULT_OFFSETS`.
    legacy_arm_chains: start the arm chains from the root rotation like HumanML3D's own code.
    Returns ``(..., 22, 3)`` joint positions, same array type as ``rotations``.
    Vectorised over all leading dims; the only Python loop is over the 21 joints.
    """
    rot, tok = as_tensor(rotations)
    root, _ = as_tensor(root_pos)
    root = root.to(rot)
    off = torch.as_tensor(DEFAULT_OFFSETS if offsets is None else as_tensor(offsets)[0]).to(rot)
    mats = rot if rot.shape[-2:] == (3, 3) else quat_to_matrix(qnormalize(rot))
    parents = (_LEGACY_PARENT_IDX if legacy_arm_chains else _PARENT_IDX).tolist()
    glob = [mats[..., 0, :, :]]
    pos = [root]
    for j in range(1, N_JOINTS):
        g = glob[parents[j]] @ mats[..., j, :, :]
        glob.append(g)
        bone = (g @ off[..., j, :, None])[..., 0]
        pos.append(pos[PARENTS[j]] + bone)
    return like(torch.stack(pos, dim=-2), tok)


def _gaussian_smooth_time(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian filter along dim -2 of ``(..., T, C)`` with edge replication, like
    ``scipy.ndimage.gaussian_filter1d(x, sigma, axis=-2, mode='nearest')`` (truncate 4).

    Bit-reproducible on every CPU and thread count: the weights come from Python's ``math``
    (an exactly rounded sum) and the taps are added one at a time in a fixed order (a float64
    ``conv1d`` goes through the BLAS, whose last bits depend on the CPU's instruction set)."""
    import math

    radius = int(4.0 * sigma + 0.5)
    weights = [math.exp(-0.5 * (k / sigma) ** 2) for k in range(-radius, radius + 1)]
    total = math.fsum(weights)
    n_t = x.shape[-2]
    idx = torch.arange(-radius, n_t + radius, device=x.device).clamp(0, n_t - 1)
    padded = x[..., idx, :]                                    # (..., T + 2r, C)
    out = torch.zeros_like(x)
    for k, w in enumerate(weights):
        out = out + (w / total) * padded[..., k:k + n_t, :]
    return out


def forward_direction(joints: torch.Tensor, hml3d_ik_quirk: bool = False,
                      normalize: bool = True) -> torch.Tensor:
    """``(..., 22, 3)`` -> ``(..., 3)`` horizontal facing direction ``cross(up, across/|across|)``
    (unit length if ``normalize``, else the horizontal share of ``across``, as HumanML3D smooths).

    ``across = (r_hip - l_hip) + (r_shoulder - l_shoulder)``.  With ``hml3d_ik_quirk`` the hip
    term is reversed, as in HumanML3D's ``inverse_kinematics_np`` (it unpacks the face joints as
    ``l_hip, r_hip, ...``), so the direction comes mostly from the shoulders.
    """
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    hips = joints[..., r_hip, :] - joints[..., l_hip, :]
    across = (-hips if hml3d_ik_quirk else hips) + joints[..., r_sdr, :] - joints[..., l_sdr, :]
    across = across / across.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    up = torch.zeros_like(across)
    up[..., 1] = 1.0
    fwd = torch.linalg.cross(up, across, dim=-1)
    return fwd / fwd.norm(dim=-1, keepdim=True).clamp_min(1e-12) if normalize else fwd


def inverse_kinematics(joints, smooth_forward: bool = True, legacy_arm_chains: bool = True,
                       hml3d_ik_quirk: bool = True, sigma: float = 20.0):
    """HumanML3D's inverse kinematics: ``(..., T, 22, 3)`` -> local quaternions ``(..., T, 22, 4)``.

    Root rotation: the y rotation taking the (optionally Gaussian-smoothed over time, sigma in
    frames) facing direction to +z, set to identity on the first frame.  Every other joint: the
    shortest-arc rotation taking its rest direction onto the observed bone, expressed relative
    to its parent's global rotation.  Fully vectorised (no loop over frames or joints).
    """
    t, tok = as_tensor(joints)
    fwd = forward_direction(t, hml3d_ik_quirk, normalize=False)   # (..., T, 3)
    if smooth_forward:
        fwd = _gaussian_smooth_time(fwd, sigma)
    fwd = fwd / fwd.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    target = torch.zeros_like(fwd)
    target[..., 2] = 1.0
    root_q = qbetween(fwd, target)
    root_q[..., 0, :] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=t.dtype, device=t.device)
    parent_idx = _PARENT_IDX.to(t.device)
    bones = t[..., 1:, :] - t[..., parent_idx[1:], :]             # (..., T, 21, 3)
    rest = torch.as_tensor(RAW_OFFSETS[1:]).to(t)
    glob = torch.cat((root_q[..., None, :], qbetween(rest.expand_as(bones), bones)), dim=-2)
    pidx = (_LEGACY_PARENT_IDX if legacy_arm_chains else _PARENT_IDX).to(t.device)
    local = qmul(qinv(glob[..., pidx[1:], :]), glob[..., 1:, :])
    return like(torch.cat((root_q[..., None, :], local), dim=-2), tok)


def retarget(joints, target_offsets=None):
    """HumanML3D's ``uniform_skeleton``: re-pose ``(..., T, 22, 3)`` joints on the target bone
    vectors (default :data:`DEFAULT_OFFSETS`) keeping every bone direction; the root
    trajectory is scaled by the ratio of lower-leg lengths (target / source, first frame)."""
    t, tok = as_tensor(joints)
    tgt = torch.as_tensor(DEFAULT_OFFSETS if target_offsets is None else as_tensor(target_offsets)[0]).to(t)
    src_len = bone_lengths(t[..., 0, :, :])                       # (..., 22)
    tgt_len = tgt.norm(dim=-1)
    leg = list(LEG_JOINTS)
    scale = tgt_len[..., leg].sum(-1) / src_len[..., leg].sum(-1).clamp_min(1e-12)
    quats = inverse_kinematics(t, smooth_forward=False, legacy_arm_chains=True)
    root = t[..., 0, :] * scale[..., None, None]
    return like(forward_kinematics(quats, root, tgt, legacy_arm_chains=True), tok)


def rest_pose(offsets=None) -> np.ndarray:
    """``(22, 3)`` rest-pose positions (identity rotations: limbs hanging down, feet +z) of a
    skeleton with its root at the origin, for plots and tests."""
    rot = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (N_JOINTS, 1))
    return forward_kinematics(rot, np.zeros(3), offsets)

