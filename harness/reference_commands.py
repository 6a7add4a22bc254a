"""``l2emg stages release``: copy a preset's stages into the package as a reference version
(:mod:`benchmark.reference`)."""
from __future__ import annotations

from pathlib import Path

from benchmark.reference import ROOT, STAGES, VERSION, release


def release_command_args(p) -> None:
    from harness.run_config import DEFAULT_PRESET, PRESETS

    p.add_argument("--preset", default=DEFAULT_PRESET, choices=tuple(PRESETS),
                   help="whose stages to release (default: the embedded default)")
    p.add_argument("--cache", help="stage cache that holds them (built there if absent)")
    p.add_argument("--version", default=VERSION)
    p.add_argument("--out", default=str(ROOT), help="reference_stages folder to write into")


def release_command(args) -> int:
    from harness.run_config import RunConfig
    from harness.runner import build_run_stages, stage_method

    cfg = RunConfig.from_options(method=stage_method(), out=".", preset=args.preset,
                                 **({"cache": args.cache} if args.cache else {}),
                                 rebuild_stages=True)
    stages, _ = build_run_stages(cfg)
    folders = {"tokenizer": stages.tokenizer.saved_dir, "evaluator": stages.evaluator.root,
               "backbone": stages.backbone}
    out = release(folders, stages.recipe, stages.hashes["corpus"],
                  {k: stages.hashes[k] for k in STAGES}, args.version, Path(args.out))
    print(f"released {args.version} -> {out}")
    return 0
