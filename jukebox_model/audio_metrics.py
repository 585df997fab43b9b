"""Evaluation metrics for audio: multi-resolution STFT distance and spectral flatness.

These are for model cards and tests, not training losses (those are in vqvae/losses.py, whose
`spectral_convergence` uses the reference's single STFT and is reused here per resolution).

Multi-resolution STFT distance, as in Parallel WaveGAN (Yamamoto et al. 2020): for each of three
STFT resolutions, spectral convergence ‖|S| − |Ŝ|‖_F / ‖|S|‖_F plus the mean absolute difference of
log magnitudes, averaged over the resolutions. 0 for identical signals; larger is worse.

Spectral flatness (Wiener entropy): per STFT frame the geometric over the arithmetic mean of the
power spectrum, averaged over frames. White noise gives about e^-γ ≈ 0.56 (its per-bin power is
exponentially distributed); tonal music is far lower; digital silence is undefined, reported as 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .vqvae.losses import stft_magnitude

# (n_fft, hop, window) per resolution
MR_STFT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))
_LOG_EPS = 1e-5


def _as_batch(x: Tensor) -> Tensor:
    """(T,), (N, T) or (N, T, 1) -> (N, T) float32."""
    x = x.float()
    if x.dim() == 3:
        x = x.mean(dim=-1)
    if x.dim() == 1:
        x = x[None]
    return x


def multi_resolution_stft_distance(x: Tensor, x_hat: Tensor, resolutions=MR_STFT_RESOLUTIONS) -> Tensor:
    """Per item (N,): mean over resolutions of spectral convergence + mean |log|S| − log|Ŝ||."""
    x, x_hat = _as_batch(x), _as_batch(x_hat)
    if x.shape != x_hat.shape:
        raise ValueError(f"signals must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    total = x.new_zeros(x.shape[0])
    for n_fft, hop, window in resolutions:
        s, s_hat = stft_magnitude(x, n_fft, hop, window), stft_magnitude(x_hat, n_fft, hop, window)
        sc = (s - s_hat).flatten(1).norm(dim=1) / s.flatten(1).norm(dim=1).clamp(min=1e-8)
        log_mag = (torch.log(s + _LOG_EPS) - torch.log(s_hat + _LOG_EPS)).abs().flatten(1).mean(dim=1)
        total = total + sc + log_mag
    return total / len(resolutions)


def spectral_convergence_mr(x: Tensor, x_hat: Tensor, resolutions=MR_STFT_RESOLUTIONS) -> Tensor:
    """Per item (N,): spectral convergence alone, averaged over the resolutions."""
    x, x_hat = _as_batch(x), _as_batch(x_hat)
    out = x.new_zeros(x.shape[0])
    for n_fft, hop, window in resolutions:
        s, s_hat = stft_magnitude(x, n_fft, hop, window), stft_magnitude(x_hat, n_fft, hop, window)
        out = out + (s - s_hat).flatten(1).norm(dim=1) / s.flatten(1).norm(dim=1).clamp(min=1e-8)
    return out / len(resolutions)


def spectral_flatness(x: Tensor, n_fft: int = 2048, hop: int = 512) -> Tensor:
    """Per item (N,): mean over frames of geometric / arithmetic mean of the power spectrum."""
    x = _as_batch(x)
    power = stft_magnitude(x, n_fft, hop, n_fft).pow(2)  # (N, F, frames)
    arith = power.mean(dim=1)
    geo = torch.exp(torch.log(power + 1e-12).mean(dim=1))
    flat = torch.where(arith > 1e-10, geo / arith.clamp(min=1e-20), torch.ones_like(arith))
    return flat.mean(dim=-1)


def rms(x: Tensor) -> Tensor:
    """Per item (N,) root-mean-square level."""
    return _as_batch(x).pow(2).mean(dim=-1).sqrt()
