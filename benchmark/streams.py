"""Avalanche streams over a split manifest: one experience per subset, in a scenario order.

``make_scenario(corpus, manifest, order)`` returns a real ``avalanche`` ``CLScenario`` with
``train_stream``, ``valid_stream`` and ``test_stream``.  Experience ``k`` of each stream holds
the ``train``/``val``/``test`` part of the ``k``-th subset of the order as an
``AvalancheDataset`` of :class:`MotionItem` dicts::

    {"id": str, "features": (T, 263) float32 raw features (or payload(id)),
     "text": str, "emotion": int, "scenario": int, "subset": int}

``emotion`` indexes ``corpus.emotions``, ``scenario`` indexes ``corpus.scenarios`` (the motion's
own scenario, which in Unseen may differ from the subset's primary one), ``subset`` is the
position in the order.  Training items draw one of the motion's captions per access (seeded
numpy Generator); val/test items always use the caption picked by a seeded hash of the id.
The datasets carry :func:`collate_motion_items` (lists, no padding) as their ``collate_fn``
and a ``targets`` data attribute (emotion ids) for class-balanced buffers.

avalanche takes ~10 s to import, so it is imported inside the functions only.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Sequence, TypedDict

import numpy as np
import pandas as pd

from benchmark.io import DataError
from benchmark.splits import manifest_setting, resolve_order

STREAM_PARTS: dict[str, str] = {"train": "train", "valid": "val", "test": "test"}


class MotionItem(TypedDict):
    id: str
    features: Any
    text: str
    emotion: int
    scenario: int
    subset: int


def fixed_caption_index(item_id: str, n: int, seed: int = 0) -> int:
    """The evaluation caption of a motion: a seeded hash of its id, in ``[0, n)``."""
    digest = hashlib.blake2b(f"{seed}:caption:{item_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % max(1, n)


class MotionItems:
    """A map-style torch dataset of :class:`MotionItem` for one subset and part.

    ``train=True`` samples a caption per access from a numpy Generator seeded with
    ``(seed, subset)``; otherwise the caption is fixed per id (:func:`fixed_caption_index`).
    Features are read lazily from the corpus (or ``payload(id)`` when given).
    """

    def __init__(self, corpus, ids: Sequence[str], emotions: np.ndarray, scenarios: np.ndarray,
                 subset: int, train: bool, seed: int = 0,
                 payload: Callable[[str], Any] | None = None):
        self.corpus = corpus
        self.ids = [str(i) for i in ids]
        self.emotions = np.asarray(emotions, dtype=np.int64)
        self.scenarios = np.asarray(scenarios, dtype=np.int64)
        self.subset = int(subset)
        self.train = bool(train)
        self.seed = int(seed)
        self.payload = payload
        self.rng = np.random.default_rng([self.seed, self.subset, 1 if train else 0])

    def __len__(self) -> int:
        return len(self.ids)

    def caption(self, idx: int) -> str:
        item_id = self.ids[idx]
        texts = self.corpus.texts(item_id)
        if not texts:
            raise DataError(f"{self.corpus.root}/texts/{item_id}.txt", "the motion has no caption",
                            "add at least one caption line")
        k = int(self.rng.integers(len(texts))) if self.train else \
            fixed_caption_index(item_id, len(texts), self.seed)
        return texts[k]

    def __getitem__(self, idx: int) -> MotionItem:
        idx = int(idx)
        item_id = self.ids[idx]
        feats = self.payload(item_id) if self.payload is not None else self.corpus.features(item_id)
        return {"id": item_id, "features": feats, "text": self.caption(idx),
                "emotion": int(self.emotions[idx]), "scenario": int(self.scenarios[idx]),
                "subset": self.subset}


def collate_motion_items(batch: Sequence[MotionItem]) -> dict:
    """List of items -> dict of lists; ``emotion``/``scenario``/``subset`` become int64 tensors,
    ``features`` stays a list of variable-length arrays (pad later, where the model needs it)."""
    import torch

    out: dict[str, Any] = {k: [b[k] for b in batch] for k in ("id", "features", "text")}
    for k in ("emotion", "scenario", "subset"):
        out[k] = torch.tensor([b[k] for b in batch], dtype=torch.int64)
    return out


def _codes(values: pd.Series, names: Sequence[str], what: str, where: str) -> np.ndarray:
    """Label strings (or ints) -> index into ``names``; DataError on an unknown label."""
    if pd.api.types.is_integer_dtype(values):
        codes = values.to_numpy(dtype=np.int64)
        bad = (codes < 0) | (codes >= len(names))
    else:
        lookup = {n: i for i, n in enumerate(names)}
        codes = values.astype(str).map(lookup).fillna(-1).to_numpy(dtype=np.int64)
        bad = codes < 0
    if bad.any():
        raise DataError(where, f"unknown {what} {values[bad].iloc[0]!r}",
                        f"use one of {', '.join(map(str, names))}")
    return codes


def _make_experience_class():
    from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience

    class MotionExperience(DatasetExperience):
        """A :class:`DatasetExperience` that also knows its subset name and order position."""

        def __init__(self, *, dataset, subset_name: str, scenario_id: int):
            super().__init__(dataset=dataset, current_experience=scenario_id)
            self.subset_name = subset_name
            self.scenario_id = scenario_id

    return MotionExperience


def make_scenario(corpus, manifest: pd.DataFrame, order: int | str | Sequence[str],
                  payload: Callable[[str], Any] | None = None, seed: int = 0):
    """Avalanche ``CLScenario`` with train/valid/test streams over ``manifest``'s subsets.

    ``order``: 1, 2, 3 or explicit subset names (see :func:`benchmark.splits.resolve_order`;
    a shorter explicit order gives a shorter stream).  ``payload(id)``, if given, replaces the
    raw features in every item (e.g. motion-token ids).  The scenario also carries
    ``subset_names`` (the order) and ``setting``.
    """
    from avalanche.benchmarks.scenarios.generic_scenario import CLScenario, EagerCLStream
    from avalanche.benchmarks.utils import AvalancheDataset, DataAttribute

    setting = manifest_setting(manifest)
    names = resolve_order(order, setting, available=sorted(set(manifest["subset"])),
                          scenarios=tuple(corpus.scenarios))
    labels = corpus.labels.set_index(corpus.labels["id"].astype(str))
    missing = ~manifest["id"].astype(str).isin(labels.index)
    if missing.any():
        raise DataError(f"{corpus.root}/labels.csv", f"manifest id {manifest['id'][missing].iloc[0]!r} "
                        "is not in the corpus", "use a manifest made for this corpus")
    where = f"{corpus.root}/labels.csv"
    rows = labels.loc[manifest["id"].astype(str)]
    emo = _codes(rows["emotion"].reset_index(drop=True), tuple(corpus.emotions), "emotion", where)
    scen = _codes(rows["scenario"].reset_index(drop=True), tuple(corpus.scenarios), "scenario",
                  where)
    Experience = _make_experience_class()
    streams: dict[str, list] = {name: [] for name in STREAM_PARTS}
    for pos, subset_name in enumerate(names):
        in_subset = (manifest["subset"] == subset_name).to_numpy()
        for stream, part in STREAM_PARTS.items():
            sel = np.flatnonzero(in_subset & (manifest["part"] == part).to_numpy())
            items = MotionItems(corpus, manifest["id"].to_numpy()[sel], emo[sel], scen[sel],
                                subset=pos, train=stream == "train", seed=seed, payload=payload)
            data = AvalancheDataset(
                [items], collate_fn=collate_motion_items,
                data_attributes=[DataAttribute(emo[sel].tolist(), "targets")])
            streams[stream].append(Experience(dataset=data, subset_name=subset_name,
                                              scenario_id=pos))
    scenario = CLScenario([EagerCLStream(name, exps) for name, exps in streams.items()])
    scenario.subset_names = list(names)
    scenario.setting = setting
    return scenario
