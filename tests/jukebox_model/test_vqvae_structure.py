"""VQ-VAE structure: reference key layout, dilation order, shapes per level and input checks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from jukebox_model import official
from jukebox_model.vqvae import VQVAE
from jukebox_model.vqvae.resnet import Resnet1D
from tests.manifest_check import assert_matches_manifest
from tests.reference import manifest

SMALL = dataclasses.replace(official.VQVAE, width=8, depth=2, emb_width=8, l_bins=16)


def _dilations(resnet: Resnet1D) -> list[int]:
    return [block.model[1].dilation[0] for block in resnet.model]


def test_meta_build_of_official_vqvae_matches_manifest():
    with torch.device("meta"):
        model = VQVAE(official.VQVAE)
    assert_matches_manifest(model, manifest()["models"]["vqvae"])


def test_encoder_dilations_grow_and_decoder_dilations_are_reversed():
    with torch.device("meta"):
        model = VQVAE(official.VQVAE)
    cfg = official.VQVAE
    for level in range(cfg.levels):
        growing = [cfg.dilation_growth_rate**d for d in range(cfg.level_depth(level))]
        for j in range(level + 1):
            encoder_block = model.encoders[level].level_blocks[j]
            decoder_block = model.decoders[level].level_blocks[j]
            for i in range(cfg.downs_t[j]):
                assert _dilations(encoder_block.model[i][1]) == growing
                decoded = _dilations(decoder_block.model[i + 1][0])
                assert decoded == growing[::-1] and decoded[0] == max(growing)  # index 0 holds the largest


def test_codes_and_audio_have_the_per_level_shapes():
    torch.manual_seed(0)
    model = VQVAE(SMALL).eval()
    t = 4 * SMALL.hop_lengths[-1]
    x = torch.rand(3, t, 1) * 2 - 1
    with torch.no_grad():
        zs = model.encode(x)
        assert [z.shape for z in zs] == [(3, t // hop) for hop in SMALL.hop_lengths]
        assert all(z.dtype == torch.int64 and int(z.max()) < SMALL.l_bins for z in zs)
        for level in range(SMALL.levels):
            assert model.decode(zs[level:], start_level=level).shape == (3, t, 1)


@pytest.mark.parametrize(("batch", "n_hops"), [(1, 1), (1, 3), (2, 5)])
def test_encode_decode_round_trip_for_any_batch_and_multiple_of_the_top_hop(batch, n_hops):
    torch.manual_seed(1)
    model = VQVAE(SMALL)
    for block in model.bottleneck.level_blocks:  # a random codebook, so that codes are not all tied at zero
        block.k.normal_()
    model.eval()
    t = n_hops * SMALL.hop_lengths[-1]
    x = torch.rand(batch, t, 1) * 2 - 1
    with torch.no_grad():
        zs = model.encode(x)
        assert [z.shape for z in zs] == [(batch, t // hop) for hop in SMALL.hop_lengths]
        for level in range(SMALL.levels):
            expected = model.decoders[level](model.bottleneck.level_blocks[level].decode(zs[level])).permute(0, 2, 1)
            decoded = model.decode(zs[level:], start_level=level)
            assert decoded.shape == (batch, t, 1) and torch.isfinite(decoded).all()
            torch.testing.assert_close(decoded, expected)
            torch.testing.assert_close(model.decode([zs[level]], start_level=level, end_level=level + 1), expected)


def test_encode_a_subset_of_levels():
    model = VQVAE(SMALL).eval()
    x = torch.zeros(1, 2 * SMALL.hop_lengths[-1], 1)
    with torch.no_grad():
        full = model.encode(x)
        top = model.encode(x, start_level=2)
    assert len(top) == 1 and torch.equal(top[0], full[2])


@pytest.mark.parametrize("shape", [(2, 512), (2, 512, 2), (512,)])
def test_wrong_input_shapes_are_rejected_with_a_clear_error(shape):
    model = VQVAE(SMALL)
    with pytest.raises(ValueError, match=r"\(N, T, 1\)"):
        model.encode(torch.zeros(shape))


def test_integer_audio_is_rejected():
    with pytest.raises(ValueError, match="floating point"):
        VQVAE(SMALL).encode(torch.zeros(1, 512, 1, dtype=torch.int16))


def test_out_of_range_levels_are_rejected():
    model = VQVAE(SMALL)
    with pytest.raises(ValueError, match="levels"):
        model.encode(torch.zeros(1, 512, 1), start_level=3)


def test_checkpointed_resnet_layout_names_blocks_and_computes_the_same():
    torch.manual_seed(0)
    plain = Resnet1D(6, 3, dilation_growth_rate=3, dilation_cycle=2)
    checkpointed = Resnet1D(6, 3, dilation_growth_rate=3, dilation_cycle=2, checkpoint_res=1)
    state = {k.replace("model.", "blocks.", 1): v for k, v in plain.state_dict().items()}
    checkpointed.load_state_dict(state)
    assert all(k.startswith("blocks.") for k in checkpointed.state_dict())
    x = torch.randn(2, 6, 40, requires_grad=True)
    checkpointed.train()
    torch.testing.assert_close(checkpointed(x), plain(x))
    assert [b.model[1].dilation[0] for b in checkpointed.blocks] == [1, 3, 1]
