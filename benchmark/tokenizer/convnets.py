"""1D-conv encoder/decoder with dilated residual blocks (T2M-GPT layout).

Tensors are channels-first ``(B, C, T)``.  An optional ``mask`` ``(B, 1, T)`` (1 = real frame,
0 = padding) zeroes padded frames before every temporal convolution, which is exactly what a
conv's own zero padding does at a sequence end: a padded batch therefore gives the same outputs
on its real frames as running each sequence alone.
"""
from __future__ import annotations

import torch
from torch import nn


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class ResBlock(nn.Module):
    """x + conv1x1(relu(conv3_dilated(relu(x)))): keeps ``(B, C, T)``."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(width, width, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(_masked(self.act(x), mask))
        return x + self.conv2(self.act(h))


class ResStack(nn.Module):
    """``depth`` residual blocks with dilations growth**(depth-1), ..., growth, 1."""

    def __init__(self, width: int, depth: int, growth: int):
        super().__init__()
        dilations = [growth ** d for d in range(depth)][::-1]
        self.blocks = nn.ModuleList(ResBlock(width, d) for d in dilations)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return x


class Encoder(nn.Module):
    """(B, feature_dim, T) -> (B, code_dim, T / 2**down_t); T must be a multiple of 2**down_t."""

    def __init__(self, feature_dim: int, code_dim: int, width: int, down_t: int, depth: int,
                 growth: int):
        super().__init__()
        self.conv_in = nn.Conv1d(feature_dim, width, 3, padding=1)
        self.downs = nn.ModuleList(nn.Conv1d(width, width, 4, stride=2, padding=1)
                                   for _ in range(down_t))
        self.stacks = nn.ModuleList(ResStack(width, depth, growth) for _ in range(down_t))
        self.conv_out = nn.Conv1d(width, code_dim, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.act(self.conv_in(_masked(x, mask)))
        for down, stack in zip(self.downs, self.stacks):
            h = down(_masked(h, mask))
            mask = None if mask is None else mask[..., ::2]
            h = stack(h, mask)
        return self.conv_out(_masked(h, mask))


class Decoder(nn.Module):
    """(B, code_dim, L) -> (B, feature_dim, L * 2**down_t)."""

    def __init__(self, feature_dim: int, code_dim: int, width: int, down_t: int, depth: int,
                 growth: int):
        super().__init__()
        self.conv_in = nn.Conv1d(code_dim, width, 3, padding=1)
        self.stacks = nn.ModuleList(ResStack(width, depth, growth) for _ in range(down_t))
        self.ups = nn.ModuleList(nn.Conv1d(width, width, 3, padding=1) for _ in range(down_t))
        self.conv_mid = nn.Conv1d(width, width, 3, padding=1)
        self.conv_out = nn.Conv1d(width, feature_dim, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.act(self.conv_in(_masked(z, mask)))
        for stack, up in zip(self.stacks, self.ups):
            h = stack(h, mask)
            h = h.repeat_interleave(2, dim=-1)          # nearest-neighbour upsampling x2
            mask = None if mask is None else mask.repeat_interleave(2, dim=-1)
            h = up(_masked(h, mask))
        h = self.act(self.conv_mid(_masked(h, mask)))
        return self.conv_out(_masked(h, mask))
