"""Vector quantiser with an EMA k-means codebook and random restarts of dead codes (spec §2.3).

The codebook `k` is a buffer: it learns by exponential moving averages of the encoder vectors
assigned to each code, never by gradients. Codes whose EMA usage falls below `threshold` are
restarted to random encoder vectors of the current batch, which keeps the codebook in use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _broadcast_(t: Tensor) -> Tensor:
    if _distributed():
        dist.broadcast(t, src=0)
    return t


def _all_reduce_(t: Tensor) -> Tensor:
    if _distributed():
        dist.all_reduce(t)
    return t


def _float32(x: Tensor) -> torch.autocast:
    """Nearest-code search and codebook statistics in float32 even under bf16/fp16 autocast: the
    distance ‖x‖² − 2x·k + ‖k‖² cancels catastrophically in half precision."""
    return torch.autocast(device_type=x.device.type, enabled=False)


@dataclass(frozen=True)
class Quantised:
    codes: Tensor  # (N, T) int64
    vectors: Tensor  # (N, W, T), straight-through in training
    commit_loss: Tensor  # scalar
    metrics: dict[str, Tensor]


class BottleneckBlock(nn.Module):
    def __init__(self, k_bins: int, emb_width: int, mu: float):
        super().__init__()
        self.k_bins, self.emb_width, self.mu = k_bins, emb_width, mu
        self.threshold = 1.0
        self.register_buffer("k", torch.zeros(k_bins, emb_width))
        self.initialised = False
        self.k_sum: Tensor | None = None  # EMA of assigned-vector sums; training state, not saved
        self.k_elem: Tensor | None = None  # EMA of assignment counts

    # -- codebook learning (training only) --------------------------------------------------

    def _random_vectors(self, x: Tensor) -> Tensor:
        """k_bins rows drawn from the batch (tiled with small jitter when the batch is smaller)."""
        n, w = x.shape
        if n < self.k_bins:
            x = x.repeat((self.k_bins + n - 1) // n, 1)
            x = x + torch.randn_like(x) * (0.01 / math.sqrt(w))
        return _broadcast_(x[torch.randperm(x.shape[0], device=x.device)][: self.k_bins].contiguous())

    @torch.no_grad()
    def init_k(self, x: Tensor) -> None:
        self.k.copy_(self._random_vectors(x))
        self.k_sum = self.k.clone()
        self.k_elem = torch.ones(self.k_bins, device=self.k.device)
        self.initialised = True

    @torch.no_grad()
    def restore_k(self, num_tokens: float | None = None, threshold: float = 1.0) -> None:
        """Rebuild the EMA state from a loaded codebook, assuming each code was used equally."""
        expected_usage = 1.0 if num_tokens is None else num_tokens / self.k_bins
        self.k_sum = self.k.clone() * expected_usage
        self.k_elem = torch.full((self.k_bins,), float(expected_usage), device=self.k.device)
        self.threshold = threshold
        self.initialised = True

    @torch.no_grad()
    def update_k(self, x: Tensor, codes: Tensor) -> dict[str, Tensor]:
        """One EMA k-means step: k_sum ← μ·k_sum + (1−μ)·Σx, k_elem ← μ·k_elem + (1−μ)·count."""
        assert self.k_sum is not None and self.k_elem is not None
        onehot = torch.zeros(self.k_bins, x.shape[0], device=x.device, dtype=x.dtype)
        onehot.scatter_(0, codes.view(1, -1), 1)
        batch_sum = _all_reduce_(onehot @ x)  # (k_bins, W)
        batch_elem = _all_reduce_(onehot.sum(dim=-1))  # (k_bins,)
        random_k = self._random_vectors(x)
        old_k = self.k.clone()
        self.k_sum = self.mu * self.k_sum + (1.0 - self.mu) * batch_sum
        self.k_elem = self.mu * self.k_elem + (1.0 - self.mu) * batch_elem
        alive = (self.k_elem >= self.threshold).float().view(-1, 1)
        self.k.copy_(alive * (self.k_sum / self.k_elem.view(-1, 1)) + (1.0 - alive) * random_k)
        prob = batch_elem / batch_elem.sum()
        return dict(
            entropy=-(prob * torch.log(prob + 1e-8)).sum(),
            used_curr=(batch_elem >= self.threshold).sum().float(),
            usage=alive.sum(),
            dk=torch.linalg.vector_norm(self.k - old_k) / math.sqrt(old_k.numel()),
        )

    # -- quantisation ---------------------------------------------------------------------

    def quantise(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Nearest code by squared distance ‖x‖² − 2x·kᵀ + ‖k‖².

        x (M, W) -> codes (M,) and the mean distance to them (the `fit` metric).
        """
        k = self.k.to(x.dtype)
        distance = x.pow(2).sum(dim=-1, keepdim=True) - 2 * x @ k.t() + k.pow(2).sum(dim=-1)
        min_distance, codes = distance.min(dim=-1)
        return codes, min_distance.mean()

    def dequantise(self, codes: Tensor) -> Tensor:
        return nn.functional.embedding(codes, self.k)

    def _flatten(self, x: Tensor) -> Tensor:
        """(N, W, T) -> (N·T, W); a 2·W input is the sum of its halves (unused by official models)."""
        x = x.permute(0, 2, 1).reshape(-1, x.shape[1])
        if x.shape[-1] == 2 * self.emb_width:
            x = x[:, : self.emb_width] + x[:, self.emb_width :]
        elif x.shape[-1] != self.emb_width:
            raise ValueError(f"bottleneck expects {self.emb_width} channels, got {x.shape[-1]}")
        return x

    def encode(self, x: Tensor) -> Tensor:  # (N, W, T) -> (N, T)
        n, _, t = x.shape
        with _float32(x):
            codes, _ = self.quantise(self._flatten(x.float()))
        return codes.view(n, t)

    def decode(self, codes: Tensor) -> Tensor:  # (N, T) -> (N, W, T)
        return self.dequantise(codes).permute(0, 2, 1)

    def forward(self, x: Tensor, *, update_k: bool) -> Quantised:
        with _float32(x):
            return self._forward(x.float(), update_k=update_k)

    def _forward(self, x: Tensor, *, update_k: bool) -> Quantised:
        n, _, t = x.shape
        flat = self._flatten(x)
        prenorm = torch.linalg.vector_norm(flat - flat.mean()) / math.sqrt(flat.numel())
        if update_k and not self.initialised:
            self.init_k(flat)
        codes, fit = self.quantise(flat)
        vectors = self.dequantise(codes)
        metrics = self.update_k(flat, codes) if update_k else {}
        commit_loss = torch.linalg.vector_norm(vectors.detach() - flat) ** 2 / flat.numel()
        vectors = flat + (vectors - flat).detach()  # straight-through estimator
        return Quantised(
            codes=codes.view(n, t),
            vectors=vectors.view(n, t, -1).permute(0, 2, 1),
            commit_loss=commit_loss,
            metrics=dict(fit=fit, pn=prenorm, **metrics),
        )


class Bottleneck(nn.Module):
    """One independent codebook per level."""

    def __init__(self, l_bins: int, emb_width: int, mu: float, levels: int):
        super().__init__()
        self.levels = levels
        self.level_blocks = nn.ModuleList(BottleneckBlock(l_bins, emb_width, mu) for _ in range(levels))

    def encode(self, xs: list[Tensor], start_level: int = 0) -> list[Tensor]:
        return [self.level_blocks[start_level + i].encode(x) for i, x in enumerate(xs)]

    def decode(self, zs: list[Tensor], start_level: int = 0) -> list[Tensor]:
        return [self.level_blocks[start_level + i].decode(z) for i, z in enumerate(zs)]

    def forward(self, xs: list[Tensor], levels: Sequence[int] | None = None) -> list[Quantised]:
        """Quantise `xs`, one per level of `levels` (default: every level, in order)."""
        levels = range(self.levels) if levels is None else levels
        out = []
        for level, x in zip(levels, xs, strict=True):
            block = self.level_blocks[level]
            q = block(x, update_k=block.training)  # a level's codebook can be frozen (eval) while others train
            if not block.training:
                q = Quantised(q.codes, q.vectors.detach(), q.commit_loss, q.metrics)
            out.append(q)
        return out
