"""The producer measures tell music from codec artefacts on signals whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from jukebox_model.music_measures import (
    beat_strength,
    chroma,
    comb_line_db,
    comb_lines_db,
    key_match,
    loop_click,
    spectral_convergence,
)

SR = 22050


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 0.1


def _clicks_every(hop: int, seconds: float) -> np.ndarray:
    x = np.zeros(int(seconds * SR))
    x[::hop] = 1.0
    return x


def _drum_loop(bpm: float, seconds: float, seed: int = 0) -> np.ndarray:
    """Decaying noise bursts on every beat, like a kick-and-hat loop."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * SR)) * 0.002
    beat = round(60 / bpm * SR)
    burst = rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)
    for start in range(0, x.shape[0] - 2000, beat):
        x[start : start + 2000] += burst
    return x


def _chord(midi_notes: list[int], seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) for m in midi_notes) / len(midi_notes)


def test_comb_lines_stand_out_for_a_frame_periodic_signal_and_not_for_noise():
    hop = 32
    framed = _noise(4) + 0.3 * _clicks_every(hop, 4)
    assert comb_line_db(framed, SR, hop) > 10
    assert abs(comb_line_db(_noise(4), SR, hop)) < 1.5


def test_comb_lines_are_reported_per_hop_and_only_the_framed_hop_is_high():
    framed = _noise(4) + _clicks_every(256, 4)
    lines = comb_lines_db(framed, SR, (256, 300))  # 300: lines at 73.5 Hz, never on the 86.1 Hz ones
    assert set(lines) == {256, 300}
    assert lines[256] > 8
    assert lines[300] < 3


def test_a_steady_beat_has_strong_onset_autocorrelation_and_noise_has_little():
    loop = _drum_loop(124, 8)
    assert beat_strength(loop, SR, bpm=124) > 0.5
    assert beat_strength(loop, SR) > 0.5
    assert beat_strength(_noise(8), SR) < 0.3


def test_beat_at_the_wrong_tempo_scores_lower_than_at_the_right_one():
    loop = _drum_loop(124, 8)
    assert beat_strength(loop, SR, bpm=124) > beat_strength(loop, SR, bpm=97) + 0.2


def test_chroma_puts_a_chords_energy_on_its_pitch_classes():
    profile = chroma(_chord([60, 64, 67], 2), SR)  # C major
    assert profile.sum() == pytest.approx(1.0)
    assert set(np.argsort(profile)[-3:]) == {0, 4, 7}


def test_key_is_kept_for_the_same_chord_and_lost_for_a_transposed_one():
    clip = _chord([57, 60, 64, 69], 3)  # A minor
    same = key_match(_chord([57, 60, 64], 2), clip, SR)
    assert same.kept and same.same > same.best_other
    moved = key_match(_chord([62, 66, 69], 2), clip, SR)  # D major: a fifth away
    assert not moved.kept
    assert moved.shift_of_best != 0


def test_loop_click_is_small_for_a_whole_number_of_periods_and_large_for_a_cut_one():
    t = np.arange(SR) / SR
    whole = np.sin(2 * np.pi * 100 * t)  # 100 full periods in 1 s
    cut = np.sin(2 * np.pi * 100 * t[: int(SR * 0.9975)])  # ends a quarter period early
    assert loop_click(whole) < 2
    assert loop_click(cut) > 20


def test_spectral_convergence_is_zero_for_a_copy_and_grows_with_the_error():
    x = _drum_loop(120, 3)
    assert spectral_convergence(x, x) == pytest.approx(0.0, abs=1e-9)
    small = spectral_convergence(x, x + _noise(3, seed=1) * 0.01)
    large = spectral_convergence(x, x + _noise(3, seed=1) * 0.5)
    assert 0 < small < large
