"""Leaderboard: tables (the wide systems x metrics table with chance and ceiling rows as CSV,
markdown and text; the long CSV; LaTeX, also standalone), figures and statistics from finished
run folders.

Reads result files only (docs/CONTRACTS.md "Run folders"); never imports training code.

>>> from leaderboard import build_leaderboard, compare
>>> summary = build_leaderboard(["runs/"], "out/leaderboard", with_reference=True)
>>> stats = compare(["runs/"], "out/stats", metric="AR", setting="unseen")
"""
from __future__ import annotations

__all__ = ["build_leaderboard", "compare", "load_runs"]


def build_leaderboard(run_dirs, out_dir, **kwargs):
    """See :func:`leaderboard.commands.build_leaderboard`."""
    from leaderboard.commands import build_leaderboard as _build

    return _build(run_dirs, out_dir, **kwargs)


def compare(run_dirs, out_dir, **kwargs):
    """See :func:`leaderboard.commands.compare_runs`."""
    from leaderboard.commands import compare_runs

    return compare_runs(run_dirs, out_dir, **kwargs)


def load_runs(paths, **kwargs):
    """See :func:`leaderboard.runs.load_runs`."""
    from leaderboard.runs import load_runs as _load

    return _load(paths, **kwargs)
