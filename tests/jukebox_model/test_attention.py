"""Factored attention: each pattern lets a query see exactly the keys spec §3.5 says, and nothing later."""

from __future__ import annotations

import pytest
import torch

from jukebox_model.config import AttnType
from jukebox_model.transformer.attention import FactoredAttention
from jukebox_model.transformer.patterns import attention_pattern

L, BLOCKS, WIDTH = 24, 4, 16  # block_ctx 6
BC = L // BLOCKS


def _visible(attn_type: AttnType, t: int, s: int, prime_len: int = 9) -> bool:
    """The spec's definition of which key s query t attends to."""
    return {
        AttnType.DENSE: s <= t,
        AttnType.BLOCK: s <= t and s // BC == t // BC,
        AttnType.TRANSPOSE_BLOCK: s <= t and s % BC == t % BC,
        AttnType.PREV_BLOCK: t // BC >= 1 and s // BC == t // BC - 1,
        AttnType.PRIME: s <= t and s < prime_len,
    }[attn_type]


def _dependence(attn: FactoredAttention) -> torch.Tensor:
    """dep[t, s] = whether output t changes with input s, via gradients."""
    x = torch.randn(1, L, WIDTH, requires_grad=True)
    out = attn(x)
    dep = torch.zeros(L, L, dtype=torch.bool)
    for t in range(L):
        (grad,) = torch.autograd.grad(out[0, t].sum(), x, retain_graph=True)
        dep[t] = grad[0].abs().sum(dim=-1) > 0
    return dep


@pytest.mark.parametrize(
    "attn_type", [AttnType.DENSE, AttnType.BLOCK, AttnType.TRANSPOSE_BLOCK, AttnType.PREV_BLOCK, AttnType.PRIME]
)
def test_each_pattern_reads_exactly_its_keys(attn_type):
    torch.manual_seed(0)
    attn = FactoredAttention(WIDTH, L, 8, 2, attn_type, blocks=BLOCKS, prime_len=9)
    torch.nn.init.normal_(attn.c_proj.w)
    dep = _dependence(attn)
    for t in range(L):
        # a query always depends on itself through its own query vector, except where it sees nothing
        expected = {s for s in range(L) if _visible(attn_type, t, s)}
        if expected:
            expected.add(t)
        assert {s for s in range(L) if dep[t, s]} == expected, f"{attn_type.name} query {t}"


def test_first_block_of_previous_block_attention_outputs_only_the_bias():
    attn = FactoredAttention(WIDTH, L, 8, 2, AttnType.PREV_BLOCK, blocks=BLOCKS)
    torch.nn.init.normal_(attn.c_proj.b)
    out = attn(torch.randn(2, L, WIDTH))
    torch.testing.assert_close(out[:, :BC], attn.c_proj.b.expand(2, BC, WIDTH))


def test_cross_attention_sees_every_encoder_state_and_needs_them():
    attn = FactoredAttention(WIDTH, L, 8, 2, AttnType.CROSS, blocks=BLOCKS)
    torch.nn.init.normal_(attn.c_proj.w)
    enc = torch.randn(1, 7, WIDTH, requires_grad=True)
    attn(torch.randn(1, L, WIDTH), enc)[0, 0].sum().backward()
    assert (enc.grad[0].abs().sum(dim=-1) > 0).all()
    with pytest.raises(ValueError, match="encoder"):
        attn(torch.randn(1, L, WIDTH))


def test_patterns_of_the_official_orders():
    assert attention_pattern(2, 4) == (AttnType.BLOCK, AttnType.TRANSPOSE_BLOCK, AttnType.PREV_BLOCK, AttnType.BLOCK)
    five_b_lyrics = attention_pattern(10, 79)
    assert [d for d, t in enumerate(five_b_lyrics) if t is AttnType.CROSS] == [18, 28, 38, 48, 58, 68, 78]
    one_b = attention_pattern(12, 72)
    assert {d: t for d, t in enumerate(one_b) if t in (AttnType.PRIME, AttnType.DENSE)} == {
        15: AttnType.PRIME,
        31: AttnType.PRIME,
        47: AttnType.DENSE,
        63: AttnType.PRIME,
    }


def test_unknown_order_and_uneven_blocks_are_clear_errors():
    with pytest.raises(ValueError, match="attn_order 7"):
        attention_pattern(7, 3)
    with pytest.raises(ValueError, match="whole number of blocks"):
        FactoredAttention(WIDTH, 25, 8, 2, AttnType.BLOCK, blocks=4)
