"""BVH files -> a HumanML3D-format corpus (``l2emg data import-bvh``).

Per file: :func:`benchmark.corpus.bvh.read_bvh` -> forward kinematics -> a joint map onto the 22
SMPL joints (:mod:`benchmark.corpus.bvh_retarget`) -> up axis to +y -> metres -> linear
resampling to 20 fps -> :func:`benchmark.motion.joints_to_features` (retargeted onto HumanML3D's
reference skeleton by default, as HumanML3D's own pipeline does) -> written with
:func:`benchmark.corpus.write_humanml3d`.

Labels come from a CSV (``file, scenario, emotion[, text, id, part]``; ``text`` may hold several
captions separated by ``|``) or from the file names (``--name-pattern`` with ``{content}``,
``{emotion}`` or ``{style}``, ``{scenario}``, any other ``{field}``) plus a content -> scenario
map.  The label spaces are the corpus's own, in the order they first appear (labels CSV rows,
else the scenario map), and are recorded in corpus.json.
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from benchmark.corpus.bvh import read_bvh
from benchmark.io import DataError

TARGET_FPS = 20.0


@dataclass(frozen=True)
class BvhImportConfig:
    skeleton: str = "auto"          # auto | bandai | cmu | mixamo | smpl | MAP.json
    unit: float | None = None       # metres per file unit; None = detect from the body size
    up: str = "auto"                # auto | y | z
    fps: float = TARGET_FPS
    retarget: bool = True           # HumanML3D's uniform skeleton (reference bone lengths)

    def __post_init__(self):
        if self.up not in ("auto", "y", "z"):
            raise DataError(None, f"unknown --up {self.up!r}", "use auto, y or z")
        if not self.fps > 0:
            raise DataError(None, f"--fps must be positive, got {self.fps}", "pass --fps 20")


def bvh_joints(path: str | os.PathLike, cfg: BvhImportConfig = BvhImportConfig()
               ) -> tuple[np.ndarray, dict]:
    """One file -> ``(T, 22, 3)`` SMPL joints in metres, y up, at ``cfg.fps``; plus what was
    detected (map, unit, up axis, source fps and frames)."""
    from benchmark.corpus.bvh import forward_kinematics
    from benchmark.corpus.bvh_retarget import (Z_UP_TO_Y_UP, detect_unit, detect_up, map_joints,
                                               resolve_map)
    from benchmark.corpus.motionx import resample

    bvh = read_bvh(path)
    where = str(path)
    map_name, joint_map = resolve_map(bvh.names, cfg.skeleton, where)
    joints = map_joints(forward_kinematics(bvh), bvh.names, joint_map)
    up = detect_up(joints, where) if cfg.up == "auto" else cfg.up
    if up == "z":
        joints = joints @ Z_UP_TO_Y_UP.T
    if cfg.unit is None:
        unit_name, unit = detect_unit(joints, where)
    else:
        unit_name, unit = f"{cfg.unit:g} m", cfg.unit
    joints = joints * unit
    n_out = int(np.floor((bvh.n_frames - 1) * cfg.fps / bvh.fps + 1e-6)) + 1
    if n_out < 3:
        raise DataError(where, f"only {bvh.n_frames} frames at {bvh.fps:g} fps: too short for "
                        f"{cfg.fps:g} fps features (needs >= 3 resampled frames)",
                        "drop this file or export a longer take")
    joints = resample(joints, bvh.fps, cfg.fps)[:n_out]
    info = {"map": map_name, "unit": unit_name, "metres_per_unit": unit, "up": up,
            "source_fps": bvh.fps, "source_frames": bvh.n_frames}
    return joints, info


def convert_bvh(path: str | os.PathLike, cfg: BvhImportConfig = BvhImportConfig()
                ) -> tuple[np.ndarray, np.ndarray, dict]:
    """One file -> (features ``(T-1, 263)`` float32, new_joints ``(T, 22, 3)`` float32, info)."""
    from benchmark.motion import FeatureConfig, canonicalize, joints_to_features, retarget

    joints, info = bvh_joints(path, cfg)
    feats = joints_to_features(joints, FeatureConfig(retarget=cfg.retarget))
    pos = retarget(joints) if cfg.retarget else joints
    return (np.asarray(feats, dtype=np.float32), np.asarray(canonicalize(pos), dtype=np.float32),
            info)


# ----------------------------------------------------------------------------- labels
def pattern_regex(pattern: str) -> re.Pattern:
    """``'dataset-1_{content}_{emotion}_{take}'`` -> an anchored regex with named groups."""
    parts = re.split(r"\{(\w+)\}", pattern)
    fields = parts[1::2]
    if not fields or len(set(fields)) != len(fields):
        raise DataError(None, f"--name-pattern {pattern!r} needs distinct {{field}} names",
                        "e.g. --name-pattern '{content}_{emotion}_{take}'")
    rx = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(f"^{rx}$")


def read_scenario_map(path: str | os.PathLike) -> dict[str, str]:
    """content -> scenario, from JSON ``{"walk": "Locomotion", ...}`` or CSV ``content,scenario``
    (order = the scenario order of the corpus)."""
    path = Path(path)
    fix = 'write JSON {"walk": "Locomotion", ...} or a CSV with columns content,scenario'
    if not path.is_file():
        raise DataError(path, "scenario map not found", fix)
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}", f"is not valid JSON ({err.msg})", fix) from err
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise DataError(path, "must map content names to scenario names", fix)
        return {str(k).strip(): v.strip() for k, v in raw.items()}
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"is not a readable CSV ({err})", fix) from err
    if not {"content", "scenario"} <= set(df.columns):
        raise DataError(path, f"lacks columns content,scenario (has {list(df.columns)})", fix)
    return {c.strip(): s.strip() for c, s in zip(df["content"], df["scenario"])}


def _from_labels(files: list[Path], root: Path, labels: Path) -> pd.DataFrame:
    fix = "columns: file,scenario,emotion (+ optional text, id, part); file relative to --bvh-dir"
    try:
        df = pd.read_csv(labels, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(labels, f"is not a readable CSV ({err})", fix) from err
    need = [c for c in ("file", "scenario", "emotion") if c not in df.columns]
    if need or not len(df):
        raise DataError(labels, f"lacks column(s) {need} or rows", fix)
    df = df.apply(lambda c: c.str.strip())
    known = {str(f.relative_to(root)): f for f in files}
    known.update({k[:-4]: v for k, v in list(known.items())})
    rows = []
    for line, r in enumerate(df.to_dict("records"), start=2):
        if r["file"] not in known:
            raise DataError(f"{labels}:{line}", f"file {r['file']!r} is not a .bvh file in "
                            f"{root}", "fix the file column or --bvh-dir")
        if not r["scenario"] or not r["emotion"]:
            raise DataError(f"{labels}:{line}", "empty scenario or emotion", fix)
        texts = [t.strip() for t in r.get("text", "").split("|") if t.strip()] or None
        rows.append({"path": known[r["file"]], "id": r.get("id") or known[r["file"]].stem,
                     "scenario": r["scenario"], "emotion": r["emotion"].lower(), "texts": texts,
                     "part": r.get("part") or None,
                     "content": r.get("content") or known[r["file"]].stem})
    return pd.DataFrame(rows)


def _from_names(files: list[Path], pattern: str, scenario_map: dict[str, str] | None
                ) -> tuple[pd.DataFrame, list[tuple[Path, str]]]:
    rx = pattern_regex(pattern)
    emo_key = "emotion" if "emotion" in rx.groupindex else "style" if "style" in rx.groupindex \
        else None
    if emo_key is None:
        raise DataError(None, f"--name-pattern {pattern!r} has no {{emotion}} (or {{style}})",
                        "e.g. --name-pattern '{content}_{emotion}_{take}', or pass --labels")
    if "scenario" not in rx.groupindex and scenario_map is None:
        raise DataError(None, "no scenario for the files: --name-pattern has no {scenario} and "
                        "no --scenario-map was given", "pass --scenario-map FILE "
                        "(content -> scenario) or --labels FILE.csv")
    rows, refused = [], []
    for f in files:
        m = rx.match(f.stem)
        if not m:
            refused.append((f, f"name does not match --name-pattern {pattern!r}"))
            continue
        g = m.groupdict()
        content = g.get("content", f.stem)
        scenario = g.get("scenario") or (scenario_map or {}).get(content)
        if not scenario:
            refused.append((f, f"content {content!r} is not in the scenario map"))
            continue
        rows.append({"path": f, "id": f.stem, "scenario": scenario, "emotion": g[emo_key].lower(),
                     "texts": None, "part": None, "content": content, "fields": g})
    return pd.DataFrame(rows), refused


def default_captions(content: str, emotion: str) -> list[str]:
    """Plain captions from a content name and an emotion/style label."""
    what = content.replace("-", " ").replace("_", " ")
    return [f"a person performs {what} in a {emotion} manner.",
            f"someone does {what}, looking {emotion}."]


def plan_import(bvh_dir: Path, labels: Path | None = None, name_pattern: str | None = None,
                scenario_map: dict[str, str] | None = None
                ) -> tuple[pd.DataFrame, list[tuple[Path, str]], list[str], list[str]]:
    """Rows to import (path, id, scenario, emotion, texts, part, content), files refused by the
    naming, and the label spaces (scenarios, emotions) in corpus order."""
    if not bvh_dir.is_dir():
        raise DataError(bvh_dir, "--bvh-dir folder not found", "pass a folder of .bvh files")
    files = sorted(p for p in bvh_dir.rglob("*") if p.suffix.lower() == ".bvh" and p.is_file())
    if not files:
        raise DataError(bvh_dir, "has no .bvh files", "pass the folder holding the .bvh files")
    if labels is not None:
        plan, refused = _from_labels(files, bvh_dir, labels), []
    elif name_pattern:
        plan, refused = _from_names(files, name_pattern, scenario_map)
    else:
        raise DataError(bvh_dir, "no labels: pass --labels FILE.csv or --name-pattern",
                        "e.g. --name-pattern '{content}_{emotion}_{take}' --scenario-map map.json")
    if len(plan) and plan["id"].duplicated().any():
        raise DataError(bvh_dir, f"two files give the motion id {plan['id'][plan['id'].duplicated()].iloc[0]!r}",
                        "give unique ids in an id column of --labels")
    order = list(dict.fromkeys(scenario_map.values())) if scenario_map and labels is None else []
    scenarios = [s for s in order if len(plan) and s in set(plan["scenario"])]
    scenarios += [s for s in dict.fromkeys(plan["scenario"]) if s not in scenarios] if len(plan) else []
    emotions = list(dict.fromkeys(plan["emotion"])) if len(plan) else []
    return plan, refused, scenarios, emotions


def iter_bvh_motions(plan: pd.DataFrame, cfg: BvhImportConfig, skip_bad: bool,
                     refused: list[tuple[Path, str]], captions: Callable | None = None,
                     source: str = "bvh", log: Callable[[str], None] | None = None
                     ) -> Iterator:
    """Convert row by row; refused files go to ``refused`` (and ``log``).  Without ``skip_bad``
    the remaining files are still checked, then one DataError names them all."""
    from tqdm import tqdm

    from benchmark.corpus.humanml3d import Motion

    log = log or (lambda msg: print(msg, file=sys.stderr))
    for f, why in refused:
        log(f"l2emg: {'skipped' if skip_bad else 'refused'} {f}: {why}")
    captions = captions or (lambda row: default_captions(row["content"], row["emotion"]))
    for row in tqdm(plan.to_dict("records"), desc="bvh", unit="file", disable=None):
        try:
            feats, joints, _info = convert_bvh(row["path"], cfg)
        except DataError as err:
            refused.append((row["path"], str(err)))
            log(f"l2emg: {'skipped' if skip_bad else 'refused'}: {err}")
            continue
        if refused and not skip_bad:
            continue  # checking only: the import will fail
        yield Motion(id=row["id"], features=feats, texts=row["texts"] or captions(row),
                     scenario=row["scenario"], emotion=row["emotion"], source=source,
                     part=row["part"], joints=joints, extra={"content": row["content"],
                                                             "file": Path(row["path"]).name})
    if refused and not skip_bad:
        raise DataError(refused[0][0], f"{len(refused)} file(s) refused, nothing written; first: "
                        f"{refused[0][1]}", "fix or remove those files, or pass --skip-bad to "
                        "import the others")


def import_bvh(bvh_dir: str | os.PathLike, out: str | os.PathLike,
               cfg: BvhImportConfig = BvhImportConfig(), *, labels: str | os.PathLike | None = None,
               name_pattern: str | None = None, scenario_map: dict[str, str] | None = None,
               skip_bad: bool = False, captions: Callable | None = None, source: str = "bvh",
               config: dict | None = None, seed: int = 0, overwrite: bool = False,
               log: Callable[[str], None] | None = None) -> Path:
    """Import a folder of BVH files as a HumanML3D-format corpus at ``out`` (atomically)."""
    bvh_dir = Path(bvh_dir)
    plan, refused, scenarios, emotions = plan_import(bvh_dir, Path(labels) if labels else None,
                                                     name_pattern, scenario_map)
    meta = {"bvh_dir": str(bvh_dir), "name_pattern": name_pattern, **(config or {})}
    return write_plan(plan, out, cfg, scenarios, emotions, refused=refused, skip_bad=skip_bad,
                      captions=captions, source=source, config=meta, seed=seed,
                      overwrite=overwrite, log=log, where=labels or bvh_dir)


def write_plan(plan: pd.DataFrame, out: str | os.PathLike, cfg: BvhImportConfig,
               scenarios: list[str], emotions: list[str], *,
               refused: list[tuple[Path, str]] | None = None, skip_bad: bool = False,
               captions: Callable | None = None, source: str = "bvh", config: dict | None = None,
               seed: int = 0, overwrite: bool = False, log: Callable[[str], None] | None = None,
               where: str | os.PathLike | None = None) -> Path:
    """Convert the rows of an import plan (see :func:`plan_import`) and write the corpus."""
    from benchmark.corpus.humanml3d import write_humanml3d

    refused = list(refused or [])
    if refused and not skip_bad and not len(plan):
        raise DataError(refused[0][0], refused[0][1], "fix --name-pattern or pass --skip-bad")
    if len(plan) == 0:
        raise DataError(where, "no file could be labelled", "check --name-pattern / --labels")
    if len(scenarios) < 2:
        raise DataError(where, f"the import has {len(scenarios)} scenario(s) ({scenarios}); "
                        "L2-EMG streams need at least 2", "label the files with 2 or more scenarios")
    meta = {"importer": "bvh", "skeleton": cfg.skeleton, "unit": cfg.unit, "up": cfg.up,
            "fps": cfg.fps, "retarget": cfg.retarget, **(config or {})}
    motions = iter_bvh_motions(plan, cfg, skip_bad, refused, captions, source, log)
    out = write_humanml3d(out, motions, scenarios=scenarios, emotions=emotions, config=meta,
                          seed=seed, overwrite=overwrite)
    return out
