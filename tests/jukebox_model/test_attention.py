"""Factored attention: each pattern lets a query see exactly the keys spec §3.5 names, and the path
through the cache (prefill chunks of any size and device-side sampling steps) computes the same
function as one full pass."""

from __future__ import annotations

import pytest
import torch

from jukebox_model.config import AttnType, TransformerConfig
from jukebox_model.transformer.attention import FactoredAttention
from jukebox_model.transformer.patterns import visible
from jukebox_model.transformer.transformer import Transformer

L, BLOCKS, WIDTH, STATE, HEADS = 24, 4, 16, 8, 2
BC = L // BLOCKS  # 6
PRIME_LEN = 9  # not a whole number of blocks, like the merged 1b sequence
CAUSAL_TYPES = [AttnType.DENSE, AttnType.BLOCK, AttnType.TRANSPOSE_BLOCK, AttnType.PREV_BLOCK, AttnType.PRIME]
CHUNKINGS = {"steps": [1] * L, "uneven": [5, 7, 1, 11], "one": [L], "prefill_then_steps": [13] + [1] * 11}


def _spec_sees(attn_type: AttnType, t: int, s: int) -> bool:
    """Spec §3.5, written out independently of the implementation: does query t attend to key s?"""
    return {
        AttnType.DENSE: s <= t,
        AttnType.BLOCK: s <= t and s // BC == t // BC,
        AttnType.TRANSPOSE_BLOCK: s <= t and s % BC == t % BC,
        AttnType.PREV_BLOCK: t // BC >= 1 and s // BC == t // BC - 1,
        AttnType.PRIME: s <= t and s < PRIME_LEN,
    }[attn_type]


def _layer(attn_type: AttnType, seed: int = 0) -> FactoredAttention:
    torch.manual_seed(seed)
    attn = FactoredAttention(WIDTH, L, STATE, HEADS, attn_type, blocks=BLOCKS, prime_len=PRIME_LEN)
    for p in attn.parameters():  # no zero-initialised projections: every dependence must show
        torch.nn.init.normal_(p, std=0.5)
    return attn.eval()


def _assert_depends_on_what_the_spec_lets_it_see(attn_type, dep: torch.Tensor) -> None:
    for t in range(L):
        expected = {s for s in range(L) if _spec_sees(attn_type, t, s)}
        if expected:
            expected.add(t)
        assert {s for s in range(L) if dep[t, s]} == expected, f"{attn_type.name} step {t}"


def _dependence(out_fn, x: torch.Tensor) -> torch.Tensor:
    """dep[t, s]: whether output position t changes with input position s (via gradients)."""
    x = x.clone().requires_grad_(True)
    out = out_fn(x)
    dep = torch.zeros(out.shape[1], x.shape[1], dtype=torch.bool)
    for t in range(out.shape[1]):
        (grad,) = torch.autograd.grad(out[0, t].sum(), x, retain_graph=True)
        dep[t] = grad[0].abs().sum(dim=-1) > 0
    return dep


def _chunked(attn: FactoredAttention, x: torch.Tensor, sizes: list[int], encoder_kv=None, need_weights=False):
    cache = attn.empty_cache(x.shape[0], encoder_len=None if encoder_kv is None else encoder_kv.shape[1])
    outs, weights, start = [], [], 0
    for size in sizes:
        chunk = x[:, start : start + size]
        out, w = attn(chunk, encoder_kv=encoder_kv, cache=cache, start=start, need_weights=need_weights)
        outs.append(out)
        weights.append(w)
        start += size
    return torch.cat(outs, dim=1), weights


@pytest.mark.parametrize("attn_type", CAUSAL_TYPES, ids=lambda t: t.name)
def test_position_masks_match_the_spec_definitions(attn_type):
    pos = torch.arange(L)
    mask = visible(attn_type, pos, pos, block_ctx=BC, prime_len=PRIME_LEN)
    assert mask.tolist() == [[_spec_sees(attn_type, t, s) for s in range(L)] for t in range(L)]


@pytest.mark.parametrize("attn_type", CAUSAL_TYPES, ids=lambda t: t.name)
def test_full_pass_reads_exactly_the_keys_of_its_pattern(attn_type):
    attn = _layer(attn_type)
    dep = _dependence(lambda x: attn(x)[0], torch.randn(1, L, WIDTH))
    for t in range(L):
        expected = {s for s in range(L) if _spec_sees(attn_type, t, s)}
        if expected:  # a query also depends on itself through its own query vector
            expected.add(t)
        assert {s for s in range(L) if dep[t, s]} == expected, f"{attn_type.name} query {t}"


@pytest.mark.parametrize("chunking", list(CHUNKINGS), ids=str)
@pytest.mark.parametrize("attn_type", CAUSAL_TYPES, ids=lambda t: t.name)
def test_chunked_cached_forward_equals_the_full_pass(attn_type, chunking):
    attn = _layer(attn_type)
    x = torch.randn(2, L, WIDTH)
    with torch.no_grad():
        full, _ = attn(x)
        chunked, _ = _chunked(attn, x, CHUNKINGS[chunking])
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attn_type", CAUSAL_TYPES, ids=lambda t: t.name)
def test_cached_steps_read_exactly_the_keys_of_their_pattern(attn_type):
    """Gradients through the cache: step t depends on the inputs the spec lets it see (and itself)."""
    attn = _layer(attn_type)
    dep = _dependence(lambda x: _chunked(attn, x, CHUNKINGS["steps"])[0], torch.randn(1, L, WIDTH))
    _assert_depends_on_what_the_spec_lets_it_see(attn_type, dep)


@pytest.mark.parametrize("attn_type", CAUSAL_TYPES, ids=lambda t: t.name)
def test_a_sequence_of_partial_blocks_equals_the_prefix_of_the_full_pass(attn_type):
    attn = _layer(attn_type)
    x = torch.randn(2, L, WIDTH)
    with torch.no_grad():
        torch.testing.assert_close(attn(x[:, :17])[0], attn(x)[0][:, :17], atol=1e-5, rtol=1e-5)


def test_caches_hold_only_what_a_later_query_can_need():
    capacity = {t: _layer(t).empty_cache(3).k.shape for t in CAUSAL_TYPES}
    assert capacity == {
        AttnType.DENSE: (3, L, STATE),
        AttnType.TRANSPOSE_BLOCK: (3, L, STATE),
        AttnType.BLOCK: (3, BC, STATE),
        AttnType.PREV_BLOCK: (3, 2 * BC, STATE),
        AttnType.PRIME: (3, PRIME_LEN, STATE),
    }
    assert _layer(AttnType.CROSS).empty_cache(3, encoder_len=7).k.shape == (3, 7, STATE)


def test_first_block_of_previous_block_attention_outputs_only_the_bias():
    attn = _layer(AttnType.PREV_BLOCK)
    x = torch.randn(2, L, WIDTH)
    with torch.no_grad():
        expected = attn.c_proj.b.expand(2, BC, WIDTH)
        torch.testing.assert_close(attn(x)[0][:, :BC], expected)
        torch.testing.assert_close(_chunked(attn, x, CHUNKINGS["uneven"])[0][:, :BC], expected)


def test_cross_attention_reads_every_encoder_state_from_the_first_chunk_on():
    attn = _layer(AttnType.CROSS)
    enc = torch.randn(2, 7, WIDTH, requires_grad=True)
    x = torch.randn(2, L, WIDTH)
    full, full_w = attn(x, encoder_kv=enc, need_weights=True)
    full[0, -1].sum().backward()
    assert (enc.grad[0].abs().sum(dim=-1) > 0).all()
    with torch.no_grad():
        chunked, weights = _chunked(attn, x, CHUNKINGS["uneven"], encoder_kv=enc, need_weights=True)
        torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.cat(weights, dim=2), full_w, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="encoder"):
        attn(x)


def test_prime_attention_probabilities_of_steps_are_rows_of_the_full_pass():
    attn = _layer(AttnType.PRIME)
    x = torch.randn(2, L, WIDTH)
    with torch.no_grad():
        _, full_w = attn(x, need_weights=True)  # (N, H, L, PRIME_LEN)
        _, step_w = _chunked(attn, x, CHUNKINGS["steps"], need_weights=True)
    for t, w in enumerate(step_w):
        torch.testing.assert_close(w[:, :, 0], full_w[:, :, t, : w.shape[-1]], atol=1e-6, rtol=1e-5)


def test_bad_positions_and_shapes_are_clear_errors():
    attn = _layer(AttnType.BLOCK)
    with pytest.raises(ValueError, match="outside this layer's context"):
        attn(torch.randn(1, L + 1, WIDTH))
    with pytest.raises(ValueError, match="need a cache"):
        attn(torch.randn(1, 1, WIDTH), start=3)
    with pytest.raises(ValueError, match="batch of 2"):
        attn(torch.randn(1, 1, WIDTH), cache=attn.empty_cache(2))
    with pytest.raises(ValueError, match="whole number of blocks"):
        FactoredAttention(WIDTH, 25, STATE, HEADS, AttnType.BLOCK, blocks=4)
    with pytest.raises(ValueError, match="not implemented"):
        FactoredAttention(WIDTH, L, STATE, HEADS, AttnType.SUMMARY, blocks=BLOCKS)
    with pytest.raises(ValueError, match="encoder length"):
        _layer(AttnType.CROSS).empty_cache(1)


# -- one rule through the cache: steps and chunks of any size ------------------------------------

ALL_TYPES = [*CAUSAL_TYPES, AttnType.CROSS]


def _encoder(attn_type: AttnType) -> torch.Tensor | None:
    return torch.randn(2, 7, WIDTH) if attn_type is AttnType.CROSS else None


@pytest.mark.parametrize("attn_type", ALL_TYPES, ids=lambda t: t.name)
def test_a_prefill_of_any_length_then_device_side_steps_equals_the_full_pass(attn_type):
    """What the sampler does: one cached pass over the context from position 0, then `step` per token."""
    attn = _layer(attn_type)
    x, enc = torch.randn(2, L, WIDTH), _encoder(attn_type)
    with torch.no_grad():
        full, _ = attn(x, encoder_kv=enc)
        for first in range(L + 1):
            cache = attn.empty_cache(2, encoder_len=None if enc is None else enc.shape[1])
            outs = []
            if first:
                outs.append(attn(x[:, :first], encoder_kv=enc, cache=cache)[0])
            elif enc is not None:
                attn.project_encoder(cache, enc)
            outs += [attn.step(x[:, p : p + 1], cache, torch.tensor(p)) for p in range(first, L)]
            torch.testing.assert_close(torch.cat(outs, dim=1), full, atol=1e-5, rtol=1e-5, msg=f"prefill {first}")


@pytest.mark.parametrize("attn_type", ALL_TYPES, ids=lambda t: t.name)
def test_cached_chunks_of_every_size_equal_the_full_pass(attn_type):
    """Chunks that start and end anywhere inside blocks (and across prime_len) compute the full pass."""
    attn = _layer(attn_type)
    x, enc = torch.randn(2, L, WIDTH), _encoder(attn_type)
    with torch.no_grad():
        full, _ = attn(x, encoder_kv=enc)
        for size in range(1, L + 1):
            sizes = [size] * (L // size) + ([L % size] if L % size else [])
            chunked, _ = _chunked(attn, x, sizes, encoder_kv=enc)
            torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-5, msg=f"chunks of {size}")
        odd, _ = _chunked(attn, x, [1, 2, 3, 4, 5, 9], encoder_kv=enc)  # starts at every offset in a block
        torch.testing.assert_close(odd, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attn_type", CAUSAL_TYPES, ids=lambda t: t.name)
def test_device_side_steps_read_exactly_the_keys_of_their_pattern(attn_type):
    """The static step (a fixed-size read of the cache, masked) lets query t depend on what the spec says."""
    attn = _layer(attn_type)

    def stepped(x: torch.Tensor) -> torch.Tensor:
        cache = attn.empty_cache(1)
        return torch.cat([attn.step(x[:, p : p + 1], cache, torch.tensor(p)) for p in range(L)], dim=1)

    dep = _dependence(stepped, torch.randn(1, L, WIDTH))
    _assert_depends_on_what_the_spec_lets_it_see(attn_type, dep)


@pytest.mark.parametrize("attn_type", CAUSAL_TYPES, ids=lambda t: t.name)
def test_a_step_reads_the_same_number_of_keys_at_every_position(attn_type):
    """Static shapes: the cache access of one position has the same shape wherever it is."""
    attn = _layer(attn_type)
    shapes = {tuple(attn.cache_access(torch.tensor(p)).mask.shape) for p in range(L)}
    assert len(shapes) == 1
    (shape,) = shapes
    assert shape[0] == 1 and shape[1] == {AttnType.TRANSPOSE_BLOCK: BLOCKS, AttnType.PREV_BLOCK: BC}.get(
        attn_type, attn.cache_capacity()
    )


def test_layers_of_one_layout_share_a_cache_access_and_others_do_not():
    a, b = _layer(AttnType.BLOCK, seed=1), _layer(AttnType.BLOCK, seed=2)
    assert a.layout == b.layout
    assert len({_layer(t).layout for t in CAUSAL_TYPES}) == len(CAUSAL_TYPES)
    with pytest.raises(ValueError, match="no cache access"):
        _layer(AttnType.CROSS).cache_access(torch.tensor(0))


@pytest.mark.parametrize(("attn_order", "blocks", "alignment"), [(2, BLOCKS, BC), (12, BLOCKS, BC), (0, None, 1)])
def test_the_prefill_alignment_is_the_block_patterns_block_length(attn_order, blocks, alignment):
    """A pass from 0 over a multiple of it takes every layer's cache-free path; dense layers need none."""
    config = TransformerConfig(
        width=WIDTH,
        depth=16,
        heads=HEADS,
        attn_order=attn_order,
        blocks=blocks,
        spread=None,
        m_attn=0.5,
        m_mlp=1.0,
        init_scale=1.0,
        zero_out=False,
        res_scale=False,
        pos_init=False,
    )
    assert Transformer(config, L, prime_len=PRIME_LEN).prefill_alignment == alignment
