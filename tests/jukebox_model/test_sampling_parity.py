"""Cached window sampling reproduces the reference's greedy samples and step logits for every tiny prior,
and honours seeds, progress and cancellation."""

from __future__ import annotations

import threading

import pytest
import torch

from jukebox_model.checkpoints import load_state_strict, model_state, read_checkpoint
from jukebox_model.config import LyricsMode
from jukebox_model.hparams import prior_config_from_hparams, vqvae_config_from_hparams
from jukebox_model.prior import lyrics as lyr
from jukebox_model.prior.prior import Prior
from jukebox_model.sampling.window import sample_window
from tests.reference import discover, fixture_params

LOGITS_TOL = dict(atol=1e-4, rtol=1e-4)
TIE_MARGIN = 1e-5  # a greedy pick may legitimately flip only where the top two logits are this close


@pytest.fixture(scope="module", params=fixture_params("prior"))
def case(request):
    fx = request.param
    vqvae_fixtures = discover("vqvae")
    if not vqvae_fixtures:
        pytest.skip("the priors take their geometry from the VQ-VAE fixture, which is missing")
    vqvae = vqvae_config_from_hparams(vqvae_fixtures[0].hparams()["hparams"])
    prior = Prior(prior_config_from_hparams(fx.hparams()["hparams"], vqvae_levels=vqvae.levels), vqvae).eval()
    load_state_strict(prior, model_state(read_checkpoint(fx.checkpoint)), source=str(fx.checkpoint))
    io = fx.io()
    cond = prior.get_cond(io["inputs"]["z_conds"], io["inputs"]["y"])
    return prior, io, cond, prior.decoder_inputs(cond)


def _sample(prior, cond, inputs, prefix, **kw):
    """Music prefix -> music codes, handling the merged layout's lyric prime and vocabulary shift."""
    length = prior.n_ctx
    if prior.mode is LyricsMode.MERGED:
        prefix, length = lyr.merge_tokens(cond.lyrics, prefix, prior.n_vocab), length + prior.n_tokens
    out = sample_window(prior, inputs, prefix=prefix, length=length, **kw)
    codes = (
        lyr.music_codes(out.tokens, prior.n_tokens, prior.n_vocab) if prior.mode is LyricsMode.MERGED else out.tokens
    )
    return codes, out


@pytest.mark.parametrize("mode", ["ancestral", "primed"])
def test_greedy_tokens_and_step_logits_match_the_reference(case, mode):
    prior, io, cond, inputs = case
    ref = io["sampling"]
    prefix = io["inputs"]["z"][:, : ref["prime_length"]] if mode == "primed" else io["inputs"]["z"][:, :0]
    codes, out = _sample(
        prior,
        cond,
        inputs,
        prefix,
        top_k=ref["top_k"],
        temperature=ref["temp"],
        chunk_size=ref["chunk_size"],
        keep_logits=True,
    )
    expected, margins = ref[f"{mode}_tokens"], ref[f"{mode}_argmax_margin"]
    offset = out.tokens.shape[1] - codes.shape[1]  # lyric positions in front (merged layout)
    for item in range(codes.shape[0]):
        differ = (codes[item] != expected[item]).nonzero()
        stop = int(differ[0]) if len(differ) else codes.shape[1]
        if stop < codes.shape[1]:
            assert margins[item, offset + stop] < TIE_MARGIN, (
                f"item {item} diverges at {stop} with margin {margins[item, offset + stop]}"
            )
        torch.testing.assert_close(
            out.logits[item, : offset + stop], ref[f"{mode}_step_logits"][item, : offset + stop], **LOGITS_TOL
        )


def test_cached_sampling_is_seeded_and_reports_progress(case):
    prior, io, cond, inputs = case
    prefix = io["inputs"]["z"][:, :4]
    seen = []
    a, _ = _sample(
        prior,
        cond,
        inputs,
        prefix,
        generator=torch.Generator().manual_seed(7),
        on_token=lambda d, t: seen.append((d, t)),
    )
    b, _ = _sample(prior, cond, inputs, prefix, generator=torch.Generator().manual_seed(7))
    c, _ = _sample(prior, cond, inputs, prefix, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[:, :4], prefix)
    total = seen[-1][1]
    assert seen == [(i, total) for i in range(1, total + 1)]


def test_cancelling_returns_the_tokens_sampled_so_far(case):
    prior, io, cond, inputs = case
    stop = threading.Event()

    def on_token(done, total):
        if done == 3:
            stop.set()

    prefix = io["inputs"]["z"][:, :5]
    _, out = _sample(prior, cond, inputs, prefix, on_token=on_token, cancel=stop)
    lyric_prime = prior.n_tokens if prior.mode is LyricsMode.MERGED else 0
    assert out.cancelled
    assert out.tokens.shape[1] == lyric_prime + prefix.shape[1] + 3


def test_bad_lengths_are_rejected(case):
    prior, io, _, inputs = case
    with pytest.raises(ValueError, match="cannot extend"):
        sample_window(prior, inputs, prefix=io["inputs"]["z"][:, :4], length=2)
