"""Factored attention: each layer attends along one sparse pattern (spec §3.5).

A sequence of length L is cut into blocks of `block_ctx` consecutive positions. Query t attends to
  BLOCK            positions of its own block, ≤ t
  TRANSPOSE_BLOCK  positions ≤ t with the same index inside their block (t, t − block_ctx, …)
  PREV_BLOCK       every position of the previous block (nothing for the first block: output 0)
  DENSE            every position ≤ t
  CROSS            every position of the lyrics encoder's output (no mask)
  PRIME            the first `prime_len` positions, ≤ t (the lyrics of a merged sequence)
The block patterns are computed by reshaping into blocks and running dense attention inside
them, which is both the reference's arithmetic and far cheaper than an L × L mask.

Shapes: N batch, L length, S = n_state (attention width), H heads, D = S / H.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import AttnType
from .ops import Conv1D


def causal_mask(q_len: int, kv_len: int, device: torch.device) -> Tensor:
    """1 where query i may see key j: j ≤ i + (kv_len − q_len), keys right-aligned with queries."""
    return torch.ones(q_len, kv_len, device=device).tril(max(kv_len - q_len, 0))


class FactoredAttention(nn.Module):
    def __init__(
        self,
        width: int,
        n_ctx: int,
        n_state: int,
        heads: int,
        attn_type: AttnType,
        *,
        blocks: int | None,
        prime_len: int | None = None,
        causal: bool = True,
        zero_out: bool = False,
        init_scale: float = 1.0,
    ):
        super().__init__()
        if n_state % heads:
            raise ValueError(f"attention width {n_state} is not divisible by {heads} heads")
        self.attn_type = AttnType(attn_type)
        if self.attn_type in (AttnType.SUMMARY, AttnType.SUMMARY_SPREAD):
            raise ValueError(f"attention type {self.attn_type.name} is not used by any official model and not implemented")
        self.n_ctx, self.n_state, self.heads = n_ctx, n_state, heads
        self.block_ctx = n_ctx // blocks if blocks else n_ctx
        if self.attn_type in (AttnType.BLOCK, AttnType.TRANSPOSE_BLOCK, AttnType.PREV_BLOCK) and n_ctx % self.block_ctx:
            raise ValueError(f"sequence length {n_ctx} is not a whole number of blocks of {self.block_ctx}")
        if self.attn_type is AttnType.PRIME and not prime_len:
            raise ValueError("prime attention needs prime_len")
        self.prime_len = prime_len
        self.causal = causal
        if self.attn_type is AttnType.CROSS:
            self.c_attn = Conv1D(width, n_state, init_scale=init_scale)  # queries only
            self.c_enc_kv = Conv1D(width, 2 * n_state, init_scale=init_scale)  # keys | values of the encoder
        else:
            self.c_attn = Conv1D(width, 3 * n_state, init_scale=init_scale)  # queries | keys | values
        self.c_proj = Conv1D(n_state, width, zero_out=zero_out or self.attn_type is AttnType.CROSS, init_scale=init_scale)
        self.record_attn = False
        self.attn_weights: Tensor | None = None  # (N, H, L_q, L_k) of the last call when recording

    # -- dense attention, the core every pattern reduces to ----------------------------------

    def _dense(self, q: Tensor, k: Tensor, v: Tensor, *, causal: bool) -> Tensor:
        """q (N, Lq, S), k/v (N, Lk, S) -> (N, Lq, S); softmax(q·kᵀ/√D) in float32."""
        n, lq, _ = q.shape
        lk = k.shape[1]
        d = self.n_state // self.heads
        q = q.view(n, lq, self.heads, d).transpose(1, 2)  # (N, H, Lq, D)
        k = k.view(n, lk, self.heads, d).transpose(1, 2)
        v = v.view(n, lk, self.heads, d).transpose(1, 2)
        scale = 1.0 / math.sqrt(math.sqrt(d))  # split over q and k: no fp16 overflow of q·k
        w = torch.matmul(q * scale, (k * scale).transpose(-1, -2)).float()  # (N, H, Lq, Lk)
        if causal:
            w = w.masked_fill(causal_mask(lq, lk, w.device) == 0, -1e9)
        w = torch.softmax(w, dim=-1).to(v.dtype)
        if self.record_attn:
            self.attn_weights = w
        return torch.matmul(w, v).transpose(1, 2).reshape(n, lq, self.n_state)

    # -- the patterns -------------------------------------------------------------------------

    def _block(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        n, l, s = q.shape
        bc = self.block_ctx
        a = self._dense(q.reshape(-1, bc, s), k.reshape(-1, bc, s), v.reshape(-1, bc, s), causal=self.causal)
        return a.view(n, l, s)

    def _transpose_block(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        n, l, s = q.shape
        bc = self.block_ctx

        def by_column(x: Tensor) -> Tensor:  # (N, L, S) -> (N·bc, L/bc, S): position i of every block together
            return x.view(n, l // bc, bc, s).transpose(1, 2).reshape(n * bc, l // bc, s)

        a = self._dense(by_column(q), by_column(k), by_column(v), causal=self.causal)
        return a.view(n, bc, l // bc, s).transpose(1, 2).reshape(n, l, s)

    def _prev_block(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        n, l, s = q.shape
        bc = self.block_ctx

        def previous(x: Tensor) -> Tensor:  # block b sees block b-1; block 0 sees zeros
            blocks = x.view(n, l // bc, bc, s)[:, :-1]
            return nn.functional.pad(blocks, (0, 0, 0, 0, 1, 0)).reshape(-1, bc, s)

        a = self._dense(q.reshape(-1, bc, s), previous(k), previous(v), causal=False)
        return a.view(n, l, s)

    def _prime(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        p = self.prime_len
        return self._dense(q, k[:, :p], v[:, :p], causal=self.causal)

    def forward(self, x: Tensor, encoder_kv: Tensor | None = None) -> Tensor:  # (N, L, W) -> (N, L, W)
        if self.attn_type is AttnType.CROSS:
            if encoder_kv is None:
                raise ValueError("cross-attention layer called without encoder states")
            q = self.c_attn(x)
            k, v = self.c_enc_kv(encoder_kv.to(x.dtype)).chunk(2, dim=-1)
            a = self._dense(q, k, v, causal=False)
        else:
            q, k, v = self.c_attn(x).chunk(3, dim=-1)
            t = self.attn_type
            if t is AttnType.DENSE:
                a = self._dense(q, k, v, causal=self.causal)
            elif t is AttnType.BLOCK:
                a = self._block(q, k, v)
            elif t is AttnType.TRANSPOSE_BLOCK:
                a = self._transpose_block(q, k, v)
            elif t is AttnType.PREV_BLOCK:
                a = self._prev_block(q, k, v)
            else:
                a = self._prime(q, k, v)
        return self.c_proj(a)
