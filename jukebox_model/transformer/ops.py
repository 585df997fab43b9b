"""Transformer primitives with the reference's parameter layout (spec §3.5).

`Conv1D` is a linear layer whose weight is stored (n_in, n_out) under the names `w` and `b`, the
layout of the released checkpoints; it casts its weights to the input's dtype, so float16 weights
(the 5b priors) serve float32 or bfloat16 activations.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Conv1D(nn.Module):
    def __init__(self, n_in: int, n_out: int, *, zero_out: bool = False, init_scale: float = 1.0):
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.w = nn.Parameter(torch.empty(n_in, n_out))
        self.b = nn.Parameter(torch.zeros(n_out))
        if zero_out:
            nn.init.zeros_(self.w)
        else:
            nn.init.normal_(self.w, std=0.02 * init_scale)

    def forward(self, x: Tensor) -> Tensor:  # (..., n_in) -> (..., n_out)
        flat = x.reshape(-1, self.n_in)
        out = torch.addmm(self.b.to(x.dtype), flat, self.w.to(x.dtype))
        return out.view(*x.shape[:-1], self.n_out)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back, so half-precision activations stay stable."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps).to(x.dtype)


def quick_gelu(x: Tensor) -> Tensor:
    """x · σ(1.702 x), the GELU approximation the reference trains with."""
    return x * torch.sigmoid(1.702 * x)


class MLP(nn.Module):
    def __init__(self, width: int, n_state: int, *, zero_out: bool = False, init_scale: float = 1.0):
        super().__init__()
        self.c_fc = Conv1D(width, n_state, init_scale=init_scale)
        self.c_proj = Conv1D(n_state, width, zero_out=zero_out, init_scale=init_scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(quick_gelu(self.c_fc(x)))
