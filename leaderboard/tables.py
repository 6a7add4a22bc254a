"""Leaderboard tables: the tidy long table of our runs (mean, std, n, 95% CI over orders x
seeds), the chance and ceiling rows, the wide systems x metrics table (CSV, markdown, terminal
text) with bold only where the CIs separate the best from the runner-up and from chance, the
paper's Table 2 as its own reference table, and the Table 2 layout in LaTeX (a ``table``
fragment, ``table*`` on request, or a standalone document)."""
from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pandas as pd

from benchmark.io import DataError
from leaderboard.methods import display_name, latex_name
from leaderboard.methods import sort_key as method_sort_key
from leaderboard.runs import Run, is_lower_better, runs_frame

# A method's display name and table order are its facts (leaderboard.methods): display_name(label),
# method_sort_key(label) (the paper's row order, a composed label after its method, then the rest).
TABLE_METRICS: tuple[str, ...] = ("AF", "AR", "AD", "AMM", "AWF", "FR")
DECIMALS: dict[str, int] = {"AF": 2, "AR": 3, "AD": 2, "AMM": 2, "AWF": 3, "FR": 2, "AR3": 3,
                            "BWT": 2, "FWT": 2, "route_own": 2}
SETTING_ORDER: tuple[str, ...] = ("unseen", "mixed")
SETTING_TITLE: dict[str, str] = {"unseen": "Unseen L2-EMG", "mixed": "Mixed L2-EMG"}
CHANCE_DISPLAY, CEILING_DISPLAY = "Chance", "Ceiling (real vs real)"
FLOOR_DISPLAY = "Floor (real vs real, same n)"
SOURCE_ORDER: tuple[str, ...] = ("ours", "chance", "ceiling", "floor", "paper")
BOUND_SOURCES: tuple[str, ...] = ("chance", "ceiling", "floor")
ARROWS: dict[bool, str] = {True: "↓", False: "↑"}      # lower is better -> down
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (& % $ # _ { } ~ ^ \\)."""
    return "".join(_LATEX_ESCAPES.get(c, c) for c in str(text))


def summarize(runs: list[Run], metrics: list[str] | None = None) -> pd.DataFrame:
    """Long table: method x setting x metric with mean, std (ddof=1), n over orders x seeds, the
    95% CI half-width of the mean and ``mean_ci`` ("mean ± ci", the text a paper table shows).

    ``ci95`` is the Student-t half-width over the runs (``t_{0.975, n-1} std / sqrt(n)``,
    ``ci_kind`` "runs") when there are >= 2 runs; for a single run it is the run's own
    evaluation CI (result.json ``aggregates_ci95``: over the evaluation's repeats, so it holds
    the generation noise, not the training noise; ``ci_kind`` "eval") where there is one (a
    zero-width one does not count), else NaN."""
    from leaderboard.stats import t_halfwidth

    per_run = runs_frame(runs, metrics)
    grouped = per_run.groupby(["method", "setting", "metric"], sort=False)["value"]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    out["ci95"] = t_halfwidth(out["std"].to_numpy(dtype=float), out["n"].to_numpy(dtype=float))
    out["ci_kind"] = np.where(np.isfinite(out["ci95"].to_numpy(dtype=float)), "runs", "")
    eval_ci: dict[tuple, list[float]] = {}
    for r in runs:
        for k, v in (r.info.get("aggregates_ci95") or {}).items():
            # a zero-width CI means the repeats did not vary the metric (FID, F1 of the same
            # generations): no measure of its noise, so not a CI to read or bold by
            if isinstance(v, (int, float)) and math.isfinite(v) and v > 1e-9:
                eval_ci.setdefault((r.method, r.setting, k), []).append(float(v))
    for i in out.index[out["ci_kind"] == ""]:
        vals = eval_ci.get((out.at[i, "method"], out.at[i, "setting"], out.at[i, "metric"]))
        if vals and out.at[i, "n"] == 1:
            out.at[i, "ci95"], out.at[i, "ci_kind"] = float(np.mean(vals)), "eval"
    out["mean_ci"] = [_fmt(m, DECIMALS.get(k, 3)) + ("" if not math.isfinite(c) else
                      f" ± {c:.{DECIMALS.get(k, 3)}f}") for m, c, k in
                      zip(out["mean"], out["ci95"], out["metric"])]
    out["n_orders"] = per_run.groupby(["method", "setting", "metric"], sort=False)["order"].nunique().values
    out["n_seeds"] = per_run.groupby(["method", "setting", "metric"], sort=False)["seed"].nunique().values
    out.insert(1, "display", out["method"].map(display_name))
    out["lower_is_better"] = out["metric"].map(is_lower_better)
    # multimodality from too few texts x generations for its CI to rank systems: "not measured"
    unmeasured = {(r.method, r.setting) for r in runs if r.info.get("multimodality_measured") is False}
    out["measured"] = [not (k == "AMM" and (m, s) in unmeasured)
                       for m, s, k in zip(out["method"], out["setting"], out["metric"])]
    out["source"] = "ours"
    return sort_summary(out)


def bounds(runs: list[Run], metrics: list[str]) -> pd.DataFrame:
    """The chance and ceiling rows of each setting, in the long format of :func:`summarize`
    (``source`` "chance" / "ceiling").

    Chance: result.json ``chance`` (the R-precision of a random ranking, 1/batch for top 1) for
    the aggregates that average an R-precision matrix (AR <- r_precision_top1, AR3 <- top 3).
    Ceiling: result.json ``ground_truth``, the evaluator on real motions against their own
    texts (real vs real) on the same test subsets, for every final-average aggregate (AF <-
    FID, AR, AD, AMM, AWF); forgetting and transfer have neither.  Means over the setting's
    runs (they share the evaluator and the test sets, so they agree up to the seed's subsets)."""
    from evaluators.continual import FINAL_AVERAGES

    rows = []
    for setting in sorted({r.setting for r in runs}):
        rs = [r for r in runs if r.setting == setting]
        for source, key, display in (("chance", "chance", CHANCE_DISPLAY),
                                     ("ceiling", "ground_truth", CEILING_DISPLAY)):
            for metric in metrics:
                base = FINAL_AVERAGES.get(metric)
                vals = [float((r.info.get(key) or {}).get(base, math.nan)) for r in rs] if base else []
                row_source, row_display = source, display
                if source == "ceiling" and metric in ("AF", "AKID"):
                    # real vs real of the *same n* (held-out real motions of each subset against its
                    # test set): what FID / KID give without any generation error at this size
                    row_source, row_display = "floor", FLOOR_DISPLAY
                    vals = [float((r.info.get("floors") or {}).get(f"{metric}_floor", math.nan)) for r in rs]
                vals = [v for v in vals if v is not None and math.isfinite(v)]
                if not vals:
                    continue
                rows.append(dict(method=row_source, display=row_display, setting=setting,
                                 metric=metric, mean=float(np.mean(vals)), std=math.nan, n=len(vals),
                                 ci95=math.nan, ci_kind="",
                                 mean_ci=_fmt(float(np.mean(vals)), DECIMALS.get(metric, 3)),
                                 lower_is_better=is_lower_better(metric), source=row_source))
    cols = ["method", "display", "setting", "metric", "mean", "std", "n", "ci95", "ci_kind",
            "mean_ci", "lower_is_better", "source"]
    return pd.DataFrame(rows, columns=cols)


def sort_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in paper order: source, method, setting, metric."""
    metric_rank = {m: i for i, m in enumerate(TABLE_METRICS)}
    keys = pd.DataFrame({
        "s": df["source"].map(lambda s: SOURCE_ORDER.index(s) if s in SOURCE_ORDER else 9),
        "m": df["method"].map(method_sort_key),
        "t": df["setting"].map(lambda s: SETTING_ORDER.index(s) if s in SETTING_ORDER else 9),
        "k": df["metric"].map(lambda m: metric_rank.get(m, 99)),
    })
    idx = sorted(range(len(df)), key=lambda i: tuple(keys.iloc[i]) + (df["setting"].iloc[i],
                                                                        df["metric"].iloc[i]))
    return df.iloc[idx].reset_index(drop=True)


def load_reference() -> pd.DataFrame:
    """The paper's published Table 2 numbers in the long format of :func:`summarize`."""
    ref = resources.files("leaderboard") / "reference" / "paper_table2.csv"
    with resources.as_file(ref) as path:
        wide = pd.read_csv(path)
    long = wide.melt(id_vars=["source", "method", "display", "setting"], var_name="metric",
                     value_name="mean")
    long["std"] = np.nan
    long["n"] = np.nan
    long["lower_is_better"] = long["metric"].map(is_lower_better)
    long = long.rename(columns={"source": "reference"})
    long["source"] = "paper"
    return long


def reference_table(settings=None, metrics=None) -> tuple[pd.DataFrame, str]:
    """The paper's Table 2 (wide: method, display, setting, one column per metric) restricted
    to ``settings``/``metrics`` when given, and its citation (said once, not per row)."""
    ref = resources.files("leaderboard") / "reference" / "paper_table2.csv"
    with resources.as_file(ref) as path:
        wide = pd.read_csv(path)
    citation = "; ".join(dict.fromkeys(wide["source"].astype(str)))
    if settings is not None:
        wide = wide[wide["setting"].isin(list(settings))]
    cols = [c for c in wide.columns if c not in ("source", "method", "display", "setting")]
    if metrics is not None:
        cols = [c for c in cols if c in set(metrics)]
    return wide[["method", "display", "setting", *cols]].reset_index(drop=True), citation


def wide_metrics(summary: pd.DataFrame, metrics: list[str] | None = None) -> list[str]:
    """The wide table's metric columns: ``metrics`` as given, else the paper's Table 2 columns
    present (AF, AR, AD, AMM, AWF, FR) plus BWT where any of our runs has it."""
    ours = summary[summary["source"] == "ours"]
    finite = set(ours.loc[np.isfinite(ours["mean"].to_numpy(dtype=float)), "metric"])
    if metrics:
        return [m for m in metrics if m in set(ours["metric"])]
    return [m for m in (*TABLE_METRICS, "BWT", "route_own") if m in finite]


def _settings(summary: pd.DataFrame) -> list[str]:
    present = set(summary.loc[summary["source"] == "ours", "setting"])
    return [s for s in SETTING_ORDER if s in present] + sorted(present - set(SETTING_ORDER))


def best_cells(summary: pd.DataFrame) -> set[tuple[str, str, str]]:
    """(method, setting, metric) of our runs whose value is printed in bold: per setting and
    metric, the best mean, when its 95% CI and the runner-up's do not overlap and, where the
    metric has a chance level, its CI lies beyond chance on the better side.  Nothing is bold
    where a CI is missing (e.g. one run without an evaluation CI) or there is no runner-up."""
    ours = summary[summary["source"] == "ours"]
    if "measured" in ours:
        ours = ours[ours["measured"].fillna(True).astype(bool)]
    chance = {(r.setting, r.metric): float(r.mean)
              for r in summary[summary["source"] == "chance"].itertuples(index=False)}
    out: set[tuple[str, str, str]] = set()
    for (setting, metric), grp in ours.groupby(["setting", "metric"], sort=False):
        grp = grp[np.isfinite(grp["mean"].to_numpy(dtype=float))]
        if len(grp) < 2:
            continue
        sign = -1.0 if is_lower_better(metric) else 1.0
        grp = grp.assign(_score=sign * grp["mean"]).sort_values("_score", ascending=False)
        best, second = grp.iloc[0], grp.iloc[1]
        cis = (float(best["ci95"]), float(second["ci95"]))
        if not all(math.isfinite(c) for c in cis):
            continue
        if sign * best["mean"] - cis[0] <= sign * second["mean"] + cis[1]:
            continue
        c = chance.get((setting, metric), math.nan)
        if math.isfinite(c) and sign * (best["mean"] - c) - cis[0] <= 0:
            continue
        out.add((str(best["method"]), setting, metric))
    return out


def _rows_in_order(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(source, method, display) of our systems in paper order, then chance and ceiling."""
    rows = []
    for source in ("ours", *BOUND_SOURCES):
        sub = summary[summary["source"] == source]
        methods = sorted(set(sub["method"]), key=method_sort_key)
        rows += [(source, m, str(sub.loc[sub["method"] == m, "display"].iloc[0])) for m in methods]
    return rows


def wide_table(summary: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Systems x metrics: one row per system of ours (paper order), then the chance and the
    ceiling row; per setting ``<setting>.n`` (runs) and per metric ``<setting>.<metric><arrow>.mean``
    and ``.ci95`` (the arrow says which direction is better)."""
    metrics = wide_metrics(summary, metrics)
    cell = {(r.source, r.method, r.setting, r.metric): r for r in summary.itertuples(index=False)}
    records = []
    for source, method, display in _rows_in_order(summary):
        rec: dict = {"system": display, "method": method, "row": source}
        for st in _settings(summary):
            ns = [cell[k].n for k in cell if k[:3] == (source, method, st) and k[3] in metrics]
            rec[f"{st}.n"] = int(max(ns)) if source == "ours" and ns else math.nan
            for mt in metrics:
                r = cell.get((source, method, st, mt))
                head = f"{st}.{mt}{ARROWS[is_lower_better(mt)]}"
                rec[f"{head}.mean"] = math.nan if r is None else float(r.mean)
                rec[f"{head}.ci95"] = math.nan if r is None else float(r.ci95)
        records.append(rec)
    return pd.DataFrame(records)


def _cell_text(r, metric: str) -> str:
    d = DECIMALS.get(metric, 3)
    if r is None or not math.isfinite(float(r.mean)):
        return "-"
    if getattr(r, "measured", True) is False:
        return "n.m."
    text = f"{r.mean:.{d}f}"
    if math.isfinite(float(r.ci95)):
        text += f" ± {r.ci95:.{d}f}" + ("†" if getattr(r, "ci_kind", "") == "eval" else "")
    return text


def wide_frames(summary: pd.DataFrame, metrics: list[str] | None = None,
                bold: tuple[str, str] = ("**", "**")) -> dict[str, pd.DataFrame]:
    """Per setting, the readable wide table as text cells: index = system, columns n and
    '<metric> <arrow>'; best values (:func:`best_cells`) wrapped in ``bold``."""
    metrics = wide_metrics(summary, metrics)
    best = best_cells(summary)
    cell = {(r.source, r.method, r.setting, r.metric): r for r in summary.itertuples(index=False)}
    out = {}
    for st in _settings(summary):
        data = {}
        for source, method, display in _rows_in_order(summary):
            ns = [cell[k].n for k in cell if k[:3] == (source, method, st) and k[3] in metrics]
            if not ns:
                continue
            row = {"n": str(int(max(ns))) if source == "ours" else ""}
            for mt in metrics:
                text = _cell_text(cell.get((source, method, st, mt)), mt)
                if (method, st, mt) in best and source == "ours":
                    text = f"{bold[0]}{text}{bold[1]}"
                row[f"{mt} {ARROWS[is_lower_better(mt)]}"] = text
            data[display] = row
        out[st] = pd.DataFrame.from_dict(data, orient="index")
    return out


WIDE_NOTE = ("mean ± 95% CI over scenario orders x seeds (Student t over the n runs; † one run: "
             "its evaluation CI over repeats); ↑/↓ = higher/lower is better. Bold: best, with a "
             "95% CI that neither overlaps the runner-up's nor (R@1 metrics) includes chance. "
             "Chance: a random ranking (result.json chance); ceiling: the evaluator on the real "
             "test motions (result.json ground_truth); floor (AF, AKID): held-out real motions "
             "of the same n against the test set, what FID/KID give with no generation error "
             "(result.json floors). n.m.: not measured (too few texts x generations for a CI "
             "that ranks).")


def wide_text(summary: pd.DataFrame, metrics: list[str] | None = None,
              missing: list[str] | None = None) -> str:
    """The wide table for a terminal (best values marked with *)."""
    parts = []
    for st, frame in wide_frames(summary, metrics, bold=("*", "")).items():
        parts += [f"{SETTING_TITLE.get(st, st)}:", frame.to_string(), ""]
    parts.append(WIDE_NOTE.replace("Bold", "*"))
    parts += [f"not drawn: {m}" for m in missing or []]
    return "\n".join(parts)


def wide_markdown(summary: pd.DataFrame, metrics: list[str] | None = None,
                  missing: list[str] | None = None, citation: str | None = None) -> str:
    """leaderboard_wide.md: one table per setting, a note on how to read it, the figures that
    were not drawn and why, and where the published numbers are."""
    lines = ["# Leaderboard", ""]
    for st, frame in wide_frames(summary, metrics).items():
        lines += [f"## {SETTING_TITLE.get(st, st)}", "",
                  "| system | " + " | ".join(frame.columns) + " |",
                  "|---|" + "---|" * len(frame.columns)]
        lines += [f"| {name} | " + " | ".join(str(v) for v in row) + " |"
                  for name, row in zip(frame.index, frame.itertuples(index=False))]
        lines.append("")
    lines += [WIDE_NOTE, ""]
    if citation:
        lines += [f"Published numbers: `reference.csv` ({citation}); not comparable run for run.", ""]
    if missing:
        lines += ["## Figures not drawn", ""] + [f"- {m}" for m in missing] + [""]
    return "\n".join(lines)


def _fmt(value: float, decimals: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


LATEX_PREAMBLE = (r"\documentclass{article}" "\n" r"\usepackage[T1]{fontenc}" "\n"
                  r"\usepackage{booktabs}" "\n"
                  r"\usepackage[a4paper,landscape,margin=1.5cm]{geometry}" "\n"
                  r"\begin{document}" "\n")


def to_latex(summary: pd.DataFrame, metrics: list[str] | None = None, with_std: bool = False,
             caption: str | None = None, label: str = "tab:l2emg", wide: bool = False,
             standalone: bool = False) -> str:
    """The paper's Table 2 layout: rows = methods, column groups = settings, arrows for the better
    direction, the chance and ceiling rows under our runs, paper rows (if any) below.  Bold: the
    best value of a column when beyond the runner-up's and chance's 95% CI (:func:`best_cells`).
    A ``table`` float (``table*`` with ``wide``, for two-column documents); ``standalone`` wraps
    it in a document (article, booktabs) that compiles on its own."""
    metrics = list(metrics or [m for m in TABLE_METRICS if m in set(summary["metric"])])
    if not metrics:
        raise DataError(None, "no table metrics in the runs", "pass --metrics with available names")
    settings = [s for s in SETTING_ORDER if s in set(summary["setting"])]
    settings += sorted(set(summary["setting"]) - set(settings))
    spread = "ci95" if "ci95" in summary else "std"
    cell = {(r.source, r.method, r.setting, r.metric): (r.mean, getattr(r, spread))
            for r in summary.itertuples(index=False)}
    by_source = {src: sorted({m for s, m, *_ in cell if s == src}, key=method_sort_key)
                 for src in SOURCE_ORDER}
    best = best_cells(summary) if "ci95" in summary else set()
    ncol = 1 + len(settings) * len(metrics)
    arrow = {True: r"$\downarrow$", False: r"$\uparrow$"}
    env = "table*" if wide else "table"
    lines = [r"% requires \usepackage{booktabs}; generated by `l2emg leaderboard`",
             rf"\begin{{{env}}}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "c" * (len(metrics) * len(settings)) + "}", r"\toprule"]
    groups = [rf"\multicolumn{{{len(metrics)}}}{{c}}{{{latex_escape(SETTING_TITLE.get(s, s))}}}"
              for s in settings]
    lines.append("Approach & " + " & ".join(groups) + r" \\")
    lines.append(" ".join(rf"\cmidrule(lr){{{2 + i * len(metrics)}-{1 + (i + 1) * len(metrics)}}}"
                          for i in range(len(settings))))
    heads = [f"{latex_escape(m)}{arrow[is_lower_better(m)]}" for m in metrics] * len(settings)
    lines.append(" & ".join([""] + heads) + r" \\")
    lines.append(r"\midrule")
    names = {"chance": r"\textit{Chance}", "ceiling": r"\textit{Ceiling (real vs real)}",
             "floor": r"\textit{Floor (real vs real, same $n$)}"}

    def row(source: str, method: str, suffix: str = "") -> str:
        name = names.get(source) or latex_name(method) or latex_escape(display_name(method))
        cells = [name + suffix]
        for st in settings:
            for mt in metrics:
                mean, std = cell.get((source, method, st, mt), (math.nan, math.nan))
                d = DECIMALS.get(mt, 3)
                text = _fmt(mean, d)
                if with_std and source == "ours" and text != "-" and std is not None and math.isfinite(std):
                    text += rf"$\pm${std:.{d}f}"
                if source == "ours" and (method, st, mt) in best:
                    text = rf"\textbf{{{text}}}"
                cells.append(text)
        return " & ".join(cells) + r" \\"

    lines += [row("ours", m) for m in by_source["ours"]]
    bound_rows = [row(src, m) for src in BOUND_SOURCES for m in by_source.get(src, [])]
    if bound_rows:
        lines += [r"\midrule", *bound_rows]
    if by_source["paper"]:
        lines.append(r"\midrule")
        lines.append(rf"\multicolumn{{{ncol}}}{{l}}{{\textit{{Published numbers (paper's Table 2, "
                     r"its own data and LLaMA-2 7B backbone; not comparable run for run)}} \\")
        lines += [row("paper", m, " (paper)") for m in by_source["paper"]]
    lines += [r"\bottomrule", r"\end{tabular}"]
    cap = caption or ("Lifelong empathic motion generation: mean"
                      + (r"$\pm$95\% CI" if with_std else "")
                      + r" over scenario orders and seeds. \textbf{Bold}: best, with a 95\% CI "
                        r"beyond the runner-up's and beyond chance (our runs only).")
    lines += [rf"\caption{{{cap}}}", rf"\label{{{label}}}", rf"\end{{{env}}}"]
    text = "\n".join(lines) + "\n"
    return LATEX_PREAMBLE + text + "\\end{document}\n" if standalone else text


def to_csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.6g")
