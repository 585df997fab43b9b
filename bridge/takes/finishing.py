"""Finishing a rendered take so it drops into a DAW loop-ready: DC removal, whole bars, fades, loudness.

The steps run in a fixed order, each one on the result of the one before:

1. **DC removal** subtracts the mean of the span that will be kept. A mean is exact and zero-phase: it
   leaves no start-up transient, where a high-pass (a DC blocker) would start at the offset and decay
   through it, a ramp right at the loop point, and would shift the phase of the lows. What it does not
   remove is slow drift within the take; the loudness meter's own high-pass (K-weighting) ignores that.
2. **Trim to whole bars** keeps `floor(bars)` bars from `bar_origin_samples` on (or a multiple of
   `bar_multiple` bars). Bar *k* ends at `round(k * sr * 60 * beats_per_bar / bpm)`, computed with exact
   fractions (the tempo as its shortest decimal, 93.7 = 937/10), so N bars are exactly that many samples
   and a long take does not drift from the DAW's grid. A take shorter than one unit is left whole.
3. **Loop join** (`loop_crossfade_ms` > 0) makes the loop point as smooth as any other pair of
   neighbouring samples without changing the length: the audio the model made right after the kept
   span (`after`, or what trimming cut) is crossfaded into the take's first milliseconds, so the first
   sample is the one that followed the last. Without audio after the span, the audio before it is
   crossfaded into the last milliseconds instead. Equal-power (sine/cosine) gains: the two signals are
   unrelated moments of the take, so their powers add.
4. **Fades** are raised-cosine (half a Hann window), a few milliseconds long: zero at the very first and
   last sample, so the loop point cannot click, and no change outside them.
5. **Loudness** normalisation measures integrated loudness with pyloudnorm (ITU-R BS.1770-4: K-weighting,
   400 ms blocks, absolute and relative gates) and applies the gain that reaches the target, with the
   true-peak limiter of `bridge.takes.limiter` holding the peaks at `peak_ceiling_dbfs` (-1 dBTP by default,
   the headroom EBU R 128 asks for); the gain is raised by what the limiting took off the loudness. A
   take that would need more than `max_limiting_db` of limiting gets less gain, and the report says
   so. With `limit_peaks` off, the gain alone is lowered until the sample peak is at the ceiling.
   Silence (below the -70 LUFS gate) and audio under one 400 ms block are left at their level and
   reported.

Nothing here raises on silence or on short audio, and nothing produces NaN; a bad option or a bad call
raises ValueError naming it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pyloudnorm

from bridge.session.params import LOOP_CROSSFADE_MS, Session
from bridge.takes.limiter import Limited, limit

LOUDNESS_BLOCK_S = 0.4  # BS.1770 gating block: pyloudnorm needs at least one
MIN_LUFS, MAX_LUFS = -70.0, 0.0  # -70 LUFS is BS.1770's absolute gate: a quieter target would measure as silence
MAX_FADE_MS = 10_000.0
MAX_LOOP_CROSSFADE_MS = 1_000.0
MIN_LOOP_CROSSFADE_MS = 0.5  # shorter than this is a click of its own: the join is then skipped and reported


@dataclass(frozen=True, kw_only=True)
class FinishOptions:
    """How a take is finished. The defaults remove DC and fade 5 ms at each end; trim and loudness are off."""

    loudness_lufs: float | None = None  # integrated loudness target (e.g. -14.0); None: leave the level alone
    peak_ceiling_dbfs: float = -1.0  # the loudness gain never takes the sample peak above this
    dc_remove: bool = True
    fade_in_ms: float = 5.0  # 0: no fade
    fade_out_ms: float = 5.0
    trim_bars: bool = False  # cut to whole bars at the call's tempo, from its bar origin
    bar_multiple: int = 1  # with trim_bars: keep a multiple of this many bars (4: 4-, 8-, 12-bar loops)
    loop_crossfade_ms: float = 0.0  # > 0: join the loop point with the audio around the kept span
    limit_peaks: bool = True  # reach the loudness target with a true-peak limiter (False: lower the gain instead)
    gain_db: float | None = None  # with a loudness target: this gain, not a new measurement (a chain's one gain)
    max_limiting_db: float = 12.0  # the most the limiter may take off a peak; beyond it the gain is lowered

    def __post_init__(self) -> None:
        if self.loudness_lufs is not None:
            if isinstance(self.loudness_lufs, bool) or not isinstance(self.loudness_lufs, (int, float)):
                raise ValueError(f"loudness_lufs must be a number of LUFS or None, not {self.loudness_lufs!r}")
            if not MIN_LUFS <= self.loudness_lufs <= MAX_LUFS:
                raise ValueError(
                    f"loudness_lufs must be between {MIN_LUFS:g} and {MAX_LUFS:g} LUFS "
                    f"(or None for off), not {self.loudness_lufs!r}"
                )
        for name, lo, hi, unit in (
            ("peak_ceiling_dbfs", -60.0, 0.0, "dBFS"),
            ("fade_in_ms", 0.0, MAX_FADE_MS, "ms"),
            ("fade_out_ms", 0.0, MAX_FADE_MS, "ms"),
            ("loop_crossfade_ms", 0.0, MAX_LOOP_CROSSFADE_MS, "ms"),
            ("max_limiting_db", 0.0, 40.0, "dB"),
            ("gain_db", -100.0, 100.0, "dB or None"),
        ):
            value = getattr(self, name)
            if value is None and name == "gain_db":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo:g} and {hi:g} {unit}, not {value!r}")
        for name in ("dc_remove", "trim_bars", "limit_peaks"):
            if type(getattr(self, name)) is not bool:  # 0/1 or "yes" from a settings file are refused too
                raise ValueError(f"{name} must be true or false, not {getattr(self, name)!r}")
        if (
            isinstance(self.bar_multiple, bool)
            or not isinstance(self.bar_multiple, int)
            or not 1 <= self.bar_multiple <= 1024
        ):
            raise ValueError(f"bar_multiple must be a whole number of bars from 1 to 1024, not {self.bar_multiple!r}")

    @classmethod
    def off(cls) -> FinishOptions:
        """Every step disabled: `finish` returns the take as it came."""
        return cls(dc_remove=False, fade_in_ms=0.0, fade_out_ms=0.0)


@dataclass(frozen=True, kw_only=True)
class FinishReport:
    """What `finish` did, for the take's sidecar; loudness values are None where there was nothing to measure."""

    input_samples: int
    output_samples: int
    dc_removed: float = 0.0  # the offset subtracted (in sample units)
    trimmed_start: int = 0  # samples cut before the bar origin
    trimmed_end: int = 0  # samples cut after the last whole bar
    bars: int | None = None  # whole bars in the output when it was trimmed
    bar_samples: float | None = None  # the exact length of one bar, in samples, when trimming was asked for
    loop_crossfade_samples: int = 0
    loop_join: str | None = None  # "start": the audio after the span went into its start; "end": the audio before it
    fade_in_samples: int = 0
    fade_out_samples: int = 0
    loudness_before_lufs: float | None = None
    loudness_after_lufs: float | None = None
    gain_db: float = 0.0
    peak_limited: bool = False  # peaks were held under the ceiling (by the limiter, or by lowering the gain)
    limited_db: float = 0.0  # the limiter's largest gain reduction
    true_peak_dbtp: float | None = None  # the limited output's true peak (4× oversampled)
    gain_fixed: bool = False  # the gain was given (a chain's), not measured from this take
    peak_dbfs: float | None = None  # the output's sample peak; None for an all-zero output
    notes: tuple[str, ...] = ()  # why a step was skipped

    @property
    def samples_trimmed(self) -> int:
        return self.trimmed_start + self.trimmed_end

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (no infinities, tuples as lists)."""
        d = asdict(self)
        d["notes"] = list(self.notes)
        d["samples_trimmed"] = self.samples_trimmed
        return d


def finish_options(session: Session) -> FinishOptions:
    """What a session's finishing parameters ask of `finish` (the bridge's takes, and the benchmarks that
    measure takes as the bridge delivers them)."""
    return FinishOptions(
        loudness_lufs=session.loudness_lufs or None,
        dc_remove=session.dc_remove,
        fade_in_ms=session.fade_ms,
        fade_out_ms=session.fade_ms,
        trim_bars=session.trim_bars,
        loop_crossfade_ms=LOOP_CROSSFADE_MS if session.loop_clean else 0.0,
    )


def loop_run_on_samples(session: Session, sr: int) -> int:
    """Model output a take needs past its end for its loop join, at rate `sr`: twice the crossfade, so the
    resampler's edge stays clear of the audio the join uses."""
    return round(2 * LOOP_CROSSFADE_MS * sr / 1000) if session.loop_clean else 0


def bar_length(sr: int, bpm: float, beats_per_bar: int) -> Fraction:
    """One bar in samples, exactly: the tempo is taken as the decimal it prints as (93.7 -> 937/10)."""
    return Fraction(sr * 60 * beats_per_bar) / Fraction(repr(float(bpm)))


def bar_boundary(k: int, bar: Fraction) -> int:
    """The sample where bar k ends: round(k * bar), halves rounded up, with no accumulated error."""
    return math.floor(k * bar + Fraction(1, 2))


def whole_bars(n_samples: int, bar: Fraction) -> int:
    """The most bars k whose end, bar_boundary(k), lies within n_samples."""
    k = max(0, math.floor(Fraction(n_samples) / bar))
    while bar_boundary(k + 1, bar) <= n_samples:
        k += 1
    while k > 0 and bar_boundary(k, bar) > n_samples:
        k -= 1
    return k


def raised_cosine(n: int) -> np.ndarray:
    """A fade-in ramp of n samples from exactly 0: 0.5 - 0.5*cos(pi*i/n), reaching 1 at sample n (unfaded)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(n, dtype=np.float64) / n)


def integrated_loudness(audio: np.ndarray, sr: int) -> float | None:
    """BS.1770 integrated loudness in LUFS; None for audio under one 400 ms block or gated out as silence."""
    if audio.shape[0] < math.ceil(LOUDNESS_BLOCK_S * sr):
        return None
    lufs = float(pyloudnorm.Meter(sr, block_size=LOUDNESS_BLOCK_S).integrated_loudness(audio.astype(np.float64)))
    return lufs if math.isfinite(lufs) else None


def _float32_at_most(value: float) -> np.float32:
    """The largest float32 that is not above value (float32(value) may round up)."""
    v = np.float32(value)
    return v if float(v) <= value else np.nextafter(v, np.float32(0.0))


def _check_call(audio: Any, sr: Any, bpm: Any, beats_per_bar: Any, bar_origin_samples: Any) -> np.ndarray:
    if not isinstance(audio, np.ndarray) or audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        shape = getattr(audio, "shape", None)
        raise ValueError(f"audio must be a mono float array of shape (T,), not {type(audio).__name__} {shape}")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 1000 <= sr <= 768_000:
        raise ValueError(f"sr must be a sample rate in Hz (1000-768000), not {sr!r}")
    if (
        isinstance(bpm, bool)
        or not isinstance(bpm, (int, float, np.integer, np.floating))
        or not math.isfinite(bpm)
        or not 1.0 <= bpm <= 999.0
    ):
        raise ValueError(f"bpm must be a finite tempo from 1 to 999, not {bpm!r}")
    if (
        isinstance(beats_per_bar, bool)
        or not isinstance(beats_per_bar, (int, np.integer))
        or not 1 <= beats_per_bar <= 99
    ):
        raise ValueError(f"beats_per_bar must be a whole number from 1 to 99, not {beats_per_bar!r}")
    if (
        isinstance(bar_origin_samples, bool)
        or not isinstance(bar_origin_samples, (int, np.integer))
        or bar_origin_samples < 0
    ):
        raise ValueError(f"bar_origin_samples must be a sample index >= 0, not {bar_origin_samples!r}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or infinite samples")
    return audio.astype(np.float64)


def _join_loop(
    x: np.ndarray, follows: np.ndarray, precedes: np.ndarray, want: int
) -> tuple[np.ndarray, int, str | None]:
    """Crossfade the audio that follows the take into its start (or what precedes it into its end)."""
    n = min(want, x.shape[0] // 2)
    if follows.shape[0] >= n or follows.shape[0] >= precedes.shape[0]:
        n, where, other = min(n, follows.shape[0]), "start", follows
    else:
        n, where, other = min(n, precedes.shape[0]), "end", precedes
    if n == 0:
        return x, 0, None
    t = (np.arange(n, dtype=np.float64) + (0.0 if where == "start" else 1.0)) / n
    rise, fall = np.sin(0.5 * np.pi * t), np.cos(0.5 * np.pi * t)
    if where == "start":  # sample 0 is the one after the last; the take's own audio rises over n samples
        x[:n] = x[:n] * rise + other[:n] * fall
    else:  # the last sample is the one before the first
        x[-n:] = x[-n:] * fall + other[other.shape[0] - n :] * rise
    return x, n, where


def _loud_and_limited(
    x: np.ndarray, sr: int, options: FinishOptions, gain_db: float, notes: list[str], *, periodic: bool
) -> tuple[Limited, float, float | None]:
    """The gain that reaches the loudness target once the limiter holds the true peak at the ceiling:
    limiting lowers the loudness a little, so the gain is raised by what is missing (a few rounds).
    Returns the limited audio, the gain that made it (before the limiter) and its loudness."""
    target, ceiling_db, most = options.loudness_lufs, options.peak_ceiling_dbfs, options.max_limiting_db
    assert target is not None
    rounds = 6
    for round_ in range(rounds):
        limited = limit(x * 10.0 ** (gain_db / 20.0), sr, ceiling_db, periodic=periodic)
        if limited.reduction_db > most + 0.05:  # more limiting than a producer would take: back off, say so
            gain_db -= limited.reduction_db - most
            limited = limit(x * 10.0 ** (gain_db / 20.0), sr, ceiling_db, periodic=periodic)
            after = integrated_loudness(limited.audio, sr)
            notes.append(
                f"target {target:g} LUFS not reached: it needs more than {most:g} dB of limiting; "
                f"ends at {after:.1f} LUFS"
                if after is not None
                else f"target {target:g} LUFS not reached"
            )
            return limited, gain_db, after
        after = integrated_loudness(limited.audio, sr)
        if after is None or abs(after - target) <= 0.05:
            return limited, gain_db, after
        if round_ < rounds - 1:
            gain_db += target - after
    if after is not None and abs(after - target) > 0.2:  # dense audio: the limiter takes back most of each raise
        notes.append(f"target {target:g} LUFS not reached under the limiter: ends at {after:.1f} LUFS")
    return limited, gain_db, after


def finish(
    audio: np.ndarray,
    sr: int,
    options: FinishOptions,
    *,
    bpm: float,
    beats_per_bar: int,
    bar_origin_samples: int = 0,
    after: np.ndarray | None = None,
) -> tuple[np.ndarray, FinishReport]:
    """Finish one mono take (float, shape (T,)); returns float32 audio and what was done to it.

    `after` is the audio the model made right after `audio` (its run-on past the take's end), at the same
    rate: what the loop join crossfades into the start. It is never part of the output."""
    x = _check_call(audio, sr, bpm, beats_per_bar, bar_origin_samples)
    run_on = np.zeros(0) if after is None else _check_call(after, sr, bpm, beats_per_bar, 0)
    if not isinstance(options, FinishOptions):
        raise TypeError(f"options must be FinishOptions, not {type(options).__name__}")
    sr, n_in = int(sr), x.shape[0]
    notes: list[str] = []
    report: dict[str, Any] = {}

    start, stop = 0, n_in  # the span that will be kept
    if options.trim_bars:
        bar = bar_length(sr, bpm, int(beats_per_bar))
        report["bar_samples"] = float(bar)
        available = n_in - int(bar_origin_samples)
        unit = options.bar_multiple
        bars = whole_bars(max(available, 0), bar) // unit * unit
        if bars == 0:
            have = float(max(available, 0) / bar)
            need = "one bar" if unit == 1 else f"{unit} bars"
            notes.append(f"not trimmed: {have:.3g} bars after the bar origin, shorter than {need}")
        else:
            start, stop = int(bar_origin_samples), int(bar_origin_samples) + bar_boundary(bars, bar)
            report.update(bars=bars, trimmed_start=start, trimmed_end=n_in - stop)

    if options.dc_remove and stop > start:
        offset = float(np.mean(x[start:stop]))
        x = x - offset
        run_on = run_on - offset
        report["dc_removed"] = offset
    follows, precedes = np.concatenate([x[stop:], run_on]), x[:start]
    x = x[start:stop]
    n = x.shape[0]

    if options.loop_crossfade_ms:
        want = min(round(options.loop_crossfade_ms * sr / 1000.0), n // 2)
        around = min(want, max(follows.shape[0], precedes.shape[0]))
        joined, where = 0, None
        if around >= max(1, round(MIN_LOOP_CROSSFADE_MS * sr / 1000.0)):
            x, joined, where = _join_loop(x, follows, precedes, want)
        else:
            notes.append(
                f"loop point not joined: {around} samples of audio around the take, "
                f"at least {MIN_LOOP_CROSSFADE_MS:g} ms needed"
            )
        report.update(loop_crossfade_samples=joined, loop_join=where)

    fade_in = min(round(options.fade_in_ms * sr / 1000.0), n // 2)
    fade_out = min(round(options.fade_out_ms * sr / 1000.0), n // 2)
    if fade_in:
        x[:fade_in] *= raised_cosine(fade_in)
    if fade_out:
        x[n - fade_out :] *= raised_cosine(fade_out)[::-1]
    if (options.fade_in_ms or options.fade_out_ms) and n < 2:
        notes.append("no fades: fewer than 2 samples")
    report.update(fade_in_samples=fade_in, fade_out_samples=fade_out)

    if options.loudness_lufs is not None:
        before = integrated_loudness(x, sr)
        report["loudness_before_lufs"] = before
        if before is None:
            why = (
                "shorter than one 400 ms loudness block"
                if n < math.ceil(LOUDNESS_BLOCK_S * sr)
                else "silent (below the -70 LUFS gate)"
            )
            notes.append(f"loudness left unchanged: {why}")
        else:
            gain_db = options.loudness_lufs - before
            ceiling_db = options.peak_ceiling_dbfs
            looped = report.get("loop_join") is not None  # a joined loop: the limiter's gain wraps around too
            after = None
            if options.gain_db is not None or options.limit_peaks:
                if options.gain_db is not None:  # the chain's gain: the limiter only holds the peaks
                    gain_db = options.gain_db
                    limited = limit(x * 10.0 ** (gain_db / 20.0), sr, ceiling_db, periodic=looped)
                    after = integrated_loudness(limited.audio, sr)
                    report["gain_fixed"] = True
                else:
                    limited, gain_db, after = _loud_and_limited(x, sr, options, gain_db, notes, periodic=looped)
                x = limited.audio
                report.update(
                    limited_db=limited.reduction_db,
                    peak_limited=limited.reduction_db > 0.0,
                    true_peak_dbtp=limited.true_peak_dbtp,
                )
            else:
                peak = float(np.max(np.abs(x)))
                if peak > 0.0 and 20.0 * math.log10(peak) + gain_db > ceiling_db:
                    gain_db = ceiling_db - 20.0 * math.log10(peak)
                    report["peak_limited"] = True
                    notes.append(
                        f"gain lowered to {gain_db:+.2f} dB to keep the peak at {ceiling_db:g} dBFS "
                        f"(target {options.loudness_lufs:g} LUFS not reached)"
                    )
                x = x * 10.0 ** (gain_db / 20.0)
                after = integrated_loudness(x, sr)
            report["gain_db"] = gain_db
            report["loudness_after_lufs"] = after

    out = x.astype(np.float32)
    if options.loudness_lufs is not None:  # the gain respects the ceiling; this only absorbs float32 rounding
        ceiling = _float32_at_most(10.0 ** (options.peak_ceiling_dbfs / 20.0))
        np.clip(out, -ceiling, ceiling, out=out)
    peak_out = float(np.max(np.abs(out))) if n else 0.0
    return out, FinishReport(
        input_samples=n_in,
        output_samples=n,
        notes=tuple(notes),
        peak_dbfs=20.0 * math.log10(peak_out) if peak_out > 0 else None,
        **report,
    )
