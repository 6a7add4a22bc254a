"""``l2emg export --run DIR --bvh OUT``: a run's generated and ground-truth samples as BVH.

Each sample ``(T, 263)`` -> :func:`benchmark.motion.features_to_joints` -> a BVH on the SMPL
22-joint skeleton (joint names of ``benchmark.motion.skeleton.JOINT_NAMES``, metres, y up,
20 fps, 6 channels per joint) that Blender and other tools open, and that ``l2emg data
import-bvh`` reads back (``--skeleton smpl`` is auto-detected).

Rotations: each joint's global rotation turns its rest bone direction (HumanML3D's rest
directions) onto the observed one with the least twist from its parent; the pelvis and spine3,
which have several children, are fitted to two bones (spine + hips, neck + collars).  The
position channels then hold each joint's exact offset in its parent's frame, computed with the
rotations *as written* (rounded Euler angles), so reading the file back gives the joints to the
printed precision (1e-6 m) whatever the rotations.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from benchmark.io import DataError, read_json


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(F, 3)`` unit vectors -> ``(F, 3, 3)`` shortest-arc rotations taking ``a`` to ``b``."""
    v, c = np.cross(a, b), np.einsum("fi,fi->f", a, b)
    k = np.zeros(a.shape[:1] + (3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    r = np.eye(3) + k + (k @ k) / np.maximum(1.0 + c, 1e-12)[:, None, None]
    flip = 1.0 + c < 1e-9                                    # opposite: half turn about a normal
    if flip.any():
        n = _unit(np.cross(a[flip], np.where(np.abs(a[flip, :1]) < 0.9, [[1.0, 0, 0]],
                                             [[0, 1.0, 0]])))
        r[flip] = 2.0 * n[:, :, None] * n[:, None, :] - np.eye(3)
    return r


def _frame(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Orthonormal basis (columns) from a primary and a secondary direction."""
    e1 = _unit(u)
    e2 = _unit(v - np.einsum("...i,...i->...", v, e1)[..., None] * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def joints_to_bvh_text(joints: np.ndarray, fps: float = 20.0) -> str:
    """``(T, 22, 3)`` SMPL joints (metres, y up) -> BVH text."""
    from benchmark.corpus.bvh import _axis_rotations, _euler_zxy, format_bvh
    from benchmark.motion.skeleton import JOINT_NAMES, PARENTS, RAW_OFFSETS, bone_lengths

    p = np.asarray(joints, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (22, 3) or len(p) < 1 or not np.isfinite(p).all():
        raise DataError(None, f"joints must be finite (T, 22, 3), got {p.shape}",
                        "pass HumanML3D joint positions")
    n_f = len(p)
    lengths = np.median(np.asarray(bone_lengths(p)), axis=0)
    offsets = RAW_OFFSETS * np.where(lengths > 1e-6, lengths, 0.05)[:, None]
    children = {j: [c for c in range(22) if PARENTS[c] == j] for j in range(22)}
    two = {0: (3, 1, 2), 9: (12, 13, 14)}     # joint: (primary child, left, right)
    glob = np.zeros((n_f, 22, 3, 3))
    for j in range(22):
        par = glob[:, PARENTS[j]] if j else np.broadcast_to(np.eye(3), (n_f, 3, 3))
        if j in two:
            c, left, right = two[j]
            obs = _frame(p[:, c] - p[:, j], p[:, left] - p[:, right])
            rest = _frame(RAW_OFFSETS[c], RAW_OFFSETS[left] - RAW_OFFSETS[right])
            glob[:, j] = obs @ rest.T
        elif children[j]:
            c = children[j][0]
            a = _unit(np.einsum("fab,b->fa", par, RAW_OFFSETS[c]))
            glob[:, j] = _arc(a, _unit(p[:, c] - p[:, j])) @ par
        else:
            glob[:, j] = par
    local = glob.copy()
    for j in range(1, 22):
        local[:, j] = np.swapaxes(glob[:, PARENTS[j]], 1, 2) @ glob[:, j]
    # the rotations as the file will hold them (Euler angles printed to 6 decimals)
    euler = np.round(_euler_zxy(local), 6)
    written = np.einsum("fjab,fjbc,fjcd->fjad", _axis_rotations("Z", euler[..., 0]),
                        _axis_rotations("X", euler[..., 1]), _axis_rotations("Y", euler[..., 2]))
    g = np.zeros_like(written)
    trans = np.zeros((n_f, 22, 3))
    for j in range(22):
        if j == 0:
            g[:, 0], trans[:, 0] = written[:, 0], p[:, 0]
        else:
            q = PARENTS[j]
            g[:, j] = g[:, q] @ written[:, j]
            trans[:, j] = np.einsum("fba,fb->fa", g[:, q], p[:, j] - p[:, q])
    ends = {15: np.array([0.0, 0.1, 0.0]), 20: 0.08 * RAW_OFFSETS[20], 21: 0.08 * RAW_OFFSETS[21],
            10: np.array([0.0, 0.0, 0.05]), 11: np.array([0.0, 0.0, 0.05])}
    return format_bvh(JOINT_NAMES, PARENTS, offsets, written, trans, 1.0 / fps, end_sites=ends)


def export_run(run: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
               ground_truth: bool = True) -> list[Path]:
    """Write ``<name>.bvh`` (and ``<name>_gt.bvh``) for every sample of a run folder."""
    from benchmark.io import atomic_dir, atomic_write_text
    from benchmark.motion import features_to_joints

    run = Path(run)
    index_path = run / "samples" / "index.json"
    if not index_path.is_file():
        raise DataError(index_path, "missing: the run has no samples",
                        "pass a finished `l2emg run` folder (it writes samples/index.json)")
    index = read_json(index_path, "rerun the run's last experience or restore the file")
    if not isinstance(index, dict) or not index:
        raise DataError(index_path, "lists no samples", "rerun the run")
    jobs: list[tuple[str, Path]] = []
    for name, entry in index.items():
        jobs.append((name, run / "samples" / f"{name}.npy"))
        ref = (entry or {}).get("reference") if isinstance(entry, dict) else None
        if ground_truth and ref:
            jobs.append((Path(ref).stem, run / "samples" / ref))
    written = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for name, path in jobs:
            if not path.is_file():
                raise DataError(path, f"sample {name!r} listed in {index_path.name} is missing",
                                "rerun the run or remove it from index.json")
            try:
                feats = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as err:
                raise DataError(path, f"not a readable .npy file ({err})", "rerun the run") from err
            if feats.ndim != 2 or feats.shape[1] != 263 or len(feats) < 1:
                raise DataError(path, f"has shape {feats.shape}, expected (T, 263) features",
                                "pass a run folder written by `l2emg run`")
            if not np.isfinite(feats).all():
                raise DataError(path, "contains NaN or inf", "rerun the run")
            text = joints_to_bvh_text(features_to_joints(feats.astype(np.float64)))
            atomic_write_text(tmp / f"{name}.bvh", text)
            written.append(Path(out) / f"{name}.bvh")
    return written


def export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, type=Path, help="run folder (with samples/)")
    p.add_argument("--bvh", required=True, type=Path, help="folder to write the .bvh files to")
    p.add_argument("--no-ground-truth", action="store_true", help="generated samples only")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --bvh folder")


def export(args: argparse.Namespace) -> int:
    files = export_run(args.run, args.bvh, overwrite=args.overwrite,
                       ground_truth=not args.no_ground_truth)
    print(f"wrote {len(files)} BVH files (SMPL 22-joint skeleton, 20 fps, metres) to {args.bvh}")
    return 0
