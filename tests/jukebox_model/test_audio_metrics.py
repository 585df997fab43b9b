"""Evaluation metrics: the multi-resolution STFT distance and spectral flatness behave as stated."""

import math

import pytest
import torch

from jukebox_model.audio_metrics import multi_resolution_stft_distance, rms, spectral_convergence_mr, spectral_flatness

SR = 44100


def _tone(seconds=2.0, freqs=(440.0, 660.0)):
    t = torch.arange(int(seconds * SR)) / SR
    return sum(0.2 * torch.sin(2 * math.pi * f * t) for f in freqs)[None]


def _noise(seconds=2.0, seed=0):
    return 0.1 * torch.randn(1, int(seconds * SR), generator=torch.Generator().manual_seed(seed))


def test_mr_stft_distance_zero_for_identical_and_grows_with_difference():
    tone = _tone()
    assert multi_resolution_stft_distance(tone, tone).item() == pytest.approx(0.0, abs=1e-6)
    near = multi_resolution_stft_distance(tone, 0.95 * tone).item()
    far = multi_resolution_stft_distance(tone, _noise()).item()
    assert 0 < near < far
    assert spectral_convergence_mr(tone, 0.5 * tone).item() == pytest.approx(0.5, rel=1e-4)
    with pytest.raises(ValueError):
        multi_resolution_stft_distance(tone, tone[:, :-1])


def test_shapes_accepted_per_item():
    x = torch.stack([_tone()[0], _noise()[0]])  # (2, T)
    assert multi_resolution_stft_distance(x[:, :, None], x[:, :, None]).shape == (2,)
    assert rms(x).shape == (2,)


def test_spectral_flatness_white_noise_near_exp_minus_gamma_and_tones_far_below():
    noise = spectral_flatness(_noise()).item()
    assert noise == pytest.approx(math.exp(-0.5772), abs=0.03)
    assert spectral_flatness(_tone()).item() < 0.01 * noise
    assert spectral_flatness(torch.zeros(1, SR)).item() == 1.0  # silence counts as flat, never as music
