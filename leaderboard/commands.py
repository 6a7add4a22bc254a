"""`l2emg leaderboard` and `l2emg compare`, and the Python API behind them
(:func:`build_leaderboard`, :func:`compare_runs`, exported as ``leaderboard.compare``) used by
`l2emg bench`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.io import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def build_leaderboard(run_dirs: list[str | Path], out_dir: str | Path, *, with_reference: bool = False,
                      allow_mixed: bool = False, metrics: list[str] | None = None, pdf: bool = False,
                      strict: bool = False, with_std: bool = False, figures: bool = True,
                      max_samples: int = 4, wide_latex: bool = False) -> "pd.DataFrame":
    """Read runs; write the tables (leaderboard.csv: ours, long; leaderboard_wide.csv/.md:
    systems x metrics with the chance and ceiling rows; leaderboard.tex and
    leaderboard_standalone.tex; runs.csv; reference.csv with ``with_reference``) and figures/
    (with figures/NOT_DRAWN.txt naming each figure that could not be drawn and why).

    Returns the long summary: source ("ours", "chance", "ceiling", and "paper" with
    ``with_reference``), method, display, setting, metric, mean, std, n, ci95, ...; its
    ``attrs["missing_figures"]`` lists the figures not drawn."""
    import pandas as pd

    from benchmark.io import atomic_write_text
    from leaderboard import figures as figs
    from leaderboard.runs import available_metrics, load_runs, runs_frame, validate_metrics
    from leaderboard.tables import (bounds, load_reference, reference_table, summarize,
                                    to_csv_text, to_latex, wide_markdown, wide_metrics,
                                    wide_table)

    runs = load_runs(run_dirs, allow_mixed=allow_mixed, strict=strict)
    if metrics:
        metrics = validate_metrics(metrics, available_metrics(runs))
    ours = summarize(runs, metrics)
    summary = pd.concat([ours, bounds(runs, sorted(set(ours["metric"])))], ignore_index=True)
    texts: dict[str, str] = {}
    citation = None
    if with_reference:
        settings, shown = set(ours["setting"]), set(ours["metric"])
        ref = load_reference()
        ref = ref[ref["metric"].isin(shown) & ref["setting"].isin(settings)]
        summary = pd.concat([summary, ref], ignore_index=True)
        table, citation = reference_table(settings, shown)
        texts["reference.csv"] = to_csv_text(table)
    # the tables that can refuse (no table metrics) render before anything is written
    tex_metrics = [m for m in (metrics or []) if m] or None
    tex = to_latex(summary, metrics=tex_metrics, with_std=with_std, wide=wide_latex)
    out = Path(out_dir)
    missing: list[str] = []
    if figures:
        figs.write_heatmaps(runs, out / "figures", pdf=pdf, missing=missing)
        figs.write_motion_renders(runs, out / "figures", max_samples=max_samples, pdf=pdf,
                                  missing=missing)
        note = out / "figures" / figs.MISSING_FILE
        if missing:
            atomic_write_text(note, "\n".join(missing) + "\n")
        elif note.exists():
            note.unlink()
    chosen = wide_metrics(summary, metrics)
    texts.update({"leaderboard.csv": to_csv_text(ours),
                  "leaderboard_wide.csv": to_csv_text(wide_table(summary, chosen)),
                  "leaderboard_wide.md": wide_markdown(summary, chosen, missing, citation),
                  "leaderboard.tex": tex,
                  "leaderboard_standalone.tex": to_latex(summary, metrics=tex_metrics,
                                                         with_std=with_std, wide=wide_latex,
                                                         standalone=True),
                  "runs.csv": to_csv_text(runs_frame(runs, metrics))})
    for name, text in texts.items():
        atomic_write_text(out / name, text)
    if not with_reference and (out / "reference.csv").exists():
        (out / "reference.csv").unlink()        # a stale one from an earlier --with-reference
    summary = summary.reset_index(drop=True)
    summary.attrs["missing_figures"] = missing
    summary.attrs["metrics"] = chosen
    return summary


def compare_runs(run_dirs: list[str | Path], out_dir: str | Path, *, metric: str = "AR",
            setting: str | None = None, alpha: float = 0.05, allow_mixed: bool = False,
            strict: bool = False, pdf: bool = False, seed: int = 0) -> "pd.DataFrame":
    """Statistics of one metric across orders and methods; writes stats.csv, stats.md and the CD
    diagram; returns the tidy stats rows."""
    from benchmark.io import atomic_write_text
    from leaderboard import figures as figs
    from leaderboard.runs import (available_metrics, load_runs, runs_frame, subsets_frame,
                                  validate_metrics)
    from leaderboard.stats import run_stats, to_markdown
    from leaderboard.tables import to_csv_text

    runs = load_runs(run_dirs, allow_mixed=allow_mixed, strict=strict)
    (metric,) = validate_metrics([metric], available_metrics(runs))
    per_run = runs_frame(runs, [metric])
    per_subset = subsets_frame(runs, metric)
    if setting is not None:
        settings = sorted(per_run["setting"].unique())
        if setting.lower() not in settings:
            raise DataError(None, f"no runs in setting {setting!r}", f"choose from {', '.join(settings)}")
        per_run = per_run[per_run["setting"] == setting.lower()]
        per_subset = per_subset[per_subset["setting"] == setting.lower()]
    res = run_stats(per_run, metric, alpha=alpha, seed=seed, per_subset=per_subset)
    out = Path(out_dir)
    csv_text, md_text = to_csv_text(res.rows), to_markdown(res)
    stem = out / f"cd_diagram_{metric}"
    reason = figs.cd_missing_reason(res.avg_ranks, res.nemenyi, res.notes)
    if reason is None:
        fig = figs.cd_figure(res.avg_ranks, res.nemenyi, res.cd, metric, alpha)
        figs.save_figure(fig, stem, pdf=pdf)
        stem.with_suffix(".txt").unlink(missing_ok=True)
    else:                            # say why, and leave no stale diagram of earlier runs
        md_text += f"\n## Figures not drawn\n\n- {stem.name}: {reason}\n"
        atomic_write_text(stem.with_suffix(".txt"), f"{stem.name} not drawn: {reason}\n")
        for ext in (".png", ".pdf"):
            stem.with_suffix(ext).unlink(missing_ok=True)
    atomic_write_text(out / "stats.csv", csv_text)
    atomic_write_text(out / "stats.md", md_text)
    rows = res.rows
    rows.attrs["missing_figures"] = [] if reason is None else [f"{stem.name}: {reason}"]
    return rows


# ----------------------------------------------------------------------------- CLI
def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUNS",
                        help="run folders, or folders searched recursively for result.json")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="merge runs whose stage hashes/preset differ (default: refuse)")
    parser.add_argument("--strict", action="store_true",
                        help="error on unfinished runs and stale result.json summaries")
    parser.add_argument("--pdf", action="store_true", help="also write figures as PDF")


def leaderboard_args(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--with-reference", action="store_true",
                        help="add the paper's published Table 2 numbers as rows marked 'paper'")
    parser.add_argument("--metrics", nargs="+", help="aggregates to tabulate (default: all)")
    parser.add_argument("--std", action="store_true", help="LaTeX cells as mean$\\pm$95%% CI")
    parser.add_argument("--wide-latex", action="store_true",
                        help="LaTeX float table* (spanning two columns) instead of table")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--max-samples", type=int, default=4, help="motion renders per setting")


def leaderboard(args: argparse.Namespace) -> int:
    summary = build_leaderboard(args.runs, args.out, with_reference=args.with_reference,
                                allow_mixed=args.allow_mixed, metrics=args.metrics, pdf=args.pdf,
                                strict=args.strict, with_std=args.std, figures=not args.no_figures,
                                max_samples=args.max_samples, wide_latex=args.wide_latex)
    print(format_summary(summary))
    print(f"wrote {args.out}/leaderboard.csv, leaderboard_wide.csv/.md, leaderboard.tex, "
          "leaderboard_standalone.tex, runs.csv" + (", reference.csv" if args.with_reference else "")
          + ("" if args.no_figures else " and figures/"))
    return 0


def compare_args(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--metric", default="AR", help="aggregate to compare (default AR)")
    parser.add_argument("--setting", help="restrict to one setting (unseen or mixed)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def compare(args: argparse.Namespace) -> int:
    compare_runs(args.runs, args.out, metric=args.metric, setting=args.setting, alpha=args.alpha,
                 allow_mixed=args.allow_mixed, strict=args.strict, pdf=args.pdf, seed=args.seed)
    print((Path(args.out) / "stats.md").read_text())
    return 0


def format_summary(summary: "pd.DataFrame") -> str:
    """The wide table for the terminal (systems x metrics per setting, with the chance and
    ceiling rows), the figures not drawn, and the paper's rows when the summary has them."""
    from leaderboard.tables import DECIMALS, wide_text

    text = wide_text(summary, summary.attrs.get("metrics"), summary.attrs.get("missing_figures"))
    paper = summary[summary["source"] == "paper"]
    if len(paper):
        paper = paper.assign(row=paper["display"] + " (paper)",
                             col=paper["setting"] + "." + paper["metric"],
                             cell=[f"{m:.{DECIMALS.get(k, 3)}f}" if m == m else "-"
                                   for m, k in zip(paper["mean"], paper["metric"])])
        piv = paper.pivot_table(index="row", columns="col", values="cell", aggfunc="first", sort=False)
        text += ("\n\nPublished (paper's Table 2: its data, LLaMA-2 7B; reference.csv):\n"
                 + piv.fillna("-").to_string())
    return text


# ----------------------------------------------------------------------------- validity
def check_validity(run_dirs: list[str | Path], out_dir: str | Path, *, upper: str | None = None,
                   lower: str | None = None, allow_mixed: bool = False) -> "pd.DataFrame":
    """The instrument's validity checks (leaderboard.validity); writes validity.csv and .md."""
    from benchmark.io import atomic_write_text
    from leaderboard.runs import load_runs
    from leaderboard.tables import to_csv_text
    from leaderboard.validity import to_markdown, validity

    table = validity(load_runs(run_dirs, allow_mixed=allow_mixed), upper=upper, lower=lower)
    out = Path(out_dir)
    atomic_write_text(out / "validity.csv", to_csv_text(table))
    atomic_write_text(out / "validity.md", to_markdown(table))
    return table


def validity_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run folders or folders containing them")
    parser.add_argument("--out", required=True, help="output folder (validity.csv, validity.md)")
    parser.add_argument("--upper", help="the joint upper-bound method (default: the runs' method "
                        "whose class declares role upper_bound)")
    parser.add_argument("--lower", help="the sequential lower-bound method (default: the runs' "
                        "method whose class declares role lower_bound)")
    parser.add_argument("--allow-mixed", action="store_true", help="merge different configurations")


def validity(args: argparse.Namespace) -> int:
    from leaderboard.validity import to_markdown

    table = check_validity(args.runs, args.out, upper=args.upper, lower=args.lower,
                           allow_mixed=args.allow_mixed)
    print(to_markdown(table))
    return 0


# ----------------------------------------------------------------------------- claims
def check_claims(run_dirs: list[str | Path], out_dir: str | Path, *, spec_path: str | Path | None = None,
                 alpha: float = 0.05, allow_mixed: bool = False) -> "pd.DataFrame":
    """Test the claims of ``spec_path`` (default: the paper's Table 2 as claims,
    leaderboard/reference/paper_claims.csv; see leaderboard.claims) on the runs; writes
    claims.csv and claims.md (with the claims file's SHA-256); returns the result rows."""
    from importlib import resources

    from benchmark.io import atomic_write_text
    from leaderboard.claims import evaluate_claims, read_claims, sha256_of, to_markdown
    from leaderboard.runs import load_runs
    from leaderboard.tables import to_csv_text

    with resources.as_file(resources.files("leaderboard") / "reference" / "paper_claims.csv") as paper:
        path = Path(spec_path) if spec_path is not None else paper
        spec = read_claims(path)
        digest = sha256_of(path)
    runs = load_runs(run_dirs, allow_mixed=allow_mixed)
    res = evaluate_claims(spec, runs, alpha=alpha)
    md = to_markdown(res, spec_path=path, spec_sha256=digest, n_runs=len(runs), alpha=alpha)
    out = Path(out_dir)
    atomic_write_text(out / "claims.csv", to_csv_text(res.assign(claims_sha256=digest)))
    atomic_write_text(out / "claims.md", md)
    return res


def claims_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUNS",
                        help="run folders, or folders searched recursively for result.json")
    parser.add_argument("--out", required=True, help="output folder (claims.csv, claims.md)")
    parser.add_argument("--claims", metavar="CSV",
                        help="claims file (family,metric,a,relation,b[,setting,order,seed]; "
                             "docs/leaderboard.md); default: the paper's Table 2 as claims")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (after Holm)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="merge runs whose stage hashes/preset differ (default: refuse)")


def claims(args: argparse.Namespace) -> int:
    check_claims(args.runs, args.out, spec_path=args.claims, alpha=args.alpha,
                 allow_mixed=args.allow_mixed)
    print((Path(args.out) / "claims.md").read_text())
    return 0
