"""Images for the HTML report (``leaderboard.report``), as bytes ready to inline as base64 data
URIs: a matplotlib figure as PNG, the routing matrices of a routed run, and the animated stick
figures (22 joints) of a caption's real motion next to each system's generated one."""
from __future__ import annotations

import base64
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.io import DataError
from leaderboard.runs import Run
from leaderboard.tables import display_name, method_sort_key

ROUTING_FILES = ("matrices/route_own.csv", "routing.csv")


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for an ``<img src>``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure_png(fig, dpi: int = 90) -> bytes:
    """PNG bytes of a matplotlib figure (closed afterwards)."""
    from leaderboard.figures import _plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        _plt().close(fig)
    return buf.getvalue()


# ----------------------------------------------------------------------------- routing
@dataclass
class Routing:
    """The routing files of one routed run: ``route_own`` (row i = after experience i, columns
    = test subsets; share of a subset's prompts sent to its own expert) and ``confusion``
    (subset x expert, after the last experience); either may be None."""

    run: Run
    route_own: pd.DataFrame | None
    confusion: pd.DataFrame | None


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, index_col=0).astype(float)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(path, f"not a numeric matrix CSV ({err})", "rerun the run") from None


def routing_of(runs: list[Run]) -> dict[tuple[str, str], Routing]:
    """Per (method, setting), the routing files of its first run (by order, seed) that has any.
    Expert k is the one created for the k-th experience of that run's order, so matrices of
    different orders are not averaged."""
    out: dict[tuple[str, str], Routing] = {}
    for r in sorted(runs, key=lambda r: (method_sort_key(r.method), r.setting, str(r.order), r.seed)):
        if (r.method, r.setting) in out:
            continue
        own, conf = (_read_csv(r.path / f) for f in ROUTING_FILES)
        if own is not None or conf is not None:
            out[(r.method, r.setting)] = Routing(r, own, conf)
    return out


def routing_png(routing: Routing) -> bytes:
    """One panel per routing matrix present (values 0..1, annotated)."""
    from leaderboard.figures import _plt

    plt = _plt()
    panels = [(t, m) for t, m in (("route_own: after experience i (rows), share of each test "
                                   "subset's prompts routed to its own expert", routing.route_own),
                                  ("routing after the last experience: test subset x expert",
                                   routing.confusion)) if m is not None]
    width = sum(max(3.5, 1.5 + 0.55 * m.shape[1]) for _, m in panels)
    height = max(2.6, 1.4 + 0.4 * max(m.shape[0] for _, m in panels))
    fig, axes = plt.subplots(1, len(panels), figsize=(width, height), squeeze=False,
                             constrained_layout=True)
    for ax, (title, mat) in zip(axes[0], panels):
        values = mat.to_numpy(dtype=float)
        im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, k), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(k, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v < 0.6 else "black")
        ax.set_xticks(range(values.shape[1]), [str(c)[:14] for c in mat.columns], rotation=60,
                      ha="right", fontsize=6)
        ax.set_yticks(range(values.shape[0]), [str(c)[:14] for c in mat.index], fontsize=6)
        ax.set_title(title, fontsize=7, wrap=True)
        fig.colorbar(im, ax=ax, fraction=0.046)
    r = routing.run
    fig.suptitle(f"{display_name(r.method)}, {r.setting}, order {r.order}, seed {r.seed}", fontsize=8)
    return figure_png(fig)


# ----------------------------------------------------------------------------- motions
@dataclass
class MotionClip:
    """One caption of a setting: its text, and the animated GIF (real motion, then one panel
    per system that saved this sample)."""

    setting: str
    name: str
    title: str
    systems: list[str]
    gif: bytes


def motion_clips(runs: list[Run], max_samples: int = 3, fps: int = 10,
                 max_frames: int = 40) -> tuple[list[MotionClip], list[str]]:
    """The first ``max_samples`` captions per setting that runs kept in ``samples/`` (each
    method's first run by order and seed), as animated GIFs; and one line per setting that has
    no samples, saying so."""
    from leaderboard.figures import _joints, load_samples, write_gif

    clips, missing = [], []
    for setting in sorted({r.setting for r in runs}):
        chosen: dict[str, dict] = {}
        for r in sorted((r for r in runs if r.setting == setting), key=lambda r: (str(r.order), r.seed)):
            samples = load_samples(r)
            if samples and r.method not in chosen:
                chosen[r.method] = samples
        if not chosen:
            missing.append(f"{setting}: no run saved generated samples (samples/index.json; "
                           "the run option n_samples keeps them)")
            continue
        for name in sorted({n for s in chosen.values() for n in s})[:max(0, max_samples)]:
            have = sorted((m for m in chosen if name in chosen[m]), key=method_sort_key)
            first = chosen[have[0]][name]
            rows = [("real", _joints(first.reference))]
            rows += [(display_name(m), _joints(chosen[m][name].generated)) for m in have]
            title = f"[{first.emotion}] {first.text} ({first.scenario})"
            with tempfile.TemporaryDirectory(prefix="l2emg-report-") as tmp:
                path = write_gif(rows, title, Path(tmp) / "clip.gif", fps=fps, max_frames=max_frames)
                gif = path.read_bytes()
            clips.append(MotionClip(setting, name, title, [label for label, _ in rows], gif))
    return clips, missing
