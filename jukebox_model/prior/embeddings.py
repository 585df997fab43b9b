"""Learned tables with the reference's module names (`emb`, `pos_emb`), spec §3.3–3.4."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SimpleEmbedding(nn.Module):
    """An id table (artist, genre word); ids outside it are an error, not a silent clamp."""

    def __init__(self, bins: int, width: int, init_scale: float = 1.0):
        super().__init__()
        self.bins = bins
        self.emb = nn.Embedding(bins, width)
        nn.init.normal_(self.emb.weight, std=0.01 * init_scale)

    def forward(self, y: Tensor) -> Tensor:  # (N, K) int -> (N, K, W)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.bins):
            raise ValueError(f"label id outside [0, {self.bins}): {y.min().item()}..{y.max().item()}")
        return self.emb(y)


class RangeEmbedding(nn.Module):
    """Embeds a position in [lo, hi) by uniform bins; with n_time > 1, the window [start, end) is
    sampled at n_time evenly spaced points p_i = start + (end − start)·i/n_time. float32 throughout,
    as the reference, so the bin edges fall where its do."""

    def __init__(self, n_time: int, bins: int, value_range: tuple[float, float], width: int, init_scale: float = 1.0, clamp: bool = False):
        super().__init__()
        self.n_time, self.bins = n_time, bins
        self.lo, self.hi = value_range
        self.clamp = clamp
        self.emb = nn.Embedding(bins, width)
        nn.init.normal_(self.emb.weight, std=0.01 * init_scale)

    def forward(self, start: Tensor, end: Tensor | None = None) -> Tensor:  # (N, 1) -> (N, n_time, W)
        start = start.float()
        if not bool(((self.lo <= start) & (start < self.hi)).all()):
            raise ValueError(f"position {start.flatten().tolist()} outside [{self.lo}, {self.hi})")
        if self.n_time == 1:
            position = start
        else:
            end = end.float()
            if self.clamp:
                end = end.clamp(self.lo, self.hi)
            elif not bool((end <= self.hi).all()):
                raise ValueError(f"window end {end.flatten().tolist()} beyond {self.hi}")
            steps = torch.arange(self.n_time, dtype=torch.float32, device=start.device).view(1, self.n_time) / self.n_time
            position = start + (end - start) * steps
        normalised = (position - self.lo) / (self.hi - self.lo)
        return self.emb((self.bins * normalised).floor().long())


class PositionEmbedding(nn.Module):
    """A learned absolute position table, the parameter `pos_emb` of shape (L, W)."""

    def __init__(self, length: int, width: int, init_scale: float = 1.0):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.empty(length, width))
        nn.init.normal_(self.pos_emb, std=0.01 * init_scale)

    def forward(self) -> Tensor:
        return self.pos_emb
