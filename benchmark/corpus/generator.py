"""Pose synthetic motions: action x emotion x per-sample variation -> joints -> HumanML3D features.

Per motion (all from its own seed): duration, tempo, amplitude, start phase, heading, body
proportions, smooth angle noise, mirroring.  Whole ``(T, 22, 3)`` angle tracks are built with
numpy, posed by :func:`benchmark.motion.forward_kinematics` for a batch of motions at once, the
root is moved by integrated velocities and lifted per frame so the lowest joint touches the
floor (plus any flight height), and features come from :func:`benchmark.motion.joints_to_features`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.corpus.actions import ACTIONS
from benchmark.corpus.emotion_style import (EMOTION_STYLES, apply_emotion, scenario_shift,
                                             warp_phase)
from benchmark.corpus.humanml3d import Motion
from benchmark.corpus.pose import MIRROR, Pose, body_offsets, euler_to_matrix, smooth_noise
from benchmark.corpus.texts import make_captions
from benchmark.motion import features_to_joints, forward_kinematics, joints_to_features


@dataclass
class Tracks:
    """One planned motion before kinematics: pose tracks (T frames), body and root settings."""

    plan: dict
    pose: Pose
    offsets: np.ndarray      # (22, 3) m
    heading0: float          # rad
    mirror: bool
    captions: list[str]
    style: object = None     # the EmotionStyle applied (shared by every scenario)
    shift: object = None     # the scenario's own ScenarioShift of it (identity unless scenario_style)


def make_tracks(plan: dict, cfg) -> Tracks:
    """Angle/root tracks of one motion from its plan (id, scenario, emotion, action, seed)."""
    rng = np.random.default_rng(plan["seed"])
    conflict = getattr(cfg, "stream", "paper") == "conflict"
    if conflict:
        from benchmark.corpus.conflict import CONFLICT_ACTIONS

        action = CONFLICT_ACTIONS[plan["action"]]
    else:
        action = ACTIONS[plan["action"]]
    style = EMOTION_STYLES[plan["emotion"]]
    # the scenario's own expression of the emotion (identity unless cfg.scenario_style > 0); it
    # draws nothing from ``rng``, so every other random choice of the motion stays the same
    shift = scenario_shift(plan["scenario"], plan["emotion"], cfg.scenario_style, cfg.seed)
    n = int(round(rng.uniform(*cfg.duration_s) * cfg.fps)) + 1
    t = np.arange(n) / cfg.fps
    freq = action.freq * style.tempo * shift.tempo * rng.uniform(0.85, 1.15)
    amp = style.amplitude * shift.amplitude * rng.uniform(0.8, 1.2)
    phase = warp_phase(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi), style.sharpness)
    pose = Pose(n)
    action.fn(pose, phase, amp, freq)
    pose.turn += rng.normal(0.0, 0.1)                       # gently curved paths
    apply_emotion(pose, style, t, phase, rng)
    shift.apply(pose)
    pose.ang[:, 1:] += smooth_noise(rng, t, (21, 3), cfg.noise)
    mirror = bool(rng.random() < cfg.mirror_prob)
    if conflict:
        from benchmark.corpus.conflict import make_conflict_captions

        captions = make_conflict_captions(rng, action.phrases, plan["scenario"], plan["emotion"],
                                          cfg.n_captions)
    else:
        captions = make_captions(rng, action.phrases, plan["emotion"],
                                 "left" if mirror else "right", cfg.n_captions)
    return Tracks(plan, pose, body_offsets(rng), float(rng.uniform(0, 2 * np.pi)), mirror, captions,
                  style, shift)


def _pad(x: np.ndarray, n: int) -> np.ndarray:
    """Repeat the last frame of ``x`` (T, ...) up to ``n`` frames."""
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)]) if n > len(x) else x


def pose_batch(tracks: list[Tracks], fps: int) -> list[np.ndarray]:
    """Joint positions ``(T_i, 22, 3)`` (float64, m) of a batch of motions.

    Root heading = heading0 + integral of turn rate; root xz = integral of the body-frame
    velocity; root height puts the lowest joint of each frame on the floor, plus ``hop``.
    """
    n_max = max(len(tr.pose.fwd) for tr in tracks)
    mats = euler_to_matrix(np.stack([_pad(tr.pose.ang, n_max) for tr in tracks]))  # (B, T, 22, 3, 3)
    turn = np.stack([_pad(tr.pose.turn, n_max) for tr in tracks])
    heading = np.array([tr.heading0 for tr in tracks])[:, None] + np.cumsum(turn, 1) / fps
    c, s = np.cos(heading), np.sin(heading)
    yaw = np.zeros(heading.shape + (3, 3))
    yaw[..., 0, 0], yaw[..., 0, 2], yaw[..., 1, 1], yaw[..., 2, 0], yaw[..., 2, 2] = c, s, 1, -s, c
    mats[:, :, 0] = torch.as_tensor(yaw) @ mats[:, :, 0]
    offsets = torch.as_tensor(np.stack([tr.offsets for tr in tracks]))[:, None]   # (B, 1, 22, 3)
    joints = forward_kinematics(mats, torch.zeros(mats.shape[:2] + (3,), dtype=mats.dtype),
                                offsets).numpy()
    fwd = np.stack([_pad(tr.pose.fwd, n_max) for tr in tracks])
    side = np.stack([_pad(tr.pose.side, n_max) for tr in tracks])
    hop = np.stack([_pad(tr.pose.hop, n_max) for tr in tracks])
    vel = np.stack([fwd * s + side * c, np.zeros_like(fwd), fwd * c - side * s], -1)  # (B, T, 3)
    root = np.cumsum(vel, 1) / fps
    root[..., 1] = -joints[..., 1].min(-1) + np.maximum(hop, 0.0)
    joints = joints + root[:, :, None, :]
    out = []
    for tr, j in zip(tracks, joints):
        j = j[: len(tr.pose.fwd)]
        if tr.mirror:
            j = j[:, MIRROR] * np.array([-1.0, 1.0, 1.0])
        out.append(j)
    return out


def generate_chunk(plans: list[dict], cfg, batch: int = 32) -> list[Motion]:
    """Motions of ``plans`` (same order); joints and features batched by similar length."""
    tracks = [make_tracks(p, cfg) for p in plans]
    order = sorted(range(len(tracks)), key=lambda i: len(tracks[i].pose.fwd))
    motions: dict[int, Motion] = {}
    for b in range(0, len(order), batch):
        idx = order[b:b + batch]
        joints = pose_batch([tracks[i] for i in idx], cfg.fps)
        n_max = max(len(j) for j in joints)
        # edge padding leaves the features of the real frames unchanged (see the motion module)
        feats = joints_to_features(np.stack([_pad(j, n_max) for j in joints]))
        for i, j, f in zip(idx, joints, feats):
            tr = tracks[i]
            feats_i = f[: len(j) - 1].astype(np.float32)
            # new_joints as HumanML3D stores them: recovered from the features (T frames, canonical)
            motions[i] = Motion(id=tr.plan["id"], features=feats_i,
                                texts=tr.captions, scenario=tr.plan["scenario"],
                                emotion=tr.plan["emotion"], source="synthetic",
                                part=tr.plan.get("part"),
                                joints=features_to_joints(feats_i).astype(np.float32),
                                extra={k: tr.plan[k] for k in ("action", "concept") if k in tr.plan})
    return [motions[i] for i in range(len(tracks))]
