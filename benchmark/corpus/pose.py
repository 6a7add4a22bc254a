"""Joint-angle tracks for the synthetic corpus: named anatomical degrees of freedom -> local
Euler angles of the 22-joint skeleton, and the per-sample rest skeleton.

Convention (that of :func:`benchmark.motion.forward_kinematics`): the local rotation ``q[j]``
orients the bone ``parent(j) -> j``.  Angles are radians about the parent frame's axes
(x left, y up, z forward; the body faces +z).  Every track is a ``(T,)`` array.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from benchmark.motion.skeleton import DEFAULT_BONE_LENGTHS, N_JOINTS

# dof -> [(joint whose bone it turns, axis 0/1/2 = x/y/z, weight)]
DOFS: dict[str, list[tuple[int, int, float]]] = {
    "root_pitch": [(0, 0, 1.0)], "root_yaw": [(0, 1, 1.0)], "root_roll": [(0, 2, 1.0)],
    "spine_pitch": [(3, 0, 0.3), (6, 0, 0.35), (9, 0, 0.35)],   # + bends forward
    "spine_yaw": [(3, 1, 0.3), (6, 1, 0.35), (9, 1, 0.35)],     # + turns to the left
    "spine_roll": [(3, 2, 0.3), (6, 2, 0.35), (9, 2, 0.35)],    # + leans to the right
    "neck_pitch": [(12, 0, 0.4), (15, 0, 0.6)],                  # + head down
    "head_yaw": [(15, 1, 1.0)],
    "l_collar_raise": [(16, 2, 1.0)], "r_collar_raise": [(17, 2, -1.0)],
    "l_collar_fwd": [(16, 1, -1.0)], "r_collar_fwd": [(17, 1, 1.0)],
    "l_arm_raise": [(18, 0, -1.0)], "r_arm_raise": [(19, 0, -1.0)],      # + forward / up
    "l_arm_abduct": [(18, 2, 1.0)], "r_arm_abduct": [(19, 2, -1.0)],     # + out to the side
    "l_arm_twist": [(18, 1, 1.0)], "r_arm_twist": [(19, 1, -1.0)],
    "l_elbow": [(20, 0, -1.0)], "r_elbow": [(21, 0, -1.0)],              # + bends
    "l_hip_flex": [(4, 0, -1.0)], "r_hip_flex": [(5, 0, -1.0)],          # + thigh forward
    "l_hip_abduct": [(4, 2, 1.0)], "r_hip_abduct": [(5, 2, -1.0)],
    "l_knee": [(7, 0, 1.0)], "r_knee": [(8, 0, 1.0)],                    # + bends
    "l_ankle": [(10, 0, 1.0)], "r_ankle": [(11, 0, 1.0)],
}
# symmetric shorthands: "arm_raise" -> both sides
for _name in ("collar_raise", "collar_fwd", "arm_raise", "arm_abduct", "arm_twist", "elbow",
              "hip_flex", "hip_abduct", "knee", "ankle"):
    DOFS[_name] = DOFS[f"l_{_name}"] + DOFS[f"r_{_name}"]

# unit rest directions of each bone parent -> j (a standing body, arms hanging)
_REST_DIRS = np.array([
    [0, 0, 0], [0.8, -0.6, 0], [-0.8, -0.6, 0], [0, 1, -0.15], [0, -1, 0.02], [0, -1, 0.02],
    [0, 1, 0.05], [0, -1, -0.05], [0, -1, -0.05], [0, 1, 0.1], [0, -0.35, 1], [0, -0.35, 1],
    [0, 1, 0.15], [0.3, 0.95, 0.05], [-0.3, 0.95, 0.05], [0, 0.85, 0.5], [1, 0, 0.1],
    [-1, 0, 0.1], [0.1, -1, 0], [-0.1, -1, 0], [0, -1, 0.1], [0, -1, 0.1]], dtype=np.float64)
REST_DIRS = _REST_DIRS / np.maximum(np.linalg.norm(_REST_DIRS, axis=1, keepdims=True), 1e-12)

LEFT = (1, 4, 7, 10, 13, 16, 18, 20)
RIGHT = (2, 5, 8, 11, 14, 17, 19, 21)
MIRROR = np.arange(N_JOINTS)
MIRROR[list(LEFT)], MIRROR[list(RIGHT)] = RIGHT, LEFT
_LENGTHS = DEFAULT_BONE_LENGTHS.copy()
_LENGTHS[list(LEFT)] = _LENGTHS[list(RIGHT)] = (_LENGTHS[list(LEFT)] + _LENGTHS[list(RIGHT)]) / 2
_GROUPS = {"legs": (4, 5, 7, 8, 10, 11), "torso": (3, 6, 9, 12, 15, 1, 2),
           "arms": (13, 14, 16, 17, 18, 19, 20, 21)}


class Pose:
    """Tracks of one motion of ``T`` frames: local angles ``ang`` (T, 22, 3) rad, root
    ``fwd``/``side`` speed (m/s, body frame), ``turn`` rate (rad/s) and ``hop`` height (m, >= 0)."""

    def __init__(self, n_frames: int):
        self.ang = np.zeros((n_frames, N_JOINTS, 3))
        self.fwd = np.zeros(n_frames)
        self.side = np.zeros(n_frames)
        self.turn = np.zeros(n_frames)
        self.hop = np.zeros(n_frames)

    def add(self, dof: str, value) -> "Pose":
        """Add ``value`` (scalar or (T,)) rad to a named degree of freedom."""
        for joint, axis, w in DOFS[dof]:
            self.ang[:, joint, axis] += w * np.asarray(value, dtype=np.float64)
        return self


def body_offsets(rng: np.random.Generator) -> np.ndarray:
    """Per-sample rest bone vectors ``(22, 3)`` (m): overall size and limb ratios vary, symmetric."""
    lengths = _LENGTHS * rng.normal(1.0, 0.06)
    for joints in _GROUPS.values():
        lengths[list(joints)] *= rng.normal(1.0, 0.04)
    return REST_DIRS * lengths[:, None]


def euler_to_matrix(ang: np.ndarray) -> torch.Tensor:
    """``(..., 3)`` angles (rad; applied x, then y, then z about fixed axes) -> ``(..., 3, 3)``
    float64 tensor ``Rz @ Ry @ Rx`` (closed form)."""
    cx, cy, cz = np.moveaxis(np.cos(ang), -1, 0)
    sx, sy, sz = np.moveaxis(np.sin(ang), -1, 0)
    m = np.stack([cy * cz, sx * sy * cz - cx * sz, cx * sy * cz + sx * sz,
                  cy * sz, sx * sy * sz + cx * cz, cx * sy * sz - sx * cz,
                  -sy, sx * cy, cx * cy], axis=-1)
    return torch.from_numpy(m.reshape(ang.shape[:-1] + (3, 3)))


def exp(x) -> np.ndarray:
    """``e**x`` elementwise (float64) from Python's ``math.exp``: numpy's float64 ``exp`` runs
    SIMD kernels whose last bits differ between CPUs with and without AVX-512, which made the
    corpus's bytes depend on the machine.  (``np.sin``/``np.cos`` call the C library on every
    CPU, so they stay.)  Only used on small arrays."""
    a = np.asarray(x, dtype=np.float64)
    return np.array([math.exp(v) if v < 709.78 else math.inf for v in a.ravel().tolist()],
                    dtype=np.float64).reshape(a.shape)


def smooth_noise(rng: np.random.Generator, t: np.ndarray, shape: tuple[int, ...], std: float,
                 f_lo: float = 0.2, f_hi: float = 1.5, n: int = 3) -> np.ndarray:
    """Smooth random tracks ``(T, *shape)``: a sum of ``n`` random sinusoids per track."""
    f = rng.uniform(f_lo, f_hi, size=(n,) + shape)
    p = rng.uniform(0, 2 * np.pi, size=(n,) + shape)
    a = rng.normal(0, std * np.sqrt(2.0 / n), size=(n,) + shape)
    arg = 2 * np.pi * f[None] * t.reshape((-1,) + (1,) * (len(shape) + 1)) + p[None]
    return (a[None] * np.sin(arg)).sum(1)
