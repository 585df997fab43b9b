"""What a producer hears in a take, as numbers: codec comb lines, a beat, the key, clicks at the loop point.

These are the measures of `docs/model-card.md` and `bench/loop_quality.py` (the definitions follow
the embedded-model notes in the project brief):

- comb lines: the long-term spectrum (8192-point FFT, Hann, hop 2048) at k·sr/hop for every
  VQ-VAE hop, in dB above the median of the bins around each line, averaged over k. A codec
  decoder that repeats a pattern every frame puts lines there; music mostly does not.
- beat: the autocorrelation of the spectral-flux onset envelope (1024-point frames, hop 512) at
  one beat's lag, or its maximum over 0.25-2 s when the tempo is not known.
- key: a 12-bin chroma profile; a take keeps a clip's key when its profile correlates better with
  the clip's profile than with any of the clip's 11 transpositions.
- loop click: the step from the last sample back to the first, over the median step between neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMB_N_FFT, COMB_HOP = 8192, 2048
ONSET_N_FFT, ONSET_HOP = 1024, 512


def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    count = 1 + (x.shape[0] - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    return x[index] * np.hanning(n_fft)[None, :]


def long_term_spectrum_db(audio: np.ndarray, n_fft: int = COMB_N_FFT, hop: int = COMB_HOP) -> np.ndarray:
    power = np.mean(np.abs(np.fft.rfft(_frames(audio, n_fft, hop), axis=1)) ** 2, axis=0)
    return 10 * np.log10(power + 1e-20)


def comb_line_db(audio: np.ndarray, sr: int, hop: int, *, n_fft: int = COMB_N_FFT, neighbours: int = 24) -> float:
    """Mean height (dB) of the spectrum's lines at multiples of sr/hop over the bins around them."""
    spectrum = long_term_spectrum_db(audio, n_fft)
    bin_hz = sr / n_fft
    line_hz = sr / hop
    heights = []
    k = 1
    while k * line_hz < sr / 2 - neighbours * bin_hz:
        centre = round(k * line_hz / bin_hz)
        lo, hi = max(0, centre - neighbours), min(spectrum.shape[0], centre + neighbours + 1)
        around = np.concatenate([spectrum[lo : centre - 2], spectrum[centre + 3 : hi]])
        if around.size:
            heights.append(float(spectrum[centre - 1 : centre + 2].max() - np.median(around)))
        k += 1
    return float(np.mean(heights)) if heights else 0.0


def comb_lines_db(audio: np.ndarray, sr: int, hops: tuple[int, ...]) -> dict[int, float]:
    """comb_line_db at every VQ-VAE frame rate (the target is on the worst one)."""
    return {hop: comb_line_db(audio, sr, hop) for hop in hops}


def onset_envelope(audio: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """Half-wave-rectified spectral flux of the log-magnitude spectrum, and its frame rate."""
    mag = np.abs(np.fft.rfft(_frames(audio, ONSET_N_FFT, ONSET_HOP), axis=1))
    log_mag = np.log1p(100 * mag)
    flux = np.maximum(np.diff(log_mag, axis=0), 0).sum(axis=1)
    return flux, sr / ONSET_HOP


def _autocorrelation(envelope: np.ndarray) -> np.ndarray:
    x = envelope - envelope.mean()
    denom = float(np.dot(x, x))
    if denom <= 0:
        return np.zeros(envelope.shape[0])
    full = np.correlate(x, x, mode="full")[x.shape[0] - 1 :]
    return full / denom


def beat_strength(audio: np.ndarray, sr: int, bpm: float | None = None) -> float:
    """Onset autocorrelation at one beat (or the strongest period in 0.25-2 s when bpm is None)."""
    envelope, rate = onset_envelope(audio, sr)
    ac = _autocorrelation(envelope)
    if bpm is not None:
        lag = 60.0 / bpm * rate
        lo, hi = int(np.floor(lag)), int(np.ceil(lag))
        if hi >= ac.shape[0]:
            return 0.0
        return float(max(ac[lo], ac[hi]))
    lo, hi = int(0.25 * rate), min(ac.shape[0] - 1, int(2.0 * rate))
    return float(ac[lo : hi + 1].max()) if hi > lo else 0.0


def chroma(audio: np.ndarray, sr: int, *, n_fft: int = 4096, hop: int = 2048) -> np.ndarray:
    """Energy per pitch class (C=0) from 55 Hz to 4 kHz, normalised to sum 1."""
    power = np.mean(np.abs(np.fft.rfft(_frames(audio, n_fft, hop), axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    use = (freqs >= 55) & (freqs <= 4000)
    pitch = np.round(12 * np.log2(freqs[use] / 440.0) + 69).astype(int) % 12
    profile = np.bincount(pitch, weights=power[use], minlength=12)
    total = profile.sum()
    return profile / total if total > 0 else profile


@dataclass(frozen=True)
class KeyMatch:
    same: float  # correlation with the clip's own profile
    best_other: float  # the best correlation with one of its 11 transpositions
    shift_of_best: int  # semitones of the best-matching transposition (0 = the clip's key)

    @property
    def kept(self) -> bool:
        return self.shift_of_best == 0


def key_match(take: np.ndarray, clip: np.ndarray, sr: int) -> KeyMatch:
    a, b = chroma(take, sr), chroma(clip, sr)
    corr = [float(np.corrcoef(a, np.roll(b, s))[0, 1]) for s in range(12)]
    corr = [c if np.isfinite(c) else -1.0 for c in corr]
    best = int(np.argmax(corr))
    return KeyMatch(same=corr[0], best_other=max(corr[1:]), shift_of_best=best)


def loop_click(audio: np.ndarray) -> float:
    """The wrap-around step over the median neighbour step: about 1 for a clean loop point."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if x.shape[0] < 3:
        return 0.0
    median = float(np.median(np.abs(np.diff(x)))) or 1e-9
    return abs(float(x[0] - x[-1])) / median


def spectral_convergence(reference: np.ndarray, estimate: np.ndarray, *, n_fft: int = 2048, hop: int = 256) -> float:
    """‖|S|−|Ŝ|‖ / ‖|S|‖ over equal-length signals."""
    n = min(reference.shape[-1], estimate.shape[-1])
    s = np.abs(np.fft.rfft(_frames(reference[:n], n_fft, hop), axis=1))
    e = np.abs(np.fft.rfft(_frames(estimate[:n], n_fft, hop), axis=1))
    return float(np.linalg.norm(s - e) / (np.linalg.norm(s) + 1e-12))
