"""Leaderboard tables: tidy CSV (mean, std, n over orders x seeds), a wide pivot, and the paper's
Table 2 layout in LaTeX (booktabs)."""
from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pandas as pd

from benchmark.io import DataError
from leaderboard.runs import Run, is_lower_better, runs_frame

# Registered method name -> display name, in the paper's row order (then others alphabetically).
METHOD_DISPLAY: dict[str, str] = {
    "mtl": "MTL", "seq_lora": "SeqLoRA", "lwf_lora": "LwF-LoRA", "epi": "EPI", "o_lora": "O-LoRA",
    "prog_prompt": "Prog-Prompt", "sapt": "SAPT", "replay": "Replay", "ewc": "EWC",
    "es_moe": "ES-MoE", "es_moe_no_cged": "w/o CGED", "es_moe_no_samoe": "w/o SAMoE",
    "es_moe_no_emo_loss": "w/o L_emo",
}
LATEX_DISPLAY: dict[str, str] = {"es_moe_no_emo_loss": r"w/o $\mathcal{L}_{emo}$"}
TABLE_METRICS: tuple[str, ...] = ("AF", "AR", "AD", "AMM", "AWF", "FR")
DECIMALS: dict[str, int] = {"AF": 2, "AR": 3, "AD": 2, "AMM": 2, "AWF": 3, "FR": 2, "AR3": 3}
SETTING_ORDER: tuple[str, ...] = ("unseen", "mixed")
SETTING_TITLE: dict[str, str] = {"unseen": "Unseen L2-EMG", "mixed": "Mixed L2-EMG"}
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


PLUGIN_DISPLAY: dict[str, str] = {"replay": "Replay", "ewc": "EWC", "lwf": "LwF"}


def display_name(method: str) -> str:
    """Table name of a run label: ``es_moe`` -> ES-MoE, ``es_moe+replay`` -> ES-MoE + Replay."""
    from benchmark.identity import split_label

    base, plugins = split_label(method)
    return " + ".join([METHOD_DISPLAY.get(base, base), *(PLUGIN_DISPLAY.get(p, p) for p in plugins)])


def method_sort_key(method: str) -> tuple[int, str]:
    """Paper order for registered methods (a composed label ``es_moe+replay`` right after its
    method), then the rest alphabetically."""
    from benchmark.identity import split_label

    order = list(METHOD_DISPLAY)
    base, plugins = split_label(method)
    rest = "+".join(plugins)
    return (order.index(base), rest) if base in order else (len(order), method.lower())


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (& % $ # _ { } ~ ^ \\)."""
    return "".join(_LATEX_ESCAPES.get(c, c) for c in str(text))


def summarize(runs: list[Run], metrics: list[str] | None = None) -> pd.DataFrame:
    """Long table: method x setting x metric with mean, std (ddof=1), n over orders x seeds, the
    95% CI half-width of the mean (Student t, ``t_{0.975, n-1} std / sqrt(n)``; NaN for n = 1)
    and ``mean_ci`` ("mean ± ci", the text a paper table shows)."""
    from leaderboard.stats import t_halfwidth

    per_run = runs_frame(runs, metrics)
    grouped = per_run.groupby(["method", "setting", "metric"], sort=False)["value"]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    out["ci95"] = t_halfwidth(out["std"].to_numpy(dtype=float), out["n"].to_numpy(dtype=float))
    out["mean_ci"] = [_fmt(m, DECIMALS.get(k, 3)) + ("" if not math.isfinite(c) else
                      f" ± {c:.{DECIMALS.get(k, 3)}f}") for m, c, k in
                      zip(out["mean"], out["ci95"], out["metric"])]
    out["n_orders"] = per_run.groupby(["method", "setting", "metric"], sort=False)["order"].nunique().values
    out["n_seeds"] = per_run.groupby(["method", "setting", "metric"], sort=False)["seed"].nunique().values
    out.insert(1, "display", out["method"].map(display_name))
    out["lower_is_better"] = out["metric"].map(is_lower_better)
    out["source"] = "ours"
    return sort_summary(out)


def sort_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in paper order: source, method, setting, metric."""
    metric_rank = {m: i for i, m in enumerate(TABLE_METRICS)}
    keys = pd.DataFrame({
        "s": df["source"].map(lambda s: 0 if s == "ours" else 1),
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


def wide_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, method); columns '<setting>.<metric>.<mean|std|n>'."""
    piv = summary.set_index(["source", "method", "display", "setting", "metric"])[["mean", "std", "n"]]
    piv = piv.unstack(["setting", "metric"])
    piv.columns = [f"{s}.{m}.{stat}" for stat, s, m in piv.columns]
    cols = sorted(piv.columns, key=lambda c: (
        SETTING_ORDER.index(c.split(".")[0]) if c.split(".")[0] in SETTING_ORDER else 9,
        TABLE_METRICS.index(c.split(".")[1]) if c.split(".")[1] in TABLE_METRICS else 99,
        c.split(".")[1], ["mean", "std", "n"].index(c.split(".")[2])))
    piv = piv[cols].reset_index()
    piv["_k"] = [(0 if s == "ours" else 1, method_sort_key(m)) for s, m in zip(piv.source, piv.method)]
    return piv.sort_values("_k").drop(columns="_k").reset_index(drop=True)


def _fmt(value: float, decimals: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


def _ranks(values: dict[str, float], lower: bool, decimals: int) -> dict[str, int]:
    """1 = best, 2 = second (ties on the printed value share a rank); others 0."""
    shown = {m: round(v, decimals) for m, v in values.items() if v is not None and math.isfinite(v)}
    distinct = sorted(set(shown.values()), reverse=not lower)
    return {m: (distinct.index(v) + 1 if distinct.index(v) < 2 else 0) for m, v in shown.items()}


def to_latex(summary: pd.DataFrame, metrics: list[str] | None = None, with_std: bool = False,
             caption: str | None = None, label: str = "tab:l2emg") -> str:
    """The paper's Table 2 layout: rows = methods, column groups = settings, arrows for the better
    direction, best bold and second underlined per column among our runs; paper rows below."""
    metrics = list(metrics or [m for m in TABLE_METRICS if m in set(summary["metric"])])
    if not metrics:
        raise DataError(None, "no table metrics in the runs", "pass --metrics with available names")
    settings = [s for s in SETTING_ORDER if s in set(summary["setting"])]
    settings += sorted(set(summary["setting"]) - set(settings))
    spread = "ci95" if "ci95" in summary else "std"
    cell = {(r.source, r.method, r.setting, r.metric): (r.mean, getattr(r, spread))
            for r in summary.itertuples(index=False)}
    ours = sorted({m for s, m, *_ in cell if s == "ours"}, key=method_sort_key)
    paper = sorted({m for s, m, *_ in cell if s == "paper"}, key=method_sort_key)
    ranks = {}
    for st in settings:
        for mt in metrics:
            vals = {m: cell.get(("ours", m, st, mt), (math.nan, math.nan))[0] for m in ours}
            ranks[(st, mt)] = _ranks(vals, is_lower_better(mt), DECIMALS.get(mt, 3))
    ncol = 1 + len(settings) * len(metrics)
    arrow = {True: r"$\downarrow$", False: r"$\uparrow$"}
    lines = [r"% requires \usepackage{booktabs}; generated by `l2emg leaderboard`",
             r"\begin{table*}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "c" * (len(metrics) * len(settings)) + "}", r"\toprule"]
    groups = [rf"\multicolumn{{{len(metrics)}}}{{c}}{{{latex_escape(SETTING_TITLE.get(s, s))}}}"
              for s in settings]
    lines.append("Approach & " + " & ".join(groups) + r" \\")
    lines.append(" ".join(rf"\cmidrule(lr){{{2 + i * len(metrics)}-{1 + (i + 1) * len(metrics)}}}"
                          for i in range(len(settings))))
    heads = [f"{latex_escape(m)}{arrow[is_lower_better(m)]}" for m in metrics] * len(settings)
    lines.append(" & ".join([""] + heads) + r" \\")
    lines.append(r"\midrule")

    def row(source: str, method: str, suffix: str = "") -> str:
        name = LATEX_DISPLAY.get(method) or latex_escape(display_name(method))
        cells = [name + suffix]
        for st in settings:
            for mt in metrics:
                mean, std = cell.get((source, method, st, mt), (math.nan, math.nan))
                d = DECIMALS.get(mt, 3)
                text = _fmt(mean, d)
                if with_std and source == "ours" and text != "-" and std is not None and math.isfinite(std):
                    text += rf"$\pm${std:.{d}f}"
                rank = ranks[(st, mt)].get(method, 0) if source == "ours" else 0
                text = rf"\textbf{{{text}}}" if rank == 1 else rf"\underline{{{text}}}" if rank == 2 else text
                cells.append(text)
        return " & ".join(cells) + r" \\"

    lines += [row("ours", m) for m in ours]
    if paper:
        lines.append(r"\midrule")
        lines.append(rf"\multicolumn{{{ncol}}}{{l}}{{\textit{{Published numbers (paper's Table 2, "
                     r"its own data and LLaMA-2 7B backbone; not comparable run for run)}} \\")
        lines += [row("paper", m, " (paper)") for m in paper]
    lines += [r"\bottomrule", r"\end{tabular}"]
    cap = caption or ("Lifelong empathic motion generation: mean" + (r"$\pm$95\% CI over orders x seeds" if with_std else "")
                      + " over scenario orders and seeds. Best in \\textbf{bold}, second "
                      "\\underline{underlined} (our runs only).")
    lines += [rf"\caption{{{cap}}}", rf"\label{{{label}}}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


def to_csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.6g")
