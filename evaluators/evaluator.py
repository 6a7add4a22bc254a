"""The Evaluator API: embeddings, emotion predictions and the full metric row for generations.

One folder = one evaluator: ``config.json`` (sizes, vocabulary, emotions, corpus hash),
``evaluator.safetensors`` (T2M + emotion weights, evaluator mean/std) and ``report.json``.
Folders written before the safetensors switch hold ``evaluator.pt`` (a torch state dict read with
``weights_only``, e.g. the shipped ``l2emg-ref-v1``); both load.  The content hash is over the
folder's files (config and weights), so the same weights in the other format are another hash:
a released evaluator keeps the format it was released in.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmark.io import (DataError, atomic_dir, atomic_save_npz, atomic_write_bytes, atomic_write_json,
                          hash_blobs, hash_files, load_weights, safetensors_bytes, to_json)
from evaluators import metrics as M
from evaluators.config import EvaluatorConfig
from evaluators.data import check_motions, pad_batch, random_crop
from evaluators.emotion import EmotionClassifier, predict
from evaluators.modules import NetConfig, T2MEvaluatorNet
from evaluators.vocab import Vocabulary

WEIGHTS = "evaluator.safetensors"
LEGACY_WEIGHTS = "evaluator.pt"     # written before the safetensors switch; still read
PARTS = ("t2m", "emotion")          # flat safetensors names: "t2m.<param>", "emotion.<param>", mean, std


def weights_file(root: Path) -> Path:
    """The folder's weight file: safetensors, else the legacy torch file (which may be absent)."""
    return root / WEIGHTS if (root / WEIGHTS).is_file() or not (root / LEGACY_WEIGHTS).is_file() \
        else root / LEGACY_WEIGHTS


def build_nets(cfg: EvaluatorConfig) -> tuple[T2MEvaluatorNet, EmotionClassifier]:
    net = T2MEvaluatorNet(NetConfig(
        vocab_size=len(cfg.vocab), dim_word=cfg.dim_word, dim_pos=cfg.dim_pos,
        dim_text_hidden=cfg.dim_text_hidden, dim_movement_hidden=cfg.dim_movement_hidden,
        dim_movement_latent=cfg.dim_movement_latent, dim_motion_hidden=cfg.dim_motion_hidden,
        dim_coemb=cfg.dim_coemb, dim_motion_in=cfg.feature_dim - 4,
        freeze_words=cfg.word_vectors is not None))
    emo = EmotionClassifier(len(cfg.emotions), cfg.feature_dim - 4, cfg.dim_emo_movement, cfg.dim_emo_hidden)
    return net, emo


def _hash_arrays(arrays: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.float32)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


class Evaluator:
    """T2M text/motion embedder + emotion classifier.  ``device`` is passed in (default CPU);
    ``cache_dir`` holds ground-truth statistics keyed by (evaluator, reference content) hash."""

    def __init__(self, config: EvaluatorConfig, net: T2MEvaluatorNet, emotion: EmotionClassifier,
                 mean: np.ndarray, std: np.ndarray, device: torch.device | str = "cpu",
                 cache_dir: str | os.PathLike | None = None, root: Path | None = None):
        self.config, self.device = config, torch.device(device)
        self.vocab = Vocabulary(list(config.vocab), config.max_text_len)
        self.net, self.emotion = net.to(self.device).eval(), emotion.to(self.device).eval()
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.root = root
        self._hash: str | None = None

    # ------------------------------------------------------------------ persistence
    @property
    def content_hash(self) -> str:
        if self._hash is None:
            if self.root is not None:
                self._hash = hash_files([self.root / "config.json", weights_file(self.root)], self.root)
            else:           # what the folder :meth:`save` writes will hash to
                self._hash = hash_blobs({"config.json": to_json(self.config.to_dict()).encode("utf-8"),
                                         WEIGHTS: safetensors_bytes(self._tensors())})
        return self._hash

    def _tensors(self) -> dict[str, torch.Tensor]:
        flat = {f"{part}.{k}": v for part, module in zip(PARTS, (self.net, self.emotion))
                for k, v in module.state_dict().items()}
        return {**flat, "mean": torch.from_numpy(self.mean), "std": torch.from_numpy(self.std)}

    def save(self, out: str | os.PathLike, report: dict | None = None, overwrite: bool = True) -> Path:
        """Write the folder atomically (config.json, evaluator.safetensors, report.json)."""
        out = Path(out)
        with atomic_dir(out, overwrite=overwrite) as tmp:
            atomic_write_json(tmp / "config.json", self.config.to_dict())
            atomic_write_bytes(tmp / WEIGHTS, safetensors_bytes(self._tensors()))
            atomic_write_json(tmp / "report.json", report or {})
        if self.root is None:       # a copy elsewhere leaves an already-saved evaluator's root as is
            self.root, self._hash = out, None
        return out

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu",
             cache_dir: str | os.PathLike | None = None) -> "Evaluator":
        """Load a folder written by :meth:`save`; DataError on missing or inconsistent files."""
        root = Path(path)
        weights = weights_file(root)
        for file in (root / "config.json", weights):
            if not file.is_file():
                raise DataError(file, "missing from the evaluator folder",
                                "train one with `l2emg evaluator train --corpus DIR --out DIR`")
        try:
            cfg = EvaluatorConfig.from_dict(json.loads((root / "config.json").read_text()),
                                            root / "config.json")
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            if isinstance(err, DataError):
                raise
            raise DataError(root / "config.json", f"invalid evaluator config ({err})",
                            "retrain the evaluator") from err
        state = load_weights(weights, "retrain the evaluator, or copy the folder again")
        if weights.name == WEIGHTS:         # flat names -> the legacy file's nested state
            state = {**{part: {k[len(part) + 1:]: v for k, v in state.items() if k.startswith(part + ".")}
                        for part in PARTS}, **{k: state[k] for k in ("mean", "std") if k in state}}
        net, emo = build_nets(cfg)
        try:
            net.load_state_dict(state["t2m"])
            emo.load_state_dict(state["emotion"])
            mean, std = state["mean"].numpy(), state["std"].numpy()
        except (KeyError, RuntimeError) as err:
            raise DataError(weights, f"weights do not match config.json "
                            f"(vocabulary {len(cfg.vocab)} words, dims): {str(err)[:200]}",
                            "use the config.json saved with these weights") from err
        return cls(cfg, net, emo, mean, std, device, cache_dir, root)

    def check_corpus(self, corpus, max_unknown: float = 0.25) -> None:
        """DataError if ``corpus`` does not fit this evaluator (feature dim, emotions, vocabulary)."""
        where = getattr(corpus, "root", None)
        if len(corpus.mean) != self.config.feature_dim:
            raise DataError(where, f"features have {len(corpus.mean)} dims, the evaluator expects "
                            f"{self.config.feature_dim}", "use an evaluator trained on this feature layout")
        if list(corpus.emotions) != list(self.config.emotions):
            raise DataError(where, f"emotions {list(corpus.emotions)} differ from the evaluator's "
                            f"{self.config.emotions}", "train the evaluator on this corpus")
        caps = [c for i in corpus.part_ids("test")[:500] for c in corpus.texts(i)]
        rate = self.vocab.unknown_rate(caps)
        if rate > max_unknown:
            raise DataError(where, f"{rate:.0%} of caption words are outside the evaluator vocabulary",
                            "train the evaluator on this corpus (`l2emg evaluator train`)")

    # ------------------------------------------------------------------ embeddings
    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], batch_size: int = 512) -> np.ndarray:
        """Caption embeddings ``(N, dim_coemb)`` float32."""
        if len(texts) == 0:
            raise DataError(None, "texts: empty list", "pass at least one caption")
        out = []
        for s in range(0, len(texts), batch_size):
            ids, pos, lens = self.vocab.encode_batch(list(texts[s:s + batch_size]))
            t = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
            out.append(self.net.encode_text(t(ids), t(pos), t(lens)).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    @torch.no_grad()
    def embed_motions(self, motions: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
        """Motion embeddings ``(N, dim_coemb)`` for raw ``(T, 263)`` features (first 196 frames,
        length cut to a multiple of 4; batches grouped by length, original order returned)."""
        motions = check_motions(motions)
        order = np.argsort([len(m) for m in motions], kind="stable")
        out = np.empty((len(motions), self.config.dim_coemb), np.float32)
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            x, lens = pad_batch([motions[i] for i in idx], self.mean, self.std, self.device,
                                self.config.max_motion_len)
            out[idx] = self.net.encode_motion(x, lens).cpu().numpy()
        return out

    def predict_emotions(self, motions: Sequence[np.ndarray]) -> np.ndarray:
        """Emotion class ids ``(N,)`` (index into ``config.emotions``)."""
        return predict(self.emotion, check_motions(motions), self.mean, self.std, self.device)

    def reference_statistics(self, reference: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) of the reference embeddings, cached on disk by content hash."""
        mu, sigma, _ = self._reference(reference)
        return mu, sigma

    def reference_embeddings(self, reference: Sequence[np.ndarray]) -> np.ndarray:
        """The reference embeddings ``(N, D)`` (for KID), cached with the statistics."""
        return self._reference(reference)[2]

    def _reference(self, reference: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        reference = check_motions(reference, "reference")
        key = f"{self.content_hash}-{_hash_arrays(reference)}"
        path = self.cache_dir / f"gt_stats_{key}.npz" if self.cache_dir else None
        if path is not None and path.is_file():
            with np.load(path) as z:
                if "emb" in z:          # caches written before KID hold mu and sigma only
                    return z["mu"], z["sigma"], z["emb"]
        emb = self.embed_motions(reference)
        mu, sigma = M.activation_statistics(emb)
        if path is not None:
            atomic_save_npz(path, mu=mu, sigma=sigma, emb=emb)
        return mu, sigma, emb

    # ------------------------------------------------------------------ metrics
    def evaluate(self, generated: Sequence[np.ndarray], texts: Sequence[str], emotions: Sequence[int],
                 reference: Sequence[np.ndarray], mm_generated: Sequence[Sequence[np.ndarray]] | None = None,
                 repeats: int = 1, seed: int = 0, batch_size: int = 32,
                 pool_texts: Sequence[str] | None = None) -> dict:
        """Metric row (keys :data:`METRIC_KEYS`, ``*_ci95`` when ``repeats > 1``).

        ``generated[i]`` was generated from ``texts[i]`` with emotion ``emotions[i]`` (class id or
        name).  R-precision uses full batches of ``batch_size`` pairs (``r_precision_batch``;
        chance ``chance_top{k}`` = k/batch; fewer than ``batch_size`` motions -> DataError),
        shuffled per repeat with ``seed + r``; diversity uses 300 pairs (distinct pairs when
        the pool is smaller; ``diversity_pairs``); multimodality 10 pairs of generations of
        the same text (distinct pairs; NaN without ``mm_generated``).  FID and emotion F1 are
        deterministic given the generations (CI 0).  ``pool_texts``: R-precision's
        distractors are drawn from these captions (motion -> text retrieval,
        :func:`evaluators.scoring.score_embeddings`) instead of the batch's own pairs.
        """
        from evaluators.scoring import score_embeddings

        generated = check_motions(generated, "generated")
        n = len(generated)
        if len(texts) != n or len(emotions) != n:
            raise DataError(None, f"generated ({n}), texts ({len(texts)}) and emotions "
                            f"({len(emotions)}) must have the same length", "pass one text and emotion per motion")
        if n < max(2, batch_size):
            raise DataError(None, f"{n} generated motions, but R-precision needs at least one full "
                            f"batch of {batch_size}", "evaluate a larger test set (or, for a smoke "
                            "test only, an explicitly smaller batch size)")
        if repeats < 1:
            raise ValueError("repeats must be >= 1")
        labels = np.array([self.config.emotions.index(e) if isinstance(e, str) else int(e) for e in emotions])
        mm_emb = None
        if mm_generated is not None:
            groups = [check_motions(g, "mm_generated") for g in mm_generated]
            gens = min(len(g) for g in groups)
            if gens < 2:
                raise DataError(None, "mm_generated needs >= 2 generations per text", "generate more per text")
            flat = self.embed_motions([m for g in groups for m in g[:gens]])
            mm_emb = flat.reshape(len(groups), gens, -1)
        mu, sigma, ref_emb = self._reference(reference)
        return score_embeddings(
            text_emb=self.embed_texts(list(texts)), motion_emb=self.embed_motions(generated),
            ref_stats=(mu, sigma), pred_emotions=self.predict_emotions(generated),
            true_emotions=labels, mm_emb=mm_emb, repeats=repeats, seed=seed, batch_size=batch_size,
            ref_emb=ref_emb, texts=list(texts), pool_texts=pool_texts,
            pool_emb=None if pool_texts is None else self._pool_embeddings(tuple(pool_texts)))

    def _pool_embeddings(self, pool_texts: tuple[str, ...]) -> np.ndarray:
        """Text embeddings of a distractor pool (the last pool's kept: one per run)."""
        cached = getattr(self, "_pool_cache", None)
        if cached is None or cached[0] != pool_texts:
            self._pool_cache = (pool_texts, self.embed_texts(list(pool_texts)))
        return self._pool_cache[1]

    def score_ground_truth(self, motions: Sequence[np.ndarray], texts: Sequence[str],
                           emotions: Sequence[int], repeats: int = 1, seed: int = 0,
                           batch_size: int = 32, pool_texts: Sequence[str] | None = None) -> dict:
        """The real-vs-real ceiling row: ground-truth motions, randomly re-cropped as the
        reference loaders do (multiple of 4, one unit shorter with p=1/3, random start; seeded),
        scored as if generated against the uncropped set as reference."""
        motions = check_motions(motions, "motions")
        rng = np.random.default_rng(seed)
        crops = [random_crop(m, rng, self.config.max_motion_len) for m in motions]
        return self.evaluate(crops, texts, emotions, motions, repeats=repeats, seed=seed,
                             batch_size=batch_size, pool_texts=pool_texts)
