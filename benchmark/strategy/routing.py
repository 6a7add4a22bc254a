"""Routing measurement for routed strategies (expert banks, hard per-adapter routing).

Expert k is the expert created for the k-th experience of the order, so the *own* expert of
subset j (trained at position j) is expert j.  For a prompt the routed expert is the one with
the highest weight (soft gates) or the one it is sent to (hard routing).

* :func:`routing_weights` (what ``MotionLMStrategy.routing_weights`` returns by default): the
  (N, E) weights of the strategy's own :meth:`route` on a list of prompts, computed exactly as
  generation computes them (eval mode, same chunks of inputs); None for a strategy whose
  generation is not routed over experts (no route, or a route without weights/adapters).
* :func:`route_own_row`: per subset, the share of its test prompts routed to its own expert
  (NaN for a subset with no expert yet), and :func:`confusion` (subset x expert shares, rows
  sum to 1).
* :func:`record_routing` (called by the runner after each experience) writes
  ``matrices/route_own.csv`` (row i = after experience i, columns = subsets in training
  order), and after the last experience ``routing.csv`` (the confusion matrix) and
  ``routing.png``; :func:`routing_summary` is the ``"routing"`` block of ``result.json``.
Strategies that do not route write none of these files.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

ROUTE_OWN = "route_own"


@torch.no_grad()
def routing_weights(strategy, texts: Sequence[str], chunk: int = 64) -> np.ndarray | None:
    """(N, E) routing weights of ``strategy.route`` for ``texts`` (rows sum to 1; one-hot for
    hard per-adapter routes, E = the adapters in creation order), or None if not routed."""
    texts = list(texts)
    if not texts:
        return None
    strategy.model.to(strategy.device)
    strategy.method_modules.to(strategy.device)
    out: list[np.ndarray] = []
    with strategy.eval_mode(strategy.model, strategy.method_modules):
        for s in range(0, len(texts), chunk):
            part = texts[s: s + chunk]
            batch = {k: v.to(strategy.device)
                     for k, v in strategy.motion_lm.generation_inputs(part).items()}
            route = strategy.route({**batch, "texts": part})
            if route is None:
                return None
            if route.adapters is not None:
                names = list(strategy.motion_lm.adapters)
                w = np.zeros((len(part), len(names)))
                w[np.arange(len(part)), [names.index(a) for a in route.adapters]] = 1.0
            elif route.weights is not None:
                w = route.weights.detach().float().cpu().numpy().astype(np.float64)
                if w.ndim != 2:
                    return None                     # per-token gates: not a per-prompt routing
            else:
                return None
            out.append(w)
    return np.concatenate(out)


def own_share(weights: np.ndarray, expert: int) -> float:
    """Share of the prompts (rows) whose highest-weight expert is ``expert``."""
    if expert >= weights.shape[1]:
        return float("nan")
    return float(np.mean(weights.argmax(1) == expert))


def confusion(weights_per_subset: Sequence[np.ndarray], n_experts: int) -> np.ndarray:
    """(subsets, n_experts): per subset the share of its prompts routed to each expert."""
    rows = []
    for w in weights_per_subset:
        counts = np.bincount(w.argmax(1), minlength=n_experts)[:n_experts]
        rows.append(counts / max(len(w), 1))
    return np.array(rows, dtype=float)


def route_own_row(strategy, tests: Sequence[dict], n_trained: int
                  ) -> tuple[list[float], list[np.ndarray]] | None:
    """route_own of every subset after ``n_trained`` experiences (NaN for subsets not trained
    yet) and the weights of the trained subsets' test prompts; None if the strategy is not
    routed."""
    row, weights = [], []
    for j, t in enumerate(tests):
        if j >= n_trained:
            row.append(float("nan"))
            continue
        w = strategy.routing_weights(t["texts"])
        if w is None:
            return None
        weights.append(w)
        row.append(own_share(w, j))
    return row, weights


def _png(matrix: np.ndarray, subsets: Sequence[str], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, e = matrix.shape
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 + 0.7 * e), 1.2 + 0.5 * n))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(n):
        for k in range(e):
            ax.text(k, i, f"{matrix[i, k]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, k] < 0.6 else "black")
    ax.set_xticks(range(e), [f"E{k + 1}" for k in range(e)])
    ax.set_yticks(range(n), list(subsets))
    ax.set_xlabel("expert (k = created for the k-th experience)")
    ax.set_ylabel("test prompts of subset")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def record_routing(out: Path, strategy, tests: Sequence[dict], names: Sequence[str],
                   n_trained: int, n_experiences: int) -> bool:
    """After experience ``n_trained`` (1-based): row ``after_<n_trained>`` of
    ``matrices/route_own.csv`` (earlier rows read back from the file, so a resumed run keeps
    them); after the last experience also ``routing.csv`` + ``routing.png``.  Returns False
    (and writes nothing) for a strategy that is not routed."""
    import pandas as pd

    from benchmark.io import atomic_write_bytes, atomic_write_text

    got = route_own_row(strategy, tests, n_trained)
    if got is None:
        return False
    row, weights = got
    out = Path(out)
    path = out / "matrices" / f"{ROUTE_OWN}.csv"
    rows = []
    if path.exists() and n_trained > 1:
        old = pd.read_csv(path, index_col=0)
        rows = [list(map(float, r)) for r in old.to_numpy()[: n_trained - 1]]
    rows = rows + [[float("nan")] * len(names)] * (n_trained - 1 - len(rows)) + [row]
    df = pd.DataFrame(rows, index=[f"after_{i + 1}" for i in range(len(rows))], columns=list(names))
    atomic_write_text(path, df.to_csv())
    if n_trained >= n_experiences:
        n_exp = max(w.shape[1] for w in weights)
        conf = confusion(weights, n_exp)
        cols = [f"expert{k + 1}" + (f" ({names[k]})" if k < len(names) else "") for k in range(n_exp)]
        cdf = pd.DataFrame(conf, index=pd.Index(list(names[: len(conf)]), name="subset"), columns=cols)
        atomic_write_text(out / "routing.csv", cdf.to_csv())
        mean = float(np.nanmean(row)) if np.isfinite(row).any() else float("nan")
        atomic_write_bytes(out / "routing.png",
                           _png(conf, names[: len(conf)], f"routing after the last experience "
                                                           f"(route_own mean {mean:.2f})"))
    return True


def routing_summary(out: Path) -> dict:
    """``{"routing": {...}}`` for result.json from the files :func:`record_routing` wrote
    (empty for a run without them): the last row of route_own and its mean, the confusion
    matrix file."""
    import pandas as pd

    path = Path(out) / "matrices" / f"{ROUTE_OWN}.csv"
    if not path.exists():
        return {}
    last = pd.read_csv(path, index_col=0).iloc[-1].astype(float).to_numpy()
    finite = last[np.isfinite(last)]
    return {"routing": {"route_own_final": [None if not np.isfinite(v) else float(v) for v in last],
                        "route_own": float(finite.mean()) if len(finite) else None,
                        "matrix": f"matrices/{ROUTE_OWN}.csv",
                        "confusion": "routing.csv" if (Path(out) / "routing.csv").exists() else None}}
