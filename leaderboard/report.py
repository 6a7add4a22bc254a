"""``l2emg report RUNS --out DIR``: one self-contained HTML page (DIR/index.html) from finished
run folders, readable offline: inline CSS, every image a base64 data URI, no script.

It shows what the other leaderboard commands compute, from the same functions: the wide
leaderboard (mean ± 95% CI, bold where the CIs separate, the chance / ceiling / floor rows;
``leaderboard.tables``), the validity checklist (``leaderboard.validity``), the claims with their
p-values (``leaderboard.claims``), the critical-difference diagram of one metric
(``leaderboard.stats``, ``leaderboard.figures``), the r[i, j] heat maps, the routing matrices of
routed runs (``routing.csv``, ``matrices/route_own.csv``) and, for a few test captions, the real
motion and each system's generated motion as animated stick figures.  Whatever cannot be shown
(no routed run, too few blocks for the CD diagram, no saved samples...) is said on the page,
with the reason, in its section and in the list at the top.
"""
from __future__ import annotations

import argparse
import html
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.io import DataError, atomic_write_text
from leaderboard.runs import Run

REPORT_FILE = "index.html"
_B0, _B1 = "\x02", "\x03"        # bold markers put into wide-table cells, turned into <strong>
CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;
color:#1d2330;background:#fff;line-height:1.45;padding:0 16px}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #3b6ea8;padding-bottom:4px;margin-top:1.8em}
h3{margin-bottom:.3em}p.meta{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.86em}
th,td{border:1px solid #c9d1dc;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#e8eef6}td.name,th.name{text-align:left}
tr.bound td{background:#f5f0e3;font-style:italic}tr:nth-child(even) td{background-color:#f7f9fc}
tr.bound:nth-child(even) td{background:#f5f0e3}
.pass{color:#17663a;font-weight:bold}.fail{color:#b3261e;font-weight:bold}.na{color:#777}
.missing{background:#fff4e5;border-left:4px solid #e08a00;padding:6px 12px;margin:8px 0}
.note{color:#444;font-size:.85em}nav a{margin-right:14px}
figure{margin:10px 0 18px}figcaption{font-size:.85em;color:#333}img{max-width:100%;height:auto;
border:1px solid #e1e5ea}
.validity td:nth-child(4),.validity td:nth-child(6),.validity td:nth-child(7),.claims td:nth-child(2),
.claims td:nth-child(9),.validity th,.claims th{text-align:left}.validity td:nth-child(7){max-width:460px;font-size:.95em}
"""


@dataclass
class Section:
    """One part of the page: its anchor, heading, HTML body and what it could not show."""

    anchor: str
    title: str
    body: str = ""
    missing: list[str] = field(default_factory=list)


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def _num(x, fmt: str = ".4g") -> str:
    return "-" if not isinstance(x, (int, float)) or not math.isfinite(x) else format(x, fmt)


def _missing_html(lines: list[str]) -> str:
    return "".join(f'<p class="missing">Not shown: {esc(m)}</p>' for m in lines)


def _img(uri: str, alt: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{esc(alt)}"><figcaption>{esc(caption)}</figcaption></figure>'


def html_table(header: list[str], rows: list[list[str]], *, cls: str = "",
               row_classes: list[str] | None = None, table_id: str = "") -> str:
    """A table of already-escaped cells; the first column is a name (left-aligned)."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    head = "".join(f'<th class="name">{h}</th>' if i == 0 else f"<th>{h}</th>"
                   for i, h in enumerate(header))
    body = []
    for k, row in enumerate(rows):
        rc = (row_classes or [""] * len(rows))[k]
        cells = "".join(f'<td class="name">{c}</td>' if i == 0 else f"<td>{c}</td>"
                        for i, c in enumerate(row))
        body.append(f'<tr class="{rc}">{cells}</tr>' if rc else f"<tr>{cells}</tr>")
    return f'<table class="{cls}"{ident}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _cell(text: str) -> str:
    """A wide-table cell as HTML: escaped, its bold markers as <strong>."""
    return esc(text).replace(_B0, "<strong>").replace(_B1, "</strong>")


# ----------------------------------------------------------------------------- sections
def leaderboard_section(runs: list[Run]) -> Section:
    """Per setting the wide table (systems x metrics, mean ± 95% CI; chance and ceiling rows)."""
    from leaderboard.tables import (BOUND_SOURCES, CHANCE_DISPLAY, SETTING_TITLE, WIDE_NOTE, bounds,
                                    summarize, wide_frames, wide_metrics)

    ours = summarize(runs)
    summary = pd.concat([ours, bounds(runs, sorted(set(ours["metric"])))], ignore_index=True)
    bound_names = set(summary.loc[summary["source"].isin(BOUND_SOURCES), "display"])
    sec = Section("leaderboard", "Leaderboard")
    parts = []
    for setting, frame in wide_frames(summary, wide_metrics(summary), bold=(_B0, _B1)).items():
        rows = [[_cell(name), *(_cell(v) for v in frame.loc[name])] for name in frame.index]
        classes = ["bound" if name in bound_names else "system" for name in frame.index]
        parts.append(f"<h3>{esc(SETTING_TITLE.get(setting, setting))}</h3>")
        parts.append(html_table(["System", *(esc(c) for c in frame.columns)], rows, cls="leaderboard",
                                row_classes=classes, table_id=f"leaderboard-{setting}"))
        if CHANCE_DISPLAY not in frame.index:
            sec.missing.append(f"chance row of the {setting} setting: no run's result.json has "
                               "'chance' (written by the evaluation)")
    parts.append(f'<p class="note">{esc(WIDE_NOTE)}</p>')
    sec.body = "".join(parts)
    return sec


def validity_section(runs: list[Run]) -> Section:
    """The validity checklist: every check with its value, target, CI and verdict."""
    from leaderboard.validity import bound, validity

    upper, lower = bound(runs, "upper_bound"), bound(runs, "lower_bound")
    table = validity(runs, upper=upper or None, lower=lower or None)
    rows, verdicts = [], {True: '<span class="pass">pass</span>', False: '<span class="fail">FAIL</span>'}
    for r in table.itertuples(index=False):
        ci = "-" if not math.isfinite(r.ci_low) else f"[{_num(r.ci_low)}, {_num(r.ci_high)}]"
        verdict = verdicts.get(r.passed, '<span class="na">not measurable</span>')
        rows.append([esc(r.check), esc(r.setting), _num(r.value), esc(r.target), ci, verdict,
                     esc(r.detail)])
    n_pass = int((table["passed"] == True).sum())  # noqa: E712
    n_fail = int((table["passed"] == False).sum())  # noqa: E712
    body = (f"<p>Does the protocol measure? {n_pass} check(s) pass, {n_fail} fail, "
            f"{len(table) - n_pass - n_fail} not measurable (joint upper bound: {esc(upper or 'none')}, "
            f"sequential lower bound: {esc(lower or 'none')}).</p>"
            + html_table(["check", "setting", "value", "target", "95% CI", "verdict", "detail"],
                         rows, cls="validity", table_id="validity"))
    return Section("validity", "Validity checklist", body)


def claims_section(runs: list[Run], spec_path: str | Path | None, alpha: float) -> Section:
    """The claims that ran (Wilcoxon p, Holm p, effect size, verdict), then counts of the rest."""
    from importlib import resources

    from leaderboard.claims import evaluate_claims, read_claims, sha256_of

    sec = Section("claims", "Claims")
    with resources.as_file(resources.files("leaderboard") / "reference" / "paper_claims.csv") as paper:
        path = Path(spec_path) if spec_path is not None else paper
        try:
            res = evaluate_claims(read_claims(path), runs, alpha=alpha)
        except DataError as err:
            sec.missing.append(f"claims not tested: {err}")
            return sec
        digest = sha256_of(path)
    ran = res[pd.to_numeric(res["p_value"], errors="coerce").notna()]
    rows = []
    for r in ran.itertuples(index=False):
        verdict = esc(r.verdict) + (f' <span class="note">({esc(r.note)})</span>' if r.note else "")
        rows.append([esc(r.family), esc(r.claim), f"{_num(r.mean_a)} vs {_num(r.mean_b)}",
                     f"{int(r.in_direction)}/{int(r.n_blocks)}", _num(r.p_value, ".4f"),
                     _num(r.p_holm, ".4f"), _num(r.best_p_holm, ".4f"), _num(r.effect_size, "+.2f"),
                     f"<strong>{verdict}</strong>" if r.verdict in ("holds", "reversed") else verdict])
    parts = [f"<p>Claims file <code>{esc(path.name)}</code> (SHA-256 <code>{digest[:16]}…</code>): "
             f"{len(ran)} of {len(res)} claims ran. Each pairs its two methods on the blocks both "
             "have (setting, order, seed, test subset): two-sided Wilcoxon signed-rank, Holm within "
             f"each family, alpha = {alpha:g}; r = rank-biserial of a - b.</p>"]
    if rows:
        parts.append(html_table(["family", "claim", "a vs b (means)", "blocks in the claimed direction",
                                 "p", "p (Holm)", "smallest possible Holm p", "r", "verdict"],
                                rows, cls="claims", table_id="claims"))
    else:
        sec.missing.append("no claim could be tested on these runs (see the counts below)")
    present = {r.method for r in runs}
    not_run = res[res["verdict"] == "not run"]
    if len(not_run):
        absent = sorted({m for m in pd.concat([not_run["a"], not_run["b"]]) if m not in present})
        parts.append(f"<p>{len(not_run)} claim(s) not run: no finished run of {esc(', '.join(absent))}.</p>")
    not_tested = res[res["verdict"] == "not tested"]
    if len(not_tested):
        parts.append(f"<p>{len(not_tested)} claim(s) not tested (fewer than 2 blocks both systems "
                     f"have): {esc('; '.join(not_tested['claim']))}.</p>")
    sec.body = "".join(parts)
    return sec


def cd_section(runs: list[Run], metric: str, alpha: float) -> Section:
    """Friedman test, average ranks and the critical-difference diagram of ``metric``."""
    from leaderboard.figures import cd_figure, cd_missing_reason
    from leaderboard.report_media import data_uri, figure_png
    from leaderboard.runs import available_metrics, runs_frame, subsets_frame, validate_metrics
    from leaderboard.stats import run_stats
    from leaderboard.tables import display_name

    sec = Section("cd", f"Critical-difference diagram ({metric})")
    try:
        (metric,) = validate_metrics([metric], available_metrics(runs))
    except DataError as err:
        sec.missing.append(f"CD diagram: {err}")
        return sec
    res = run_stats(runs_frame(runs, [metric]), metric, alpha=alpha,
                    per_subset=subsets_frame(runs, metric))
    orders = sorted({str(r.order) for r in runs})
    parts = [f"<p>Blocks are setting x scenario order x seed; these runs cover {len(orders)} scenario "
             f"order(s) ({esc(', '.join(orders))}) and {len({r.seed for r in runs})} seed(s).</p>"]
    tests = res.rows[res.rows["analysis"].isin(["methods_friedman", "methods_wilcoxon"])]
    for r in tests.itertuples(index=False):
        parts.append(f"<p>{esc(r.analysis.split('_')[1].capitalize())}: " + (
            esc(r.note) if str(r.note).startswith("not tested") else
            f"{int(r.k)} methods on {int(r.n_blocks)} blocks, statistic {_num(r.statistic, '.3f')}, "
            f"p = {_num(r.p_value, '.4f')}") + "</p>")
    if len(res.avg_ranks):
        rows = [[esc(display_name(m)), f"{v:.2f}"] for m, v in res.avg_ranks.items()]
        parts.append(html_table(["method", "average rank (1 = best)"], rows, cls="ranks"))
    reason = cd_missing_reason(res.avg_ranks, res.nemenyi, res.notes)
    if reason is None:
        png = figure_png(cd_figure(res.avg_ranks, res.nemenyi, res.cd, metric, alpha))
        parts.append(_img(data_uri(png, "image/png"), f"CD diagram of {metric}",
                          f"Average rank on {metric}; bars join methods not significantly different "
                          f"(Nemenyi, alpha = {alpha:g})."))
    else:
        sec.missing.append(f"CD diagram of {metric}: {reason}")
    sec.body = "".join(parts)
    return sec


def heatmap_section(runs: list[Run]) -> Section:
    """The mean r[i, j] matrices per method (after training on i, tested on j)."""
    from leaderboard.figures import HEATMAP_METRICS, heatmap_figure
    from leaderboard.report_media import data_uri, figure_png

    sec = Section("heatmaps", "Heat maps r[i, j]")
    parts = []
    for setting in sorted({r.setting for r in runs}):
        for metric, (title, _) in HEATMAP_METRICS.items():
            if not any(r.setting == setting and metric in r.matrices for r in runs):
                sec.missing.append(f"{title} heat map, {setting}: no run has matrices/{metric}.csv")
                continue
            png = figure_png(heatmap_figure(runs, metric, setting))
            parts.append(_img(data_uri(png, "image/png"), f"heat map {metric} {setting}",
                              f"{title}, {setting} setting: row i = after training on scenario i, "
                              "column j = tested on j; mean over orders and seeds."))
    sec.body = "".join(parts)
    return sec


def routing_section(runs: list[Run]) -> Section:
    """The routing matrices of each routed method (its first run with routing files)."""
    from leaderboard.report_media import data_uri, routing_of, routing_png
    from leaderboard.tables import display_name, method_sort_key

    sec = Section("routing", "Routing")
    found = routing_of(runs)
    if not found:
        sec.missing.append("routing matrices: no run has routing.csv or matrices/route_own.csv "
                           "(only routed methods, e.g. ES-MoE, write them)")
        return sec
    parts = [_img(data_uri(routing_png(r), "image/png"), f"routing {m} {s}",
                  f"{display_name(m)}, {s}: order {r.run.order}, seed {r.run.seed} "
                  f"({r.run.path.name}); expert k was created for the k-th experience.")
             for (m, s), r in found.items()]
    unrouted = sorted({r.method for r in runs} - {m for m, _ in found}, key=method_sort_key)
    if unrouted:
        parts.append(f"<p class=\"note\">No routing files (not routed): "
                     f"{esc(', '.join(display_name(m) for m in unrouted))}.</p>")
    sec.body = "".join(parts)
    return sec


def motion_section(runs: list[Run], max_samples: int) -> Section:
    """For a few test captions: the real motion and each system's generated one, animated."""
    from leaderboard.report_media import data_uri, motion_clips

    sec = Section("motions", "Generated motions")
    if max_samples < 1:
        sec.missing.append(f"motion animations: --max-samples is {max_samples}")
        return sec
    clips, missing = motion_clips(runs, max_samples=max_samples)
    sec.missing += [f"motion animations, {m}" for m in missing]
    sec.body = "".join(
        f"<h3>{esc(c.setting)}: {esc(c.name)}</h3>"
        + _img(data_uri(c.gif, "image/gif"), f"motion {c.name}",
               f"{c.title}; panels: {', '.join(c.systems)} (stick figures of the 22 joints)")
        for c in clips)
    return sec


# ----------------------------------------------------------------------------- page
def _header(runs: list[Run], title: str) -> str:
    from benchmark.io import code_version
    from leaderboard.tables import display_name, method_sort_key

    info = code_version()
    commit = (info.get("commit") or "unknown")[:10] + (" (with local changes)" if info.get("dirty") else "")
    methods = sorted({r.method for r in runs}, key=method_sort_key)
    presets = sorted({str(r.preset) for r in runs})
    return (f"<h1>{esc(title)}</h1><p class=\"meta\">{len(runs)} finished run(s); systems: "
            f"{esc(', '.join(display_name(m) for m in methods))}; settings: "
            f"{esc(', '.join(sorted({r.setting for r in runs})))}; scenario orders: "
            f"{esc(', '.join(sorted({str(r.order) for r in runs})))}; seeds: "
            f"{esc(', '.join(str(s) for s in sorted({r.seed for r in runs})))}; preset(s): "
            f"{esc(', '.join(presets))}. Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
            f", code {esc(commit)}.</p>")


def render_page(runs: list[Run], sections: list[Section], title: str) -> str:
    """The whole HTML document: header, what is not shown (with reasons), then the sections."""
    nav = "".join(f'<a href="#{s.anchor}">{esc(s.title)}</a>' for s in sections)
    missing = [m for s in sections for m in s.missing]
    summary = ("<p>Everything the runs allow is shown.</p>" if not missing else
               "<ul>" + "".join(f"<li>{esc(m)}</li>" for m in missing) + "</ul>")
    body = "".join(f'<section id="{s.anchor}"><h2>{esc(s.title)}</h2>{_missing_html(s.missing)}'
                   f"{s.body}</section>" for s in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"{_header(runs, title)}<nav>{nav}</nav>"
            f'<section id="not-shown"><h2>Not shown</h2>{summary}</section>{body}</body></html>\n')


def build_report(run_dirs: list[str | Path], out_dir: str | Path, *, title: str = "L2-EMG bench report",
                 allow_mixed: bool = False, strict: bool = False, claims: str | Path | None = None,
                 metric: str = "AR", alpha: float = 0.05, max_samples: int = 3,
                 figures: bool = True) -> Path:
    """Write ``out_dir/index.html`` from the runs under ``run_dirs``; returns its path.
    ``figures=False`` leaves out the images (heat maps, CD diagram, routing, motions) and says so."""
    from leaderboard.runs import load_runs

    runs = load_runs(run_dirs, allow_mixed=allow_mixed, strict=strict)
    sections = [leaderboard_section(runs), validity_section(runs), claims_section(runs, claims, alpha)]
    if figures:
        sections += [cd_section(runs, metric, alpha), heatmap_section(runs), routing_section(runs),
                     motion_section(runs, max_samples)]
    else:
        sections.append(Section("figures", "Figures", missing=[
            "heat maps, CD diagram, routing matrices and motion animations: figures were turned "
            "off (--no-figures)"]))
    path = Path(out_dir) / REPORT_FILE
    atomic_write_text(path, render_page(runs, sections, title))
    return path


# ----------------------------------------------------------------------------- CLI
def report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUNS",
                        help="run folders, or folders searched recursively for result.json")
    parser.add_argument("--out", required=True, help=f"output folder (writes {REPORT_FILE})")
    parser.add_argument("--title", default="L2-EMG bench report", help="the page's title")
    parser.add_argument("--claims", metavar="CSV", help="claims file (default: the paper's Table 2)")
    parser.add_argument("--metric", default="AR", help="metric of the CD diagram (default AR)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level")
    parser.add_argument("--max-samples", type=int, default=3,
                        help="test captions animated per setting (default 3)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="merge runs whose stage hashes/preset differ (default: refuse)")
    parser.add_argument("--strict", action="store_true",
                        help="error on unfinished runs and stale result.json summaries")


def report(args: argparse.Namespace) -> int:
    path = build_report(args.runs, args.out, title=args.title, allow_mixed=args.allow_mixed,
                        strict=args.strict, claims=args.claims, metric=args.metric, alpha=args.alpha,
                        max_samples=args.max_samples, figures=not args.no_figures)
    print(f"wrote {path} (self-contained: open it in any browser, offline)")
    return 0
