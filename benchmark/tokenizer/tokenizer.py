"""``MotionTokenizer``: a trained VQ-VAE plus the corpus Mean/Std, raw features <-> code ids.

Raw HumanML3D features ``(T, 263)`` are normalised with the stored corpus statistics, cropped to a
multiple of ``downsample`` (4) and encoded to ``T // 4`` int64 ids; ``decode`` maps ids back to raw
``(4 * L, 263)`` features.  Batched calls sort motions by length, pad and mask (so they give the same
ids as one-by-one calls).  One folder holds everything: ``config.json``, ``vqvae.safetensors``,
``mean.npy``, ``std.npy`` and (after training) ``report.json``.  Folders written before the
safetensors switch hold ``vqvae.pt`` (a torch state dict read with ``weights_only``); both load,
and the content hash is over tensors, so it is the same in either format.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from benchmark.io import (DataError, atomic_dir, atomic_save_npy, atomic_save_safetensors,
                          atomic_write_json, load_weights, to_json)
from benchmark.tokenizer.config import TrainConfig, VQVAEConfig
from benchmark.tokenizer.vqvae import VQVAE

FORMAT = "l2emg-vqvae/1"
WEIGHTS = "vqvae.safetensors"
LEGACY_WEIGHTS = "vqvae.pt"         # written before the safetensors switch; still read
FILES = ("config.json", "mean.npy", "std.npy")         # besides one of the two weight files


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class MotionTokenizer(nn.Module):
    """VQ-VAE motion tokenizer.  ``mean``/``std`` are the corpus ``(F,)`` statistics of raw features."""

    def __init__(self, config: VQVAEConfig, mean: np.ndarray, std: np.ndarray, *, preset: str = "custom",
                 train_config: TrainConfig | None = None, corpus_hash: str | None = None,
                 seed: int | None = None, report: dict | None = None):
        super().__init__()
        mean, std = _as_numpy(mean).astype(np.float32), _as_numpy(std).astype(np.float32)
        for name, arr in (("mean", mean), ("std", std)):
            if arr.shape != (config.feature_dim,) or not np.isfinite(arr).all():
                raise DataError(None, f"{name} must be a finite ({config.feature_dim},) array, got shape "
                                f"{arr.shape}", "use the corpus Mean.npy/Std.npy")
        std = np.where(std < 1e-6, 1.0, std).astype(np.float32)   # constant dims: no scaling
        self.config, self.preset, self.train_config = config, preset, train_config
        self.corpus_hash, self.seed, self.report = corpus_hash, seed, report
        self.vqvae = VQVAE(config)
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("std", torch.from_numpy(std))

    # ------------------------------------------------------------------ properties
    @property
    def codebook_size(self) -> int:
        return self.config.nb_code

    @property
    def downsample(self) -> int:
        """Frames per token (2 ** down_t)."""
        return self.config.downsample

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def content_hash(self) -> str:
        """16-hex hash of config, statistics and weights (equal before save and after load)."""
        h = hashlib.sha256(to_json(dataclasses.asdict(self.config)).encode())
        state = self.state_dict()
        for key in sorted(state):
            h.update(key.encode())
            h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ normalisation
    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.mean) / self.std

    def denormalize(self, feats: torch.Tensor) -> torch.Tensor:
        return feats * self.std + self.mean

    # ------------------------------------------------------------------ validation
    def _check_features(self, feats: Any, i: int) -> np.ndarray:
        arr = _as_numpy(feats)
        f, d = self.config.feature_dim, self.downsample
        if arr.ndim != 2 or arr.shape[1] != f:
            raise DataError(None, f"motion {i}: expected raw features of shape (T, {f}), got {arr.shape}",
                            f"pass HumanML3D new_joint_vecs arrays with {f} features per frame")
        if arr.shape[0] < d:
            raise DataError(None, f"motion {i}: {arr.shape[0]} frames, fewer than one token ({d} frames)",
                            f"pass motions of at least {d} frames")
        if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
            raise DataError(None, f"motion {i}: features contain NaN/inf or are not numeric",
                            "drop or repair the motion (a few HumanML3D files contain NaN)")
        return arr[: arr.shape[0] // d * d].astype(np.float32, copy=False)

    def _check_ids(self, ids: Any, i: int) -> np.ndarray:
        arr = _as_numpy(ids)
        if arr.ndim != 1 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise DataError(None, f"token sequence {i}: expected a non-empty 1-D integer array, got "
                            f"{arr.dtype} {arr.shape}", "pass ids produced by encode()")
        if arr.min() < 0 or arr.max() >= self.codebook_size:
            raise DataError(None, f"token sequence {i}: ids outside [0, {self.codebook_size})",
                            "strip special tokens before decoding")
        return arr.astype(np.int64, copy=False)

    # ------------------------------------------------------------------ batching
    @staticmethod
    def _chunks(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
        """Indices sorted by length, cut into batches (similar lengths pad little)."""
        order = np.argsort(np.asarray(lengths), kind="stable")
        return [order[s: s + batch_size] for s in range(0, len(order), batch_size)]

    def _pad(self, arrays: list[np.ndarray], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack (L_i, ...) arrays into a zero-padded (B, L_max, ...) tensor and a (B, L_max) mask."""
        seqs = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        batch = nn.utils.rnn.pad_sequence(seqs, batch_first=True).to(self.device, dtype)
        lengths = torch.tensor([len(a) for a in arrays], device=self.device)
        mask = torch.arange(batch.shape[1], device=self.device)[None, :] < lengths[:, None]
        return batch, mask

    # ------------------------------------------------------------------ encode / decode
    @torch.inference_mode()
    def encode_batch(self, motions: Sequence[Any], batch_size: int = 64) -> list[np.ndarray]:
        """Raw motions [(T_i, F)] -> [int64 ids (T_i // down,)] (each cropped to a multiple of down)."""
        feats = [self._check_features(m, i) for i, m in enumerate(motions)]
        out: list[np.ndarray | None] = [None] * len(feats)
        for idx in self._chunks([len(f) for f in feats], batch_size):
            x, mask = self._pad([feats[i] for i in idx], torch.float32)
            ids = self.vqvae.encode(self.normalize(x) * mask[..., None], mask).cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = ids[row, : len(feats[i]) // self.downsample].astype(np.int64)
        return out

    @torch.inference_mode()
    def decode_batch(self, id_seqs: Sequence[Any], batch_size: int = 64) -> list[np.ndarray]:
        """[int ids (L_i,)] -> [raw float32 features (L_i * down, F)]."""
        seqs = [self._check_ids(s, i) for i, s in enumerate(id_seqs)]
        out: list[np.ndarray | None] = [None] * len(seqs)
        for idx in self._chunks([len(s) for s in seqs], batch_size):
            ids, tmask = self._pad([seqs[i] for i in idx], torch.int64)
            feats = self.denormalize(self.vqvae.decode(ids, tmask)).float().cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = feats[row, : len(seqs[i]) * self.downsample]
        return out

    def encode(self, feats: Any) -> np.ndarray:
        """Raw (T, F) features -> int64 ids (T // down,)."""
        return self.encode_batch([feats])[0]

    def decode(self, ids: Any) -> np.ndarray:
        """Ids (L,) -> raw float32 features (L * down, F)."""
        return self.decode_batch([ids])[0]

    # ------------------------------------------------------------------ save / load
    def config_dict(self) -> dict:
        return {
            "format": FORMAT, "preset": self.preset, "model": dataclasses.asdict(self.config),
            "train": None if self.train_config is None else dataclasses.asdict(self.train_config),
            "feature_dim": self.config.feature_dim, "codebook_size": self.codebook_size,
            "downsample": self.downsample, "corpus_hash": self.corpus_hash, "seed": self.seed,
            "content_hash": self.content_hash,
        }

    def write_into(self, folder: str | Path) -> None:
        """Write the tokenizer files into an existing folder (each file atomically)."""
        folder = Path(folder)
        atomic_save_safetensors(folder / WEIGHTS, self.vqvae.state_dict(), {"format": FORMAT})
        atomic_save_npy(folder / "mean.npy", self.mean.cpu().numpy())
        atomic_save_npy(folder / "std.npy", self.std.cpu().numpy())
        if self.report is not None:
            atomic_write_json(folder / "report.json", self.report)
        atomic_write_json(folder / "config.json", self.config_dict())

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Save to folder ``path``, built in a temporary sibling and renamed into place."""
        with atomic_dir(path, overwrite=overwrite) as tmp:
            self.write_into(tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "MotionTokenizer":
        """Load a saved tokenizer folder; DataError on missing files or inconsistent contents."""
        path = Path(path)
        if not path.is_dir():
            raise DataError(path, "tokenizer folder not found", "run `l2emg tokenizer train` first")
        weights = path / WEIGHTS if (path / WEIGHTS).is_file() else path / LEGACY_WEIGHTS
        missing = [f for f in FILES if not (path / f).is_file()]
        if not weights.is_file():
            missing.append(WEIGHTS)
        if missing:
            raise DataError(path, f"tokenizer folder lacks {', '.join(missing)}",
                            "retrain it with `l2emg tokenizer train`")
        try:
            meta = json.loads((path / "config.json").read_text())
            config = VQVAEConfig(**meta["model"])
            train = None if meta.get("train") is None else TrainConfig(**meta["train"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise DataError(path / "config.json", f"unreadable tokenizer config ({err})",
                            "retrain the tokenizer") from err
        if meta.get("format") != FORMAT or meta.get("feature_dim") != config.feature_dim:
            raise DataError(path / "config.json", f"format {meta.get('format')!r} / feature_dim "
                            f"{meta.get('feature_dim')} does not match {FORMAT} / {config.feature_dim}",
                            "retrain the tokenizer with this version")
        mean, std = np.load(path / "mean.npy"), np.load(path / "std.npy")
        if mean.shape != (config.feature_dim,) or std.shape != (config.feature_dim,):
            raise DataError(path / "mean.npy", f"statistics of shape {mean.shape}/{std.shape}, config "
                            f"says feature_dim {config.feature_dim}", "retrain the tokenizer")
        report = None
        if (path / "report.json").is_file():
            report = json.loads((path / "report.json").read_text())
        tok = cls(config, mean, std, preset=meta.get("preset", "custom"), train_config=train,
                  corpus_hash=meta.get("corpus_hash"), seed=meta.get("seed"), report=report)
        fix = "the folder was modified or half-copied; retrain or copy it again"
        state = load_weights(weights, fix)
        try:
            tok.vqvae.load_state_dict(state)
        except RuntimeError as err:
            raise DataError(weights, f"weights do not fit config.json ({str(err)[:200]})",
                            "retrain the tokenizer") from err
        if meta.get("content_hash") not in (None, tok.content_hash):
            raise DataError(weights, "weights/statistics do not match config.json's content_hash", fix)
        return tok.to(device).eval()
