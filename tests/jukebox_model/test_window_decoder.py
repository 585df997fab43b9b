"""The token draw samples the right distribution, and the window decoder's fixed buffers can be reused from
one window to the next without carrying anything over (what CUDA-graph replay relies on)."""

from __future__ import annotations

import pytest
import torch

from jukebox_model.prior.prior import DecoderInputs
from jukebox_model.sampling.decoder import DecoderPool, DrawSettings, WindowDecoder, prefill_chunks
from jukebox_model.sampling.logits import sample_tokens
from jukebox_model.sampling.window import sample_window
from tests.jukebox_model.test_static_step import conditioning, tiny_prior

DRAWS = 40_000


def _frequencies(tokens: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.bincount(tokens, minlength=vocab).double() / tokens.numel()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_draws_follow_the_softmax_of_the_tempered_logits(temperature):
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    expected = torch.softmax(logits.double() / temperature, dim=0)
    got = _frequencies(
        sample_tokens(logits.expand(DRAWS, -1), temperature=temperature, generator=torch.Generator().manual_seed(0)), 6
    )
    sigma = (expected * (1 - expected) / DRAWS).sqrt()
    assert ((got - expected).abs() <= 4 * sigma + 1e-9).all(), (got, expected)


def test_top_k_and_top_p_draws_renormalise_over_what_they_keep():
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0])
    p = torch.softmax(logits.double(), dim=0)
    g = torch.Generator().manual_seed(1)
    top2 = _frequencies(sample_tokens(logits.expand(DRAWS, -1), top_k=2, generator=g), 4)
    expected = torch.cat([p[:2] / p[:2].sum(), torch.zeros(2, dtype=torch.double)])
    assert (top2 - expected).abs().max() < 0.015 and top2[2:].sum() == 0
    nucleus = _frequencies(sample_tokens(logits.expand(DRAWS, -1), top_p=0.5, generator=g), 4)  # p[0] ≈ 0.57
    assert nucleus[0] == 1.0


def _window(prior, run, encoder_kv, prefix_len, seed, **kw):
    inputs = DecoderInputs(run["x_cond"], run["y_cond"], encoder_kv)
    prefix = torch.randint(0, prior.music_bins, (2, prefix_len), generator=torch.Generator().manual_seed(seed))
    gens = [torch.Generator().manual_seed(seed + i) for i in range(2)]
    return sample_window(
        prior, inputs, prefix=prefix, length=prior.prior.length, generator=gens, chunk_size=8, keep_logits=True, **kw
    )


@pytest.mark.parametrize("name", ["upsampler_level_0", "prior_5b_lyrics"])
def test_a_reused_decoder_samples_a_window_as_a_fresh_one_does(name):
    prior = tiny_prior(name)
    run, encoder_kv = conditioning(prior, 2)
    pool = DecoderPool()
    with torch.no_grad():
        _window(prior, run, encoder_kv, 40, seed=3, decoders=pool)  # leaves its cache, position, noise behind
        other = {k: (None if v is None else v.flip(0)) for k, v in run.items()}
        reused = _window(prior, other, None if encoder_kv is None else encoder_kv.flip(0), 9, seed=5, decoders=pool)
        fresh = _window(prior, other, None if encoder_kv is None else encoder_kv.flip(0), 9, seed=5)
    assert len(pool._decoders) == 1
    assert torch.equal(reused.tokens, fresh.tokens)
    torch.testing.assert_close(reused.logits, fresh.logits, rtol=0, atol=0)


def test_a_row_draws_the_same_tokens_alone_or_in_a_batch():
    prior = tiny_prior("upsampler_level_0")
    run, _ = conditioning(prior, 2)
    y = run["y_cond"]
    inputs = DecoderInputs(run["x_cond"], y, None)
    prefix = torch.zeros(2, 3, dtype=torch.long)
    with torch.no_grad():
        both = sample_window(
            prior,
            inputs,
            prefix=prefix,
            length=prior.prior.length,
            generator=[torch.Generator().manual_seed(s) for s in (7, 8)],
        )
        alone = sample_window(
            prior,
            DecoderInputs(run["x_cond"][1:], None if y is None else y[1:], None),
            prefix=prefix[1:],
            length=prior.prior.length,
            generator=[torch.Generator().manual_seed(8)],
        )
    assert torch.equal(both.tokens[1:], alone.tokens)


def test_cuda_graphs_without_a_gpu_are_a_clear_error():
    prior = tiny_prior("upsampler_level_0")
    run, _ = conditioning(prior, 1)
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        WindowDecoder(
            prior,
            DecoderInputs(run["x_cond"], run["y_cond"], None),
            1,
            DrawSettings(),
            device=torch.device("cpu"),
            graph=True,
        )


def test_prefill_passes_start_with_whole_blocks_and_cover_the_context():
    assert prefill_chunks(7168, 8192, 64) == [(0, 7168)]
    assert prefill_chunks(1000, 8192, 64) == [(0, 960), (960, 1000)]
    assert prefill_chunks(100, 32, 64) == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert prefill_chunks(40, 8192, 64) == [(0, 40)] and prefill_chunks(0, 32, 64) == []


@pytest.mark.parametrize("name", ["upsampler_level_0", "prior_5b_lyrics", "prior_1b_lyrics"])
def test_a_one_pass_prefill_equals_a_position_by_position_one(name):
    prior = tiny_prior(name)
    run, encoder_kv = conditioning(prior, 2)
    with torch.no_grad():
        whole = _window(prior, run, encoder_kv, 45, seed=4, top_k=1)  # chunk 8 from 0: whole blocks, then the rest
        one = _window_chunked(prior, run, encoder_kv, 45, seed=4, chunk_size=1)
        big = _window_chunked(prior, run, encoder_kv, 45, seed=4, chunk_size=8192)
    for other in (one, big):
        assert torch.equal(whole.tokens, other.tokens)
        torch.testing.assert_close(other.logits, whole.logits, atol=2e-5, rtol=2e-5)


def _window_chunked(prior, run, encoder_kv, prefix_len, seed, chunk_size):
    inputs = DecoderInputs(run["x_cond"], run["y_cond"], encoder_kv)
    prefix = torch.randint(0, prior.music_bins, (2, prefix_len), generator=torch.Generator().manual_seed(seed))
    return sample_window(
        prior, inputs, prefix=prefix, length=prior.prior.length, top_k=1, chunk_size=chunk_size, keep_logits=True
    )


def test_a_compiled_step_samples_the_eager_tokens():
    """torch.compile traces the whole step as one graph (fullgraph: no break on any op) and computes the same draw."""
    prior = tiny_prior("upsampler_level_0", depth=3)
    run, _ = conditioning(prior, 2)
    inputs = DecoderInputs(run["x_cond"], run["y_cond"], None)
    outs = []
    with torch.no_grad():
        for compiled in (False, True):
            pool = DecoderPool(compile=compiled)
            gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
            prefix = torch.zeros(2, 9, dtype=torch.long)
            outs.append(
                sample_window(
                    prior, inputs, prefix=prefix, length=prior.prior.length, generator=gens, top_k=16, decoders=pool
                ).tokens
            )
    assert torch.equal(outs[0], outs[1])


def test_a_pooled_decoder_serves_new_temperatures_and_nucleus_values_without_a_new_capture():
    prior = tiny_prior("upsampler_level_0")
    run, _ = conditioning(prior, 2)
    pool = DecoderPool(limit=2)
    with torch.no_grad():
        first = _window(prior, run, None, 9, seed=3, decoders=pool, temperature=0.9, top_p=0.8)
        decoder = next(iter(pool._decoders.values()))
        second = _window(prior, run, None, 9, seed=3, decoders=pool, temperature=0.5, top_p=0.3)
        fresh = _window(prior, run, None, 9, seed=3, temperature=0.5, top_p=0.3)
        assert next(iter(pool._decoders.values())) is decoder
        assert torch.equal(second.tokens, fresh.tokens) and not torch.equal(first.tokens, second.tokens)
        _window(prior, run, None, 9, seed=3, decoders=pool, top_k=5)  # top-k is a shape: a decoder of its own
        assert len(pool._decoders) == 2
        other = {k: (None if v is None else v[:1]) for k, v in run.items()}
        sample_window(
            prior,
            DecoderInputs(other["x_cond"], other["y_cond"], None),
            prefix=torch.zeros(1, 3, dtype=torch.long),
            length=prior.prior.length,
            decoders=pool,
        )
    assert len(pool._decoders) == 2  # the limit: the least recently used went


# -- the decoder uses a prior's public API only ---------------------------------------------------

PRIOR_API = frozenset({"prior", "empty_cache"})
MODEL_API = frozenset(
    {"compute_dtype", "length", "bins", "step", "forward_cached", "prefill_alignment", "project_encoder"}
)


class _PublicOnly:
    """Stands in for a module, letting through only the named attributes (and recording prefill passes)."""

    def __init__(self, target, names: frozenset[str], **replaced):
        self._target, self._names, self._replaced = target, names, replaced
        self.passes: list[tuple[int, int]] = []

    def __getattr__(self, name: str):
        if name not in self._names:
            raise AttributeError(f"the decoder reached past the public API: {name}")
        if name in self._replaced:
            return self._replaced[name]
        if name == "forward_cached":

            def forward_cached(inputs, *, start, **kw):
                self.passes.append((start, start + inputs.shape[1]))
                return self._target.forward_cached(inputs, start=start, **kw)

            return forward_cached
        return getattr(self._target, name)


def _decode(prior, inputs, prefix, chunk_size):
    decoder = WindowDecoder(prior, inputs, prefix.shape[0], DrawSettings(top_k=1), device=torch.device("cpu"))
    gens = [torch.Generator().manual_seed(i) for i in range(prefix.shape[0])]
    length = prior.prior.length
    return decoder.run(inputs, prefix, length, DrawSettings(top_k=1), generator=gens, chunk_size=chunk_size)


@pytest.mark.parametrize("name", ["upsampler_level_0", "prior_5b_lyrics", "prior_1b_lyrics"])
def test_the_window_decoder_samples_through_the_priors_public_api_alone(name):
    """A prior that answers only its public API samples the same window, and the first prefill pass ends
    where the model's `prefill_alignment` says (the cache-free path's whole blocks)."""
    prior = tiny_prior(name)
    run, encoder_kv = conditioning(prior, 2)
    inputs = DecoderInputs(run["x_cond"], run["y_cond"], encoder_kv)
    model = _PublicOnly(prior.prior, MODEL_API)
    public = _PublicOnly(prior, PRIOR_API, prior=model)
    align = prior.prior.prefill_alignment
    assert align == prior.prior.length // prior.config.prior.blocks  # one block of the block patterns
    for k in (0, align - 1, 2 * align + 3):
        prefix = torch.randint(0, prior.music_bins, (2, k), generator=torch.Generator().manual_seed(k))
        model.passes.clear()
        with torch.no_grad():
            tokens, _ = _decode(public, inputs, prefix, chunk_size=64)
            expected, _ = _decode(prior, inputs, prefix, chunk_size=64)
        assert torch.equal(tokens, expected)
        assert model.passes == prefill_chunks(k, 64, align)
        if k > align:
            assert model.passes[0] == (0, k - k % align)
