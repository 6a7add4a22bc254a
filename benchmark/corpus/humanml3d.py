"""HumanML3D-format corpora: the writer, the reader (:func:`load_corpus`) and :class:`Corpus`.

Layout (one folder)::

    new_joint_vecs/<id>.npy   (T, 263) float32 features at 20 fps
    new_joints/<id>.npy       (T, 22, 3) float32 joint positions in metres, recovered from the
                              features as HumanML3D does (optional for reading)
    texts/<id>.txt            one description per line: ``caption#word/POS word/POS#0.0#0.0``
    Mean.npy, Std.npy         (263,) float32, over the train part only
    labels.csv                id, scenario, emotion, source, part (+ any extra columns)
    corpus.json               generator config, counts, content hash (written by our writers)
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from benchmark.corpus.labels import EMOTIONS, PARTS, SCENARIOS, resolve_scenario
from benchmark.corpus.parts import assign_parts
from benchmark.io import DataError, atomic_dir, atomic_write_json, atomic_write_text, hash_files, to_json

FEATURE_DIM = 263
N_JOINTS = 22
FORMAT_VERSION = 1
STD_FLOOR = 1e-3  # std below this (near-constant dims) is clamped, so normalising never divides by ~0


# ----------------------------------------------------------------------------- writing
@dataclass
class Motion:
    """One motion to write.  ``features`` (T, 263); ``joints`` (T, 22, 3) metres (HumanML3D: recovered from the features) or None;
    ``texts``: captions (POS-tagged automatically) or full HumanML3D lines (containing '#')."""

    id: str
    features: np.ndarray
    texts: Sequence[str]
    scenario: str
    emotion: str
    source: str = "synthetic"
    part: str | None = None
    joints: np.ndarray | None = None
    extra: dict = field(default_factory=dict)  # more labels.csv columns, e.g. {"action": "walk"}


@dataclass
class MotionSummary:
    """What a writer keeps per motion: its label row, frame count, feature sums (float64, (263,))
    for the train statistics and a digest of its bytes for the content hash."""

    row: dict
    n_frames: int
    sum: np.ndarray
    sumsq: np.ndarray
    digest: str


def text_line(caption: str) -> str:
    """``'A man walks.'`` -> ``'a man walks.#a/DET man/NOUN walks/VERB#0.0#0.0'``."""
    from benchmark.corpus.texts import pos_tag

    caption = " ".join(caption.split())
    tokens = " ".join(f"{w}/{t}" for w, t in pos_tag(caption))
    return f"{caption}#{tokens}#0.0#0.0"


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def write_motion_files(root: str | os.PathLike, motion: Motion) -> MotionSummary:
    """Write one motion's files under ``root`` (a folder being built inside ``atomic_dir``)."""
    root = Path(root)
    feats = np.ascontiguousarray(motion.features, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] != FEATURE_DIM or not np.isfinite(feats).all():
        raise DataError(f"motion {motion.id}", f"features must be finite (T, {FEATURE_DIM}), got "
                        f"{feats.shape}", "fix the motion before writing it")
    lines = [t if "#" in t else text_line(t) for t in motion.texts if t.strip()]
    if not lines:
        raise DataError(f"motion {motion.id}", "has no text description", "give at least one caption")
    blobs = {f"new_joint_vecs/{motion.id}.npy": _npy_bytes(feats),
             f"texts/{motion.id}.txt": ("\n".join(lines) + "\n").encode()}
    if motion.joints is not None:
        blobs[f"new_joints/{motion.id}.npy"] = _npy_bytes(np.asarray(motion.joints, np.float32))
    h = hashlib.sha256()
    for name, data in blobs.items():  # fixed insertion order -> stable digest
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)  # the whole folder is renamed into place atomically by the caller
        h.update(name.encode() + b"\0" + data)
    f64 = feats.astype(np.float64)
    row = {"id": motion.id, "scenario": motion.scenario, "emotion": motion.emotion,
           "source": motion.source, "part": motion.part, **motion.extra}
    return MotionSummary(row, len(feats), f64.sum(0), (f64 * f64).sum(0), h.hexdigest())


def finalize_corpus(root: str | os.PathLike, summaries: Iterable[MotionSummary], *,
                    emotions: Sequence[str] = EMOTIONS, config: dict | None = None,
                    seed: int = 0, scenarios: Sequence[str] = SCENARIOS) -> dict:
    """Write labels.csv (assigning missing parts), Mean/Std over the train part, corpus.json.

    ``scenarios`` / ``emotions`` are the corpus's label spaces in its own order (Table-1 order,
    = scenario order 1); they are recorded in corpus.json.  Labels without a motion are
    dropped (except from the paper's fixed 8 scenarios and 7 emotions).  Returns the corpus.json dict.  Deterministic: rows are sorted by id first.
    """
    root = Path(root)
    summaries = sorted(summaries, key=lambda s: s.row["id"])
    if not summaries:
        raise DataError(root, "no motions to write", "pass at least one motion")
    labels = pd.DataFrame([s.row for s in summaries])
    if labels["id"].duplicated().any():
        dup = labels.loc[labels["id"].duplicated(), "id"].tolist()[:5]
        raise DataError(root, f"duplicate motion ids {dup}", "give every motion a unique id")
    for col, space in (("scenario", scenarios), ("emotion", emotions)):
        unknown = sorted(set(labels[col]) - set(space))
        if unknown:
            raise DataError(root, f"{col} label(s) {unknown[:5]} are not in the corpus's "
                            f"{col}s {list(space)}", f"pass {col}s= listing every {col}")
    if tuple(scenarios) != tuple(SCENARIOS):  # a corpus's own space: only labels it has
        scenarios = [s for s in scenarios if s in set(labels["scenario"])]
    if tuple(emotions) != tuple(EMOTIONS):
        emotions = [e for e in emotions if e in set(labels["emotion"])]
    missing = labels["part"].isna()
    if missing.any():
        labels.loc[missing, "part"] = assign_parts(labels, seed)[missing]
    train = (labels["part"] == "train").to_numpy()
    if not train.any():
        raise DataError(root, "no motion is in the train part", "label some motions part=train")
    count = sum(s.n_frames for s, t in zip(summaries, train) if t)
    total = np.sum([s.sum for s, t in zip(summaries, train) if t], axis=0)
    total_sq = np.sum([s.sumsq for s, t in zip(summaries, train) if t], axis=0)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    std = np.maximum(std, STD_FLOOR)
    mean_b, std_b = _npy_bytes(mean.astype(np.float32)), _npy_bytes(std.astype(np.float32))
    (root / "Mean.npy").write_bytes(mean_b)
    (root / "Std.npy").write_bytes(std_b)
    csv = labels.to_csv(index=False, lineterminator="\n")
    atomic_write_text(root / "labels.csv", csv)

    h = hashlib.sha256()
    for s in summaries:
        h.update(s.digest.encode())
    for blob in (mean_b, std_b, csv.encode()):
        h.update(hashlib.sha256(blob).digest())
    counts = {sc: {em: int(n) for em, n in g.groupby("emotion").size().items()}
              for sc, g in labels.groupby("scenario")}
    meta = {
        "format": "humanml3d", "format_version": FORMAT_VERSION,
        "config": config or {}, "scenarios": list(scenarios), "emotions": list(emotions),
        "n_motions": len(labels), "n_frames": int(sum(s.n_frames for s in summaries)),
        "counts": counts, "parts": {p: int((labels["part"] == p).sum()) for p in PARTS},
        "content_hash": h.hexdigest()[:16],
    }
    atomic_write_json(root / "corpus.json", meta)
    return meta


def write_humanml3d(out_dir: str | os.PathLike, motions: Iterable[Motion], *,
                    emotions: Sequence[str] = EMOTIONS, config: dict | None = None, seed: int = 0,
                    overwrite: bool = False, scenarios: Sequence[str] = SCENARIOS) -> Path:
    """Write ``motions`` as a complete HumanML3D-format folder, atomically (temp folder + rename).

    Motions without a ``part`` get one from :func:`assign_parts` (seeded, stratified).
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        summaries = [write_motion_files(tmp, m) for m in motions]
        finalize_corpus(tmp, summaries, emotions=emotions, config=config, seed=seed,
                        scenarios=scenarios)
    return out_dir


# ----------------------------------------------------------------------------- reading
def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an .npy file from its header only; DataError if it is not a whole,
    float, C-order array (e.g. truncated while copying)."""
    fix = "re-export or re-copy this file (float32 array saved with numpy.save)"
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _fortran, dtype = read(fh)
            offset = fh.tell()
    except (ValueError, OSError, EOFError) as err:
        raise DataError(path, f"not a readable .npy file ({err})", fix) from err
    if dtype.kind != "f":
        raise DataError(path, f"holds {dtype} values, expected floats", fix)
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise DataError(path, f"is truncated ({size} of {expected} bytes)", fix)
    return tuple(shape), dtype


def _load_stat(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataError(path, "missing", "the corpus folder needs Mean.npy and Std.npy (263,)")
    shape, _ = read_npy_header(path)
    arr = np.load(path).astype(np.float32)
    if shape != (FEATURE_DIM,) or not np.isfinite(arr).all():
        raise DataError(path, f"must be {FEATURE_DIM} finite floats, got shape {shape}",
                        "recompute the statistics over the train part")
    return arr


class Corpus:
    """A validated HumanML3D-format corpus with labels; features are read lazily.

    ``labels``: DataFrame (id, scenario, emotion, source, part, n_frames, ...), one row per motion,
    sorted by id.  ``scenarios`` / ``emotions``: tuples whose index is the class id, the corpus's
    own label spaces (corpus.json; the paper's 8 scenarios by default).
    """

    def __init__(self, root: Path, labels: pd.DataFrame, mean: np.ndarray, std: np.ndarray,
                 emotions: Sequence[str], meta: dict, cache: bool = True,
                 scenarios: Sequence[str] = SCENARIOS):
        self.root = root
        self.labels = labels.reset_index(drop=True)
        self.mean, self.std = mean, std
        self.scenarios: tuple[str, ...] = tuple(scenarios)
        self.emotions: tuple[str, ...] = tuple(emotions)
        self.meta = meta
        self.cache = cache
        self._cache: dict[str, np.ndarray] = {}
        self._row = {i: k for k, i in enumerate(self.labels["id"])}
        self._hash: str | None = meta.get("content_hash") if meta else None

    # -- identity
    @property
    def ids(self) -> list[str]:
        return self.labels["id"].tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, motion_id: str) -> bool:
        return motion_id in self._row

    def __repr__(self) -> str:
        return f"Corpus({str(self.root)!r}, {len(self)} motions, hash {self.content_hash})"

    @property
    def content_hash(self) -> str:
        """From corpus.json, else computed once over labels, statistics, features and texts."""
        if self._hash is None:
            files = [self.feature_path(i) for i in self.ids] + [self.text_path(i) for i in self.ids]
            files += [self.root / "Mean.npy", self.root / "Std.npy"]
            labels_blob = self.labels.drop(columns=["n_frames"]).to_csv(index=False).encode()
            self._hash = hashlib.sha256(hash_files(files, self.root).encode() + labels_blob
                                        ).hexdigest()[:16]
        return self._hash

    # -- paths and rows
    def feature_path(self, motion_id: str) -> Path:
        return self.root / "new_joint_vecs" / f"{motion_id}.npy"

    def text_path(self, motion_id: str) -> Path:
        return self.root / "texts" / f"{motion_id}.txt"

    def row(self, motion_id: str) -> pd.Series:
        if motion_id not in self._row:
            raise KeyError(f"motion {motion_id!r} is not in corpus {self.root}")
        return self.labels.iloc[self._row[motion_id]]

    def scenario_index(self, motion_id: str) -> int:
        return self.scenarios.index(self.row(motion_id)["scenario"])

    def emotion_index(self, motion_id: str) -> int:
        return self.emotions.index(self.row(motion_id)["emotion"])

    def part_ids(self, part: str) -> list[str]:
        return self.labels.loc[self.labels["part"] == part, "id"].tolist()

    # -- data
    def features(self, motion_id: str) -> np.ndarray:
        """Raw (not normalised) features ``(T, 263)`` float32; DataError on NaN/inf or bad files."""
        if motion_id in self._cache:
            return self._cache[motion_id]
        self.row(motion_id)
        path = self.feature_path(motion_id)
        read_npy_header(path)
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(path, f"cannot be read ({err})", "re-export this file") from err
        if arr.ndim != 2 or arr.shape[1] != FEATURE_DIM:
            raise DataError(path, f"has shape {arr.shape}, expected (T, {FEATURE_DIM})",
                            "use HumanML3D new_joint_vecs features")
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            raise DataError(path, f"{int(bad.sum())} frame(s) contain NaN/inf (first: frame "
                            f"{int(np.argmax(bad))})", "drop this motion from labels.csv or fix it")
        arr = arr.astype(np.float32, copy=False)
        if self.cache:
            self._cache[motion_id] = arr
        return arr

    def texts(self, motion_id: str) -> list[str]:
        """The captions of a motion (the part before the first '#' of each non-empty line)."""
        self.row(motion_id)
        path = self.text_path(motion_id)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(path, f"cannot be read ({err})", "write a UTF-8 text file") from err
        caps = [ln.split("#", 1)[0].strip() for ln in lines]
        caps = [c for c in caps if c]
        if not caps:
            raise DataError(path, "has no description", "write one caption per line")
        return caps

    def joints(self, motion_id: str) -> np.ndarray:
        """Joint positions ``(T', 22, 3)`` metres, from new_joints/ (if present)."""
        path = self.root / "new_joints" / f"{motion_id}.npy"
        if not path.exists():
            raise DataError(path, "missing", "this corpus has no new_joints/ file for the motion")
        read_npy_header(path)
        return np.load(path).astype(np.float32)

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        return (feats - self.mean) / self.std


def _read_labels(path: Path, root: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(path, "missing", "write a labels.csv with columns id, scenario, emotion "
                        "(and optionally source, part), or pass labels_csv=")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"is not a readable CSV ({err})", "write a comma-separated file") from err
    need = [c for c in ("id", "scenario", "emotion") if c not in df.columns]
    if need:
        raise DataError(path, f"lacks column(s) {need}", "add columns id, scenario, emotion")
    df["id"] = df["id"].str.strip()
    dup = df["id"][df["id"].duplicated()].tolist()
    if dup:
        raise DataError(path, f"repeats id(s) {dup[:5]}", "list every motion once")
    if "source" not in df.columns or (df["source"] == "").all():
        df["source"] = root.name
    return df


def check_label_values(df: pd.DataFrame, path: Path, emotions: Sequence[str],
                       scenarios: Sequence[str] = SCENARIOS) -> None:
    """Normalise and validate the scenario/emotion columns of a labels table in place
    (scenarios by name or slug, case-insensitively, against the corpus's ``scenarios``)."""
    known = tuple(scenarios)
    try:
        df["scenario"] = [resolve_scenario(s, known) for s in df["scenario"]]
    except ValueError as err:
        fix = ("use one of the 8 scenario names" if known == tuple(SCENARIOS) else
               "use the corpus's scenario names")
        raise DataError(path, str(err), f"{fix}, or list the corpus's own scenarios (and "
                        "emotions) in corpus.json as \"scenarios\": [...]") from err
    df["emotion"] = df["emotion"].str.strip().str.lower()
    unknown = sorted(set(df["emotion"]) - set(emotions))
    if unknown:
        raise DataError(path, f"unknown emotion label(s) {unknown}",
                        f"use one of {', '.join(emotions)} or pass emotions=")
    if "part" in df.columns and (df["part"] != "").all():
        bad = sorted(set(df["part"]) - set(PARTS))
        if bad:
            raise DataError(path, f"unknown part(s) {bad}", "use train, val or test")


def load_corpus(root: str | os.PathLike, labels_csv: str | os.PathLike | None = None, *,
                emotions: Sequence[str] | None = None, validate: bool | str = True,
                cache: bool = True, part_seed: int = 0,
                scenarios: Sequence[str] | None = None) -> Corpus:
    """Open a HumanML3D-format corpus with its labels.

    The label spaces are ``scenarios`` / ``emotions`` if given, else corpus.json's, else the
    paper's 8 scenarios and 7 emotions.

    ``validate=True`` checks cheaply (npy headers, sizes, text files present and non-empty);
    ``"full"`` also reads every feature file for NaN/inf; ``False`` skips per-file checks.
    A missing ``part`` column is assigned with :func:`assign_parts` (``part_seed``).
    """
    root = Path(root)
    if not (root / "new_joint_vecs").is_dir():
        raise DataError(root, "has no new_joint_vecs/ folder", "point to a HumanML3D-format folder")
    meta: dict = {}
    if (root / "corpus.json").exists():
        try:
            meta = json.loads((root / "corpus.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(root / "corpus.json", f"is not valid JSON ({err})",
                            "rebuild the corpus") from err
    labels_path = Path(labels_csv) if labels_csv else root / "labels.csv"
    if labels_csv:
        meta = {k: v for k, v in meta.items() if k != "content_hash"}  # other labels, other corpus
    emotions = tuple(emotions or meta.get("emotions") or EMOTIONS)
    scenarios = tuple(scenarios or meta.get("scenarios") or SCENARIOS)
    if len(scenarios) < 2 or len(set(scenarios)) != len(scenarios) or len(emotions) < 1:
        raise DataError(root / "corpus.json", f"needs >= 2 distinct scenarios and >= 1 emotion, "
                        f"got scenarios {list(scenarios)}, emotions {list(emotions)}",
                        "list the corpus's scenarios and emotions in corpus.json")
    df = _read_labels(labels_path, root)
    check_label_values(df, labels_path, emotions, scenarios)
    if "part" not in df.columns or (df["part"] == "").any():
        df["part"] = assign_parts(df, part_seed)

    feat_dir = root / "new_joint_vecs"
    paths = [feat_dir / f"{i}.npy" for i in df["id"]]
    absent = [i for i, p in zip(df["id"], paths) if not p.exists()]
    if absent:
        raise DataError(labels_path, f"names {len(absent)} id(s) with no motion file in {feat_dir} "
                        f"(e.g. {absent[:5]})", "remove those rows or add the .npy files")
    n_frames = []
    for motion_id, path in zip(df["id"], paths):
        if validate:
            shape, _ = read_npy_header(path)
            if len(shape) != 2 or shape[1] != FEATURE_DIM:
                raise DataError(path, f"has shape {shape}, expected (T, {FEATURE_DIM})",
                                "use HumanML3D new_joint_vecs features (263 per frame)")
            text = root / "texts" / f"{motion_id}.txt"
            if not text.exists() or text.stat().st_size == 0:
                raise DataError(text, "missing or empty: every motion needs a description",
                                "write texts/<id>.txt with one caption per line")
            n_frames.append(shape[0])
        else:
            n_frames.append(-1)
    df["n_frames"] = n_frames
    df = df.sort_values("id", kind="stable").reset_index(drop=True)
    corpus = Corpus(root, df, _load_stat(root / "Mean.npy"), _load_stat(root / "Std.npy"),
                    emotions, meta, cache=cache, scenarios=scenarios)
    if validate == "full":
        for motion_id in corpus.ids:
            corpus.features(motion_id)
            corpus.texts(motion_id)
        if not cache:
            corpus._cache.clear()
    return corpus
