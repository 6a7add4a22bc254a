"""Retarget a BVH skeleton onto HumanML3D's 22 SMPL joints: joint-name maps, units, up axis.

A *map* names, for each of the 22 SMPL joints (``benchmark.motion.skeleton.JOINT_NAMES``), the
source joint it sits on, or a point on the segment between two source joints
(``["Chest", "Neck", 0.33]`` = one third of the way from Chest to Neck) for joints the source
skeleton lacks (extra spine joints, collars).  Built-in maps: ``bandai`` (Bandai-Namco
Research Motiondataset), ``cmu`` (the CMU mocap BVH conversions' naming), ``mixamo``
(``mixamorig:`` names; any ``namespace:`` prefix is ignored) and ``smpl`` (the files
``l2emg export`` writes).  ``auto`` picks the first built-in map whose joints all exist; any
other skeleton takes a JSON file with the same 22 keys.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Union

import numpy as np

from benchmark.io import DataError
from benchmark.motion.skeleton import JOINT_NAMES

Spec = Union[str, tuple]

SMPL_MAP: dict[str, Spec] = {n: n for n in JOINT_NAMES}

BANDAI_MAP: dict[str, Spec] = {
    "pelvis": "Hips", "l_hip": "UpperLeg_L", "r_hip": "UpperLeg_R", "spine1": "Spine",
    "l_knee": "LowerLeg_L", "r_knee": "LowerLeg_R", "spine2": "Chest",
    "l_ankle": "Foot_L", "r_ankle": "Foot_R", "spine3": ("Chest", "Neck", 0.33),
    "l_foot": "Toes_L", "r_foot": "Toes_R", "neck": "Neck", "l_collar": "Shoulder_L",
    "r_collar": "Shoulder_R", "head": "Head", "l_shoulder": "UpperArm_L",
    "r_shoulder": "UpperArm_R", "l_elbow": "LowerArm_L", "r_elbow": "LowerArm_R",
    "l_wrist": "Hand_L", "r_wrist": "Hand_R",
}

MIXAMO_MAP: dict[str, Spec] = {
    "pelvis": "Hips", "l_hip": "LeftUpLeg", "r_hip": "RightUpLeg", "spine1": "Spine",
    "l_knee": "LeftLeg", "r_knee": "RightLeg", "spine2": "Spine1", "l_ankle": "LeftFoot",
    "r_ankle": "RightFoot", "spine3": "Spine2", "l_foot": "LeftToeBase",
    "r_foot": "RightToeBase", "neck": "Neck", "l_collar": "LeftShoulder",
    "r_collar": "RightShoulder", "head": "Head", "l_shoulder": "LeftArm",
    "r_shoulder": "RightArm", "l_elbow": "LeftForeArm", "r_elbow": "RightForeArm",
    "l_wrist": "LeftHand", "r_wrist": "RightHand",
}

# CMU conversions: Hips > LowerBack > Spine > Spine1 > Neck > Neck1 > Head; the collar joints
# (LeftShoulder) start at Spine1, so SMPL's collar is placed 40 % of the way to the arm.
CMU_MAP: dict[str, Spec] = {
    **MIXAMO_MAP, "spine1": "Spine", "spine2": "Spine1", "spine3": ("Spine1", "Neck1", 0.33),
    "neck": "Neck1", "l_collar": ("LeftShoulder", "LeftArm", 0.4),
    "r_collar": ("RightShoulder", "RightArm", 0.4),
}

# name -> (map, names that must exist besides the mapped ones to claim a skeleton)
BUILTIN_MAPS: dict[str, tuple[dict[str, Spec], tuple[str, ...]]] = {
    "smpl": (SMPL_MAP, ()),
    "bandai": (BANDAI_MAP, ()),
    "mixamo": (MIXAMO_MAP, ()),
    "cmu": (CMU_MAP, ("LowerBack",)),
}
# candidate units (metres per file unit); CMU's ASF unit is 1/0.45 inch
UNITS: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254,
                           "cmu": 0.0254 / 0.45}
# bone chain ankle > knee > hip > pelvis > spine1..3 > neck > head of HumanML3D's reference
# skeleton, in metres (1.58 m); a plausible body has 0.9-2.4 m
REFERENCE_CHAIN_M = 1.584
CHAIN_RANGE_M = (0.9, 2.4)
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _short(name: str) -> str:
    """``'mixamorig:LeftArm'`` -> ``'leftarm'`` (namespace dropped, case folded)."""
    return name.rsplit(":", 1)[-1].strip().lower()


def _spec_names(spec: Spec) -> list[str]:
    return [spec] if isinstance(spec, str) else [spec[0], spec[1]]


def load_map(path: str | os.PathLike) -> dict[str, Spec]:
    """A JSON joint map ``{"pelvis": "Hips", ..., "spine3": ["Chest", "Neck", 0.33]}``."""
    path = Path(path)
    fix = ("write a JSON object with the 22 keys " + ", ".join(JOINT_NAMES) +
           ', each a source joint name or ["A", "B", t] (a point between A and B)')
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DataError(path, f"cannot read the joint map ({err.strerror or err})", fix) from err
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}", f"is not valid JSON ({err.msg})", fix) from err
    if not isinstance(raw, dict):
        raise DataError(path, "the joint map must be a JSON object", fix)
    unknown = sorted(set(raw) - set(JOINT_NAMES))
    missing = [n for n in JOINT_NAMES if n not in raw]
    if unknown or missing:
        raise DataError(path, f"unknown key(s) {unknown}, missing key(s) {missing}", fix)
    out: dict[str, Spec] = {}
    for k, v in raw.items():
        if isinstance(v, str) and v.strip():
            out[k] = v.strip()
        elif (isinstance(v, list) and len(v) == 3 and all(isinstance(x, str) for x in v[:2])
              and isinstance(v[2], (int, float)) and 0.0 <= v[2] <= 1.0):
            out[k] = (v[0], v[1], float(v[2]))
        else:
            raise DataError(path, f"bad entry for {k!r}: {v!r}", fix)
    return out


def resolve_map(names: list[str], skeleton: str, path: str) -> tuple[str, dict[str, Spec]]:
    """``(map name, map)`` for a skeleton with joint ``names``; ``skeleton`` is ``auto``, a
    built-in name or a JSON file.  DataError if the map needs a joint the file lacks."""
    have = {_short(n) for n in names}
    if skeleton == "auto":
        for name, (m, extra) in BUILTIN_MAPS.items():
            need = {_short(x) for s in m.values() for x in _spec_names(s)} | {_short(e) for e in extra}
            if need <= have:
                return name, m
        real = [n for n in names if not n.endswith("/End")]
        raise DataError(path, f"unknown skeleton: its joint names ({', '.join(real[:12])}"
                        f"{', ...' if len(real) > 12 else ''}) match none of the built-in maps "
                        f"({', '.join(BUILTIN_MAPS)})", "pass --skeleton MAP.json mapping the 22 "
                        "SMPL joints to these names (see docs/data.md, 'BVH import')")
    if skeleton in BUILTIN_MAPS:
        name, m = skeleton, BUILTIN_MAPS[skeleton][0]
    else:
        name, m = str(skeleton), load_map(skeleton)
    for target, spec in m.items():
        for src in _spec_names(spec):
            if _short(src) not in have:
                raise DataError(path, f"the skeleton has no joint {src!r}, which map {name!r} "
                                f"needs for SMPL joint {target!r}",
                                "use --skeleton auto or a map written for this skeleton")
    return name, m


def map_joints(positions: np.ndarray, names: list[str], joint_map: dict[str, Spec]) -> np.ndarray:
    """``(F, J, 3)`` source positions -> ``(F, 22, 3)`` SMPL joints through ``joint_map``."""
    index = {_short(n): i for i, n in enumerate(names)}
    out = np.empty(positions.shape[:1] + (len(JOINT_NAMES), 3))
    for k, target in enumerate(JOINT_NAMES):
        spec = joint_map[target]
        if isinstance(spec, str):
            out[:, k] = positions[:, index[_short(spec)]]
        else:
            a, b = positions[:, index[_short(spec[0])]], positions[:, index[_short(spec[1])]]
            out[:, k] = a + float(spec[2]) * (b - a)
    return out


def chain_length(joints: np.ndarray) -> float:
    """Length of the bone chain ankle > knee > hip > pelvis > spine > neck > head (first frame,
    mean of both legs), in the joints' units: pose-independent body size."""
    from benchmark.motion.skeleton import bone_lengths

    bl = bone_lengths(joints[0])
    legs = [(7, 4, 1), (8, 5, 2)]
    leg = np.mean([bl[list(c)].sum() for c in legs])
    return float(leg + bl[[3, 6, 9, 12, 15]].sum())


def detect_unit(joints: np.ndarray, path: str) -> tuple[str, float]:
    """The unit (name, metres per unit) that gives the most human-sized body."""
    size = chain_length(joints)
    best = min(UNITS.items(), key=lambda kv: abs(np.log(max(size * kv[1], 1e-12) /
                                                        REFERENCE_CHAIN_M)))
    metres = size * best[1]
    if not CHAIN_RANGE_M[0] <= metres <= CHAIN_RANGE_M[1]:
        raise DataError(path, f"cannot infer the length unit: the ankle-to-head bone chain is "
                        f"{size:.4g} file units, which is human-sized in none of "
                        f"{', '.join(UNITS)}", "pass --unit (m, cm, mm, inch, cmu or metres per "
                        "unit as a number)")
    return best


def detect_up(joints: np.ndarray, path: str) -> str:
    """'y' or 'z': the axis along which the head sits above the ankles (median over frames)."""
    v = np.median(joints[:, 15] - 0.5 * (joints[:, 7] + joints[:, 8]), axis=0)
    axis = int(np.argmax(np.abs(v)))
    if axis == 1 and v[1] > 0:
        return "y"
    if axis == 2 and v[2] > 0:
        return "z"
    raise DataError(path, f"cannot tell the up axis (head minus ankles, median over frames: "
                    f"{np.round(v, 3).tolist()})", "pass --up y or --up z")


def parse_unit(unit: str | float | None) -> float | None:
    """``--unit`` value -> metres per unit (None = detect)."""
    if unit is None or str(unit).strip().lower() in ("", "auto"):
        return None
    key = str(unit).strip().lower()
    if key in UNITS:
        return UNITS[key]
    try:
        value = float(key)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise DataError(None, f"unknown --unit {unit!r}",
                        f"use one of {', '.join(UNITS)}, auto, or metres per unit (e.g. 0.01)")
    return value
