"""The tiny reference VQ-VAE's outputs are reproduced from its checkpoint (fixture README tolerances)."""

from __future__ import annotations

import pytest
import torch

from jukebox_model.checkpoints import load_vqvae
from jukebox_model.hparams import vqvae_config_from_hparams
from tests.reference import fixture_params

ATOL, RTOL = 1e-5, 1e-4  # float32 agreement for tensors
LOSS_RTOL, SPECTRAL_RTOL = 1e-4, 1e-3
TIE_MARGIN = 1e-4  # a code may legitimately differ only where the two nearest codes are this close


@pytest.fixture(scope="module", params=fixture_params("vqvae"))
def case(request):
    fx = request.param
    model = load_vqvae(fx.checkpoint, config=vqvae_config_from_hparams(fx.hparams()["hparams"]))
    return model, fx.io()


def _close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    scale = ref.abs().max().item()
    torch.testing.assert_close(ours, ref, atol=ATOL + RTOL * scale, rtol=0)


def test_codes_are_identical_except_at_true_ties(case):
    model, io = case
    with torch.no_grad():
        zs = model.encode(io["x"])
    for level, (ours, ref) in enumerate(zip(zs, io["zs"])):
        assert ours.dtype == torch.int64 and ours.shape == ref.shape
        differ = ours != ref
        margins = io["helper"]["quantiser_margin"][level][differ]
        assert (margins < TIE_MARGIN).all(), f"level {level}: {int(differ.sum())} codes differ at margins {margins}"


def test_encoder_outputs_match_per_level(case):
    model, io = case
    with torch.no_grad():
        for level, ref in enumerate(io["encoder_out"]):
            _close(model.encoders[level](io["x"].permute(0, 2, 1)), ref)


def test_dequantised_vectors_match_per_level(case):
    model, io = case
    with torch.no_grad():
        for level, ref in enumerate(io["dequantised"]):
            _close(model.bottleneck.level_blocks[level].decode(io["zs"][level]), ref)


def test_decoded_audio_matches_per_level(case):
    model, io = case
    with torch.no_grad():
        for level, ref in enumerate(io["decoded"]):
            _close(model.decode(io["zs"][level:], start_level=level), ref)


def test_forward_losses_and_metrics_match(case):
    model, io = case
    with torch.no_grad():
        out = model(io["x"], bandwidth=io["meta"]["bandwidth"], loss_fn=io["meta"]["loss_fn"])
    ref = io["forward"]
    _close(out.x_out, ref["x_out"])
    torch.testing.assert_close(out.loss, ref["loss"], rtol=LOSS_RTOL, atol=0)
    assert set(ref["metrics"]) <= set(out.metrics)
    for name, value in ref["metrics"].items():
        rtol = SPECTRAL_RTOL if "spectral" in name else LOSS_RTOL
        torch.testing.assert_close(out.metrics[name], value, rtol=rtol, atol=1e-7, msg=lambda m, n=name: f"{n}: {m}")


def test_eval_commit_loss_per_level_matches(case):
    model, io = case
    with torch.no_grad():
        quantised = model.bottleneck([enc(io["x"].permute(0, 2, 1)) for enc in model.encoders])
    for q, ref in zip(quantised, io["forward"]["commit_loss_per_level"]):
        torch.testing.assert_close(q.commit_loss, ref, rtol=LOSS_RTOL, atol=0)


def test_batch_items_encode_independently(case):
    model, io = case
    with torch.no_grad():
        whole = model.encode(io["x"])
        single = model.encode(io["x"][1:2])
    for a, b in zip(whole, single):
        assert torch.equal(a[1:2], b)


def _relative_error(ours: torch.Tensor, target: torch.Tensor) -> float:
    return float((ours - target).norm() / target.norm())


def test_shorter_single_item_round_trip_reconstructs_as_well_as_the_reference(case):
    """One item at half the length rebuilds from level 0 about as well as the reference's full input did."""
    model, io = case
    hop = model.hop_lengths[-1]
    n = (io["x"].shape[1] // 2) // hop * hop
    x = io["x"][-1:, :n]
    with torch.no_grad():
        x_out = model.decode(model.encode(x))
    assert x_out.shape == x.shape
    assert _relative_error(x_out, x) < 1.25 * _relative_error(io["decoded"][0], io["x"])
