"""Motion-X SMPL-X sequences -> a HumanML3D-format corpus.

Motion-X stores each clip as ``(T, 322)`` float arrays at 30 fps::

    root_orient 0:3 | pose_body 3:66 | pose_hand 66:156 | pose_jaw 156:159 | face_expr 159:209
    | face_shape 209:309 | trans 309:312 | betas 312:322

Pipeline (per clip): the real ``smplx`` SMPL-X body model (from ``--smplx-model-dir``, which you
download yourself) -> the first 22 joints (the SMPL body skeleton HumanML3D uses) -> axis
conversion -> linear resampling to 20 fps -> :func:`benchmark.motion.joints_to_features`
(optionally retargeted to HumanML3D's reference skeleton, as its pipeline does) -> written with
:func:`benchmark.corpus.write_humanml3d`.

Axes: the SMPL-X *model* space is y-up facing +z, but Motion-X's world (like AMASS) is **z-up**:
its ``root_orient`` already contains the +90 degree x rotation that stands the body up along +z.
HumanML3D is y-up, so we rotate world joints by -90 degrees about x, ``(x, y, z) -> (x, z, -y)``
(the canonicalisation Motion-X's maintainers suggest; HumanML3D's own AMASS script uses
``(x, y, z) -> (-x, z, y)``, which differs only by a heading turn that the feature
canonicalisation removes).  Pass ``up_axis="y"`` for data that is already y-up.
The 50 FLAME expression and 100 face-shape values only move face vertices and are ignored.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from benchmark.io import DataError

SMPLX_DIM = 322
SMPLX_SLICES: dict[str, slice] = {
    "root_orient": slice(0, 3), "pose_body": slice(3, 66), "pose_hand": slice(66, 156),
    "pose_jaw": slice(156, 159), "face_expr": slice(159, 209), "face_shape": slice(209, 309),
    "trans": slice(309, 312), "betas": slice(312, 322),
}
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # rows: new x, y, z
TARGET_FPS = 20.0
GENDERS = ("neutral", "male", "female")


@dataclass(frozen=True)
class MotionXConfig:
    """How Motion-X clips are converted.  ``batch_frames``: frames per body-model call (memory)."""

    smplx_model_dir: Path
    gender: str = "neutral"
    source_fps: float = 30.0
    up_axis: str = "z"
    retarget: bool = True
    batch_frames: int = 256
    device: str = "cpu"

    def __post_init__(self):
        if self.gender not in GENDERS:
            raise DataError(None, f"unknown gender {self.gender!r}", f"use one of {GENDERS}")
        if self.up_axis not in ("y", "z"):
            raise DataError(None, f"unknown up axis {self.up_axis!r}", "use 'z' (Motion-X) or 'y'")
        if not self.source_fps > 0 or self.batch_frames < 1:
            raise DataError(None, "source fps and batch_frames must be positive",
                            "pass e.g. --fps 30")


def find_smplx_model(model_dir: str | os.PathLike, gender: str = "neutral") -> Path:
    """The SMPL-X model file: ``DIR/smplx/SMPLX_<GENDER>.npz|pkl``, ``DIR/SMPLX_<GENDER>.*``
    or ``DIR`` itself when it is a file.  DataError listing the places looked at otherwise."""
    root = Path(model_dir)
    if root.is_file():
        return root
    if not root.is_dir():
        raise DataError(root, "SMPL-X model folder not found",
                        "download SMPL-X from https://smpl-x.is.tue.mpg.de and pass its folder "
                        "with --smplx-model-dir")
    name = f"SMPLX_{gender.upper()}"
    cands = [d / f"{name}.{ext}" for d in (root / "smplx", root) for ext in ("npz", "pkl")]
    for c in cands:
        if c.is_file():
            return c
    raise DataError(root, f"no SMPL-X model file ({', '.join(str(c) for c in cands)})",
                    f"put {name}.npz (from the SMPL-X download) into {root / 'smplx'}")


def load_body_model(cfg: MotionXConfig):
    """The real ``smplx.SMPLX`` body model (full hand poses, no PCA) on ``cfg.device``."""
    import smplx
    import torch

    path = find_smplx_model(cfg.smplx_model_dir, cfg.gender)
    try:
        model = smplx.create(str(path), model_type="smplx", gender=cfg.gender, use_pca=False,
                             num_betas=10, num_expression_coeffs=10, ext=path.suffix[1:])
    except (KeyError, AttributeError, ValueError, OSError, RuntimeError) as err:
        raise DataError(path, f"is not a usable SMPL-X model file ({type(err).__name__}: {err})",
                        "use the SMPLX_<GENDER>.npz file of the official SMPL-X download") from err
    return model.to(torch.device(cfg.device)).eval()


def check_smplx_array(arr: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """Validate one Motion-X clip: ``(T, 322)`` finite floats with T >= 2 -> float32 copy."""
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] != SMPLX_DIM or arr.shape[0] < 2:
        raise DataError(path, f"has shape {arr.shape}, expected (T, {SMPLX_DIM}) with T >= 2",
                        "pass Motion-X motion_data/smplx_322 arrays")
    if arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
        raise DataError(path, "contains non-numeric, NaN or inf values", "drop or fix this clip")
    return arr.astype(np.float32)


def _forward_inputs(c, model) -> dict:
    """SMPL-X forward keyword arguments for a chunk ``c`` of ``(n, 322)`` parameters."""
    s = SMPLX_SLICES
    n = len(c)
    zeros3 = c.new_zeros(n, 3)
    return dict(global_orient=c[:, s["root_orient"]], body_pose=c[:, s["pose_body"]],
                left_hand_pose=c[:, 66:111], right_hand_pose=c[:, 111:156],
                jaw_pose=c[:, s["pose_jaw"]], leye_pose=zeros3, reye_pose=zeros3,
                expression=c.new_zeros(n, model.num_expression_coeffs),
                betas=c[:, s["betas"]][:, :model.num_betas], transl=c[:, s["trans"]])


def _joints_only(model, kw: dict):
    """The first 55 joints of ``model(**kw)`` without skinning a single vertex.

    Joints depend only on the shaped template (``J_regressor @ (v_template + shape/expression
    blend shapes)``) and the kinematic chain; pose correctives and skinning only move vertices.
    Uses smplx's own ``lbs`` building blocks on the model's buffers (~100x faster for 10k verts).
    """
    import torch
    from smplx.lbs import batch_rigid_transform, batch_rodrigues

    pose = torch.cat([kw["global_orient"], kw["body_pose"], kw["jaw_pose"], kw["leye_pose"],
                      kw["reye_pose"], kw["left_hand_pose"], kw["right_hand_pose"]], dim=1)
    pose = pose + model.pose_mean
    n = len(pose)
    shape = torch.cat([kw["betas"], kw["expression"]], dim=-1)
    dirs = torch.cat([model.shapedirs, model.expr_dirs], dim=-1)          # (V, 3, K)
    # J_regressor is linear: regress the template and blend shapes once, then mix per frame
    rest = (torch.einsum("jv,vd->jd", model.J_regressor, model.v_template)
            + torch.einsum("nk,jdk->njd", shape, torch.einsum("jv,vdk->jdk", model.J_regressor,
                                                               dirs)))
    rot = batch_rodrigues(pose.reshape(-1, 3)).reshape(n, -1, 3, 3)
    joints, _ = batch_rigid_transform(rot, rest, model.parents, dtype=pose.dtype)
    return joints + kw["transl"][:, None, :]


def smplx_joints(params: np.ndarray, model, batch_frames: int = 256,
                 full_forward: bool = False) -> np.ndarray:
    """``(T, 322)`` SMPL-X parameters -> ``(T, 22, 3)`` body joints (metres, Motion-X world).

    ``full_forward=True`` runs the complete ``model(...)`` (vertices too); the default computes
    the same joints from the same model without skinning (identical up to float rounding).
    """
    import torch

    device = next(model.buffers()).device
    p = torch.as_tensor(params, dtype=torch.float32, device=device)
    out = []
    with torch.no_grad():
        for a in range(0, len(p), batch_frames):
            kw = _forward_inputs(p[a:a + batch_frames], model)
            joints = model(**kw).joints if full_forward else _joints_only(model, kw)
            out.append(joints[:, :22].double().cpu().numpy())
    return np.concatenate(out, axis=0)


def resample(x: np.ndarray, src_fps: float, dst_fps: float = TARGET_FPS) -> np.ndarray:
    """Linear resampling along axis 0 from ``src_fps`` to ``dst_fps`` (same start, no
    extrapolation): ``(T, ...)`` -> ``(floor((T-1) * dst/src) + 1, ...)``."""
    from scipy.interpolate import interp1d

    n_out = int(np.floor((len(x) - 1) * dst_fps / src_fps + 1e-9)) + 1
    if src_fps == dst_fps or len(x) < 2:
        return x.copy()
    t_src = np.arange(len(x)) / src_fps
    t_dst = np.arange(n_out) / dst_fps
    return interp1d(t_src, x, axis=0, assume_sorted=True)(t_dst)


def convert_clip(params: np.ndarray, model, cfg: MotionXConfig) -> tuple[np.ndarray, np.ndarray]:
    """One clip -> (features ``(T20-1, 263)`` float32, joints ``(T20, 22, 3)`` float32, y-up)."""
    from benchmark.motion import FeatureConfig, canonicalize, joints_to_features, retarget

    joints = smplx_joints(params, model, cfg.batch_frames)
    if cfg.up_axis == "z":
        joints = joints @ Z_UP_TO_Y_UP.T
    joints = resample(joints, cfg.source_fps, TARGET_FPS)
    feats = joints_to_features(joints, FeatureConfig(retarget=cfg.retarget))
    pos = retarget(joints) if cfg.retarget else joints
    return feats.astype(np.float32), np.asarray(canonicalize(pos), dtype=np.float32)


def read_import_labels(path: str | os.PathLike) -> pd.DataFrame:
    """labels CSV: ``id, scenario, emotion`` (+ optional ``source, part, path``; ``path`` is the
    clip's location relative to the motion/text folders without extension, default = id)."""
    from benchmark.corpus.humanml3d import check_label_values
    from benchmark.corpus.labels import EMOTIONS, PARTS

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "labels file not found", "pass a CSV with columns id,scenario,emotion")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"not a readable CSV ({err})", "write a comma-separated file") from err
    need = [c for c in ("id", "scenario", "emotion") if c not in df.columns]
    if need or len(df) == 0:
        raise DataError(path, f"lacks column(s) {need} or rows", "columns: id,scenario,emotion")
    df["id"] = df["id"].str.strip()
    bad = df["id"].str.contains(r"[/\\]|^$|^\.", regex=True) | df["id"].duplicated()
    if bad.any():
        raise DataError(path, f"bad or repeated id {df['id'][bad].iloc[0]!r} (line "
                        f"{int(np.argmax(bad.to_numpy())) + 2})",
                        "ids must be unique file names; put nested locations in a path column")
    check_label_values(df, path, EMOTIONS)
    if "part" in df.columns:
        wrong = sorted(set(df["part"]) - set(PARTS) - {""})
        if wrong:
            raise DataError(path, f"unknown part(s) {wrong}", "use train, val, test or leave empty")
    if "path" not in df.columns:
        df["path"] = df["id"]
    df["path"] = df["path"].where(df["path"].str.strip() != "", df["id"])
    return df


def iter_motionx(motion_dir: Path, texts_dir: Path, labels: pd.DataFrame, model,
                 cfg: MotionXConfig) -> Iterator:
    """Yield :class:`benchmark.corpus.Motion` objects, converting one clip at a time."""
    from tqdm import tqdm

    from benchmark.corpus.humanml3d import Motion

    for row in tqdm(labels.itertuples(index=False), total=len(labels), desc="motion-x",
                    unit="clip", disable=None):
        npy, txt = motion_dir / f"{row.path}.npy", texts_dir / f"{row.path}.txt"
        if not npy.is_file():
            raise DataError(npy, f"motion file of id {row.id!r} not found",
                            "fix --motion-dir or the path/id column of the labels CSV")
        if not txt.is_file():
            raise DataError(txt, f"text file of id {row.id!r} not found",
                            "fix --texts-dir (Motion-X texts/semantic_labels)")
        try:
            arr = np.load(npy, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(npy, f"not a readable .npy file ({err})", "re-download it") from err
        params = check_smplx_array(arr, npy)
        if (len(params) - 1) * TARGET_FPS / cfg.source_fps < 2:
            raise DataError(npy, f"only {len(params)} frames: too short for 20 fps features",
                            "drop this clip from the labels CSV")
        texts = [t.strip() for t in txt.read_text(encoding="utf-8").splitlines() if t.strip()]
        feats, joints = convert_clip(params, model, cfg)
        part = getattr(row, "part", "") or None
        yield Motion(id=row.id, features=feats, texts=texts, scenario=row.scenario,
                     emotion=row.emotion, source=getattr(row, "source", "") or "motion-x",
                     part=part, joints=joints)


def import_motionx(motion_dir: str | os.PathLike, texts_dir: str | os.PathLike,
                   labels_csv: str | os.PathLike, out: str | os.PathLike, cfg: MotionXConfig,
                   seed: int = 0, overwrite: bool = False) -> Path:
    """Convert the clips listed in ``labels_csv`` and write a HumanML3D-format corpus at ``out``
    (atomically: nothing is left behind on an error)."""
    from benchmark.corpus.humanml3d import write_humanml3d

    motion_dir, texts_dir = Path(motion_dir), Path(texts_dir)
    for d, what in ((motion_dir, "--motion-dir"), (texts_dir, "--texts-dir")):
        if not d.is_dir():
            raise DataError(d, f"{what} folder not found", f"pass an existing folder as {what}")
    labels = read_import_labels(labels_csv)
    model = load_body_model(cfg)
    config = {"importer": "motion-x", "source_fps": cfg.source_fps, "up_axis": cfg.up_axis,
              "retarget": cfg.retarget, "gender": cfg.gender,
              "smplx_model": find_smplx_model(cfg.smplx_model_dir, cfg.gender).name}
    return write_humanml3d(out, iter_motionx(motion_dir, texts_dir, labels, model, cfg),
                           config=config, seed=seed, overwrite=overwrite)


# ----------------------------------------------------------------------------- test model
def _smplx_parents() -> np.ndarray:
    """Parents of SMPL-X's 55 joints: 22 body, jaw + 2 eyes (on head), 2 x 5 fingers x 3."""
    from benchmark.motion import PARENTS

    par = list(PARENTS) + [15, 15, 15]
    for wrist in (20, 21):
        for _finger in range(5):
            base = len(par)
            par += [wrist, base, base + 1]
    return np.array(par)


def write_synthetic_smplx_model(path: str | os.PathLike, seed: int = 0,
                                n_vertices: int = 10475) -> Path:
    """Write a *synthetic* SMPL-X-compatible ``.npz`` (for offline tests and demos only).

    It has the real file's keys and joint tree; the body joints sit on HumanML3D's reference
    skeleton (y-up, facing +z), vertices are random points skinned to random joints, pose
    correctives are zero, and 10 shape + 10 expression directions are small random vectors.
    ``n_vertices`` must exceed 9929 (smplx picks extra keypoints by fixed vertex ids).
    """
    from benchmark.io import atomic_write_bytes
    from benchmark.motion import DEFAULT_OFFSETS

    rng = np.random.default_rng(seed)
    par = _smplx_parents()
    n_j = len(par)
    rest = np.zeros((n_j, 3))
    rest[0] = (0.0, 0.95, 0.0)
    for j in range(1, 22):
        rest[j] = rest[par[j]] + DEFAULT_OFFSETS[j]
    for j in range(22, n_j):  # face and finger joints: small offsets from their parent
        rest[j] = rest[par[j]] + rng.normal(0.0, 0.02, 3)
    verts = np.concatenate([rest, rest[rng.integers(0, n_j, n_vertices - n_j)]
                            + rng.normal(0.0, 0.03, (n_vertices - n_j, 3))])
    owner = np.concatenate([np.arange(n_j), rng.integers(0, n_j, n_vertices - n_j)])
    faces = rng.integers(0, n_vertices, (200, 3)).astype(np.int64)
    arrays = {
        "v_template": verts, "f": faces,
        "J_regressor": np.eye(n_j, n_vertices),
        "weights": np.eye(n_j)[owner],
        "kintree_table": np.stack([np.where(par < 0, 2**32 - 1, par), np.arange(n_j)]).astype(np.int64),
        "shapedirs": rng.normal(0.0, 1e-3, (n_vertices, 3, 20)),
        "posedirs": np.zeros((n_vertices, 3, (n_j - 1) * 9), dtype=np.float32),
        "hands_componentsl": np.eye(45), "hands_componentsr": np.eye(45),
        "hands_meanl": np.zeros(45), "hands_meanr": np.zeros(45),
        "lmk_faces_idx": rng.integers(0, len(faces), 51), "lmk_bary_coords": np.full((51, 3), 1 / 3),
    }
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())
