"""The VQ-VAE: encoder -> EMA quantiser -> decoder, on normalised features ``(B, T, F)``."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from benchmark.tokenizer.config import VQVAEConfig
from benchmark.tokenizer.convnets import Decoder, Encoder
from benchmark.tokenizer.quantizer import EMAQuantizer


class VQVAEOutput(NamedTuple):
    recon: torch.Tensor        # (B, T, F) reconstructed normalised features
    ids: torch.Tensor          # (B, T / down) int64
    commit_loss: torch.Tensor  # scalar
    perplexity: torch.Tensor   # scalar


class VQVAE(nn.Module):
    """Motion VQ-VAE.  ``T`` must be a multiple of ``config.downsample``; ``mask`` is ``(B, T)``
    (1 = real frame) for padded batches, or None."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        c = self.config = config
        self.encoder = Encoder(c.feature_dim, c.code_dim, c.width, c.down_t, c.depth, c.dilation_growth)
        self.quantizer = EMAQuantizer(c.nb_code, c.code_dim, c.mu)
        self.decoder = Decoder(c.feature_dim, c.code_dim, c.width, c.down_t, c.depth, c.dilation_growth)

    def _token_mask(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        return None if mask is None else mask[:, None, :: self.config.downsample].to(torch.float32)

    def encode_latents(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) -> continuous latents (B, D, T / down)."""
        fmask = None if mask is None else mask[:, None, :].to(x.dtype)
        return self.encoder(x.permute(0, 2, 1), fmask)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) -> code ids (B, T / down) int64."""
        z = self.encode_latents(x, mask)
        b, d, t = z.shape
        return self.quantizer.nearest(z.permute(0, 2, 1).reshape(-1, d)).reshape(b, t)

    def decode(self, ids: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Code ids (B, L) -> normalised features (B, L * down, F).  ``token_mask`` is (B, L)."""
        z = self.quantizer.lookup(ids)
        tmask = None if token_mask is None else token_mask[:, None, :].to(z.dtype)
        return self.decoder(z, tmask).permute(0, 2, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> VQVAEOutput:
        """Training/eval pass on (B, T, F): reconstruction, ids, commitment loss, perplexity."""
        z = self.encode_latents(x, mask)
        tmask = self._token_mask(mask)
        q = self.quantizer(z, tmask)
        recon = self.decoder(q.quantized, tmask).permute(0, 2, 1)
        return VQVAEOutput(recon, q.ids, q.commit_loss, q.perplexity)
