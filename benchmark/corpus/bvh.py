"""BVH (Biovision Hierarchy) motion capture: parser, forward kinematics, writer.

A small numpy implementation rather than a registry package: ``pybvh`` (0.9) refuses position
channels on non-root joints, which every Bandai-Namco file has (6 channels per joint), and
``bvhio`` (1.5) builds a Python object per joint and frame and pins ``pyglm==2.8.2``.  Here the
MOTION block is converted in one ``numpy`` call and the kinematics are vectorised over frames
(the only Python loop is over joints).

Conventions (checked against the Bandai-Namco files):

* ``CHANNELS`` may list any subset of ``{X,Y,Z}position`` and ``{X,Y,Z}rotation`` in any order,
  per joint; values are read in hierarchy (depth-first) order.
* Rotation channels are Euler angles in degrees, multiplied in the listed order:
  ``Zrotation Xrotation Yrotation`` means ``R = Rz @ Rx @ Ry``.
* Position channels replace the ``OFFSET`` on their axis for that frame (root and non-root
  joints alike); axes without a position channel keep the offset.
* ``p_child = p_joint + G_joint @ t_child`` and ``G_joint = G_parent @ R_joint``.

Every malformed input raises :class:`benchmark.io.DataError` naming the file and the line.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmark.io import DataError, atomic_write_text

_CHANNEL = re.compile(r"^([XYZ])(position|rotation)$", re.IGNORECASE)
_FIX = "re-export the file from your mocap tool (a complete BVH: HIERARCHY, then MOTION)"


@dataclass
class BvhJoint:
    name: str
    parent: int                      # index into Bvh.joints, -1 for the root
    offset: np.ndarray               # (3,) in the file's units
    channels: tuple[str, ...] = ()   # e.g. ("Xposition", ..., "Yrotation"), canonical case
    column: int = 0                  # first column of this joint's channels in the MOTION block
    end_site: bool = False
    line: int = 0                    # line of its ROOT/JOINT/End Site keyword


@dataclass
class Bvh:
    """A parsed file: ``joints`` (depth-first, End Sites included), ``motion`` ``(F, C)``."""

    path: str
    joints: list[BvhJoint]
    frame_time: float
    motion: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.motion)

    @property
    def fps(self) -> float:
        """Frames per second; a truncated frame time (0.0333333) snaps to the integer rate."""
        fps = 1.0 / self.frame_time
        return float(round(fps)) if abs(fps - round(fps)) < 1e-4 * fps else fps

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    def index(self, name: str) -> int:
        return self.names.index(name)


# ----------------------------------------------------------------------------- parsing
def _tokens(lines: Sequence[str], start: int, stop: int):
    for i in range(start, stop):
        for tok in lines[i].split():
            yield tok, i + 1


def _parse_hierarchy(lines: list[str], path: str, stop: int) -> list[BvhJoint]:
    toks = list(_tokens(lines, 0, stop))
    if not toks or toks[0][0].upper() != "HIERARCHY":
        raise DataError(path, "is not a BVH file (it does not start with HIERARCHY)", _FIX)
    joints: list[BvhJoint] = []
    stack: list[int] = []
    column = 0
    k = 1

    def err(line: int, problem: str) -> DataError:
        return DataError(f"{path}:{line}", problem, _FIX)

    def numbers(n: int, what: str, line: int) -> list[float]:
        nonlocal k
        vals = [t for t, ln in toks[k:k + n] if ln == line]
        try:
            out = [float(v) for v in vals]
        except ValueError:
            raise err(line, f"{what} has a non-numeric value in {vals}") from None
        if len(out) != n:
            raise err(line, f"{what} needs {n} numbers, found {len(out)}")
        k += n
        return out

    while k < len(toks):
        tok, line = toks[k]
        word = tok.upper()
        if word in ("ROOT", "JOINT") or (word == "END" and k + 1 < len(toks)
                                         and toks[k + 1][0].upper() == "SITE"):
            end = word == "END"
            if word == "ROOT" and (stack or joints):
                raise err(line, "a second ROOT (one skeleton per file is supported)")
            if word != "ROOT" and not stack:
                raise err(line, f"{tok} outside a ROOT block")
            k += 2 if end else 1
            name_toks = []
            for t, ln in toks[k:]:
                if ln != line or t == "{":
                    break
                name_toks.append(t)
            if end:
                name = f"{joints[stack[-1]].name}/End"
            else:
                if not name_toks:
                    raise err(line, f"{tok} without a joint name")
                name = " ".join(name_toks)
                k += len(name_toks)
            if k >= len(toks) or toks[k][0] != "{":
                raise err(line, f"{name!r} is not followed by '{{'")
            k += 1
            parent = stack[-1] if stack else -1
            joints.append(BvhJoint(name, parent, np.zeros(3), (), column, end, line))
            stack.append(len(joints) - 1)
            if k >= len(toks) or toks[k][0].upper() != "OFFSET":
                raise err(toks[min(k, len(toks) - 1)][1], f"{name!r} has no OFFSET line")
            oline = toks[k][1]
            k += 1
            joints[-1].offset = np.array(numbers(3, "OFFSET", oline))
            if not end:
                if k >= len(toks) or toks[k][0].upper() != "CHANNELS":
                    raise err(oline, f"joint {name!r} has no CHANNELS line after its OFFSET")
                cline = toks[k][1]
                k += 1
                try:
                    n = int(toks[k][0])
                except (ValueError, IndexError):
                    raise err(cline, "CHANNELS must start with the channel count") from None
                k += 1
                names = [t for t, ln in toks[k:k + n] if ln == cline]
                if len(names) != n:
                    raise err(cline, f"CHANNELS says {n} channels but lists {len(names)}")
                canon = []
                for c in names:
                    m = _CHANNEL.match(c)
                    if not m:
                        raise err(cline, f"unknown channel {c!r} (use Xposition..Zrotation)")
                    canon.append(m.group(1).upper() + m.group(2).lower())
                if len(set(canon)) != len(canon):
                    raise err(cline, f"repeated channel in {names}")
                k += n
                joints[-1].channels = tuple(canon)
                column += n
        elif tok == "}":
            if not stack:
                raise err(line, "unbalanced '}'")
            stack.pop()
            k += 1
        else:
            raise err(line, f"unexpected {tok!r} in the HIERARCHY block")
    if stack:
        raise err(stop, f"the HIERARCHY block ends inside joint {joints[stack[-1]].name!r} "
                  "(missing '}')")
    if not joints:
        raise err(stop, "the HIERARCHY block has no ROOT")
    return joints


def parse_bvh(text: str, path: str | os.PathLike = "<string>") -> Bvh:
    """Parse BVH ``text``; ``path`` is only used in error messages."""
    path = str(path)
    lines = text.splitlines()
    motion_at = next((i for i, ln in enumerate(lines) if ln.strip().upper() == "MOTION"), None)
    if motion_at is None:
        raise DataError(path, "has no MOTION line (the file is truncated or not a BVH file)",
                        _FIX)
    joints = _parse_hierarchy(lines, path, motion_at)
    n_channels = sum(len(j.channels) for j in joints)
    header: dict[str, tuple[str, int]] = {}
    i = motion_at + 1
    while i < len(lines) and len(header) < 2:
        ln = lines[i].strip()
        i += 1
        if not ln:
            continue
        m = re.match(r"^(Frames|Frame\s+Time)\s*:\s*(\S+)\s*$", ln, re.IGNORECASE)
        if not m:
            raise DataError(f"{path}:{i}", f"expected 'Frames: N' and 'Frame Time: dt', got {ln!r}",
                            _FIX)
        header["frames" if m.group(1).lower() == "frames" else "time"] = (m.group(2), i)
    if len(header) < 2:
        raise DataError(f"{path}:{len(lines)}", "the MOTION block is truncated before "
                        "'Frames:' and 'Frame Time:'", _FIX)
    try:
        n_frames = int(header["frames"][0])
        frame_time = float(header["time"][0])
    except ValueError:
        raise DataError(f"{path}:{header['frames'][1]}", "Frames must be an integer and Frame "
                        "Time a number", _FIX) from None
    if n_frames <= 0:
        raise DataError(f"{path}:{header['frames'][1]}", f"has {n_frames} frames",
                        "export at least 2 frames of motion")
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise DataError(f"{path}:{header['time'][1]}", f"Frame Time {frame_time} is not a "
                        "positive number of seconds", "write e.g. 'Frame Time: 0.0333333'")
    body = [(j + 1, ln) for j, ln in enumerate(lines[i:], start=i) if ln.strip()]
    if len(body) < n_frames:
        last = body[-1][0] if body else i
        raise DataError(f"{path}:{last}", f"the MOTION block is truncated: Frames says "
                        f"{n_frames}, found {len(body)} frame lines", "re-export or re-copy the "
                        f"file, or correct 'Frames:' to {len(body)} if the shorter take is wanted")
    if len(body) > n_frames:
        raise DataError(f"{path}:{body[n_frames][0]}", f"has {len(body)} frame lines but Frames "
                        f"says {n_frames}", f"correct 'Frames:' to {len(body)} or remove the "
                        "extra lines")
    rows = [ln.split() for _, ln in body]
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    wrong = np.flatnonzero(counts != n_channels)
    if len(wrong):
        f = int(wrong[0])
        cut = " (the last line is cut short: truncated file)" if f == len(rows) - 1 and \
            counts[f] < n_channels else ""
        raise DataError(f"{path}:{body[f][0]}", f"frame {f + 1} has {int(counts[f])} values, the "
                        f"HIERARCHY declares {n_channels} channels{cut}", _FIX)
    try:
        motion = np.array([v for r in rows for v in r], dtype=np.float64)
    except ValueError:
        for f, r in enumerate(rows):
            try:
                np.array(r, dtype=np.float64)
            except ValueError:
                bad = next(v for v in r if not _is_float(v))
                raise DataError(f"{path}:{body[f][0]}", f"frame {f + 1} has the non-numeric "
                                f"value {bad!r}", _FIX) from None
        raise
    motion = motion.reshape(n_frames, n_channels)
    finite = np.isfinite(motion).all(axis=1)
    if not finite.all():
        f = int(np.argmin(finite))
        raise DataError(f"{path}:{body[f][0]}", f"frame {f + 1} has NaN or inf values", _FIX)
    return Bvh(path, joints, frame_time, motion)


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def read_bvh(path: str | os.PathLike) -> Bvh:
    """Read and parse a ``.bvh`` file (any line endings, tabs, trailing spaces)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    except OSError as err:
        raise DataError(path, f"cannot be read ({err.strerror or err})",
                        "check the path and permissions") from err
    return parse_bvh(text, path)


# ----------------------------------------------------------------------------- kinematics
def _axis_rotations(axis: str, degrees: np.ndarray) -> np.ndarray:
    """``(F,)`` angles -> ``(F, 3, 3)`` rotations about one axis."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    m = np.zeros(a.shape + (3, 3))
    i = "XYZ".index(axis)
    j, k = (i + 1) % 3, (i + 2) % 3
    m[..., i, i] = 1.0
    m[..., j, j], m[..., j, k] = c, -s
    m[..., k, j], m[..., k, k] = s, c
    return m


def local_transforms(bvh: Bvh) -> tuple[np.ndarray, np.ndarray]:
    """Per joint and frame: local rotations ``(F, J, 3, 3)`` and translations ``(F, J, 3)``."""
    n_f, n_j = bvh.n_frames, len(bvh.joints)
    rot = np.broadcast_to(np.eye(3), (n_f, n_j, 3, 3)).copy()
    trans = np.broadcast_to(np.stack([j.offset for j in bvh.joints]), (n_f, n_j, 3)).copy()
    for ji, joint in enumerate(bvh.joints):
        r = None
        for ci, ch in enumerate(joint.channels):
            values = bvh.motion[:, joint.column + ci]
            axis = ch[0]
            if ch.endswith("position"):
                trans[:, ji, "XYZ".index(axis)] = values
            else:
                m = _axis_rotations(axis, values)
                r = m if r is None else r @ m
        if r is not None:
            rot[:, ji] = r
    return rot, trans


def forward_kinematics(bvh: Bvh) -> np.ndarray:
    """Global positions ``(F, J, 3)`` of every joint and End Site, in the file's units/axes."""
    rot, trans = local_transforms(bvh)
    glob = np.empty_like(rot)
    pos = np.empty_like(trans)
    for ji, joint in enumerate(bvh.joints):
        p = joint.parent
        if p < 0:
            glob[:, ji], pos[:, ji] = rot[:, ji], trans[:, ji]
        else:
            glob[:, ji] = glob[:, p] @ rot[:, ji]
            pos[:, ji] = pos[:, p] + np.einsum("fab,fb->fa", glob[:, p], trans[:, ji])
    return pos


# ----------------------------------------------------------------------------- writing
def _euler_zxy(mats: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations -> ``(..., 3)`` degrees (z, x, y) with ``R = Rz @ Rx @ Ry``."""
    x = np.arcsin(np.clip(mats[..., 2, 1], -1.0, 1.0))
    z = np.arctan2(-mats[..., 0, 1], mats[..., 1, 1])
    y = np.arctan2(-mats[..., 2, 0], mats[..., 2, 2])
    return np.rad2deg(np.stack([z, x, y], axis=-1))


def format_bvh(names: Sequence[str], parents: Sequence[int], offsets: np.ndarray,
               rotations: np.ndarray, translations: np.ndarray, frame_time: float,
               end_sites: dict[int, np.ndarray] | None = None) -> str:
    """BVH text for a skeleton with 6 channels per joint (positions, then Z X Y rotations).

    ``offsets`` ``(J, 3)`` rest offsets; ``rotations`` ``(F, J, 3, 3)`` local rotations;
    ``translations`` ``(F, J, 3)`` local translations (the position channels, which replace the
    offsets on import); ``end_sites`` maps a joint index to its End Site offset.
    Joint 0 is the root; the file lists joints (and their MOTION columns) depth first.
    """
    end_sites = end_sites or {}
    children: dict[int, list[int]] = {i: [] for i in range(len(names))}
    for i, p in enumerate(parents):
        if p >= 0:
            children[p].append(i)
    out = ["HIERARCHY"]
    visit: list[int] = []
    chans = "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        kw = "ROOT" if parents[j] < 0 else "JOINT"
        visit.append(j)
        out.extend([f"{pad}{kw} {names[j]}", f"{pad}{{",
                    f"{pad}  OFFSET {' '.join(f'{v:.6f}' for v in offsets[j])}", f"{pad}  {chans}"])
        for c in children[j]:
            emit(c, depth + 1)
        if j in end_sites:
            out.extend([f"{pad}  End Site", f"{pad}  {{",
                        f"{pad}    OFFSET {' '.join(f'{v:.6f}' for v in end_sites[j])}",
                        f"{pad}  }}"])
        out.append(f"{pad}}}")

    emit(0, 0)
    euler = _euler_zxy(rotations)                                     # (F, J, 3)
    frames = np.concatenate([translations, euler], axis=-1)[:, visit].reshape(len(rotations), -1)
    out += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time:.7f}"]
    out += [" ".join(f"{v:.6f}" for v in row) for row in frames]
    return "\n".join(out) + "\n"


def write_bvh(path: str | os.PathLike, *args, **kwargs) -> Path:
    """:func:`format_bvh` written atomically to ``path``."""
    return atomic_write_text(path, format_bvh(*args, **kwargs))
