"""Each tiny reference prior's teacher-forced outputs are reproduced from its checkpoint (fixture README tolerances)."""

from __future__ import annotations

import pytest
import torch

from jukebox_model.checkpoints import load_state_strict, model_state, read_checkpoint
from jukebox_model.config import LyricsMode
from jukebox_model.hparams import prior_config_from_hparams, vqvae_config_from_hparams
from jukebox_model.prior.lyrics import merge_tokens
from jukebox_model.prior.prior import Prior
from tests.reference import discover, fixture_params

TOL = dict(atol=1e-4, rtol=1e-4)
LOSS_RTOL = 1e-4


@pytest.fixture(scope="module", params=fixture_params("prior"))
def case(request):
    fx = request.param
    vqvae_fixtures = discover("vqvae")
    if not vqvae_fixtures:
        pytest.skip("the priors take their geometry from the VQ-VAE fixture, which is missing")
    vqvae = vqvae_config_from_hparams(vqvae_fixtures[0].hparams()["hparams"])
    config = prior_config_from_hparams(fx.hparams()["hparams"], vqvae_levels=vqvae.levels)
    prior = Prior(config, vqvae).eval()
    load_state_strict(prior, model_state(read_checkpoint(fx.checkpoint)), source=str(fx.checkpoint))
    io = fx.io()
    inputs = io["inputs"]
    with torch.no_grad():
        out = prior(inputs["z"], inputs["z_conds"], inputs["y"], with_alignment=config.alignment_layer is not None)
    return prior, io, out


def test_conditioning_matches(case):
    _, io, out = case
    torch.testing.assert_close(out.x_cond, io["outputs"]["x_cond"], **TOL)
    torch.testing.assert_close(out.y_cond, io["outputs"]["y_cond"], **TOL)


def test_logits_match(case):
    _, io, out = case
    ref = io["outputs"]
    torch.testing.assert_close(out.logits, ref["logits"], **TOL)
    torch.testing.assert_close(out.music_logits, ref["music_logits"], **TOL)
    if "lyric_logits" in ref:
        torch.testing.assert_close(out.lyric_logits, ref["lyric_logits"], **TOL)


def test_lyrics_encoder_states_match(case):
    _, io, out = case
    if "encoder_kv" not in io["outputs"]:
        pytest.skip("this prior has no lyrics encoder")
    torch.testing.assert_close(out.encoder_kv, io["outputs"]["encoder_kv"], **TOL)


def test_per_item_losses_match(case):
    _, io, out = case
    ref = io["outputs"]
    for name in ("loss", "gen_loss", "prime_loss", "bpd"):
        torch.testing.assert_close(getattr(out, name), ref[f"{name}_per_item"], rtol=LOSS_RTOL, atol=1e-6)


def test_batched_call_equals_per_item_and_the_reference_batch(case):
    prior, io, out = case
    inputs, ref = io["inputs"], io["outputs"]
    for i in range(inputs["z"].shape[0]):
        with torch.no_grad():
            one = prior(inputs["z"][i : i + 1], [c[i : i + 1] for c in inputs["z_conds"]], inputs["y"][i : i + 1])
        torch.testing.assert_close(one.logits, out.logits[i : i + 1], **TOL)
        torch.testing.assert_close(one.loss, out.loss[i : i + 1], rtol=LOSS_RTOL, atol=1e-6)
    if ref.get("batched_call_works"):
        for name in ("loss", "gen_loss", "prime_loss", "bpd"):
            torch.testing.assert_close(getattr(out, name).mean(), ref[name], rtol=LOSS_RTOL, atol=1e-6)


def test_alignment_attention_matches(case):
    _, io, out = case
    if "alignment_attn" not in io["outputs"]:
        pytest.skip("this prior has no lyrics alignment")
    torch.testing.assert_close(out.alignment, io["outputs"]["alignment_attn"], **TOL)


def test_layer_pattern_matches_the_reference(case):
    prior, io, _ = case
    assert [int(t) for t in prior.prior.transformer.pattern] == list(io["meta"]["attn_funcs"])
    if io["meta"].get("prime_attn_funcs"):
        assert [int(t) for t in prior.prime_prior.transformer.pattern] == list(io["meta"]["prime_attn_funcs"])
    block_ctx = {m.attn.block_ctx for m in prior.prior.transformer.layers}
    assert block_ctx == {io["meta"]["block_ctx"]}
    if io["meta"].get("prime_attn_key_length"):
        assert {m.attn.prime_len for m in prior.prior.transformer.layers} == {io["meta"]["prime_attn_key_length"]}


def test_chunked_cached_passes_reproduce_the_teacher_forced_logits(case):
    """Prefill the primed part in the reference sampler's chunks, then one position at a time (spec §4.2)."""
    prior, io, out = case
    inputs, sampling = io["inputs"], io["sampling"]
    z = inputs["z"]
    with torch.no_grad():
        cond = prior.get_cond(inputs["z_conds"], inputs["y"])
        dec = prior.decoder_inputs(cond)
        merged = prior.mode is LyricsMode.MERGED
        tokens = merge_tokens(cond.lyrics, z, prior.n_vocab) if merged else z
        fed = tokens.roll(1, dims=1)  # position p is fed token p - 1 (position 0: the start embedding)
        primed = sampling["prime_length"] + (prior.n_tokens if merged else 0)
        chunk = sampling["chunk_size"]
        sizes = [min(chunk, primed - s) for s in range(0, primed, chunk)] + [1] * (tokens.shape[1] - primed)
        cache, logits, start = prior.empty_cache(z.shape[0]), [], 0
        for size in sizes:
            logits.append(
                prior.prior.forward_cached(
                    fed[:, start : start + size],
                    start=start,
                    cache=cache,
                    x_cond=dec.x_cond,
                    y_cond=dec.y_cond,
                    encoder_kv=dec.encoder_kv,
                )
            )
            start += size
    torch.testing.assert_close(torch.cat(logits, dim=1), out.logits, atol=1e-5, rtol=1e-5)


def test_bad_inputs_are_clear_errors(case):
    prior, io, _ = case
    z, z_conds, y = io["inputs"]["z"], io["inputs"]["z_conds"], io["inputs"]["y"]
    with pytest.raises(ValueError, match="label rows"):
        prior(z, z_conds, None)
    with pytest.raises(ValueError, match="label rows must be"):
        prior(z, z_conds, y[:, :-1])
    with pytest.raises(ValueError, match="codes must lie in"):
        prior(z + prior.music_bins, z_conds, y)
    if z_conds:
        with pytest.raises(ValueError, match="upper-level codes"):
            prior(z, [c[:, :-1] for c in z_conds], y)
    if prior.config.alignment_layer is None:
        with pytest.raises(ValueError, match="no lyrics alignment"):
            prior(z, z_conds, y, with_alignment=True)
