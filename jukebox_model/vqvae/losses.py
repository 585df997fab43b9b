"""VQ-VAE training losses and metrics (spec §2.4).

Audio tensors are (N, T, C) with C = 1 (mono) or 2 (averaged to mono before any STFT). Every loss is
divided by a "bandwidth" normaliser — dataset statistics computed once before training
(`calculate_bandwidth`) — so that loss weights mean the same thing for any dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

# The reference's fixed STFT for the single-resolution spectral loss, spectral convergence and the
# bandwidth statistics (n_fft 2048, hop 256, window 6·hop). It ignores the hparams' n_fft keys (the tiny
# fixture's spectral_loss_l* values match 2048/256/1536, not its hparams' 1024/256/1024).
SPEC_N_FFT, SPEC_HOP, SPEC_WINDOW = 2048, 256, 1536


def _mono(x: Tensor) -> Tensor:  # (N, T, C) -> (N, T)
    return x.float().mean(dim=-1) if x.shape[-1] == 2 else x.float().squeeze(-1)


def stft_magnitude(x: Tensor, n_fft: int, hop_length: int, window_size: int) -> Tensor:
    """|STFT| of (N, T) signals: centred, reflect-padded, one-sided, Hann window of `window_size`."""
    window = torch.hann_window(window_size, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop_length, win_length=window_size, window=window, return_complex=True)
    return spec.abs()  # (N, F, frames)


def _norm_per_item(x: Tensor) -> Tensor:  # (N, ...) -> (N,)
    return x.reshape(x.shape[0], -1).pow(2).sum(dim=-1).sqrt()


def spectral_loss(
    x: Tensor, x_hat: Tensor, n_fft: int = SPEC_N_FFT, hop_length: int = SPEC_HOP, window_size: int = SPEC_WINDOW
) -> Tensor:
    """Per item ‖ |STFT(x)| − |STFT(x̂)| ‖₂."""
    spec = stft_magnitude(_mono(x), n_fft, hop_length, window_size)
    spec_hat = stft_magnitude(_mono(x_hat), n_fft, hop_length, window_size)
    return _norm_per_item(spec - spec_hat)


def multispectral_loss(
    x: Tensor, x_hat: Tensor, n_ffts: Iterable[int], hop_lengths: Iterable[int], window_sizes: Iterable[int]
) -> Tensor:
    """Per item mean of the spectral loss over several STFT resolutions."""
    losses = [spectral_loss(x, x_hat, n, h, w) for n, h, w in zip(n_ffts, hop_lengths, window_sizes)]
    return sum(losses) / len(losses)


def spectral_convergence(
    x: Tensor,
    x_hat: Tensor,
    n_fft: int = SPEC_N_FFT,
    hop_length: int = SPEC_HOP,
    window_size: int = SPEC_WINDOW,
    epsilon: float = 2e-3,
) -> Tensor:
    """Per item ‖S − Ŝ‖ / ‖S‖, zero where the reference spectrum is (near) silent."""
    spec = stft_magnitude(_mono(x), n_fft, hop_length, window_size)
    spec_hat = stft_magnitude(_mono(x_hat), n_fft, hop_length, window_size)
    gt_norm = _norm_per_item(spec)
    residual_norm = _norm_per_item(spec - spec_hat)
    mask = (gt_norm > epsilon).float()
    return residual_norm * mask / gt_norm.clamp(min=epsilon)


def reconstruction_loss(
    loss_fn: str,
    x: Tensor,
    x_hat: Tensor,
    bandwidth: Mapping[str, float],
    *,
    linf_k: int,
    lmix_l1: float = 0.0,
    lmix_l2: float = 0.0,
    lmix_linf: float = 0.0,
) -> Tensor:
    """l1 = mean|x−x̂|/bw_l1; l2 = mean(x−x̂)²/bw_l2; linf = mean of each item's top-k squared errors / bw_l2;
    lmix = the weighted sum of the three."""
    if loss_fn == "l1":
        return (x - x_hat).abs().mean() / bandwidth["l1"]
    if loss_fn == "l2":
        return (x - x_hat).pow(2).mean() / bandwidth["l2"]
    if loss_fn == "linf":
        residual = (x - x_hat).pow(2).reshape(x.shape[0], -1)
        top, _ = torch.topk(residual, min(linf_k, residual.shape[1]), dim=1)
        return top.mean() / bandwidth["l2"]
    if loss_fn == "lmix":
        loss = x.new_zeros(())
        for weight, name in ((lmix_l1, "l1"), (lmix_l2, "l2"), (lmix_linf, "linf")):
            if weight:
                loss = loss + weight * reconstruction_loss(name, x, x_hat, bandwidth, linf_k=linf_k)
        return loss
    raise ValueError(f"unknown loss_fn {loss_fn!r}; expected l1, l2, linf or lmix")


@torch.no_grad()
def calculate_bandwidth(clips: Tensor | Iterable[Tensor], *, max_samples: int | None = None) -> dict[str, float]:
    """Dataset loss normalisers: l2 = variance, l1 = mean |x|, spec = mean STFT-magnitude norm per clip.

    `clips` is one (T,) clip, a batch of clips (N, T) or (N, T, C), or an iterable yielding (T,) or
    (T, C) float tensors; stops once `max_samples` samples have been seen. Clips shorter than the STFT
    window are joined with the next ones before their spectrum is taken.
    """
    if isinstance(clips, Tensor):
        if clips.dim() not in (1, 2, 3):
            raise ValueError(
                f"calculate_bandwidth expects audio shaped (T,), (N, T) or (N, T, C), got {tuple(clips.shape)}"
            )
        clips = [clips] if clips.dim() == 1 else list(clips)
    total = total_sq = total_abs = 0.0
    n_seen = 0
    spec_total, n_specs = 0.0, 0
    pending: list[Tensor] = []
    for clip in clips:
        clip = clip.double()
        mono = clip.mean(dim=-1) if clip.dim() == 2 else clip
        n_seen += clip.numel()
        total += float(clip.sum())
        total_sq += float(clip.pow(2).sum())
        total_abs += float(clip.abs().sum())
        pending.append(mono)
        if sum(p.shape[0] for p in pending) > SPEC_N_FFT:
            spec = stft_magnitude(torch.cat(pending)[None], SPEC_N_FFT, SPEC_HOP, SPEC_WINDOW)
            spec_total += float(torch.linalg.vector_norm(spec))
            n_specs += 1
            pending = []
        if max_samples is not None and n_seen >= max_samples:
            break
    if n_seen == 0:
        raise ValueError("calculate_bandwidth needs at least one non-empty clip")
    if n_specs == 0:
        raise ValueError(f"calculate_bandwidth needs more than {SPEC_N_FFT} samples of audio for its spectra")
    mean = total / n_seen
    return {"l2": total_sq / n_seen - mean**2, "l1": total_abs / n_seen, "spec": spec_total / n_specs}
