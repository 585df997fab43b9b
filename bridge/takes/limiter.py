"""A look-ahead true-peak limiter, so a loudness target is reached without giving up gain.

Why by hand: the limiters in audio libraries (pedalboard's JUCE limiter, for one) bound the sample
peak after the fact with a compressor and a clipper; here the ceiling is a guarantee on the true peak
(ITU-R BS.1770-4 annex 2: the signal oversampled 4×), the whole take is at hand (no streaming), and
numpy does it in a few vectorised passes.

How: each sample's true peak p[n] (the largest of the 4× oversampled values around it) asks for the
gain c / p[n] (c the ceiling, 1 where p ≤ c). That gain is held: m[n] is its minimum over the samples
from `hold` before n to `attack` after it, and the gain applied is m averaged over the attack window
on both sides. Every value in that average is a minimum over a window that holds n, so the applied
gain is never above what sample n asks for: the ceiling holds wherever the gain moves slowly enough
for the oversampled peaks to follow it, and a last scale (reported) absorbs what is left. The gain
falls over 2·attack before a peak (look-ahead, no overshoot) and rises over 2·attack after the hold.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

OVERSAMPLING = 4  # BS.1770-4's true-peak meter at 48 kHz
ATTACK_MS = 2.0
HOLD_MS = 60.0  # longer than a bass period at 20 Hz: the gain does not follow the waveform


def true_peak_per_sample(x: np.ndarray) -> np.ndarray:
    """|x| oversampled 4× (band-limited, by FFT zero-padding), the largest of each sample's 4 values."""
    n = x.shape[0]
    if n < 2:
        return np.abs(x)
    spectrum = np.fft.rfft(x)
    padded = np.zeros(OVERSAMPLING * n // 2 + 1, dtype=complex)
    padded[: spectrum.shape[0]] = spectrum
    if n % 2 == 0:  # the Nyquist bin is shared by the two halves of the spectrum: halve it when padding
        padded[n // 2] *= 0.5
    up = np.fft.irfft(padded, OVERSAMPLING * n) * OVERSAMPLING
    return np.maximum(np.abs(up).reshape(n, OVERSAMPLING).max(axis=1), np.abs(x))


class Limited(NamedTuple):
    audio: np.ndarray
    reduction_db: float  # the largest gain reduction (≥ 0)
    true_peak_dbtp: float | None  # the output's true peak; None for silence


def _sliding_min(a: np.ndarray, width: int) -> np.ndarray:
    """out[i] = min(a[i : i + width]) in O(n) (van Herk / Gil-Werman), the end padded with +inf."""
    n = a.shape[0]
    blocks = -(-(n + width) // width)
    b = np.full(blocks * width, np.inf)
    b[:n] = a
    b = b.reshape(blocks, width)
    prefix = np.minimum.accumulate(b, axis=1).ravel()
    suffix = np.minimum.accumulate(b[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:n], prefix[width - 1 : width - 1 + n])


def limit(x: np.ndarray, sr: int, ceiling_dbfs: float, *, periodic: bool = False) -> Limited:
    """`x` with its true peak at or below the ceiling, the largest gain reduction and the true peak it ends at
    (measured once here, for the caller's report too).

    `periodic`: `x` is a loop (its end runs into its start), so the gain wraps around too and the loop
    point stays as smooth as it was."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    ceiling = 10.0 ** (ceiling_dbfs / 20.0)
    peaks = true_peak_per_sample(x)
    peak = float(peaks.max()) if n else 0.0
    if peak <= ceiling:
        return Limited(x.copy(), 0.0, _dbtp(peak))
    wanted = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    attack = max(1, round(ATTACK_MS * sr / 1000.0))
    hold = max(attack, round(HOLD_MS * sr / 1000.0))
    # m[i] = min(wanted[i - hold : i + attack + 1]), with gain 1 outside the take (or the take again, a loop)
    hold, attack = min(hold, n), min(attack, n)
    before, after = (wanted[n - hold :], wanted[:attack]) if periodic else (np.ones(hold), np.ones(attack))
    held = _sliding_min(np.concatenate([before, wanted, after]), hold + attack + 1)[:n]
    # the average over [i - attack, i + attack]: a window of 2·attack + 1 inside every held minimum's reach
    # (the edges repeat the first and last minimum, which cover the first and last `attack` samples)
    sums = np.concatenate([[0.0], np.cumsum(np.pad(held, attack, mode="wrap" if periodic else "edge"))])
    gain = (sums[2 * attack + 1 :] - sums[: -(2 * attack + 1)])[:n] / (2 * attack + 1)
    y = x * gain
    over = float(np.max(true_peak_per_sample(y))) / ceiling
    if over > 1.0:  # what the oversampled peaks of a moving gain left: one small scale for all of it
        y /= over
        gain /= over
    return Limited(y, -20.0 * math.log10(float(np.min(gain))), _dbtp(min(over, 1.0) * ceiling))


def _dbtp(peak: float) -> float | None:
    return 20.0 * math.log10(peak) if peak > 0 else None
