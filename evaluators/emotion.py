"""Motion emotion classifier: a movement conv encoder + bi-GRU + MLP over normalised features.

Trained with cross-entropy on the corpus emotion labels (train part, best epoch on the val part);
its test accuracy and weighted F1 on real motions bound what AWF can reach for generations.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from evaluators.data import pad_batch, random_crop
from evaluators.metrics import emotion_f1
from evaluators.modules import UNIT_LENGTH, MotionEncoderBiGRUCo, MovementConvEncoder


class EmotionClassifier(nn.Module):
    """Motion emotion classifier: movement conv encoder + bi-GRU + MLP -> ``(B, n_emotions)`` logits."""

    def __init__(self, n_emotions: int, dim_motion_in: int = 259, dim_movement: int = 512,
                 dim_hidden: int = 512, dropout: float = 0.2):
        super().__init__()
        self.movement_encoder = MovementConvEncoder(dim_motion_in, dim_movement, dim_movement)
        self.motion_encoder = MotionEncoderBiGRUCo(dim_movement, dim_hidden, dim_hidden)
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Linear(dim_hidden, n_emotions))
        self.dim_motion_in = dim_motion_in

    def forward(self, motion: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        feats = self.motion_encoder(self.movement_encoder(motion[..., : self.dim_motion_in], lens),
                                    lens // UNIT_LENGTH)
        return self.head(feats)


@torch.no_grad()
def predict(model: EmotionClassifier, motions: Sequence[np.ndarray], mean: np.ndarray,
            std: np.ndarray, device: torch.device | str = "cpu", batch_size: int = 256) -> np.ndarray:
    """Class ids ``(N,)`` int64 for raw ``(T, 263)`` motions (deterministic crop)."""
    model.eval()
    out = []
    for s in range(0, len(motions), batch_size):
        x, lens = pad_batch(motions[s:s + batch_size], mean, std, device)
        out.append(model(x, lens).argmax(-1).cpu().numpy())
    return np.concatenate(out).astype(np.int64)


def fit_emotion_classifier(model: EmotionClassifier, train: Sequence[np.ndarray], y_train: np.ndarray,
                           val: Sequence[np.ndarray], y_val: np.ndarray, mean: np.ndarray,
                           std: np.ndarray, *, epochs: int, batch_size: int, lr: float,
                           weight_decay: float, seed: int, device: torch.device | str = "cpu") -> dict:
    """Train in place (random crops each epoch); keep the best val weighted-F1 state. Returns a log."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    y_train_t = torch.as_tensor(np.asarray(y_train), dtype=torch.long, device=device)
    best, best_state, history = -1.0, None, []
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        losses = []
        for s in range(0, len(order) - 1, batch_size):
            idx = order[s:s + batch_size]
            x, lens = pad_batch([random_crop(train[i], rng) for i in idx], mean, std, device)
            loss = nn.functional.cross_entropy(model(x, lens), y_train_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        f1 = emotion_f1(predict(model, val, mean, std, device), y_val) if len(val) else -epoch
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_f1": float(f1)})
        if f1 >= best:
            best = f1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return {"history": history, "best_val_f1": float(best)}
