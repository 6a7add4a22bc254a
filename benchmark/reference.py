"""The released reference stages: one yardstick on every machine.

The default's tokenizer, evaluator (text and motion encoders, emotion classifier) and pretrained
tiny backbone are trained once, versioned (``l2emg-ref-v1``) and shipped inside the package with
the SHA-256 of every file and the recipe that made them (``manifest.json``).  A run whose stage
recipe is the reference's uses them instead of training its own, so two labs score with the same
evaluator on the same test motions; the corpus itself is regenerated (its generator is
deterministic across machines and thread counts) and must hash to the manifest's content hash.
``--rebuild-stages`` trains them anew instead: such stages are recorded as ``rebuilt`` and never
merged with the reference version on one leaderboard.  Only the shipped stages are the
reference: stage training is seeded, but float sums in it may differ across CPUs and thread
counts.

Maintainers release a version with ``l2emg stages release`` (:mod:`harness.reference_commands`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from benchmark.io import DataError, atomic_dir

VERSION = "l2emg-ref-v1"
ROOT = Path(__file__).resolve().parent / "reference_stages"
MANIFEST = "manifest.json"
STAGES = ("tokenizer", "evaluator", "backbone")
REBUILT = "rebuilt"       # stages_version of stages trained on this machine


def recipe(*, stream: str, corpus_scale: float, scenario_style: float, tokenizer_preset: str,
           evaluator_preset: str, tiny_config, pretrain) -> dict:
    """What the shipped stages depend on (besides the code that trains them)."""
    return {"stream": stream, "corpus_scale": float(corpus_scale),
            "scenario_style": float(scenario_style), "tokenizer_preset": tokenizer_preset,
            "evaluator_preset": evaluator_preset, "seed": 0,
            "tiny_backbone": dataclasses.asdict(tiny_config),
            "pretrain": dataclasses.asdict(pretrain)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(version: str = VERSION, root: Path | None = None) -> dict | None:
    """The manifest of a shipped version (None: not shipped)."""
    path = Path(root or ROOT) / version / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise DataError(path, f"unreadable reference manifest ({err})",
                        "reinstall the package (pip install -e .)") from err


def find(wanted: dict, root: Path | None = None) -> dict | None:
    """The shipped version whose recipe is ``wanted`` (None: train the stages here)."""
    root = Path(root or ROOT)
    if not Path(root).is_dir():
        return None
    for folder in sorted(Path(root).iterdir(), reverse=True):
        meta = manifest(folder.name, root)
        if meta is not None and meta.get("recipe") == json.loads(json.dumps(wanted)):
            return meta
    return None


def verify(meta: dict, root: Path | None = None) -> dict[str, Path]:
    """Check every shipped file's SHA-256; returns {stage: folder}.  A changed or missing file
    is refused in one line (the reference would silently be another yardstick)."""
    base = Path(root or ROOT) / meta["version"]
    for rel, digest in sorted(meta["files"].items()):
        path = base / rel
        if not path.is_file():
            raise DataError(path, "a reference stage file is missing",
                            "reinstall the package, or pass --rebuild-stages to train the stages here")
        if _sha256(path) != digest:
            raise DataError(path, f"checksum {_sha256(path)[:16]} != the manifest's {digest[:16]}",
                            "reinstall the package, or pass --rebuild-stages to train the stages here")
    return {stage: base / stage for stage in STAGES}


def check_corpus(meta: dict, corpus_hash: str) -> None:
    """The corpus built here must be the one the reference stages were made on."""
    if corpus_hash != meta["corpus_hash"]:
        raise DataError(None, f"the corpus built here hashes {corpus_hash}, the reference stages "
                        f"{meta['version']} were made on {meta['corpus_hash']}: this machine's "
                        "generator differs (docs/corpus.md: determinism)",
                        "report it with `l2emg data synth` output attached; pass --rebuild-stages "
                        "to train stages on this corpus (numbers then not comparable)")


def release(stage_folders: dict[str, Path], wanted: dict, corpus_hash: str,
            stage_hashes: dict[str, str], version: str = VERSION, root: Path | None = None) -> Path:
    """Copy the stages into ``root/version`` with their checksums and recipe."""
    out = Path(root or ROOT) / version
    with atomic_dir(out, overwrite=True) as tmp:
        files = {}
        for stage in STAGES:
            shutil.copytree(stage_folders[stage], tmp / stage)
            for p in sorted((tmp / stage).rglob("*")):
                if p.is_file():
                    files[str(p.relative_to(tmp))] = _sha256(p)
        (tmp / MANIFEST).write_text(json.dumps({
            "version": version, "recipe": wanted, "corpus_hash": corpus_hash,
            "stage_hashes": stage_hashes, "files": files,
            "made_by": "l2emg stages release (benchmark/reference.py)"}, indent=1, sort_keys=True) + "\n")
    return out
