"""What each factored attention type sees, and which type each layer uses (spec §3.5).

A sequence is cut into blocks of `block_ctx` consecutive positions. Query t attends to
  DENSE            every position ≤ t
  BLOCK            positions of its own block, ≤ t
  TRANSPOSE_BLOCK  positions ≤ t with the same index inside their block (t, t − block_ctx, …)
  PREV_BLOCK       every position of the previous block (none for the first block)
  CROSS            every position of the lyrics encoder's output
  PRIME            positions ≤ t among the first `prime_len` (the lyrics of a merged sequence)
`visible` states this as a boolean mask over absolute positions; the attention module's fast
full-sequence path reshapes into blocks instead, and tests pin the two to each other.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import AttnType

B, T, P, D = AttnType.BLOCK, AttnType.TRANSPOSE_BLOCK, AttnType.PREV_BLOCK, AttnType.DENSE
C, R = AttnType.CROSS, AttnType.PRIME

SUPPORTED = frozenset({D, B, T, P, C, R})  # 4 and 5 (summary) are used by no official model


def visible(
    attn_type: AttnType, q_pos: Tensor, k_pos: Tensor, *, block_ctx: int, prime_len: int | None = None
) -> Tensor:
    """(Lq, Lk) bool: whether the query at absolute position q_pos[i] attends to the key at k_pos[j]."""
    q, k = q_pos[:, None], k_pos[None, :]
    causal = k <= q
    if attn_type is D:
        return causal
    if attn_type is B:
        return causal & (k // block_ctx == q // block_ctx)
    if attn_type is T:
        return causal & (k % block_ctx == q % block_ctx)
    if attn_type is P:
        return k // block_ctx == q // block_ctx - 1
    if attn_type is R:
        if prime_len is None:
            raise ValueError("prime attention needs prime_len")
        return causal & (k < prime_len)
    if attn_type is C:
        return torch.ones_like(causal)  # every encoder state; they are not on the decoder's time axis
    raise ValueError(f"attention type {attn_type!r} is not supported")


# -- attn_order: the layer -> type pattern of a transformer ------------------------------------


def _order_0(depth: int) -> list[AttnType]:  # dense everywhere
    return [D] * depth


def _order_2(depth: int) -> list[AttnType]:  # upsamplers, 5b, the 5b_lyrics lyrics encoder
    return [(B, T, P)[d % 3] for d in range(depth)]


def _order_10(depth: int) -> list[AttnType]:  # 5b_lyrics: after 9 layers, every tenth layer reads the lyrics
    group = (B, T, P, B, T, P, B, T, P, C)
    return [(B, T, P)[d % 3] if d < 9 else group[(d - 9) % 10] for d in range(depth)]


def _order_12(depth: int) -> list[AttnType]:  # 1b_lyrics: layers 15, 31, 63 read the lyrics; 47 is dense
    return [(R, R, D)[d % 3] if d % 16 == 15 else (B, T, P)[d % 3] for d in range(depth)]


ORDERS = {0: _order_0, 2: _order_2, 10: _order_10, 12: _order_12}


def attention_pattern(attn_order: int, depth: int) -> tuple[AttnType, ...]:
    """The AttnType of each of `depth` layers."""
    if attn_order not in ORDERS:
        raise ValueError(f"attn_order {attn_order} is not supported; known orders: {sorted(ORDERS)}")
    if depth < 1:
        raise ValueError(f"depth must be positive, got {depth}")
    return tuple(ORDERS[attn_order](depth))
