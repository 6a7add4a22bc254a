"""Figures (matplotlib Agg): forgetting heat maps (paper Figs. 3/5), motion renders of generated
vs ground-truth motions (Figs. 4/6; filmstrip PNG + animated GIF) and the critical-difference
diagram.  Every file is written atomically."""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.corpus.labels import SCENARIOS
from benchmark.io import DataError, atomic_write_bytes
from leaderboard.runs import Run
from leaderboard.tables import display_name, method_sort_key

HEATMAP_METRICS = {"r_precision_top1": ("R-precision (top 1)", False), "fid": ("FID", True)}
CHAIN_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, pdf: bool = False) -> list[Path]:
    """Save ``fig`` as PNG (and PDF) atomically and close it."""
    plt = _plt()
    out = []
    for ext in ("png", "pdf") if pdf else ("png",):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=120, bbox_inches="tight")
        out.append(atomic_write_bytes(path.with_suffix(f".{ext}"), buf.getvalue()))
    plt.close(fig)
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"


# ----------------------------------------------------------------------------- heat maps
def canonical_order(names: set[str], preferred: list[str] | None = None) -> list[str]:
    """Scenario names in ``preferred`` order (a corpus's order 1; default Table 1), then others
    in natural order (Scenario2 < Scenario10)."""
    known = [s for s in (preferred or SCENARIOS) if s in names]
    rest = sorted(names - set(known), key=lambda s: [int(t) if t.isdigit() else t
                                                      for t in re.split(r"(\d+)", s)])
    return known + rest


def scenario_matrix(run: Run, metric: str) -> pd.DataFrame:
    """The run's matrix with rows named by the scenario just trained (scenario-name space)."""
    if metric not in run.matrices:
        raise DataError(run.path / "matrices", f"no {metric}.csv",
                        f"choose one of {', '.join(sorted(run.matrices))}")
    m = run.matrices[metric].copy()
    m.index = run.scenario_order[: len(m)]
    return m


def mean_matrix(runs: list[Run], metric: str) -> pd.DataFrame:
    """Average of the runs' matrices over orders/seeds, aligned by scenario name."""
    mats = [scenario_matrix(r, metric) for r in runs]
    first = next((r.scenario_order for r in runs if str(r.order) == "1"), None)
    order = canonical_order({c for m in mats for c in m.columns}, first)
    stack = np.stack([m.reindex(index=order, columns=order).to_numpy(dtype=float) for m in mats])
    with np.errstate(all="ignore"):
        counts = np.isfinite(stack).sum(axis=0)
        mean = np.where(counts > 0, np.nansum(stack, axis=0) / np.maximum(counts, 1), np.nan)
    return pd.DataFrame(mean, index=order, columns=order)


def heatmap_figure(runs: list[Run], metric: str, setting: str, methods: list[str] | None = None):
    """One panel per method: mean r[i, j] after training on scenario i, tested on j."""
    plt = _plt()
    title, lower = HEATMAP_METRICS.get(metric, (metric, False))
    runs = [r for r in runs if r.setting == setting and metric in r.matrices]
    methods = methods or sorted({r.method for r in runs}, key=method_sort_key)
    mats = {m: mean_matrix([r for r in runs if r.method == m], metric) for m in methods
            if any(r.method == m for r in runs)}
    if not mats:
        raise DataError(None, f"no runs with a {metric} matrix in setting {setting!r}",
                        "check the RUNS folders")
    values = np.concatenate([m.to_numpy().ravel() for m in mats.values()])
    vmin, vmax = np.nanmin(values), np.nanmax(values)
    cmap = "coolwarm_r" if lower else "coolwarm"   # red = good, blue = forgotten (as the paper)
    n = len(mats)
    ncols = min(n, 4)
    nrows = (n + ncols - 1) // ncols
    size = max(len(m) for m in mats.values())
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + 1, 3.4 * nrows + 0.4),
                             squeeze=False, constrained_layout=True)
    im = None
    for ax, (method, mat) in zip(axes.ravel(), mats.items()):
        im = ax.imshow(mat.to_numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(display_name(method), fontsize=10)
        ticks = range(len(mat))
        ax.set_xticks(ticks, [c[:10] for c in mat.columns], rotation=60, ha="right", fontsize=7)
        ax.set_yticks(ticks, [c[:10] for c in mat.index], fontsize=7)
        ax.set_xlabel("tested on", fontsize=8)
        ax.set_ylabel("after training on", fontsize=8)
        if size <= 10:
            for (i, j), v in np.ndenumerate(mat.to_numpy()):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5.5)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=title)
    fig.suptitle(f"{title} per scenario, {setting} setting (mean over orders and seeds)", fontsize=11)
    return fig


def write_heatmaps(runs: list[Run], out_dir: Path, pdf: bool = False,
                   missing: list[str] | None = None) -> list[Path]:
    """heatmap_<metric>_<setting>.png for each setting and each heat-map metric present; a
    heat map that cannot be drawn is named with the reason in ``missing`` (when given)."""
    written = []
    for setting in sorted({r.setting for r in runs}):
        for metric in HEATMAP_METRICS:
            if any(r.setting == setting and metric in r.matrices for r in runs):
                fig = heatmap_figure(runs, metric, setting)
                written += save_figure(fig, out_dir / f"heatmap_{metric}_{setting}", pdf)
            elif missing is not None:
                missing.append(f"heatmap_{metric}_{setting}: no {setting} run has a {metric} matrix "
                               f"(matrices/{metric}.csv)")
    return written


# ----------------------------------------------------------------------------- motion renders
@dataclass
class Sample:
    """One generated motion of a run's samples/ folder and its ground truth."""

    name: str
    text: str
    emotion: str
    scenario: str
    subset: str
    generated: Path
    reference: Path


def load_samples(run: Run) -> dict[str, Sample]:
    """samples/index.json of a run ({} when the run saved no samples)."""
    index = run.path / "samples" / "index.json"
    if not index.exists():
        return {}
    try:
        entries = json.loads(index.read_text())
    except json.JSONDecodeError as err:
        raise DataError(index, f"not valid JSON ({err.msg})", "rerun the run") from None
    out = {}
    for name, e in entries.items():
        if not isinstance(e, dict) or "reference" not in e:
            raise DataError(index, f"entry {name!r} lacks 'reference'", "see docs/CONTRACTS.md samples/")
        out[name] = Sample(name, str(e.get("text", "")), str(e.get("emotion", "")),
                           str(e.get("scenario", "")), str(e.get("subset", "")),
                           index.parent / f"{name}.npy", index.parent / str(e["reference"]))
    return out


def _joints(path: Path) -> np.ndarray:
    from benchmark.motion import FEATURE_DIM, features_to_joints

    try:
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(path, f"unreadable motion ({err})", "rerun the run") from None
    if feats.ndim != 2 or feats.shape[1] != FEATURE_DIM or len(feats) < 2:
        raise DataError(path, f"expected (T, {FEATURE_DIM}) features, got {feats.shape}",
                        "save raw (de-normalised) HumanML3D features")
    return np.asarray(features_to_joints(feats.astype(np.float32)))


def _project(joints: np.ndarray, azim_deg: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Oblique view: horizontal screen axis mixes x and z, vertical is height."""
    a = np.deg2rad(azim_deg)
    return joints[..., 0] * np.cos(a) + joints[..., 2] * np.sin(a), joints[..., 1]


def _draw_pose(ax, joints: np.ndarray, dx: float = 0.0, alpha: float = 1.0) -> list:
    from benchmark.motion.skeleton import KINEMATIC_CHAIN

    px, py = _project(joints)
    return [ax.plot(px[chain] + dx, py[chain], color=c, lw=1.6, alpha=alpha, solid_capstyle="round")[0]
            for chain, c in zip(KINEMATIC_CHAIN, CHAIN_COLORS)]


def filmstrip_figure(rows: list[tuple[str, np.ndarray]], title: str, n_frames: int = 8):
    """Rows of stick-figure snapshots (label, joints (T, 22, 3)), one row per motion."""
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.3 * n_frames, 1.9 * len(rows)), squeeze=False,
                             constrained_layout=True)
    for ax, (label, joints) in zip(axes[:, 0], rows):
        idx = np.linspace(0, len(joints) - 1, n_frames).round().astype(int)
        for k, t in enumerate(idx):
            pose = joints[t] - joints[t, :1] * np.array([1.0, 0.0, 1.0])  # centre each snapshot
            _draw_pose(ax, pose, dx=k * 1.0, alpha=0.35 + 0.65 * (k + 1) / n_frames)
        ax.set_aspect("equal")
        ax.set_xlim(-0.7, n_frames - 0.3)
        ax.set_ylim(-0.1, 2.0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=9)
    fig.suptitle(title, fontsize=9)
    return fig


def write_gif(rows: list[tuple[str, np.ndarray]], title: str, path: Path, fps: int = 10,
              max_frames: int = 60) -> Path:
    """Animated GIF, one panel per motion side by side (PillowWriter), written atomically."""
    plt = _plt()
    from matplotlib.animation import FuncAnimation, PillowWriter

    length = max(len(j) for _, j in rows)
    frames = np.linspace(0, length - 1, min(length, max_frames)).round().astype(int)
    fig, axes = plt.subplots(1, len(rows), figsize=(2.2 * len(rows), 2.8), squeeze=False)
    allj = np.concatenate([j.reshape(-1, 3) for _, j in rows])
    px, py = _project(allj)
    for ax, (label, _) in zip(axes[0], rows):
        ax.set_xlim(px.min() - 0.3, px.max() + 0.3)
        ax.set_ylim(min(py.min(), 0) - 0.1, py.max() + 0.2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=8)
    fig.suptitle(title, fontsize=8)
    artists: list = []

    def update(t: int) -> list:
        for a in artists:
            a.remove()
        artists.clear()
        for ax, (_, j) in zip(axes[0], rows):
            artists.extend(_draw_pose(ax, j[min(t, len(j) - 1)]))
        return artists

    anim = FuncAnimation(fig, update, frames=frames, blit=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".gif", dir=path.parent, prefix=f".{path.stem}.")
    os.close(fd)
    try:
        anim.save(tmp, writer=PillowWriter(fps=fps))
        atomic_write_bytes(path, Path(tmp).read_bytes())
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(fig)
    return path


def write_motion_renders(runs: list[Run], out_dir: Path, max_samples: int = 4, gif: bool = True,
                         pdf: bool = False, missing: list[str] | None = None) -> list[Path]:
    """For each setting and sample prompt: ground truth + one row per method (its first run by
    order and seed) as a filmstrip PNG and an animated GIF; a setting without samples is named
    with the reason in ``missing`` (when given)."""
    written: list[Path] = []
    for setting in sorted({r.setting for r in runs}):
        chosen: dict[str, tuple[Run, dict[str, Sample]]] = {}
        for r in sorted((r for r in runs if r.setting == setting), key=lambda r: (r.order, r.seed)):
            samples = load_samples(r)
            if samples and r.method not in chosen:
                chosen[r.method] = (r, samples)
        if not chosen and missing is not None:
            missing.append(f"motion_{setting}_*: no {setting} run saved generated samples "
                           "(samples/index.json)")
        if max_samples < 1 and chosen and missing is not None:
            missing.append(f"motion_{setting}_*: --max-samples is {max_samples}")
        names = sorted({n for _, s in chosen.values() for n in s})[:max_samples]
        for name in names:
            have = sorted((m for m in chosen if name in chosen[m][1]), key=method_sort_key)
            first = chosen[have[0]][1][name]
            rows = [("ground truth", _joints(first.reference))]
            rows += [(display_name(m), _joints(chosen[m][1][name].generated)) for m in have]
            title = f"[{first.emotion}] {first.text}  ({first.scenario}, {setting})"
            stem = out_dir / f"motion_{setting}_{_slug(name)}"
            written += save_figure(filmstrip_figure(rows, title), stem, pdf)
            if gif:
                written.append(write_gif(rows, title, stem.with_suffix(".gif")))
    return written


# ----------------------------------------------------------------------------- CD diagram
MISSING_FILE = "NOT_DRAWN.txt"


def cd_missing_reason(avg_ranks: pd.Series, nemenyi: pd.DataFrame, notes: list[str]) -> str | None:
    """Why the critical-difference diagram of a comparison cannot be drawn (None when it can):
    it needs >= 2 methods ranked on >= 2 complete blocks (setting x order x seed); the stats'
    own note says what was found."""
    if len(avg_ranks) >= 2 and not nemenyi.empty:
        return None
    found = next((n for n in notes if n.startswith("not tested") and "have " in n), "")
    detail = ("found " + found.split("have ", 1)[1]) if found else f"found {len(avg_ranks)} method(s) ranked"
    return ("the CD diagram needs >= 2 methods on >= 2 complete blocks (setting x order x seed; "
            f"more orders or seeds give more blocks): {detail}")


def cd_figure(avg_ranks: pd.Series, sig: pd.DataFrame, cd: float, metric: str, alpha: float = 0.05):
    """Critical-difference diagram (scikit-posthocs) from average ranks and Nemenyi p-values."""
    plt = _plt()
    import scikit_posthocs as sp

    ranks = avg_ranks.rename(index=display_name)
    sig = sig.rename(index=display_name, columns=display_name)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.35 * len(ranks)))
    sp.critical_difference_diagram(ranks, sig, ax=ax, alpha=alpha)
    cd_text = f", CD = {cd:.2f}" if np.isfinite(cd) else ""
    ax.set_title(f"Average rank on {metric} (1 = best; bars join methods not significantly "
                 f"different, Nemenyi alpha = {alpha}{cd_text})", fontsize=8)
    return fig
