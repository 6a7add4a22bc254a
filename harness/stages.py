"""Build-or-reuse the artefacts a run needs, by content hash, in a cache folder.

``CACHE/corpus/synth-<h>``   synthetic corpus (when no ``--data``)
``CACHE/splits/<h>.csv``      split manifest of (corpus, setting, seed)
``CACHE/tokenizer/<h>``       VQ-VAE trained on the corpus train part (when no ``--tokenizer``)
``CACHE/evaluator/<h>``       T2M evaluator + emotion classifier (when no ``--evaluator``)
``CACHE/backbone/tiny-<h>``   the tiny LLaMA + text tokenizer (when ``--backbone tiny``)
``CACHE/codes/<h>.npz``       motion-token codes of every corpus motion under a tokenizer

``h`` hashes everything the artefact depends on (the inputs' content hashes + the build
settings), so a changed input builds a new artefact and an unchanged one is reused.  Folders
are built atomically; two processes racing for one artefact both end up using the same copy.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from benchmark.io import DataError, atomic_save_npz, hash_files, hash_json

STAGE_VERSION = 1


@dataclass
class Stages:
    """Loaded artefacts of a run and their content hashes."""

    corpus: object
    manifest: object
    tokenizer: object
    evaluator: object
    backbone: Path
    hashes: dict
    version: str = "rebuilt"             # reference version of the stages, or "rebuilt" / "given"
    recipe: dict | None = None           # what the tokenizer/evaluator/backbone were made from


def _build_once(path: Path, build: Callable[[Path], object]) -> Path:
    """Build ``path`` unless it exists; a concurrent builder that wins the race is reused."""
    from benchmark.seed import isolated

    from benchmark import progress

    if path.exists():
        return path
    stage = path.parent.name          # corpus, tokenizer, evaluator, backbone
    try:
        with isolated(), progress.doing(   # nothing the build changes in this process outlives it
                f"building the {stage} stage ({path.name})",
                f"the {stage} stage restarts from scratch next time (its temporary folder is "
                "removed then)"):
            build(path)
    except (DataError, OSError):
        if path.exists():        # another process finished first
            return path
        raise
    return path


def corpus_stage(cache: Path, data: str | None, scale: float, seed: int, scenario_style: float = 0.0,
                 stream: str = "paper"):
    """The corpus of ``--data``, or the synthetic corpus of ``stream`` ("paper" or "conflict",
    docs/corpus.md) at ``scale`` built once in ``cache``."""
    from benchmark.corpus import build_corpus, load_corpus
    from benchmark.corpus.synth import GENERATOR_VERSION, check_stream

    check_stream(stream)
    if data:
        return load_corpus(data)
    key = {"v": STAGE_VERSION, "scale": scale, "seed": seed}
    if GENERATOR_VERSION != "synth-1":         # synth-1 corpora were keyed without it
        key["generator"] = GENERATOR_VERSION
    if scenario_style:                         # 0: the key (and folder) of the default corpus
        key["scenario_style"] = float(scenario_style)
    if stream != "paper":                      # "paper": the key of the corpora built before
        key["stream"] = stream
    path = cache / "corpus" / f"synth-{hash_json(key)}"
    return load_corpus(_build_once(path, lambda p: build_corpus(
        p, scale=scale, seed=seed, scenario_style=float(scenario_style), stream=stream)))


def motion_pool_stage(cache: Path, cfg, emotions):
    """The generic motion pool of the ``text+motion`` pretraining recipe (``cfg``: a
    :class:`benchmark.backbone.pretrain.PretrainConfig`): a synthetic corpus of its own seed and
    scale, neutral emotion only, built once in ``cache``; returns the loaded corpus."""
    from benchmark.corpus import build_corpus, load_corpus

    neutral = tuple(e for e in emotions if e == "neutral") or tuple(emotions[:1])
    key = hash_json({"pool": cfg.motion_pool_scale, "seed": cfg.motion_pool_seed, "emotions": neutral})
    path = Path(cache) / "corpus" / f"pool-{key}"
    _build_once(path, lambda p: build_corpus(p, scale=cfg.motion_pool_scale,
                                             seed=cfg.motion_pool_seed, emotions=neutral))
    return load_corpus(path)


def split_stage(cache: Path, corpus, setting: str, seed: int, stream: str = "paper"):
    """The split manifest of (corpus, setting, seed) with the stream's cross-scenario share of
    the Unseen subsets (paper 0.2, conflict 0); returns (manifest, its file hash)."""
    from benchmark.corpus.synth import STREAM_SPLIT_SHARE, check_stream
    from benchmark.splits import load_manifest, make_splits, save_manifest

    share = STREAM_SPLIT_SHARE[check_stream(stream)]
    key = {"v": STAGE_VERSION, "corpus": corpus.content_hash, "setting": setting, "seed": seed}
    if stream != "paper":                      # "paper": the key of the manifests built before
        key["share"] = share
    key = hash_json(key)
    path = cache / "splits" / f"{setting}-{key}.csv"
    if not path.exists():
        from benchmark.seed import isolated

        with isolated():
            save_manifest(make_splits(corpus, setting, seed, share=share), path)
    return load_manifest(path, corpus), hash_files([path])


def tokenizer_stage(cache: Path, corpus, tokenizer: str | None, preset: str, seed: int, device):
    from benchmark.tokenizer import MotionTokenizer, train_tokenizer

    if tokenizer:
        path = Path(tokenizer)
    else:
        key = hash_json({"v": STAGE_VERSION, "corpus": corpus.content_hash, "preset": preset, "seed": seed})
        path = cache / "tokenizer" / f"{preset}-{key}"
        _build_once(path, lambda p: train_tokenizer(corpus, p, preset=preset, seed=seed))
    tok = MotionTokenizer.load(path, device=device)
    tok.saved_dir = path                 # the folder it was read from (reference releases copy it)
    return tok


def evaluator_stage(cache: Path, corpus, evaluator: str | None, preset: str, seed: int, device):
    from evaluators import Evaluator, train_evaluator

    if evaluator:
        ev = Evaluator.load(evaluator, device=device, cache_dir=cache / "reference-stats")
    else:
        key = hash_json({"v": STAGE_VERSION, "corpus": corpus.content_hash, "preset": preset,
                         "seed": seed})
        path = cache / "evaluator" / f"{preset}-{key}"
        _build_once(path, lambda p: train_evaluator(corpus, p, preset=preset, seed=seed,
                                                    overwrite=False))
        ev = Evaluator.load(path, device=device, cache_dir=cache / "reference-stats")
    ev.check_corpus(corpus)
    return ev


def backbone_stage(cache: Path, corpus, backbone: str, tiny_config, pretrain=None,
                   tokenizer=None) -> tuple[Path, str]:
    """``tiny`` -> the cached tiny LLaMA (text tokenizer trained on the train-part captions),
    pretrained before the stream by ``pretrain`` (a :class:`PretrainConfig`; its recipe,
    settings and data hashes are part of the stage hash and of ``backbone.json``); a path ->
    that Hugging Face folder, used as it is.  Returns (folder, hash)."""
    from benchmark.backbone import build_tiny_backbone
    from benchmark.backbone.pretrain import PretrainConfig, pretrain_backbone

    if backbone != "tiny":
        path = Path(backbone)
        if not (path / "config.json").is_file():
            raise DataError(path, "not a Hugging Face model folder (no config.json)",
                            "pass --backbone tiny or a folder saved with save_pretrained")
        small = [p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".model", ".txt")]
        weights = sorted((p.name, p.stat().st_size) for p in path.iterdir()
                         if p.suffix in (".safetensors", ".bin"))
        return path, hash_json([hash_files(small), weights])
    pretrain = pretrain or PretrainConfig(recipe="none")
    texts = [t for i in corpus.part_ids("train") for t in corpus.texts(i)]
    key_parts = {"v": STAGE_VERSION, "texts": hash_json(sorted(texts)),
                 "config": dataclasses.asdict(tiny_config)}
    if pretrain.recipe != "none":
        key_parts["pretrain"] = dataclasses.asdict(pretrain)
    if pretrain.recipe == "text+motion":
        if tokenizer is None:
            raise DataError(None, "the text+motion pretraining recipe needs the motion tokenizer",
                            "build the tokenizer stage first")
        key_parts["tokenizer"] = tokenizer.content_hash
    key = hash_json(key_parts)
    path = cache / "backbone" / f"tiny-{key}"

    def build(p: Path) -> None:
        from benchmark.io import atomic_dir

        pool, n_codes = None, 0
        if pretrain.recipe == "text+motion":
            pool_corpus = motion_pool_stage(cache, pretrain, corpus.emotions)
            pool = tokenizer.encode_batch([pool_corpus.features(i) for i in pool_corpus.ids])
            n_codes = tokenizer.codebook_size
        with atomic_dir(p) as tmp:
            build_tiny_backbone(texts, tmp, tiny_config, overwrite=True)
            pretrain_backbone(tmp, texts, pretrain, motion_codes=pool, n_codes=n_codes,
                              max_motion_tokens=max(1, 196 // tokenizer.downsample) if tokenizer else 49)

    _build_once(path, build)
    return path, hash_files([p for p in path.rglob("*") if p.is_file()], root=path)


def codes_stage(cache: Path, corpus, tokenizer, ids: list[str]) -> dict[str, np.ndarray]:
    """Motion-token codes of ``ids`` (cached per tokenizer + corpus)."""

    key = hash_json({"v": STAGE_VERSION, "corpus": corpus.content_hash,
                     "tokenizer": tokenizer.content_hash})
    path = cache / "codes" / f"{key}.npz"
    codes: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as z:
            codes = {k: z[k] for k in z.files}
    missing = [i for i in ids if i not in codes]
    if missing:
        from benchmark.seed import isolated

        with isolated():
            encoded = tokenizer.encode_batch([corpus.features(i) for i in missing])
        codes.update({i: np.asarray(c, dtype=np.int64) for i, c in zip(missing, encoded)})
        atomic_save_npz(path, **codes)
    return {i: codes[i] for i in ids}


def build_stages(cache: str | os.PathLike, *, data: str | None, tokenizer: str | None,
                 evaluator: str | None, backbone: str, setting: str, seed: int,
                 corpus_scale: float, tokenizer_preset: str, evaluator_preset: str,
                 tiny_config, pretrain=None, device="cpu", scenario_style: float = 0.0,
                 stream: str = "paper", rebuild: bool = False) -> Stages:
    """All stages of a run (stage seeds are fixed at 0 so runs of different seeds share them;
    the split uses the run seed).  Where the shipped reference stages (:mod:`benchmark.reference`)
    have this recipe they are used (the corpus must hash to theirs) unless ``rebuild``."""
    from benchmark import reference
    from benchmark.backbone.pretrain import PretrainConfig

    cache = Path(cache)
    corpus = corpus_stage(cache, data, corpus_scale, 0, scenario_style, stream)
    manifest, split_hash = split_stage(cache, corpus, setting, seed, stream)
    recipe = reference.recipe(stream=stream, corpus_scale=corpus_scale, scenario_style=scenario_style,
                              tokenizer_preset=tokenizer_preset, evaluator_preset=evaluator_preset,
                              tiny_config=tiny_config, pretrain=pretrain or PretrainConfig(recipe="none"))
    own = data is None and tokenizer is None and evaluator is None and backbone == "tiny"
    shipped = reference.find(recipe) if own and not rebuild else None
    version = "given" if not own else reference.REBUILT
    if shipped is not None:           # the released yardstick: nothing to train
        reference.check_corpus(shipped, corpus.content_hash)
        folders = reference.verify(shipped)
        tokenizer, evaluator, version = str(folders["tokenizer"]), str(folders["evaluator"]), shipped["version"]
    tok = tokenizer_stage(cache, corpus, tokenizer, tokenizer_preset, 0, device)
    ev = evaluator_stage(cache, corpus, evaluator, evaluator_preset, 0, device)
    if shipped is not None:           # hashed as the cache's own build is (every file)
        bb_path = folders["backbone"]
        bb_hash = hash_files([p for p in bb_path.rglob("*") if p.is_file()], root=bb_path)
    else:
        bb_path, bb_hash = backbone_stage(cache, corpus, backbone, tiny_config, pretrain, tok)
    hashes = {"corpus": corpus.content_hash, "split": split_hash, "tokenizer": tok.content_hash,
              "evaluator": ev.content_hash, "backbone": bb_hash}
    return Stages(corpus, manifest, tok, ev, bb_path, hashes, version, recipe)
