"""``l2emg``: the command line.  Stays fast: a subcommand's module is imported only when that
subcommand is chosen.

Each entry of :data:`COMMANDS` maps a command path to ``"module:name"``; that module defines
``name_args(parser)`` (adds the arguments) and ``name(args) -> int`` (runs it).  Modules keep
heavy imports (torch, avalanche) inside the functions.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from benchmark.io import DataError

# (command words) -> ("module:function", one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("data", "synth"): ("harness.data_commands:synth", "build the embedded synthetic emotional corpus"),
    ("data", "splits"): ("harness.data_commands:splits", "write the Unseen or Mixed split manifest"),
    ("data", "info"): ("harness.data_commands:info", "print the Table-1-style summary of a corpus/split"),
    ("data", "import-motionx"): ("harness.data_commands:import_motionx",
                                 "convert Motion-X SMPL-X arrays to a HumanML3D-format folder"),
    ("data", "import-bvh"): ("harness.data_commands:import_bvh",
                             "convert BVH motion capture to a HumanML3D-format folder"),
    ("data", "bandai"): ("benchmark.corpus.bandai:bandai",
                         "build an L2-EMG corpus from the Bandai-Namco motion dataset (BVH)"),
    ("tokenizer", "train"): ("harness.tokenizer_commands:train", "train the VQ-VAE motion tokenizer"),
    ("evaluator", "train"): ("harness.evaluator_commands:train", "train the T2M evaluator and emotion classifier"),
    ("evaluator", "score"): ("harness.evaluator_commands:score", "score ground truth against itself (the ceiling)"),
    ("backbone", "pretrain"): ("harness.backbone_commands:pretrain_command",
                               "build (or reuse) a preset's pretrained tiny backbone stage"),
    ("stages", "release"): ("harness.reference_commands:release_command",
                            "copy a preset's stages into the package as a reference version"),
    ("methods",): ("harness.method_commands:methods", "list the registered strategies"),
    ("run",): ("harness.runner:run_command", "train one strategy through all experiences and evaluate"),
    ("sweep",): ("harness.sweep:sweep", "methods x settings x orders x seeds, resumable"),
    ("status",): ("harness.sweep_status:status", "finished / running / failed / pending runs of a sweep"),
    ("leaderboard",): ("leaderboard.commands:leaderboard", "tables (CSV + LaTeX) and figures from run folders"),
    ("floor",): ("harness.floor:floor",
                 "measure FR's no-forgetting floor on finished runs (regenerate the final model)"),
    ("validity",): ("leaderboard.commands:validity",
                    "does the protocol measure? chance, learning, upper bound, forgetting, noise"),
    ("compare",): ("leaderboard.commands:compare", "statistics across scenario orders and methods"),
    ("claims",): ("leaderboard.commands:claims",
                  "test pre-registered directional claims (Wilcoxon, Holm per family) on runs"),
    ("reference",): ("leaderboard.reproduce:reference",
                     "write reference results (mean and 95% CI per system, setting, metric) from runs"),
    ("publish",): ("leaderboard.publish:publish_command",
                   "a results/ folder from run folders: leaderboard, validity, claims, generated README"),
    ("reproduce",): ("leaderboard.reproduce:reproduce",
                     "compare your runs with reference results: inside the CI? same stages?"),
    ("report",): ("leaderboard.report:report",
                  "one self-contained HTML page: leaderboard, validity, claims, heat maps, motions"),
    ("bench",): ("harness.pipeline:bench", "everything end to end: corpus -> runs -> leaderboard"),
    ("export",): ("benchmark.corpus.bvh_export:export",
                  "write a run's generated and ground-truth samples as BVH (SMPL skeleton)"),
}


def _load(target: str):
    mod_name, fn_name = target.split(":")
    mod = importlib.import_module(mod_name)
    return getattr(mod, f"{fn_name}_args"), getattr(mod, fn_name)


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="l2emg", description="L2-EMG bench: lifelong empathic motion generation benchmark.")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    handlers: dict = {}
    for words, (target, help_) in COMMANDS.items():
        listed = help_.replace("%", "%%")          # argparse %-formats help, not descriptions
        if len(words) == 1:
            sub = top.add_parser(words[0], help=listed, description=help_)
        else:
            if words[0] not in groups:
                g = top.add_parser(words[0], help=f"{words[0]} commands")
                groups[words[0]] = g.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
            sub = groups[words[0]].add_parser(words[1], help=listed, description=help_)
        # configure only the chosen command (imports its module)
        if list(words) == argv[: len(words)]:
            add_args, fn = _load(target)
            add_args(sub)
            sub.set_defaults(_handler=fn)
            handlers[words] = fn
    return parser, handlers


def quiet_third_party_warnings() -> None:
    """Warnings from dependencies that say nothing about the user's run."""
    import warnings

    warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_third_party_warnings()
    parser, _ = build_parser(argv)
    args = parser.parse_args(argv)
    handler = getattr(args, "_handler", None)
    if handler is None:
        parser.print_help()
        return 0 if not argv else 2
    from benchmark import progress

    before = progress.forced()
    if getattr(args, "no_progress", False):
        progress.set_enabled(False)
    try:
        return int(handler(args) or 0)
    except DataError as err:
        print(f"l2emg: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(progress.interrupt_message(), file=sys.stderr)
        return 130
    finally:                  # a command run in-process (tests, notebooks) leaves it as it was
        progress.set_enabled(before)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
