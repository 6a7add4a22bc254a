"""Small hand-written BVH files for tests: a humanoid in Mixamo or CMU naming, walking."""
from __future__ import annotations

import numpy as np

# (name, parent, offset in cm, y up, body facing +z, left = +x)
MIXAMO = [
    ("Hips", None, (0, 95, 0)),
    ("Spine", "Hips", (0, 10, 0)), ("Spine1", "Spine", (0, 12, 0)), ("Spine2", "Spine1", (0, 12, 0)),
    ("Neck", "Spine2", (0, 15, 0)), ("Head", "Neck", (0, 10, 0)),
    ("LeftShoulder", "Spine2", (4, 10, 0)), ("LeftArm", "LeftShoulder", (13, 0, 0)),
    ("LeftForeArm", "LeftArm", (27, 0, 0)), ("LeftHand", "LeftForeArm", (25, 0, 0)),
    ("RightShoulder", "Spine2", (-4, 10, 0)), ("RightArm", "RightShoulder", (-13, 0, 0)),
    ("RightForeArm", "RightArm", (-27, 0, 0)), ("RightHand", "RightForeArm", (-25, 0, 0)),
    ("LeftUpLeg", "Hips", (9, -5, 0)), ("LeftLeg", "LeftUpLeg", (0, -42, 0)),
    ("LeftFoot", "LeftLeg", (0, -41, 0)), ("LeftToeBase", "LeftFoot", (0, -6, 12)),
    ("RightUpLeg", "Hips", (-9, -5, 0)), ("RightLeg", "RightUpLeg", (0, -42, 0)),
    ("RightFoot", "RightLeg", (0, -41, 0)), ("RightToeBase", "RightFoot", (0, -6, 12)),
]
END_SITES = {"Head": (0, 12, 0), "LeftHand": (8, 0, 0), "RightHand": (-8, 0, 0),
             "LeftToeBase": (0, 0, 5), "RightToeBase": (0, 0, 5)}
# CMU naming: LowerBack at the hips, Neck at Spine1, collars (LeftShoulder) starting at Spine1
CMU_RENAME = {"Spine": "LowerBack", "Spine1": "Spine", "Spine2": "Spine1", "Neck": "Neck",
              "Head": "Head"}


def cmu_skeleton():
    out = []
    for name, parent, off in MIXAMO:
        n, p = CMU_RENAME.get(name, name), CMU_RENAME.get(parent, parent) if parent else None
        if name == "Neck":
            out.append(("Neck", p, (0, 1, 0)))
            out.append(("Neck1", "Neck", (0, 14, 0)))
            continue
        if name == "Head":
            p = "Neck1"
        out.append((n, p, off))
    return out


def bvh_text(skeleton=MIXAMO, frames: int = 31, fps: float = 30.0, scale: float = 1.0,
             speed_cm_s: float = 120.0, prefix: str = "", z_up: bool = False,
             rot_order: str = "Zrotation Xrotation Yrotation", newline: str = "\n") -> str:
    """A walk: the root moves +z at ``speed_cm_s`` while the thighs swing; units = cm*scale."""
    names = [n for n, _, _ in skeleton]
    children = {n: [c for c, p, _ in skeleton if p == n] for n in names}
    offs = {n: np.array(o, float) * scale for n, _, o in skeleton}
    ends = {k: np.array(v, float) * scale for k, v in END_SITES.items()}
    if z_up:  # (x, y, z) y-up -> (x, -z, y) z-up
        conv = lambda v: np.array([v[0], -v[2], v[1]])  # noqa: E731
        offs = {k: conv(v) for k, v in offs.items()}
        ends = {k: conv(v) for k, v in ends.items()}
    lines = ["HIERARCHY"]

    def emit(n, depth):
        pad = "\t" * depth
        kw = "ROOT" if depth == 0 else "JOINT"
        ch = (f"CHANNELS 6 Xposition Yposition Zposition {rot_order}" if depth == 0
              else f"CHANNELS 3 {rot_order}")
        lines.extend([f"{pad}{kw} {prefix}{n}", f"{pad}{{",
                      f"{pad}\tOFFSET {' '.join(f'{v:g}' for v in offs[n])}  ", f"{pad}\t{ch}"])
        for c in children[n]:
            emit(c, depth + 1)
        if n in ends:
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{",
                          f"{pad}\t\tOFFSET {' '.join(f'{v:g}' for v in ends[n])}", f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    emit(names[0], 0)
    lines += ["MOTION", f"Frames:\t{frames}", f"Frame Time: {1.0 / fps:.7f}"]
    axis_of = [a[0] for a in rot_order.split()]
    swing_axis = "X"
    for f in range(frames):
        t = f / fps
        root = offs[names[0]].copy()
        fwd = speed_cm_s * scale * t
        if z_up:
            root[1] -= fwd
        else:
            root[2] += fwd
        vals = list(root)
        for n in names:
            angle = {"LeftUpLeg": 25.0, "RightUpLeg": -25.0}.get(n, 0.0) * np.sin(2 * np.pi * t)
            rot = [angle if a == swing_axis else 0.0 for a in axis_of]
            vals += rot
        lines.append(" ".join(f"{v:.5f}" for v in vals) + " ")
    return newline.join(lines) + newline
