"""Exponential moving average of parameters; the reference saves EMA weights as `model` (spec §7)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class ParameterEMA:
    def __init__(self, module: nn.Module, mu: float):
        if not 0.0 <= mu < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {mu}")
        self.mu = mu
        self.params = {name: p for name, p in module.named_parameters() if p.requires_grad}
        self.shadow = {name: p.detach().clone() for name, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        """shadow ← μ·shadow + (1−μ)·θ."""
        for name, p in self.params.items():
            self.shadow[name].lerp_(p.detach(), 1.0 - self.mu)

    @contextmanager
    @torch.no_grad()
    def swapped_in(self) -> Iterator[None]:
        """Temporarily put the averaged weights into the module (for saving or evaluation)."""
        for name, p in self.params.items():
            tmp = p.detach().clone()
            p.copy_(self.shadow[name])
            self.shadow[name] = tmp
        try:
            yield
        finally:
            for name, p in self.params.items():
                tmp = p.detach().clone()
                p.copy_(self.shadow[name])
                self.shadow[name] = tmp

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: t.detach().cpu().clone() for name, t in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:5]}")
        for name, value in state.items():
            if name in self.shadow:
                self.shadow[name].copy_(value)


def default_ema_decay(batch_size: int, world_size: int) -> float:
    """The reference's rule: μ = 1 − (batch · GPUs / 8) / 1000."""
    return max(0.0, 1.0 - (batch_size * world_size / 8) / 1000)
