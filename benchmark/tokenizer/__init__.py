"""VQ-VAE motion tokenizer (T2M-GPT recipe): raw HumanML3D features <-> discrete motion tokens.

>>> tok = train_tokenizer(corpus, "out/tokenizer", preset="tiny", seed=0)
>>> ids = tok.encode(feats)          # (T, 263) raw -> (T // 4,) int64
>>> feats_hat = tok.decode(ids)      # -> (4 * len(ids), 263) raw
>>> tok = MotionTokenizer.load("out/tokenizer")
"""
from benchmark.tokenizer.config import PRESETS, Preset, TrainConfig, VQVAEConfig, get_preset
from benchmark.tokenizer.tokenizer import MotionTokenizer
from benchmark.tokenizer.train import fit_vqvae, reconstruction_report, train_tokenizer

__all__ = ["MotionTokenizer", "VQVAEConfig", "TrainConfig", "Preset", "PRESETS", "get_preset",
           "train_tokenizer", "fit_vqvae", "reconstruction_report"]
