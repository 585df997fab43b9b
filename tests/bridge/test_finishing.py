"""Finishing takes: numbers checked against independent computations (integer arithmetic, pyloudnorm's own meter)."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
import torch
import torchaudio

from bridge.takes.finishing import FinishOptions, FinishReport, bar_boundary, bar_length, finish
from bridge.takes.limiter import limit

SR = 44100
NO_FADES = {"fade_in_ms": 0.0, "fade_out_ms": 0.0}


def noise(seconds: float, sr: int = SR, scale: float = 0.1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(round(seconds * sr)) * scale).astype(np.float32)


def tone(seconds: float, sr: int = SR, hz: float = 997.0, amplitude: float = 0.25) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def true_peak_4x(audio: np.ndarray, sr: int = SR) -> float:
    """An independent true-peak meter: torchaudio's windowed-sinc resampler at 4x, not the limiter's FFT."""
    up = torchaudio.functional.resample(
        torch.from_numpy(np.asarray(audio, np.float64)), sr, 4 * sr, lowpass_filter_width=64, rolloff=0.999
    )
    return float(up.abs().max())


def band_noise(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Noise from 20 Hz to 8 kHz, as music is: white noise's energy at Nyquist makes true-peak meters
    disagree by several percent."""
    x = np.random.default_rng(seed).standard_normal(round(seconds * sr))
    freqs, spectrum = np.fft.rfftfreq(x.shape[0], 1 / sr), np.fft.rfft(x)
    spectrum[(freqs < 20) | (freqs > 8000)] = 0
    y = np.fft.irfft(spectrum, x.shape[0])
    return (0.1 * y / y.std()).astype(np.float32)


def kicks_and_bass(seconds: float, sr: int = SR) -> np.ndarray:
    """Loud short transients over a quiet bed: what a limiter should hold down while leaving the bed alone."""
    t = np.arange(round(seconds * sr)) / sr
    since = t % 0.5
    kick = 0.9 * np.exp(-since * 60.0) * np.sin(2 * np.pi * 70.0 * since)
    return (kick + 0.05 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)


def lufs(audio: np.ndarray, sr: int = SR) -> float:
    return pyloudnorm.Meter(sr).integrated_loudness(audio.astype(np.float64))


def expected_bar_end(n_bars: int, sr: int, bpm_tenths: int, beats_per_bar: int) -> int:
    """round(n * sr*60*bpb / bpm), halves up, in integers only (bpm given in tenths: 93.7 -> 937)."""
    num, den = n_bars * sr * 60 * beats_per_bar * 10, bpm_tenths
    return (2 * num + den) // (2 * den)


def wrap_over_typical_step(audio: np.ndarray) -> float:
    """The step from the last sample back to the first, over the median step between neighbours."""
    x = audio.astype(np.float64)
    return abs(x[0] - x[-1]) / float(np.median(np.abs(np.diff(x))))


def drums_and_bass(seconds: float, sr: int = SR) -> np.ndarray:
    """A bass tone under a decaying kick tone on every beat: a loop whose wrap, cut almost anywhere, steps by
    far more than its neighbouring samples do."""
    t = np.arange(round(seconds * sr)) / sr
    since_beat = (t + 0.07) % 0.5
    kick = 0.3 * np.exp(-since_beat * 12.0) * np.sin(2 * np.pi * 180.0 * since_beat)
    return (0.4 * np.sin(2 * np.pi * 55.0 * t + 0.3) + kick).astype(np.float32)


# --- loudness ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signal, target",
    [
        (noise(6.0), -20.0),
        (tone(6.0), -14.0),
        (noise(3.0, scale=0.001), -23.0),
        (tone(4.0, hz=110.0, amplitude=0.9), -18.0),
    ],
)
def test_loudness_lands_within_0_3_lu_of_the_target(signal, target):
    out, report = finish(signal, SR, FinishOptions(loudness_lufs=target), bpm=120.0, beats_per_bar=4)
    assert abs(lufs(out) - target) < 0.3
    assert abs(report.loudness_after_lufs - target) < 0.3
    assert abs(report.loudness_before_lufs - lufs(signal)) < 0.3  # measured on the input (fades barely count)
    assert not report.peak_limited
    assert report.gain_db == pytest.approx(target - report.loudness_before_lufs)


def test_loudness_at_48k_is_measured_at_that_rate():
    sr = 48000
    out, _ = finish(noise(5.0, sr=sr), sr, FinishOptions(loudness_lufs=-16.0), bpm=120.0, beats_per_bar=4)
    assert abs(lufs(out, sr) - (-16.0)) < 0.3


def test_without_the_limiter_the_gain_is_lowered_to_the_ceiling_and_the_miss_is_reported():
    ceiling = 10 ** (-1 / 20)
    loud_target = -6.0  # white noise this loud would peak near +5 dBFS
    options = FinishOptions(loudness_lufs=loud_target, limit_peaks=False)
    out, report = finish(noise(5.0), SR, options, bpm=120.0, beats_per_bar=4)
    assert float(np.max(np.abs(out))) <= ceiling
    assert float(np.max(np.abs(out))) > ceiling * 0.999  # the gain went as far as the ceiling allows
    assert report.peak_limited and report.peak_dbfs <= -1.0
    assert report.loudness_after_lufs < loud_target - 1.0
    assert any("peak" in note for note in report.notes)


def test_a_lower_ceiling_is_respected_too():
    out, report = finish(
        tone(3.0, amplitude=0.5),
        SR,
        FinishOptions(loudness_lufs=-8.0, peak_ceiling_dbfs=-6.0),
        bpm=120.0,
        beats_per_bar=4,
    )
    assert true_peak_4x(out) <= 10 ** (-6 / 20) * 1.002
    # a steady tone's loudness only goes with its peak: at this ceiling it cannot reach -8 LUFS, and says so
    assert report.peak_limited and report.loudness_after_lufs < -8.5
    assert any("not reached" in note for note in report.notes)


@pytest.mark.parametrize("n", [0, 1, 100, round(0.39 * SR), SR * 4])
def test_silence_stays_silence_without_nan_or_errors(n):
    out, report = finish(
        np.zeros(n, np.float32), SR, FinishOptions(loudness_lufs=-14.0, trim_bars=True), bpm=120.0, beats_per_bar=4
    )
    assert out.dtype == np.float32 and not np.isnan(out).any()
    assert np.array_equal(out, np.zeros_like(out))
    assert report.loudness_before_lufs is None and report.loudness_after_lufs is None and report.gain_db == 0.0
    assert any("loudness left unchanged" in note for note in report.notes)
    assert report.as_dict()["loudness_before_lufs"] is None  # JSON-ready: no -inf


def test_audio_under_one_loudness_block_keeps_its_level_and_says_why():
    short = tone(0.3)
    out, report = finish(
        short, SR, FinishOptions(loudness_lufs=-14.0, **NO_FADES, dc_remove=False), bpm=120.0, beats_per_bar=4
    )
    assert np.array_equal(out, short)
    assert report.notes == ("loudness left unchanged: shorter than one 400 ms loudness block",)


def test_sound_below_the_absolute_gate_is_left_alone_as_silence():
    whisper = noise(2.0, scale=1e-5)  # about -90 LUFS
    out, report = finish(
        whisper, SR, FinishOptions(loudness_lufs=-14.0, **NO_FADES, dc_remove=False), bpm=120.0, beats_per_bar=4
    )
    assert np.array_equal(out, whisper)
    assert report.gain_db == 0.0 and "silent" in report.notes[0]


# --- DC ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signal", [noise(4.0) + 0.2, tone(4.0) + 0.2, np.full(SR, 0.2, np.float32)])
def test_dc_offset_of_0_2_is_removed(signal):
    assert abs(float(np.mean(signal))) > 0.19
    out, report = finish(signal.astype(np.float32), SR, FinishOptions(), bpm=120.0, beats_per_bar=4)
    assert abs(float(np.mean(out.astype(np.float64)))) < 1e-4
    assert report.dc_removed == pytest.approx(0.2, abs=2e-3)


def test_dc_is_removed_from_the_kept_bars_when_trimming_and_normalising():
    signal = (noise(5.0) + 0.2).astype(np.float32)
    out, report = finish(signal, SR, FinishOptions(trim_bars=True, loudness_lufs=-18.0), bpm=93.7, beats_per_bar=7)
    assert report.bars == 1
    assert abs(float(np.mean(out.astype(np.float64)))) < 1e-4


def test_dc_removal_off_keeps_the_offset():
    signal = (tone(1.0) + 0.2).astype(np.float32)
    out, report = finish(signal, SR, FinishOptions(dc_remove=False, **NO_FADES), bpm=120.0, beats_per_bar=4)
    assert np.array_equal(out, signal) and report.dc_removed == 0.0


# --- fades ---------------------------------------------------------------------------------------------------


def test_fades_start_and_end_at_exactly_zero_and_leave_the_middle_untouched():
    signal = (tone(2.0) + 0.5).astype(np.float32)  # nonzero everywhere, so an untouched sample is recognisable
    options = FinishOptions(dc_remove=False, fade_in_ms=10.0, fade_out_ms=20.0)
    out, report = finish(signal, SR, options, bpm=120.0, beats_per_bar=4)
    fin, fout = report.fade_in_samples, report.fade_out_samples
    assert (fin, fout) == (441, 882)
    assert out[0] == 0.0 and out[-1] == 0.0
    assert np.array_equal(out[fin:-fout], signal[fin:-fout])
    assert np.all(np.abs(out[1:fin]) < np.abs(signal[1:fin]))  # every faded sample is attenuated...
    assert np.all(np.abs(out[-fout:-1]) < np.abs(signal[-fout:-1]))
    ramp = out[:fin] / signal[:fin]
    assert np.all(np.diff(ramp) > 0)  # ...by a rising gain: a raised cosine from 0
    assert ramp[fin // 2] == pytest.approx(0.5, abs=0.01)
    assert ramp[fin // 4] == pytest.approx(0.5 - 0.5 * math.cos(math.pi / 4), abs=0.01)  # cosine, not linear


def test_fades_longer_than_the_take_meet_in_the_middle():
    out, report = finish(
        np.ones(100, np.float32),
        SR,
        FinishOptions(dc_remove=False, fade_in_ms=50.0, fade_out_ms=50.0),
        bpm=120.0,
        beats_per_bar=4,
    )
    assert report.fade_in_samples == report.fade_out_samples == 50
    assert out[0] == 0.0 and out[-1] == 0.0 and float(np.max(out)) < 1.0


def test_fades_off_change_nothing():
    signal = noise(1.0)
    out, _ = finish(signal, SR, FinishOptions.off(), bpm=120.0, beats_per_bar=4)
    assert np.array_equal(out, signal)


# --- trimming ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("bpm_tenths, beats_per_bar", [(937, 7), (1337, 5), (1200, 4), (601, 3), (1745, 13)])
@pytest.mark.parametrize("n_bars", [1, 7, 64])
def test_trimmed_length_is_exactly_n_bars_with_no_drift(sr, bpm_tenths, beats_per_bar, n_bars):
    bpm = bpm_tenths / 10
    target = expected_bar_end(n_bars, sr, bpm_tenths, beats_per_bar)
    spare = expected_bar_end(n_bars + 1, sr, bpm_tenths, beats_per_bar) - target - 1  # just short of one more bar
    signal = np.full(target + spare, 0.25, np.float32)
    out, report = finish(
        signal, sr, FinishOptions(trim_bars=True, dc_remove=False, **NO_FADES), bpm=bpm, beats_per_bar=beats_per_bar
    )
    assert out.shape[0] == target
    assert report.bars == n_bars and report.trimmed_end == spare and report.trimmed_start == 0
    if n_bars == 64 and bpm_tenths == 937:  # one rounded bar, repeated, would have drifted off the grid
        assert n_bars * round(sr * 60 * beats_per_bar / bpm) != target


def test_one_more_sample_makes_one_more_bar():
    end = expected_bar_end(8, SR, 937, 7)
    out, report = finish(
        np.zeros(end, np.float32), SR, FinishOptions(trim_bars=True, **NO_FADES), bpm=93.7, beats_per_bar=7
    )
    assert report.bars == 8 and out.shape[0] == end
    _, short = finish(
        np.zeros(end - 1, np.float32), SR, FinishOptions(trim_bars=True, **NO_FADES), bpm=93.7, beats_per_bar=7
    )
    assert short.bars == 7


def test_bar_origin_cuts_the_lead_in_and_counts_bars_from_there():
    origin = 12345
    end = expected_bar_end(3, SR, 1200, 4)  # 120 bpm 4/4: 2 s bars
    signal = np.arange(origin + end + 500, dtype=np.float32)
    out, report = finish(
        signal,
        SR,
        FinishOptions(trim_bars=True, dc_remove=False, **NO_FADES),
        bpm=120.0,
        beats_per_bar=4,
        bar_origin_samples=origin,
    )
    assert out[0] == origin and out.shape[0] == end == 3 * 2 * SR
    assert (report.trimmed_start, report.trimmed_end, report.bars) == (origin, 500, 3)
    assert report.samples_trimmed == origin + 500


def test_bar_multiple_keeps_whole_phrases():
    end = expected_bar_end(11, SR, 1200, 4)
    out, report = finish(
        np.zeros(end, np.float32), SR, FinishOptions(trim_bars=True, bar_multiple=4), bpm=120.0, beats_per_bar=4
    )
    assert report.bars == 8 and out.shape[0] == 8 * 2 * SR


@pytest.mark.parametrize("origin", [0, 3 * SR])
def test_a_take_shorter_than_one_bar_is_left_untrimmed_and_reported(origin):
    signal = noise(1.5) if origin == 0 else noise(4.0)  # 1.5 s at 60 bpm in 4/4 is under a 4 s bar
    out, report = finish(
        signal,
        SR,
        FinishOptions(trim_bars=True, dc_remove=False, **NO_FADES),
        bpm=60.0,
        beats_per_bar=4,
        bar_origin_samples=origin,
    )
    assert np.array_equal(out, signal)
    assert report.bars is None and report.samples_trimmed == 0
    assert report.notes and "shorter than one bar" in report.notes[0]


def test_bar_helpers_are_exact_fractions():
    bar = bar_length(48000, 93.7, 7)
    assert bar.numerator * 937 == 48000 * 60 * 7 * 10 * bar.denominator
    assert bar_boundary(1000, bar) == expected_bar_end(1000, 48000, 937, 7)


# --- the report and validation -----------------------------------------------------------------------------


def test_report_is_json_ready_and_records_every_step():
    import json

    out, report = finish(
        (noise(5.0) + 0.1).astype(np.float32),
        SR,
        FinishOptions(trim_bars=True, loudness_lufs=-16.0),
        bpm=100.0,
        beats_per_bar=3,
    )
    d = json.loads(json.dumps(report.as_dict(), allow_nan=False))
    assert d["bars"] == 2 and d["output_samples"] == out.shape[0] == 2 * round(SR * 1.8)
    assert d["fade_in_samples"] == d["fade_out_samples"] == round(0.005 * SR)
    assert abs(d["loudness_after_lufs"] + 16.0) < 0.3 and math.isfinite(d["gain_db"])
    assert isinstance(report, FinishReport) and report.input_samples == 5 * SR


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"loudness_lufs": 5.0}, "loudness_lufs"),
        ({"loudness_lufs": -90.0}, "loudness_lufs"),
        ({"loudness_lufs": float("nan")}, "loudness_lufs"),
        ({"loudness_lufs": "-14"}, "loudness_lufs"),
        ({"fade_in_ms": -1.0}, "fade_in_ms"),
        ({"fade_out_ms": float("inf")}, "fade_out_ms"),
        ({"peak_ceiling_dbfs": 1.0}, "peak_ceiling_dbfs"),
        ({"dc_remove": 1}, "dc_remove"),
        ({"trim_bars": "yes"}, "trim_bars"),
        ({"bar_multiple": 0}, "bar_multiple"),
        ({"bar_multiple": 2.0}, "bar_multiple"),
        ({"loop_crossfade_ms": -1.0}, "loop_crossfade_ms"),
        ({"loop_crossfade_ms": True}, "loop_crossfade_ms"),
        ({"loop_crossfade_ms": 5000.0}, "loop_crossfade_ms"),
    ],
)
def test_bad_options_are_refused_with_their_name(kwargs, words):
    with pytest.raises(ValueError, match=words):
        FinishOptions(**kwargs)


@pytest.mark.parametrize(
    "audio, kwargs, words",
    [
        (np.zeros((10, 2), np.float32), {}, "mono"),
        (np.zeros(10, np.int16), {}, "mono"),
        (np.array([0.0, np.nan], np.float32), {}, "NaN"),
        (np.zeros(10, np.float32), {"bpm": 0.0}, "bpm"),
        (np.zeros(10, np.float32), {"bpm": float("inf")}, "bpm"),
        (np.zeros(10, np.float32), {"beats_per_bar": 0}, "beats_per_bar"),
        (np.zeros(10, np.float32), {"bar_origin_samples": -1}, "bar_origin_samples"),
    ],
)
def test_bad_calls_are_refused_with_their_name(audio, kwargs, words):
    call = {"bpm": 120.0, "beats_per_bar": 4} | kwargs
    with pytest.raises(ValueError, match=words):
        finish(audio, SR, FinishOptions(), **call)


def test_the_input_array_is_not_modified():
    signal = (noise(2.0) + 0.2).astype(np.float32)
    before = signal.copy()
    finish(signal, SR, FinishOptions(loudness_lufs=-14.0, trim_bars=True), bpm=120.0, beats_per_bar=4)
    assert np.array_equal(signal, before)


# --- loop join ---------------------------------------------------------------------------------------------


def test_the_loop_join_makes_the_wrap_a_neighbour_step_and_keeps_length_and_middle():
    whole = drums_and_bass(2.0)
    take, run_on = whole[:80_000], whole[80_000:]
    options = FinishOptions(dc_remove=False, loop_crossfade_ms=10.0, **NO_FADES)
    plain, _ = finish(take, SR, FinishOptions.off(), bpm=120.0, beats_per_bar=4)
    out, report = finish(take, SR, options, bpm=120.0, beats_per_bar=4, after=run_on)
    assert wrap_over_typical_step(plain) > 20  # the model's raw cut clicks when looped
    assert abs(out[0] - out[-1]) == pytest.approx(abs(run_on[0] - take[-1]), abs=1e-6)  # a neighbour step
    assert out.shape == take.shape and out[0] == pytest.approx(run_on[0], abs=1e-7)  # the sample after the last
    assert np.array_equal(out[441:], take[441:])  # 10 ms at 44.1 kHz, nothing after it
    assert report.loop_crossfade_samples == 441 and report.loop_join == "start"


def test_audio_cut_by_the_bar_trim_is_what_the_loop_join_uses():
    whole = drums_and_bass(2.3)  # 1.15 bars at 120 BPM: one bar is kept, the rest follows it
    out, report = finish(
        whole,
        SR,
        FinishOptions(dc_remove=False, trim_bars=True, loop_crossfade_ms=5.0, **NO_FADES),
        bpm=120.0,
        beats_per_bar=4,
    )
    assert out.shape[0] == 88200 and report.loop_join == "start" and report.loop_crossfade_samples == 220
    assert out[0] == pytest.approx(whole[88200], abs=1e-7)  # the sample after the last
    assert abs(out[0] - out[-1]) == pytest.approx(abs(whole[88200] - whole[88199]), abs=1e-6)


def test_without_audio_after_the_take_the_audio_before_it_joins_its_end():
    whole = drums_and_bass(2.5)  # a lead-in of 0.5 s before the bar origin, exactly one bar after it
    options = FinishOptions(dc_remove=False, trim_bars=True, loop_crossfade_ms=10.0, **NO_FADES)
    out, report = finish(whole, SR, options, bpm=120.0, beats_per_bar=4, bar_origin_samples=22050)
    assert out.shape[0] == 88200 and report.loop_join == "end"
    assert out[-1] == pytest.approx(whole[22049], abs=1e-7)  # the last sample is the one before the first
    assert np.array_equal(out[: 88200 - 441], whole[22050 : 22050 + 88200 - 441])
    assert abs(out[0] - out[-1]) == pytest.approx(abs(whole[22050] - whole[22049]), abs=1e-6)


def test_the_join_has_the_take_s_dc_removed_from_what_it_joins_too():
    whole = drums_and_bass(2.0) + np.float32(0.3)
    take, run_on = whole[:80_000], whole[80_000:]
    out, report = finish(
        take, SR, FinishOptions(loop_crossfade_ms=10.0, **NO_FADES), bpm=120.0, beats_per_bar=4, after=run_on
    )
    assert out[0] == pytest.approx(run_on[0] - report.dc_removed, abs=1e-6)


def test_with_no_audio_around_the_take_the_loop_point_is_left_and_the_report_says_why():
    take = drums_and_bass(1.0)
    out, report = finish(
        take, SR, FinishOptions(dc_remove=False, loop_crossfade_ms=10.0, **NO_FADES), bpm=120.0, beats_per_bar=4
    )
    assert np.array_equal(out, take) and report.loop_join is None and report.loop_crossfade_samples == 0
    assert any("loop point not joined" in note for note in report.notes)


# --- the true-peak limiter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signal, target", [(band_noise(5.0), -11.0), (band_noise(5.0), -10.0), (kicks_and_bass(4.0), -16.0)]
)
def test_a_target_above_the_peaks_is_reached_with_the_true_peak_held_under_the_ceiling(signal, target):
    out, report = finish(signal, SR, FinishOptions(loudness_lufs=target), bpm=120.0, beats_per_bar=4)
    assert lufs(out) == pytest.approx(target, abs=0.3)
    assert true_peak_4x(out) <= 10 ** (-1 / 20) * 1.002  # -1 dBTP, within the two meters' difference
    assert report.peak_limited and 0.5 < report.limited_db <= 12.0 and report.true_peak_dbtp <= -0.999
    assert not any("not reached" in note for note in report.notes)


def test_the_limiter_only_turns_the_gain_down_and_leaves_audio_far_from_the_peaks_as_the_gain_made_it():
    signal = kicks_and_bass(2.0).astype(np.float64) * 6.0  # kicks at +14 dBFS, a bed at -10 dBFS
    out, reduction, _ = limit(signal, SR, -1.0)
    assert np.all(np.abs(out) <= np.abs(signal) + 1e-12) and reduction > 10.0
    quiet = slice(int(0.35 * SR), int(0.45 * SR))  # between two kicks, past the hold
    np.testing.assert_allclose(out[quiet], signal[quiet], rtol=1e-4)  # but for the last tiny scale


def test_more_limiting_than_allowed_lowers_the_gain_instead_and_says_the_target_was_missed():
    options = FinishOptions(loudness_lufs=-10.0, max_limiting_db=6.0)
    out, report = finish(kicks_and_bass(4.0), SR, options, bpm=120.0, beats_per_bar=4)
    assert report.limited_db <= 6.1 and lufs(out) < -15.0
    assert any("not reached" in note and "6 dB of limiting" in note for note in report.notes)
    assert true_peak_4x(out) <= 10 ** (-1 / 20) * 1.002


def test_a_joined_loop_stays_joined_through_the_limiter():
    whole = drums_and_bass(4.0) * np.float32(2.0)  # peaks near +3 dBFS: the limiter works
    take, run_on = whole[:150_000], whole[150_000:]
    options = FinishOptions(dc_remove=False, loop_crossfade_ms=10.0, loudness_lufs=-10.0, **NO_FADES)
    out, report = finish(take, SR, options, bpm=120.0, beats_per_bar=4, after=run_on)
    assert report.loop_join == "start" and report.limited_db > 1.0
    steps = np.abs(np.diff(out.astype(np.float64)))
    assert abs(float(out[0]) - float(out[-1])) <= float(np.quantile(steps, 0.99))  # the gain wraps around too
