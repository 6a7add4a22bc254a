"""Unseen and Mixed split manifests (Table 1 of the paper) and the three scenario orders.

A manifest is a table with one row per motion: ``id, subset, part``.

* **Unseen**: one subset per scenario, named after its *primary* scenario.  Subset ``i`` has
  exactly as many motions as scenario ``i`` (so at full scale the sizes are Table 1's Unseen
  row); ``1 - share`` of them come from scenario ``i`` itself and ``share`` from the other
  scenarios.  Every scenario *donates* as many motions as its own subset *receives*, so each
  motion is used exactly once; who receives which donor is a seeded random assignment that
  never sends a donor back to its own scenario's subset.
* **Mixed**: all motions randomly mixed into as many subsets as the corpus has scenarios,
  ``Scenario1..ScenarioK`` of size ``N // K`` (the last one takes the remainder: 7 x 2489 + 2493
  for the paper's 8 at full scale).

The label spaces are the corpus's own (``corpus.scenarios``, from corpus.json): the paper's
8 scenarios get the paper's three orders (:data:`ORDERS`); any other scenario list gets order 1 =
its own order, 2 = the reverse, 3 = a fixed seeded permutation (:func:`scenario_orders`).

A motion's *part* (train/val/test) is fixed at corpus level (``labels.csv``); both settings
draw every subset part by part, so each subset keeps the corpus's 0.8/0.05/0.15 up to rounding.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from benchmark.corpus.labels import PARTS, SCENARIOS, resolve_scenario, scenario_slug
from benchmark.io import DataError, atomic_write_text

SETTINGS: tuple[str, ...] = ("unseen", "mixed")
MANIFEST_COLUMNS: tuple[str, ...] = ("id", "subset", "part")
N_MIXED_SUBSETS = 8

# Scenario orders as permutations of Table 1's columns (0 = Daily Life ... 7 = Acrobatics).
# Order 1 is Table 1's order, order 2 its reverse, order 3 an interleaving that puts the large
# "Daily Life" subset in the middle.  Mixed subsets Scenario1..8 are permuted the same way.
ORDER_PERMUTATIONS: dict[int, tuple[int, ...]] = {
    1: (0, 1, 2, 3, 4, 5, 6, 7),
    2: (7, 6, 5, 4, 3, 2, 1, 0),
    3: (2, 7, 1, 5, 0, 6, 3, 4),
}
MIXED_SUBSETS: tuple[str, ...] = tuple(f"Scenario{i + 1}" for i in range(N_MIXED_SUBSETS))
ORDERS: dict[str, dict[int, list[str]]] = {
    "unseen": {k: [SCENARIOS[i] for i in p] for k, p in ORDER_PERMUTATIONS.items()},
    "mixed": {k: [MIXED_SUBSETS[i] for i in p] for k, p in ORDER_PERMUTATIONS.items()},
}
ORDER3_SEED = 3  # seed of order 3's permutation for corpora with their own scenarios
_MIXED_NAME = re.compile(r"^Scenario[1-9][0-9]*$")


def mixed_subsets(n: int) -> tuple[str, ...]:
    """Names of the ``n`` Mixed subsets: ``Scenario1..Scenario<n>``."""
    return tuple(f"Scenario{i + 1}" for i in range(n))


def order_permutations(n: int, paper: bool = False) -> dict[int, tuple[int, ...]]:
    """Orders 1-3 as permutations of ``n`` subsets: the paper's for its 8 scenarios, else
    identity, reverse and a fixed seeded permutation (different from both when ``n >= 3``)."""
    if paper:
        return dict(ORDER_PERMUTATIONS)
    ident, rev = tuple(range(n)), tuple(range(n - 1, -1, -1))
    rng = np.random.default_rng(ORDER3_SEED)
    perm = tuple(int(i) for i in rng.permutation(n))
    while n >= 3 and perm in (ident, rev):
        perm = tuple(int(i) for i in rng.permutation(n))
    return {1: ident, 2: rev, 3: perm}


def scenario_orders(scenarios=None) -> dict[str, dict[int, list[str]]]:
    """``{setting: {k: subset names}}`` for a corpus's scenario list (default: the paper's)."""
    scen = tuple(scenarios) if scenarios else SCENARIOS
    perms = order_permutations(len(scen), paper=scen == SCENARIOS)
    mixed = mixed_subsets(len(scen))
    return {"unseen": {k: [scen[i] for i in p] for k, p in perms.items()},
            "mixed": {k: [mixed[i] for i in p] for k, p in perms.items()}}


# ----------------------------------------------------------------------------- helpers
def _labels_with_parts(corpus) -> pd.DataFrame:
    labels = corpus.labels
    missing = [c for c in ("id", "scenario", "part") if c not in labels.columns]
    if missing:
        raise DataError(Path(corpus.root) / "labels.csv", f"missing column(s) {missing}",
                        "rebuild the corpus with `l2emg data synth` or add a part column "
                        "(train/val/test, see benchmark.corpus.parts.assign_parts)")
    bad = ~labels["part"].isin(PARTS)
    if bad.any():
        row = labels[bad].iloc[0]
        raise DataError(Path(corpus.root) / "labels.csv",
                        f"unknown part {row['part']!r} for id {row['id']!r}",
                        f"use one of {', '.join(PARTS)}")
    return labels[["id", "scenario", "part"]].reset_index(drop=True)


def _assign_donors(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random permutation ``p`` with ``groups[p[k]] != groups[k]`` for every ``k``.

    ``groups[k]`` is the scenario of donor ``k``; donor ``k`` is sent to the subset of slot
    ``p[k]`` (slots have the same multiset of groups as donors).  Needs every group to hold at
    most half of the donors.  Conflicts of a random permutation are repaired by swaps.
    """
    p = rng.permutation(len(groups))
    for k in np.flatnonzero(groups[p] == groups):
        g = groups[k]
        if groups[p[k]] != g:  # already repaired by an earlier swap
            continue
        cand = np.flatnonzero((groups != g) & (groups[p] != g))
        j = rng.choice(cand)
        p[k], p[j] = p[j], p[k]
    return p


def _donation_counts(counts: np.ndarray, share: float) -> np.ndarray:
    """Motions each scenario gives away (= receives): ``round(share * n)``, capped so that no
    scenario gives more than all others together (else a donor would have to go home)."""
    d = np.floor(share * counts + 0.5).astype(np.int64)
    total = d.sum()
    m = int(np.argmax(d)) if len(d) else 0
    if len(d) and d[m] > total - d[m]:
        d[m] = total - d[m]
    return d


def _unseen(labels: pd.DataFrame, scenarios: Sequence[str], share: float,
            rng: np.random.Generator) -> pd.Series:
    subset = pd.Series("", index=labels.index, dtype=object)
    for part in PARTS:
        rows = labels.index[labels["part"] == part].to_numpy()
        if len(rows) == 0:
            continue
        rows = rows[rng.permutation(len(rows))]
        scen = labels.loc[rows, "scenario"].to_numpy()
        codes = np.array([scenarios.index(s) for s in scen])
        counts = np.bincount(codes, minlength=len(scenarios))
        donations = _donation_counts(counts, share)
        donors, groups = [], []
        for c, name in enumerate(scenarios):
            mine = rows[codes == c]
            subset.loc[mine] = name
            donors.append(mine[: donations[c]])
            groups.append(np.full(donations[c], c))
        donors_a, groups_a = np.concatenate(donors), np.concatenate(groups)
        if len(donors_a):
            dest = groups_a[_assign_donors(groups_a, rng)]
            subset.loc[donors_a] = [scenarios[c] for c in dest]
    return subset


def _interleave(sizes: Sequence[int]) -> np.ndarray:
    """Subset index per position so that every contiguous block holds each subset in proportion
    to its size (+-1): subset ``i``'s ``j``-th slot sits at key ``(j + 0.5) / sizes[i]``."""
    keys = np.concatenate([(np.arange(s) + 0.5) / s for s in sizes if s > 0] or [np.zeros(0)])
    owner = np.concatenate([np.full(s, i) for i, s in enumerate(sizes) if s > 0]
                           or [np.zeros(0, dtype=np.int64)])
    return owner[np.argsort(keys, kind="stable")]


def _mixed(labels: pd.DataFrame, n_subsets: int, rng: np.random.Generator) -> pd.Series:
    n = len(labels)
    base = n // n_subsets
    sizes = [base] * (n_subsets - 1) + [n - base * (n_subsets - 1)]
    # stratified order: part by part, random inside a part; then deal slots in proportion
    order = np.concatenate([
        rows[rng.permutation(len(rows))]
        for part in PARTS
        for rows in [labels.index[labels["part"] == part].to_numpy()]])
    owner = _interleave(sizes)
    subset = pd.Series("", index=labels.index, dtype=object)
    subset.loc[order] = [f"Scenario{i + 1}" for i in owner]
    return subset


# ----------------------------------------------------------------------------- public API
def make_splits(corpus, setting: str, seed: int, share: float = 0.2) -> pd.DataFrame:
    """Split manifest ``DataFrame(id, subset, part)`` for ``setting`` in {'unseen', 'mixed'}.

    Deterministic for a given corpus, setting, seed and share.  Rows follow the corpus's id
    order.  Unseen subsets are named after their primary scenario (scenarios absent from the
    corpus give no subset); Mixed subsets are ``Scenario1..ScenarioK``, K = its scenario count.
    """
    setting = _check_setting(setting)
    if not 0.0 <= share < 1.0:
        raise DataError(None, f"--share must be in [0, 1), got {share}", "pass e.g. --share 0.2")
    labels = _labels_with_parts(corpus)
    if len(labels) == 0:
        raise DataError(Path(corpus.root) / "labels.csv", "the corpus has no motions",
                        "build or import a corpus first")
    rng = np.random.default_rng([int(seed), SETTINGS.index(setting)])
    if setting == "unseen":
        known = tuple(getattr(corpus, "scenarios", None) or SCENARIOS)
        unknown = sorted(set(labels["scenario"]) - set(known))
        if unknown:
            raise DataError(Path(corpus.root) / "labels.csv", f"unknown scenario(s) {unknown}",
                            f"use one of {', '.join(known)}")
        subset = _unseen(labels, list(known), share, rng)
    else:
        n_sub = len(getattr(corpus, "scenarios", None) or SCENARIOS)
        subset = _mixed(labels, n_sub, rng)
    return pd.DataFrame({"id": labels["id"].astype(str), "subset": subset.astype(str),
                         "part": labels["part"].astype(str)})


def check_train_fraction(fraction, name: str = "train fraction") -> float:
    """``fraction`` as a float, or a :class:`DataError` when it is not a number in (0, 1]
    (the one range check behind ``--train-fraction``, the config and :func:`subsample_train`)."""
    if (not isinstance(fraction, (int, float, np.floating)) or isinstance(fraction, bool)
            or not 0.0 < float(fraction) <= 1.0):
        raise DataError(None, f"{name} {fraction!r} is not in (0, 1]",
                        "pass --train-fraction with a share such as 0.5 (1 = the whole "
                        "training part)")
    return float(fraction)


def subsample_train(manifest: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """The manifest with only ``ceil(fraction * n)`` (at least 1) of each subset's ``n``
    training rows kept; val and test rows are untouched.  The kept rows are those whose id
    hashes lowest (BLAKE2b), so the choice does not depend on any seed, on the row order or
    on the other subsets, and a smaller fraction keeps a subset of a larger one's rows.
    ``fraction = 1`` returns the manifest unchanged."""
    import hashlib
    import math

    fraction = check_train_fraction(fraction)
    if fraction == 1.0:
        return manifest
    keep = np.ones(len(manifest), dtype=bool)
    ids = manifest["id"].astype(str).to_numpy()
    train = (manifest["part"] == "train").to_numpy()
    subsets = manifest["subset"].to_numpy()
    for name in pd.unique(subsets[train]):
        rows = np.flatnonzero(train & (subsets == name))
        rank = sorted(rows, key=lambda r: hashlib.blake2b(ids[r].encode(), digest_size=8).digest())
        n_keep = max(1, math.ceil(fraction * len(rows)))
        keep[rank[n_keep:]] = False
    return manifest.loc[keep].reset_index(drop=True)


def save_manifest(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a manifest CSV (id, subset, part) atomically."""
    return atomic_write_text(path, df.loc[:, list(MANIFEST_COLUMNS)].to_csv(index=False))


def _rows(mask: pd.Series, limit: int = 5) -> str:
    """CSV line numbers (header = line 1) of the first offending rows."""
    lines = (np.flatnonzero(mask.to_numpy()) + 2)[:limit]
    return ", ".join(str(x) for x in lines)


def load_manifest(path: str | os.PathLike, corpus) -> pd.DataFrame:
    """Read and validate a manifest CSV against ``corpus``.

    Raises :class:`DataError` (naming the file and the first offending CSV lines) on missing
    columns, ids not in the corpus, ids listed twice, unknown parts or unknown subset names.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "manifest file not found",
                        "write one with `l2emg data splits --out FILE`")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"not a readable CSV ({err})",
                        "a manifest is a CSV with columns id,subset,part") from err
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; found {list(df.columns)}",
                        "a manifest is a CSV with columns id,subset,part")
    df = df.loc[:, list(MANIFEST_COLUMNS)].apply(lambda c: c.str.strip())
    if len(df) == 0:
        raise DataError(path, "the manifest has no rows", "regenerate it with `l2emg data splits`")
    known_ids = set(map(str, corpus.labels["id"]))
    bad = ~df["id"].isin(known_ids)
    if bad.any():
        raise DataError(path, f"{int(bad.sum())} id(s) not in the corpus at {corpus.root}, "
                        f"e.g. {df['id'][bad].iloc[0]!r} (lines {_rows(bad)})",
                        "use a manifest made for this corpus or regenerate it")
    dup = df["id"].duplicated(keep="first")
    if dup.any():
        raise DataError(path, f"id {df['id'][dup].iloc[0]!r} is used more than once "
                        f"(lines {_rows(dup)})", "each motion may belong to one subset only")
    bad = ~df["part"].isin(PARTS)
    if bad.any():
        raise DataError(path, f"unknown part {df['part'][bad].iloc[0]!r} (lines {_rows(bad)})",
                        f"use one of {', '.join(PARTS)}")
    scen = tuple(getattr(corpus, "scenarios", None) or SCENARIOS)
    known_subsets = set(scen) | set(mixed_subsets(len(scen)))
    bad = ~df["subset"].isin(known_subsets)
    if bad.any():
        raise DataError(path, f"unknown subset {df['subset'][bad].iloc[0]!r} "
                        f"(lines {_rows(bad)})",
                        f"use scenario names or Scenario1..{len(scen)}")
    return df.reset_index(drop=True)


def manifest_setting(manifest: pd.DataFrame) -> str:
    """'mixed' if every subset is named ScenarioK, else 'unseen'."""
    return "mixed" if all(_MIXED_NAME.match(str(s)) for s in set(manifest["subset"])) \
        else "unseen"


def _check_setting(setting: str) -> str:
    s = str(setting).strip().lower()
    if s not in SETTINGS:
        raise DataError(None, f"unknown setting {setting!r}", f"use one of {', '.join(SETTINGS)}")
    return s


def resolve_order(order: int | str | Sequence[str], setting: str,
                  available: Sequence[str] | None = None,
                  scenarios: Sequence[str] | None = None) -> list[str]:
    """Subset names in training order.

    ``order`` is 1, 2 or 3 (:func:`scenario_orders` of the corpus's ``scenarios``; the paper's
    :data:`ORDERS` by default), or an explicit comma-separated string / list of distinct subset
    names (scenario names or slugs for Unseen, ``Scenario1..K`` for Mixed).  An explicit order
    may be shorter than K (a stream over fewer subsets, handy for quick tests).  ``available``
    restricts the names to the subsets of a manifest.
    """
    setting = _check_setting(setting)
    orders = scenario_orders(scenarios)[setting]
    valid = list(orders[1])
    if isinstance(order, (int, np.integer)) or (isinstance(order, str) and order.strip().isdigit()):
        k = int(order)
        if k not in orders:
            raise DataError(None, f"unknown order {order!r}",
                            f"use 1, 2, 3 or a comma-separated list of: {', '.join(valid)}")
        names = list(orders[k])
    else:
        parts = order.split(",") if isinstance(order, str) else list(order)
        parts = [str(p).strip() for p in parts if str(p).strip()]
        names = []
        for p in parts:
            try:
                names.append(resolve_scenario(p, tuple(valid)) if setting == "unseen"
                             else next(v for v in valid if v.lower() == p.lower()))
            except (ValueError, StopIteration):
                raise DataError(None, f"unknown subset {p!r} in --order",
                                f"use 1, 2, 3 or distinct names from: {', '.join(valid)}") from None
        if not names or len(set(names)) != len(names) or len(names) > len(valid):
            raise DataError(None, f"--order must list 1..{len(valid)} distinct subsets, got "
                            f"{parts}", f"use distinct names from: {', '.join(valid)}")
    if available is not None:
        absent = [n for n in names if n not in set(available)]
        if absent:
            raise DataError(None, f"order names subset(s) {absent} that the manifest lacks",
                            f"pass an explicit --order over: {', '.join(sorted(available))}")
    return names


def order_name(order: int | str | Sequence[str]) -> str:
    """A short label for an order: '1', '2', '3' or 'custom-<slugs>'."""
    if isinstance(order, (int, np.integer)) or (isinstance(order, str) and order.strip().isdigit()):
        return str(int(order))
    parts = order.split(",") if isinstance(order, str) else list(order)
    return "custom-" + "-".join(scenario_slug(str(p)) for p in parts if str(p).strip())


def summarize(corpus, manifest: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table-1-style counts: one row per subset (or per scenario without a manifest) with its
    motions per scenario, per emotion and per part, plus a ``total`` row."""
    labels = corpus.labels[["id", "scenario", "emotion", "part"]].astype({"id": str})
    if manifest is None:
        df = labels.assign(subset=labels["scenario"])
        order = [s for s in corpus.scenarios if s in set(df["subset"])]
    else:
        df = manifest[["id", "subset"]].merge(labels, on="id", how="left")
        order = list(dict.fromkeys([s for s in (*corpus.scenarios,
                                                 *mixed_subsets(len(corpus.scenarios)))
                                    if s in set(df["subset"])]))
    blocks = []
    for col, names in (("scenario", corpus.scenarios), ("emotion", corpus.emotions),
                       ("part", PARTS)):
        t = pd.crosstab(df["subset"], df[col]).reindex(index=order, columns=list(names),
                                                       fill_value=0)
        if col == "scenario" and manifest is None:
            continue  # the diagonal only: the "total" column says it
        blocks.append(t)
    table = pd.concat(blocks, axis=1)
    table["total"] = df.groupby("subset").size().reindex(order).to_numpy()
    table.loc["total"] = table.sum(axis=0)
    table.index.name = "scenario" if manifest is None else "subset"
    return table.astype(int)
