"""Which factored attention each layer uses, by the reference's `attn_order` (spec §3.5)."""

from __future__ import annotations

from ..config import AttnType

B, T, P, D, C, R = AttnType.BLOCK, AttnType.TRANSPOSE_BLOCK, AttnType.PREV_BLOCK, AttnType.DENSE, AttnType.CROSS, AttnType.PRIME


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
    return tuple(ORDERS[attn_order](depth))
