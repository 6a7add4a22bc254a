"""HumanML3D's 263-dim rotation-invariant motion features <-> 22-joint positions.

Per frame (20 fps), in this order:
  root_rot_vel (1)  y angular velocity of the root, *half*-angle per frame (rad), like HumanML3D
  root_lin_vel (2)  root xz velocity (m/frame) in the body's heading frame
  root_y (1)        pelvis height above the floor (m)
  ric (63)          joints 1..21 relative to the root xz, in the heading frame (m)
  rot6d (126)       joints 1..21 local rotations, continuous 6D (first two matrix columns)
  local_vel (66)    all 22 joint velocities (m/frame) in the heading frame
  foot_contact (4)  l_ankle, l_foot, r_ankle, r_foot: 1 if squared displacement < threshold

``joints_to_features`` maps ``T`` joint frames to ``T - 1`` feature frames (velocities need the
next frame); ``features_to_joints`` maps ``T`` feature frames to ``T`` joint frames: feature
frame ``t`` gives joint frame ``t`` of the canonicalised input (the last input frame is dropped).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..io import DataError
from .rotation import as_tensor, like, qbetween, qfix_sign, qinv, qmul, qrot, quat_about_y, quat_to_6d
from .skeleton import FOOT_LEFT, FOOT_RIGHT, N_JOINTS, forward_direction, inverse_kinematics, retarget

FEATURE_DIM = 263
FPS = 20
FEATURE_SLICES: dict[str, slice] = {
    "root_rot_vel": slice(0, 1),
    "root_lin_vel": slice(1, 3),
    "root_y": slice(3, 4),
    "ric": slice(4, 4 + (N_JOINTS - 1) * 3),
    "rot6d": slice(67, 67 + (N_JOINTS - 1) * 6),
    "local_vel": slice(193, 193 + N_JOINTS * 3),
    "foot_contact": slice(259, 263),
}


@dataclass(frozen=True)
class FeatureConfig:
    """How ``joints_to_features`` processes joints (defaults reproduce HumanML3D's pipeline on
    joints that already have the reference bone lengths)."""

    feet_threshold: float = 0.002      # squared per-frame foot displacement (m^2) under = contact
    retarget: bool = False             # HumanML3D's uniform_skeleton onto DEFAULT_OFFSETS first
    smooth_forward: bool = True        # Gaussian-smooth the heading (sigma 20 frames) as HumanML3D
    legacy_arm_chains: bool = True     # HumanML3D's arm-chain IK convention (affects rot6d only)
    hml3d_ik_quirk: bool = True        # HumanML3D's reversed hip term in the IK heading


def _check(x, last: tuple[int, ...], name: str, min_frames: int) -> tuple[torch.Tensor, object]:
    t, tok = as_tensor(x)
    k = len(last)
    if t.ndim not in (k + 1, k + 2) or tuple(t.shape[-k:]) != last:
        raise DataError(None, f"{name} must have shape (T, {', '.join(map(str, last))}) or "
                        f"(B, T, {', '.join(map(str, last))}), got {tuple(t.shape)}",
                        f"pass {name} in the HumanML3D layout")
    if t.shape[-k - 1] < min_frames:
        raise DataError(None, f"{name} has {t.shape[-k - 1]} frames, needs at least {min_frames}",
                        "pass a longer motion")
    if not bool(torch.isfinite(t).all()):
        raise DataError(None, f"{name} contains NaN or inf values", "clean or drop the motion")
    return t, tok


def canonicalize(joints):
    """Put the floor at y=0, the first root at the xz origin and the first frame facing +z
    (heading from hips and shoulders).  ``(..., T, 22, 3)`` -> same shape and type."""
    t, tok = as_tensor(joints)
    return like(_canonicalize(t), tok)


def _canonicalize(pos: torch.Tensor) -> torch.Tensor:
    floor = pos[..., 1].amin(dim=(-2, -1))                          # (...,)
    root0 = pos[..., 0, 0, :]                                       # (..., 3)
    shift = torch.stack((root0[..., 0], floor, root0[..., 2]), dim=-1)
    pos = pos - shift[..., None, None, :]
    fwd = forward_direction(pos[..., 0, :, :])                     # (..., 3)
    target = torch.zeros_like(fwd)
    target[..., 2] = 1.0
    q = qbetween(fwd, target)
    return qrot(q[..., None, None, :], pos)


def joints_to_features(joints, config: FeatureConfig = FeatureConfig()):
    """``(T, 22, 3)`` or ``(B, T, 22, 3)`` positions (m, y up) -> ``(..., T-1, 263)`` features.

    numpy in -> numpy out (computed in float64, returned in the input float dtype); torch in ->
    torch out (its dtype and device).  Raises :class:`DataError` on bad shapes or NaN/inf.
    """
    pos, tok = _check(joints, (N_JOINTS, 3), "joints", 2)
    if config.retarget:
        pos = retarget(pos)
    pos = _canonicalize(pos)

    disp2 = (pos[..., 1:, :, :] - pos[..., :-1, :, :]).square().sum(-1)   # (..., T-1, 22)
    feet = list(FOOT_LEFT) + list(FOOT_RIGHT)
    contact = (disp2[..., feet] < config.feet_threshold).to(pos.dtype)

    quats = inverse_kinematics(pos, smooth_forward=config.smooth_forward,
                               legacy_arm_chains=config.legacy_arm_chains,
                               hml3d_ik_quirk=config.hml3d_ik_quirk)
    rot6d = quat_to_6d(quats[..., :-1, 1:, :]).flatten(-2)                  # (..., T-1, 126)
    r_rot = quats[..., 0, :]                                               # (..., T, 4)

    root_vel = qrot(r_rot[..., 1:, :], pos[..., 1:, 0, :] - pos[..., :-1, 0, :])
    # Relative heading change; sign-fixed so turns through facing -z keep their sign.
    r_vel = qfix_sign(qmul(r_rot[..., 1:, :], qinv(r_rot[..., :-1, :])))
    rot_vel = torch.asin(r_vel[..., 2].clamp(-1.0, 1.0))

    local = pos.clone()
    local[..., 0] = local[..., 0] - pos[..., 0:1, 0]
    local[..., 2] = local[..., 2] - pos[..., 0:1, 2]
    ric = qrot(r_rot[..., None, :], local)                                 # (..., T, 22, 3)
    vel = qrot(r_rot[..., :-1, None, :], pos[..., 1:, :, :] - pos[..., :-1, :, :])

    feats = torch.cat((rot_vel[..., None], root_vel[..., [0, 2]], ric[..., :-1, 0, 1:2],
                       ric[..., :-1, 1:, :].flatten(-2), rot6d, vel.flatten(-2), contact), dim=-1)
    return like(feats, tok)


def recover_root(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(..., T, 263)`` tensor -> root heading quaternions ``(..., T, 4)`` (world -> heading
    frame, identity on frame 0) and root positions ``(..., T, 3)`` (m)."""
    half = torch.zeros_like(feats[..., 0])
    half[..., 1:] = feats[..., :-1, 0]
    r_rot = quat_about_y(torch.cumsum(half, dim=-1))
    step = torch.zeros(feats.shape[:-1] + (3,), dtype=feats.dtype, device=feats.device)
    step[..., 1:, 0] = feats[..., :-1, 1]
    step[..., 1:, 2] = feats[..., :-1, 2]
    r_pos = torch.cumsum(qrot(qinv(r_rot), step), dim=-2)
    r_pos[..., 1] = feats[..., 3]
    return r_rot, r_pos


def features_to_joints(feats):
    """``(T, 263)`` or ``(B, T, 263)`` features -> ``(..., T, 22, 3)`` joint positions (m).

    Integrates the root heading and xz velocity from frame 0 (at the origin facing +z), takes
    the height from ``root_y`` and rotates the ``ric`` positions back to the world frame
    (HumanML3D's ``recover_from_ric``).  Same array type as the input.
    """
    f, tok = _check(feats, (FEATURE_DIM,), "features", 1)
    r_rot, r_pos = recover_root(f)
    ric = f[..., FEATURE_SLICES["ric"]].unflatten(-1, (N_JOINTS - 1, 3))
    world = qrot(qinv(r_rot)[..., None, :], ric)
    world = world + torch.stack((r_pos[..., 0], torch.zeros_like(r_pos[..., 0]), r_pos[..., 2]),
                                dim=-1)[..., None, :]
    return like(torch.cat((r_pos[..., None, :], world), dim=-2), tok)
