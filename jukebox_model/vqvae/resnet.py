"""Dilated residual 1-D conv stacks shared by the VQ-VAE and the upsampler conditioner (spec §2.2, §3.2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class ResConv1DBlock(nn.Module):
    """x + res_scale · conv1(relu(conv3_dilated(relu(x))))."""

    def __init__(self, n_in: int, n_state: int, *, dilation: int = 1, zero_out: bool = False, res_scale: float = 1.0):
        super().__init__()
        self.model = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(n_in, n_state, kernel_size=3, stride=1, padding=dilation, dilation=dilation),
            nn.ReLU(),
            nn.Conv1d(n_state, n_in, kernel_size=1, stride=1, padding=0),
        )
        if zero_out:
            nn.init.zeros_(self.model[-1].weight)
            nn.init.zeros_(self.model[-1].bias)
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:  # (N, C, T) -> (N, C, T)
        return x + self.res_scale * self.model(x)


def dilations(n_depth: int, growth: int, cycle: int | None, reverse: bool) -> list[int]:
    """Dilation of each block in order of application; reversed decoders put the largest first."""
    out = [growth ** (d if cycle is None else d % cycle) for d in range(n_depth)]
    return out[::-1] if reverse else out


class Resnet1D(nn.Module):
    """`n_depth` residual blocks with geometrically growing dilation.

    With `checkpoint_res == 1` the blocks live in a ModuleList named `blocks` (the reference's
    memory-saving layout, which the upsampler checkpoints use) and are gradient-checkpointed while
    training; otherwise they form a Sequential named `model`. Outputs are identical either way.
    """

    def __init__(
        self,
        n_in: int,
        n_depth: int,
        *,
        m_conv: float = 1.0,
        dilation_growth_rate: int = 1,
        dilation_cycle: int | None = None,
        reverse_dilation: bool = False,
        res_scale: bool = False,
        zero_out: bool = False,
        checkpoint_res: int = 0,
    ):
        super().__init__()
        scale = 1.0 / math.sqrt(n_depth) if res_scale else 1.0
        blocks = [
            ResConv1DBlock(n_in, int(m_conv * n_in), dilation=d, zero_out=zero_out, res_scale=scale)
            for d in dilations(n_depth, dilation_growth_rate, dilation_cycle, reverse_dilation)
        ]
        self.checkpoint_res = checkpoint_res
        if checkpoint_res == 1:
            self.blocks = nn.ModuleList(blocks)
        else:
            self.model = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        if self.checkpoint_res != 1:
            return self.model(x)
        for block in self.blocks:
            if self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x
