"""Inference loading assigns the checkpoint's tensors instead of copying them (issue #23): still strict,
equal to the file, tied weights one tensor, legacy files too, and the priors sample as copy-loaded ones do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from jukebox_model.api import SamplingParams
from jukebox_model.bundle import load_checkpoint_bundle, materialise_prior
from jukebox_model.checkpoints import (
    CheckpointMismatchError,
    load_state_strict,
    load_vqvae,
    model_state,
    read_checkpoint,
)
from jukebox_model.hparams import prior_config_from_hparams
from jukebox_model.labels import Labeller
from jukebox_model.prior.prior import Prior
from jukebox_model.sampling.precision import cast_for_inference
from jukebox_model.sampling.sampler import LevelModel, Sampler
from tests.reference import discover, reference_dir

GREEDY = SamplingParams(top_k=1, temperature=(1.0, 1.0, 1.0), hop_fraction=(0.5, 0.5, 0.5), chunk_size=16, seed=0)
SONGS = [("Alan Jackson", "Country", "Hello world, a short song " * 8)]


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3)
        self.register_buffer("k", torch.zeros(4, 2))


def _fixtures():
    vq, priors = discover("vqvae"), discover("prior")
    if not vq or not priors:
        pytest.skip("the reference fixtures (VQ-VAE and priors) are missing")
    return vq[0], priors


def _resaved(path: Path, folder: Path, fmt: str) -> Path:
    """The same checkpoint in the zip format or the legacy (pre-1.6, 2020 release) one."""
    out = folder / f"{fmt}_{path.name}"
    torch.save(read_checkpoint(path), out, _use_new_zipfile_serialization=fmt == "zip")
    return out


def _copy_loaded(path: Path, vqvae) -> Prior:
    """A prior loaded the copying way (built with its init, then filled), to compare against."""
    config = prior_config_from_hparams(read_checkpoint(path)["hps"], vqvae_levels=vqvae.config.levels)
    prior = Prior(config, vqvae.config).eval()
    load_state_strict(prior, model_state(read_checkpoint(path)), source=str(path))
    return prior


def _assign_loaded(path: Path, vqvae, **kw) -> Prior:
    checkpoint = read_checkpoint(path)
    config = prior_config_from_hparams(checkpoint["hps"], vqvae_levels=vqvae.config.levels)
    state = model_state(checkpoint)
    del checkpoint
    return materialise_prior(config, vqvae, state, device="cpu", source=str(path), **kw)


def test_a_prior_file_with_a_key_too_many_or_too_few_is_refused_by_name():
    vq_fx, priors = _fixtures()
    vqvae = load_vqvae(vq_fx.checkpoint)
    checkpoint = read_checkpoint(priors[0].checkpoint)
    config = prior_config_from_hparams(checkpoint["hps"], vqvae_levels=vqvae.config.levels)
    state = model_state(checkpoint)
    dropped = sorted(state)[0]
    del state[dropped]
    state["not.a.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match=rf"1 missing: {dropped}.*1 unexpected: not\.a\.weight"):
        materialise_prior(config, vqvae, state, device="cpu", source="p.pth.tar")


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_loaded_weights_equal_the_files_in_either_format(tmp_path, fmt):
    vq_fx, priors = _fixtures()
    vq_path = _resaved(vq_fx.checkpoint, tmp_path, fmt)
    vqvae = load_vqvae(vq_path)
    for name, tensor in model_state(read_checkpoint(vq_path)).items():
        assert torch.equal(vqvae.state_dict()[name], tensor), name
    for fx in priors:
        path = _resaved(fx.checkpoint, tmp_path, fmt)
        prior = _assign_loaded(path, vqvae)
        expected = model_state(read_checkpoint(path))
        loaded = prior.state_dict()
        assert set(loaded) == set(expected)
        for name, tensor in expected.items():
            assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
        assert not any(t.is_meta for t in (*prior.parameters(), *prior.buffers()))


def test_tied_output_head_is_the_embedding_tensor():
    vq_fx, priors = _fixtures()
    vqvae = load_vqvae(vq_fx.checkpoint)
    tied = [fx for fx in priors if not _copy_loaded(fx.checkpoint, vqvae).config.merged_decoder]
    if not tied:
        pytest.skip("no fixture prior with a separate (tied) output head")
    for fx in tied:
        model = _assign_loaded(fx.checkpoint, vqvae).prior
        assert model.x_out.weight is model.x_emb.weight


def _file_mappings(path: Path) -> list[tuple[int, int]]:
    spans = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == str(path):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            spans.append((start, end))
    return spans


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc to see mappings")
def test_zip_weights_in_the_target_dtype_are_the_files_pages_not_a_copy(tmp_path):
    vq_fx, priors = _fixtures()
    vqvae = load_vqvae(vq_fx.checkpoint)
    path = _resaved(priors[0].checkpoint, tmp_path, "zip").resolve()
    prior = _assign_loaded(path, vqvae)
    spans = _file_mappings(path)
    assert spans, "the zip checkpoint should be memory-mapped"
    for name, p in prior.named_parameters():
        assert any(lo <= p.data_ptr() < hi for lo, hi in spans), f"{name} was copied out of the file"


def test_loading_in_an_inference_dtype_equals_casting_after_loading():
    vq_fx, priors = _fixtures()
    vqvae = load_vqvae(vq_fx.checkpoint)
    for fx in priors:
        loaded = _assign_loaded(fx.checkpoint, vqvae, dtype=torch.bfloat16).state_dict()
        cast = cast_for_inference(_copy_loaded(fx.checkpoint, vqvae), torch.bfloat16).state_dict()
        for name, tensor in cast.items():
            assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name


def test_an_assign_loaded_legacy_bundle_samples_exactly_as_a_copy_loaded_one(tmp_path):
    vq_fx, priors = _fixtures()
    ups = [fx for fx in priors if fx.base_set.startswith("upsampler_level_")]
    top = [fx for fx in priors if fx not in ups]
    files = [_resaved(fx.checkpoint, tmp_path, "legacy") for fx in [top[0], *ups]]
    assigned = load_checkpoint_bundle(
        _resaved(vq_fx.checkpoint, tmp_path, "legacy"), files, ids_dir=reference_dir() / "ids"
    )
    vqvae = load_vqvae(vq_fx.checkpoint)
    copied = {}
    for path in files:
        prior = _copy_loaded(path, vqvae)
        c = prior.config
        labeller = Labeller.for_prior(
            c.labels,
            reference_dir() / "ids",
            n_ctx=c.n_ctx,
            hop_length=vqvae.hop_lengths[c.level],
            check_timing=c.is_top,
        )
        copied[c.level] = LevelModel(prior, labeller)
    top_level = max(copied)
    n_samples = 32 * vqvae.hop_lengths[top_level]
    runs = []
    for sampler in (assigned, Sampler(vqvae, copied)):
        empty = [torch.zeros(1, 0, dtype=torch.long) for _ in range(3)]
        runs.append(
            sampler.sample(
                empty, n_samples=n_samples, songs=SONGS, total_length=60 * 44100, levels=[top_level], params=GREEDY
            ).zs[top_level]
        )
    assert runs[0].shape[1] == 32 and torch.equal(runs[0], runs[1])
