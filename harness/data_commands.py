"""``l2emg data ...`` commands: synth, splits, info, import-motionx, import-bvh, bandai.

Each command is ``NAME_args(parser)`` + ``NAME(args) -> int``; heavy imports stay inside.
"""
from __future__ import annotations

import argparse
from pathlib import Path


# ----------------------------------------------------------------------------- synth
def synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="corpus folder to create")
    p.add_argument("--scale", type=float, default=0.1,
                   help="fraction of Table 1's 19,916 motions (1.0 = full size; default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--scenario-style", type=float, default=0.0, metavar="W",
                   help="strength of each scenario's own expression of each emotion on top of the "
                        "shared one (0 = none, the default; 1 = shifts about as large as the "
                        "shared styles): gives sequential training something to forget")
    p.add_argument("--stream", default="paper", choices=("paper", "conflict"),
                   help="paper: Table 1's proportions and per-scenario verbs (the default); "
                        "conflict: 8 balanced scenarios realising shared phrases with their own "
                        "actions, held-out emotions, 3.2 s motions (--scale 1 = 3,144 motions; "
                        "docs/corpus.md)")


def synth(args: argparse.Namespace) -> int:
    from benchmark.corpus import build_corpus, load_corpus
    from benchmark.io import DataError

    if not args.scale > 0:
        raise DataError(None, f"--scale must be positive, got {args.scale}", "pass e.g. --scale 0.1")
    if not args.scenario_style >= 0:
        raise DataError(None, f"--scenario-style must be >= 0, got {args.scenario_style}",
                        "pass 0 (shared emotion styles) or a positive strength, e.g. 1")
    out = build_corpus(args.out, scale=args.scale, seed=args.seed, n_jobs=args.jobs,
                       overwrite=args.overwrite, progress=True, scenario_style=args.scenario_style,
                       stream=args.stream)
    corpus = load_corpus(out, validate=False)
    print(f"wrote {len(corpus)} motions to {out} (content hash {corpus.content_hash})")
    return 0


# ----------------------------------------------------------------------------- splits
def splits_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="corpus folder (HumanML3D format)")
    p.add_argument("--labels", type=Path, default=None, help="labels CSV (default DATA/labels.csv)")
    p.add_argument("--setting", required=True, choices=("unseen", "mixed"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stream", default="paper", choices=("paper", "conflict"),
                   help="sets the default --share: paper 0.2, conflict 0 (docs/corpus.md)")
    p.add_argument("--share", type=float, default=None,
                   help="Unseen: share of each subset drawn from the other scenarios (default: "
                        "the stream's, 0.2 for paper)")
    p.add_argument("--out", required=True, type=Path, help="manifest CSV to write (id,subset,part)")


def splits(args: argparse.Namespace) -> int:
    from benchmark.corpus import load_corpus
    from benchmark.splits import make_splits, save_manifest, summarize

    from benchmark.corpus.synth import STREAM_SPLIT_SHARE

    corpus = load_corpus(args.data, args.labels)
    share = STREAM_SPLIT_SHARE[args.stream] if args.share is None else args.share
    manifest = make_splits(corpus, args.setting, args.seed, share=share)
    save_manifest(manifest, args.out)
    table = summarize(corpus, manifest)
    print(table[["train", "val", "test", "total"]].to_string())
    print(f"wrote {args.setting} manifest ({len(manifest)} motions, "
          f"{manifest['subset'].nunique()} subsets) to {args.out}")
    return 0


# ----------------------------------------------------------------------------- info
def info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="corpus folder (HumanML3D format)")
    p.add_argument("--labels", type=Path, default=None, help="labels CSV (default DATA/labels.csv)")
    p.add_argument("--manifest", type=Path, default=None,
                   help="split manifest: rows become its subsets (default: one row per scenario)")
    p.add_argument("--csv", type=Path, default=None, help="also write the table as CSV")


def info(args: argparse.Namespace) -> int:
    import pandas as pd

    from benchmark.corpus import load_corpus
    from benchmark.io import atomic_write_text
    from benchmark.splits import load_manifest, manifest_setting, summarize

    corpus = load_corpus(args.data, args.labels)
    manifest = load_manifest(args.manifest, corpus) if args.manifest else None
    table = summarize(corpus, manifest)
    what = "scenarios" if manifest is None else f"{manifest_setting(manifest)} subsets"
    frames = int(corpus.labels["n_frames"].sum()) if "n_frames" in corpus.labels else None
    hours = f", {frames / 20 / 3600:.2f} h at 20 fps" if frames else ""
    print(f"corpus {corpus.root}: {len(corpus)} motions{hours}, hash {corpus.content_hash}")
    print(f"rows: {what}")
    with pd.option_context("display.width", 250, "display.max_columns", 64):
        print(table.to_string())
    if args.csv:
        atomic_write_text(args.csv, table.to_csv())
    return 0


# ----------------------------------------------------------------------------- motion-x
def import_motionx_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--motion-dir", required=True, type=Path,
                   help="Motion-X motion_data/smplx_322 folder of (T, 322) .npy clips")
    p.add_argument("--texts-dir", required=True, type=Path,
                   help="Motion-X texts/semantic_labels folder (same relative paths, .txt)")
    p.add_argument("--labels", required=True, type=Path,
                   help="CSV id,scenario,emotion[,source,part,path] of the clips to import")
    p.add_argument("--smplx-model-dir", required=True, type=Path,
                   help="folder with smplx/SMPLX_<GENDER>.npz from the SMPL-X download")
    p.add_argument("--out", required=True, type=Path, help="corpus folder to create")
    p.add_argument("--gender", default="neutral", choices=("neutral", "male", "female"))
    p.add_argument("--fps", type=float, default=30.0, help="source frame rate (Motion-X: 30)")
    p.add_argument("--up-axis", default="z", choices=("z", "y"),
                   help="up axis of the source world (Motion-X: z)")
    p.add_argument("--no-retarget", action="store_true",
                   help="keep each body's own bone lengths (HumanML3D retargets to one skeleton)")
    p.add_argument("--device", default="cpu", help="torch device for the body model")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val/test parts")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def import_motionx(args: argparse.Namespace) -> int:
    from benchmark.corpus import load_corpus
    from benchmark.corpus.motionx import MotionXConfig, import_motionx as run

    cfg = MotionXConfig(smplx_model_dir=args.smplx_model_dir, gender=args.gender,
                        source_fps=args.fps, up_axis=args.up_axis,
                        retarget=not args.no_retarget, device=args.device)
    out = run(args.motion_dir, args.texts_dir, args.labels, args.out, cfg, seed=args.seed,
              overwrite=args.overwrite)
    corpus = load_corpus(out, validate=False)
    print(f"wrote {len(corpus)} Motion-X motions to {out} (content hash {corpus.content_hash})")
    return 0


# ----------------------------------------------------------------------------- bvh
def import_bvh_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bvh-dir", required=True, type=Path, help="folder of .bvh files (searched "
                   "recursively)")
    p.add_argument("--out", required=True, type=Path, help="corpus folder to create")
    p.add_argument("--labels", type=Path, default=None,
                   help="CSV file,scenario,emotion[,text,id,part] (text: captions split by '|')")
    p.add_argument("--name-pattern", default=None,
                   help="labels from file names instead, e.g. 'dataset-1_{content}_{emotion}_{take}'")
    p.add_argument("--scenario-map", type=Path, default=None,
                   help="content -> scenario (JSON object or CSV content,scenario) for --name-pattern")
    p.add_argument("--skeleton", default="auto",
                   help="auto, bandai, cmu, mixamo, smpl or a joint-map JSON file (default auto)")
    p.add_argument("--unit", default="auto",
                   help="length unit: auto (from the body size), m, cm, mm, inch, cmu or metres "
                   "per unit")
    p.add_argument("--up", default="auto", choices=("auto", "y", "z"), help="up axis of the files")
    p.add_argument("--fps", type=float, default=20.0, help="output frame rate (HumanML3D: 20)")
    p.add_argument("--no-retarget", action="store_true",
                   help="keep the actor's bone lengths (HumanML3D retargets to one skeleton)")
    p.add_argument("--skip-bad", action="store_true",
                   help="import the other files when some are refused (each is reported)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val/test parts")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def import_bvh(args: argparse.Namespace) -> int:
    from benchmark.corpus import load_corpus
    from benchmark.corpus.bvh_import import BvhImportConfig, import_bvh as run, read_scenario_map
    from benchmark.corpus.bvh_retarget import parse_unit

    cfg = BvhImportConfig(skeleton=args.skeleton, unit=parse_unit(args.unit), up=args.up,
                          fps=args.fps, retarget=not args.no_retarget)
    smap = read_scenario_map(args.scenario_map) if args.scenario_map else None
    out = run(args.bvh_dir, args.out, cfg, labels=args.labels, name_pattern=args.name_pattern,
              scenario_map=smap, skip_bad=args.skip_bad, seed=args.seed, overwrite=args.overwrite)
    corpus = load_corpus(out, validate=False)
    print(f"wrote {len(corpus)} motions ({len(corpus.scenarios)} scenarios, "
          f"{len(corpus.emotions)} emotions) to {out} (content hash {corpus.content_hash})")
    return 0
