"""attn_order -> per-layer attention types: the official orders give the layers spec §3.5 lists."""

from __future__ import annotations

import pytest

from jukebox_model.config import AttnType
from jukebox_model.transformer.patterns import attention_pattern

B, T, P = AttnType.BLOCK, AttnType.TRANSPOSE_BLOCK, AttnType.PREV_BLOCK


def test_order_2_cycles_block_transpose_previous():
    assert attention_pattern(2, 7) == (B, T, P, B, T, P, B)


def test_order_10_reads_the_lyrics_every_tenth_layer_after_the_ninth():
    pattern = attention_pattern(10, 79)  # prior_5b_lyrics
    assert [d for d, t in enumerate(pattern) if t is AttnType.CROSS] == [18, 28, 38, 48, 58, 68, 78]
    assert pattern[:9] == (B, T, P) * 3
    assert pattern[9:19] == (B, T, P, B, T, P, B, T, P, AttnType.CROSS)
    assert set(pattern) == {B, T, P, AttnType.CROSS}


def test_order_12_has_prime_layers_and_one_dense_layer():
    pattern = attention_pattern(12, 72)  # prior_1b_lyrics
    special = {d: t for d, t in enumerate(pattern) if t not in (B, T, P)}
    assert special == {15: AttnType.PRIME, 31: AttnType.PRIME, 47: AttnType.DENSE, 63: AttnType.PRIME}
    assert all(t is (B, T, P)[d % 3] for d, t in enumerate(pattern) if d not in special)


def test_order_0_is_dense_everywhere():
    assert attention_pattern(0, 4) == (AttnType.DENSE,) * 4


def test_a_shallower_stack_takes_the_leading_layers():
    assert attention_pattern(12, 20) == attention_pattern(12, 72)[:20]
    assert attention_pattern(10, 19) == attention_pattern(10, 79)[:19]


def test_unknown_order_and_bad_depth_are_clear_errors():
    with pytest.raises(ValueError, match="attn_order 7"):
        attention_pattern(7, 3)
    with pytest.raises(ValueError, match="depth"):
        attention_pattern(2, 0)
