"""``l2emg backbone pretrain``: build (or reuse) a run preset's pretrained backbone stage."""
from __future__ import annotations

import json


def pretrain_command_args(parser) -> None:
    from benchmark.backbone.pretrain import RECIPES
    from benchmark.io import default_cache
    from harness.run_config import DEFAULT_PRESET

    a = parser.add_argument
    a("--cache", default=default_cache(), help="stage cache folder (default: the shared one, "
      "$L2EMG_CACHE or ~/.cache/l2emg)")
    a("--preset", default=DEFAULT_PRESET, help="run preset whose backbone to pretrain (default: the "
      f"embedded default, {DEFAULT_PRESET})")
    a("--data", help="corpus folder (default: the preset's synthetic corpus)")
    a("--recipe", choices=RECIPES, help="override the preset's pretraining recipe")
    a("--setting", default="unseen", choices=("unseen", "mixed"))


def pretrain_command(args) -> int:
    """Build (or reuse) the preset's pretrained backbone stage and print its record."""
    from harness.run_config import RunConfig
    from harness.runner import build_run_stages, pretrain_settings, stage_method

    cfg = RunConfig.from_options(method=stage_method(), out="-", setting=args.setting,
                                 preset=args.preset, data=args.data, cache=args.cache)
    if args.recipe:      # the same merge as `run --set pretrain.recipe=...`
        cfg = cfg.replace(pretrain=pretrain_settings(args.preset, {"recipe": args.recipe}))
    stages, _ = build_run_stages(cfg)
    meta = json.loads((stages.backbone / "backbone.json").read_text())
    print(f"backbone {stages.backbone} (hash {stages.hashes['backbone']}): "
          f"{json.dumps(meta.get('pretrain', {}))}")
    return 0
