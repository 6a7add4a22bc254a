"""The T2M evaluator networks (Guo et al., CVPR 2022, "Generating diverse and natural 3D human
motions from text"), re-implemented with the same module structure and state-dict names as the
released evaluator (``text_encoder``, ``movement_encoder``, ``motion_encoder``) so its checkpoint
(``t2m/text_mot_match/model/finest.tar``) loads by path; see docs/evaluators.md for the mapping.

Shapes: motions ``(B, T, 259)`` normalised features without the 4 foot-contact dims; the
movement encoder downsamples time by 4 (two stride-2 convs), so the bi-GRU reads ``T // 4`` steps.
Variable lengths go through ``pack_padded_sequence`` with the true lengths.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

UNIT_LENGTH = 4           # frames per movement-encoder step (two stride-2 convolutions)


@dataclass
class NetConfig:
    """Sizes; the released evaluator uses word 300 (GloVe), pos 15, text hidden 512, movement
    hidden/latent 512, motion hidden 1024, co-embedding 512."""

    vocab_size: int
    dim_word: int = 300
    dim_pos: int = 15
    dim_text_hidden: int = 512
    dim_movement_hidden: int = 512
    dim_movement_latent: int = 512
    dim_motion_hidden: int = 1024
    dim_coemb: int = 512
    dim_motion_in: int = 259
    freeze_words: bool = False


class MovementConvEncoder(nn.Module):
    """``(B, T, input)`` -> ``(B, T // 4, output)``: two Conv1d(k=4, s=2, p=1) + linear."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1), nn.Dropout(0.2, inplace=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1), nn.Dropout(0.2, inplace=True),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.out_net = nn.Linear(output_size, output_size)

    def forward(self, inputs: torch.Tensor, lens: torch.Tensor | None = None) -> torch.Tensor:
        """With ``lens`` (frames), the first conv's outputs past ``lens // 2`` are zeroed so that a
        motion's codes do not depend on the padding of its batch (the original omits this)."""
        h = self.main[:3](inputs.permute(0, 2, 1))
        if lens is not None:
            keep = torch.arange(h.shape[-1], device=h.device)[None, :] < (lens // 2)[:, None]
            h = h * keep[:, None, :].to(h.dtype)
        return self.out_net(self.main[3:](h).permute(0, 2, 1))


def _head(hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(hidden * 2, hidden), nn.LayerNorm(hidden),
                         nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, out))


def _bigru_last(gru: nn.GRU, hidden0: nn.Parameter, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Concatenated final forward/backward states ``(B, 2H)`` of a packed bi-GRU."""
    packed = pack_padded_sequence(x, lens.detach().cpu().clamp(min=1), batch_first=True,
                                  enforce_sorted=False)
    _, last = gru(packed, hidden0.repeat(1, x.shape[0], 1).contiguous())
    return torch.cat([last[0], last[1]], dim=-1)


class TextEncoderBiGRUCo(nn.Module):
    """(word vectors ``(B, L, W)``, POS one-hot ``(B, L, P)``, lengths ``(B,)``) -> ``(B, out)``."""

    def __init__(self, word_size: int, pos_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _head(hidden_size, output_size)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, cap_lens: torch.Tensor) -> torch.Tensor:
        x = self.input_emb(word_embs + self.pos_emb(pos_onehot))
        return self.output_net(_bigru_last(self.gru, self.hidden, x, cap_lens))


class MotionEncoderBiGRUCo(nn.Module):
    """(movement codes ``(B, T', in)``, lengths ``(B,)`` in movement steps) -> ``(B, out)``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _head(hidden_size, output_size)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))

    def forward(self, inputs: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        return self.output_net(_bigru_last(self.gru, self.hidden, self.input_emb(inputs), m_lens))


class T2MEvaluatorNet(nn.Module):
    """Word embedding + the three original encoders; embeds captions and motions in one space."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.word_emb = nn.Embedding(cfg.vocab_size, cfg.dim_word)
        self.word_emb.weight.requires_grad_(not cfg.freeze_words)
        self.text_encoder = TextEncoderBiGRUCo(cfg.dim_word, cfg.dim_pos, cfg.dim_text_hidden, cfg.dim_coemb)
        self.movement_encoder = MovementConvEncoder(cfg.dim_motion_in, cfg.dim_movement_hidden,
                                                    cfg.dim_movement_latent)
        self.motion_encoder = MotionEncoderBiGRUCo(cfg.dim_movement_latent, cfg.dim_motion_hidden,
                                                   cfg.dim_coemb)

    def encode_text(self, ids: torch.Tensor, pos: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """ids/pos ``(B, L)`` int64, lens ``(B,)`` -> ``(B, dim_coemb)``."""
        onehot = nn.functional.one_hot(pos, self.cfg.dim_pos).float()
        return self.text_encoder(self.word_emb(ids), onehot, lens)

    def encode_motion(self, motion: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """Normalised ``(B, T, 263 or 259)`` (T multiple of 4), lens in frames -> ``(B, dim_coemb)``."""
        movements = self.movement_encoder(motion[..., : self.cfg.dim_motion_in], lens)
        return self.motion_encoder(movements, lens // UNIT_LENGTH)

    def load_original(self, ckpt: dict) -> None:
        """Load the released evaluator's ``{'text_encoder', 'movement_encoder', 'motion_encoder'}``
        state dicts (GloVe vectors must then be loaded into ``word_emb``)."""
        for name in ("text_encoder", "movement_encoder", "motion_encoder"):
            getattr(self, name).load_state_dict(ckpt[name])
