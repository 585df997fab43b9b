"""Sampling in bfloat16 / float16 with weights cast once at load (issue #7).

Greedy decoding in half precision must pick the fp32 path's tokens: every token it picks is the fp32
model's argmax on the same context, except where the fp32 top two are closer than half precision
resolves, and its logits stay within half-precision error of fp32 (relative Frobenius norm). A step
after the cast reads the weights as they are: it allocates no copy of them.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from jukebox_model import official
from jukebox_model.checkpoints import load_state_strict, model_state, read_checkpoint
from jukebox_model.config import LyricsMode
from jukebox_model.hparams import prior_config_from_hparams, vqvae_config_from_hparams
from jukebox_model.op_count import count_ops
from jukebox_model.prior import lyrics as lyr
from jukebox_model.prior.prior import Prior
from jukebox_model.sampling.precision import cast_for_inference, parse_dtype
from jukebox_model.sampling.window import sample_window
from jukebox_model.transformer.ops import Conv1D, LayerNorm
from tests.reference import discover, fixture_params

# (relative logits error, top-two margin below which a greedy pick may differ) per dtype: float16 keeps
# 11 significant bits, bfloat16 8; measured worst cases on the fixtures are about 1/3 of these.
TOLERANCE = {torch.float16: (1e-2, 0.05), torch.bfloat16: (4e-2, 0.2)}


def _load(fx, vqvae) -> Prior:
    prior = Prior(prior_config_from_hparams(fx.hparams()["hparams"], vqvae_levels=vqvae.levels), vqvae).eval()
    load_state_strict(prior, model_state(read_checkpoint(fx.checkpoint)), source=str(fx.checkpoint))
    return prior


@pytest.fixture(scope="module", params=fixture_params("prior"))
def pair(request):
    vqvae_fixtures = discover("vqvae")
    if not vqvae_fixtures:
        pytest.skip("the priors take their geometry from the VQ-VAE fixture, which is missing")
    vqvae = vqvae_config_from_hparams(vqvae_fixtures[0].hparams()["hparams"])
    return request.param, vqvae


def _inputs(prior: Prior, io):
    with torch.no_grad():
        cond = prior.get_cond(io["inputs"]["z_conds"], io["inputs"]["y"])
        return cond, prior.decoder_inputs(cond)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("mode", ["ancestral", "primed"])
def test_half_precision_greedy_picks_the_fp32_tokens(pair, dtype, mode):
    fx, vqvae = pair
    full, half = _load(fx, vqvae), cast_for_inference(_load(fx, vqvae), dtype)
    io = fx.io()
    ref = io["sampling"]
    cond, inputs = _inputs(half, io)
    prefix = io["inputs"]["z"][:, : ref["prime_length"]] if mode == "primed" else io["inputs"]["z"][:, :0]
    length = half.n_ctx
    if half.mode is LyricsMode.MERGED:
        prefix, length = lyr.merge_tokens(cond.lyrics, prefix, half.n_vocab), length + half.n_tokens
    out = sample_window(
        half, inputs, prefix=prefix, length=length, top_k=1, chunk_size=ref["chunk_size"], keep_logits=True
    )
    _, full_inputs = _inputs(full, io)
    with torch.no_grad():  # the fp32 model on the half run's own tokens
        expected = full.prior(
            out.tokens, x_cond=full_inputs.x_cond, y_cond=full_inputs.y_cond, encoder_kv=full_inputs.encoder_kv
        )
    rel_tol, margin_tol = TOLERANCE[dtype]
    rel = (out.logits - expected).norm() / expected.norm()
    assert rel < rel_tol, f"logits differ from fp32 by {rel:.4f} (relative)"
    new = slice(prefix.shape[1], length)
    top2 = expected[:, new].topk(2, dim=-1).values
    margin = top2[..., 0] - top2[..., 1]
    differs = out.tokens[:, new] != expected[:, new].argmax(dim=-1)
    assert not (differs & (margin > margin_tol)).any(), (
        f"greedy picks differ where fp32 is clear: margins {margin[differs].tolist()}"
    )


def test_cast_keeps_norms_in_float32_and_tied_weights_tied(pair):
    fx, vqvae = pair
    prior = cast_for_inference(_load(fx, vqvae), torch.bfloat16)
    assert all(m.weight.dtype == torch.float32 for m in prior.modules() if isinstance(m, LayerNorm))
    assert all(m.w.dtype == torch.bfloat16 for m in prior.modules() if isinstance(m, Conv1D))
    model = prior.prior
    if not prior.config.merged_decoder:
        assert model.x_out.weight is model.x_emb.weight
    assert model.compute_dtype == torch.bfloat16


def test_a_step_after_the_cast_allocates_no_copy_of_the_weights():
    """The 5b layout (float16 projections) sampled in bfloat16: uncast, every step would copy every weight."""
    c = official.PRIORS["prior_5b"]
    config = dataclasses.replace(c, n_ctx=64, prior=dataclasses.replace(c.prior, width=64, depth=6, blocks=4))
    prior = Prior(config, official.VQVAE).eval()
    assert any(m.w.dtype == torch.float16 for m in prior.modules() if isinstance(m, Conv1D))
    projections = sum(m.w.numel() for m in prior.prior.modules() if isinstance(m, Conv1D))

    def step_bytes(p: Prior) -> int:
        model = p.prior
        dtype = torch.bfloat16
        cache = p.empty_cache(1, dtype=dtype)
        x_cond = torch.zeros(1, model.length, config.prior.width, dtype=dtype)
        y_cond = torch.zeros(1, 1, config.prior.width, dtype=dtype)
        with torch.no_grad():
            counts = count_ops(
                model.step,
                torch.zeros(1, 1, dtype=torch.long),
                torch.tensor(5),
                cache=cache,
                x_cond=x_cond,
                y_cond=y_cond,
            )
        return counts.bytes_by_op["_to_copy"]

    assert step_bytes(prior) >= 4 * projections  # uncast: a float32 copy of every projection, every step
    assert step_bytes(cast_for_inference(prior, torch.bfloat16)) < 4 * projections / 20


def test_precision_names_are_checked():
    assert parse_dtype("bf16") is torch.bfloat16 and parse_dtype("float32") is torch.float32
    with pytest.raises(ValueError, match="precision must be one of"):
        parse_dtype("int8")
