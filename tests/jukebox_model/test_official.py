"""The official configs, written as data in official.py, equal what the reference assembles."""

from __future__ import annotations

import pytest

from jukebox_model import official
from jukebox_model.hparams import (
    prior_config_from_hparams,
    prior_config_to_hparams,
    vqvae_config_from_hparams,
    vqvae_config_to_hparams,
)
from tests.reference import manifest


def test_manifest_lists_exactly_the_official_models():
    assert set(manifest()["models"]) == set(official.OFFICIAL_MODELS)


@pytest.mark.parametrize("name", list(official.VQVAES))
def test_official_vqvae_config_equals_reference_hparams(name):
    hps = manifest()["models"][name]["hparams"]
    assert vqvae_config_from_hparams(hps) == official.VQVAES[name]


@pytest.mark.parametrize("name", list(official.PRIORS))
def test_official_prior_config_equals_reference_hparams(name):
    hps = manifest()["models"][name]["hparams"]
    assert prior_config_from_hparams(hps) == official.PRIORS[name]


@pytest.mark.parametrize("name", list(official.PRIORS))
def test_prior_config_survives_hparams_round_trip(name):
    config = official.PRIORS[name]
    assert prior_config_from_hparams(prior_config_to_hparams(config)) == config


def test_vqvae_config_survives_hparams_round_trip():
    assert vqvae_config_from_hparams(vqvae_config_to_hparams(official.VQVAE)) == official.VQVAE


@pytest.mark.parametrize("name", list(official.CHECKPOINT_PATHS))
def test_checkpoint_paths_match_manifest(name):
    assert official.CHECKPOINT_PATHS[name] == manifest()["models"][name]["checkpoint_url_path"]


def test_official_vqvae_hops_are_8_32_128_samples():
    # Derived from downs_t/strides_t; the spec states the hops (spec §1.3).
    cfg = official.VQVAE
    assert cfg.hop_lengths == tuple(
        s**d * (cfg.hop_lengths[i - 1] if i else 1) for i, (s, d) in enumerate(zip(cfg.strides_t, cfg.downs_t))
    )
    assert cfg.hop_lengths == (8, 32, 128)


def test_config_rejects_inconsistent_levels():
    import dataclasses

    with pytest.raises(ValueError, match="downs_t"):
        dataclasses.replace(official.VQVAE, downs_t=(3, 2))


def test_missing_hparam_names_the_key():
    hps = dict(manifest()["models"]["vqvae"]["hparams"])
    del hps["emb_width"]
    with pytest.raises(KeyError, match="emb_width"):
        vqvae_config_from_hparams(hps)
