"""``l2emg bench``: the whole evaluation protocol end to end.

corpus -> split manifests -> VQ-VAE tokenizer -> T2M evaluator -> every system x setting x
scenario order x seed (``harness.sweep``) -> leaderboard (CSV, LaTeX, heat maps, renders) ->
statistics across orders and methods -> a summary table on the terminal.

Everything lands under ``--out``: ``cache/`` (shared stages, reused by content hash),
``runs/`` (one folder per run), ``leaderboard/``, ``stats/`` and ``report/index.html`` (the
self-contained page of ``l2emg report``).  Rerunning the same command
skips finished runs and resumes interrupted ones.
"""
from __future__ import annotations

import time
from pathlib import Path

from benchmark.io import DataError, atomic_write_json, peak_rss_mb


def bench_args(p) -> None:
    from harness.runner import add_shared_options
    from harness.sweep import add_grid_args

    add_grid_args(p)
    p.add_argument("--out", help="output folder (default runs/<preset>)")
    p.add_argument("--stats-metric", default="AR,FR,AF",
                   help="metrics for `compare`, comma-separated (default AR,FR,AF): one report each "
                        "in stats/<metric>/")
    p.add_argument("--no-figures", action="store_true", help="skip heat maps and motion renders")
    p.add_argument("--claims", metavar="CSV",
                   help="claims file tested into stats/claims.md (`l2emg claims`; default: the "
                        "paper's Table 2 as directional claims)")
    p.add_argument("--floor", default="all", metavar="METHODS",
                   help="measure FR's no-forgetting floor (`l2emg floor`) on these methods' finished "
                        "continual runs before the statistics (comma-separated, 'lower' for the "
                        "validity report's lower bound only, 'none'; default all: about 5%% of a "
                        "run's time)")
    p.add_argument("--floor-gens", type=int, default=10,
                   help="regenerations of each final model for the floor (default 10)")
    add_shared_options(p)


def bench(args) -> int:
    from harness.runner import shared_options
    from harness.sweep import SweepConfig, _print_report, grid_from_args, sweep_runs

    t0 = time.time()
    out = Path(args.out or f"runs/{args.preset}")
    if getattr(args, "claims", None):  # a bad claims file fails now, not after the runs
        from leaderboard.claims import read_claims

        read_claims(args.claims)
    options = shared_options(args)
    cfg = SweepConfig(out=out / "runs", run_options=options, **grid_from_args(args))
    report = sweep_runs(cfg)
    _print_report(report)
    floors = _measure_floors(out / "runs", args.floor, args.floor_gens, options)
    summary = _leaderboard(out, cfg, args)
    page = _report(out, args) if summary is not None else None
    wall = time.time() - t0
    atomic_write_json(out / "bench.json", {
        "wall_time_s": round(wall, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "methods": cfg.methods, "settings": cfg.settings, "orders": cfg.orders,
        "seeds": cfg.seeds, "jobs": cfg.jobs, "run_options": options,
        "runs_finished_now": report["done"], "runs_failed": report["failed"],
        "run_seconds": report["seconds"], "floors_measured_now": floors})
    if summary is not None:
        print()
        print(summary)
    print(f"\nbench: {wall / 60:.1f} min wall, peak RSS {peak_rss_mb():.0f} MiB; "
          f"leaderboard in {out / 'leaderboard'}, statistics in {out / 'stats'}"
          + (f", report {page}" if page is not None else ""))
    return 1 if report["failed"] else 0


def _report(out: Path, args) -> Path | None:
    """OUT/report/index.html (`l2emg report`): the leaderboard, validity, claims, figures and
    motions of every finished run on one self-contained page."""
    from leaderboard.report import build_report

    try:
        return build_report([out / "runs"], out / "report", claims=getattr(args, "claims", None),
                            figures=not args.no_figures)
    except DataError as err:          # the tables above are written; the page is a view of them
        print(f"bench: report skipped: {err}")
        return None


def _measure_floors(runs: Path, methods: str, gens: int, options: dict) -> int:
    """``l2emg floor`` on the finished continual runs of ``methods`` (``all``; ``lower``: the
    validity report's lower bound; ``none``; or names) that have no ``fr_floor.json`` yet;
    returns how many were measured."""
    from harness.floor import FLOOR_FILE, measure
    from benchmark.io import read_json

    if methods == "lower":
        from benchmark.strategy import registry

        methods = ",".join(registry.with_role("lower_bound"))
    if methods == "none":
        return 0
    wanted = None if methods == "all" else set(methods.split(","))
    execution = {k: options.get(k) for k in ("cache", "data", "tokenizer", "evaluator", "device")}
    execution.update(backbone=options.get("backbone", "tiny"), plugins=tuple(options.get("plugins", ())),
                     threads=options.get("threads", 0))
    done = 0
    for res_path in sorted(runs.rglob("result.json")):
        res = read_json(res_path)
        if (wanted is not None and res["method"] not in wanted) or res["n_experiences"] < 2 \
                or (res_path.parent / FLOOR_FILE).exists():
            continue
        f = measure(res_path.parent, gens=gens, **execution)
        print(f"bench: {res_path.parent}: FR {f['FR']:.2f}, measured floor {f['mean']:.2f} "
              f"(q95 {f['q95']:.2f}; binomial {f['binomial']['mean']:.2f})")
        done += 1
    return done


def _leaderboard(out: Path, cfg, args):
    """Tables + figures + statistics from every finished run; returns a printable table."""
    import leaderboard

    runs = out / "runs"
    if not any(runs.rglob("result.json")):
        print("bench: no finished run to put on a leaderboard")
        return None
    table = leaderboard.build_leaderboard([runs], out / "leaderboard", with_reference=True,
                                          figures=not args.no_figures)
    for metric in [m for m in args.stats_metric.split(",") if m]:
        try:
            stats = leaderboard.compare([runs], out / "stats" / metric, metric=metric)
            table.attrs.setdefault("missing_figures", []).extend(
                f"stats/{metric}/{m}" for m in stats.attrs.get("missing_figures", []))
        except DataError as err:  # too few runs for a test is a message, not a failure
            print(f"bench: statistics of {metric} skipped: {err}")
    from leaderboard.commands import check_claims, check_validity
    from leaderboard.validity import to_markdown

    claims = check_claims([runs], out / "stats", spec_path=getattr(args, "claims", None))
    counts = claims["verdict"].value_counts()
    print("bench: claims (stats/claims.md): " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    print(to_markdown(check_validity([runs], out / "stats")))
    return _summary_text(table)


def _summary_text(table) -> str:
    """The wide leaderboard (leaderboard/leaderboard_wide.md as text): per setting, systems x
    metrics (mean ± 95% CI, n runs, arrows for the better direction), the chance and ceiling
    rows, and the figures that were not drawn."""
    from leaderboard.tables import wide_text

    try:
        return wide_text(table, table.attrs.get("metrics"), table.attrs.get("missing_figures"))
    except (KeyError, ValueError) as err:  # pragma: no cover - the table format is tested elsewhere
        raise DataError(None, f"leaderboard table has an unexpected layout ({err})",
                        "report this as a bug") from err
