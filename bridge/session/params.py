"""The producer-facing parameters: one table that OSC `/jb/set/<name>`, MIDI CC maps and presets share.

A `Session` is the current conditioning and sampler settings of the bridge (what the next
generate will use). It is immutable: every change makes a new one, so a job keeps exactly the
settings it was queued with. Lengths may be given in seconds or in bars at a tempo; the model
has no tempo input, so bars only decide how many samples a take has (daw-anchors §5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.errors import CommandError
from bridge.untrusted.coerce import to_bool, to_float, to_int, to_text
from jukebox_model.api import UNKNOWN, SamplingParams

MAX_NAME_CHARS = 200  # artist, genre
MAX_LYRICS_CHARS = 20_000  # a whole song's text is a few thousand characters
LOOP_CROSSFADE_MS = 10.0  # loop_clean's join: long enough to hide a step, short enough not to smear a kick


_SAMPLING = SamplingParams()  # the model's defaults: the session starts from them, it does not copy them


@dataclass(frozen=True, kw_only=True, slots=True)
class Session:
    artist: str = UNKNOWN
    genre: str = UNKNOWN
    lyrics: str = ""
    temperature: tuple[float, float, float] = _SAMPLING.temperature  # per level, 0 finest
    top_k: int = _SAMPLING.top_k
    top_p: float = _SAMPLING.top_p
    length: float = 10.0  # of new material, in `length_unit`; the kept prime or the earlier take comes on top
    length_unit: str = "s"  # "s" or "bars"
    bpm: float = 120.0
    beats_per_bar: int = 4
    total_s: float = (
        90.0  # the song length the timing label describes: inside every shipped model's range (embedded 1-120 s)
    )
    offset_s: float = 0.0  # where the take starts in that song
    hop_fraction: tuple[float, float, float] = _SAMPLING.hop_fraction
    n_takes: int = 1
    seed: int | None = None  # None: a fresh seed per job, recorded in every sidecar
    levels: int = 3  # how many levels to render, top first (1 = the preview only)
    prime_s: float = 4.0  # seconds of the prime clip to keep
    keep_prime: bool = True  # the delivered take starts with the prime's own audio, joined sample-exactly
    # finishing (bridge.takes.finishing): all off by default, so a take is the model's output as it is
    loudness_lufs: float = 0.0  # integrated loudness target; 0: leave the level alone
    dc_remove: bool = False
    fade_ms: float = 0.0  # raised-cosine fade at each end; 0: none (a loop's seam should not be faded)
    trim_bars: bool = False  # cut the take's end to whole bars at `bpm` / `beats_per_bar`
    loop_clean: bool = False  # join the loop point (LOOP_CROSSFADE_MS of the model's run-on into the start)

    @property
    def length_s(self) -> float:
        if self.length_unit == "bars":
            return self.length * self.bar_s
        return self.length

    @property
    def bar_s(self) -> float:
        """Seconds in one bar at the session's tempo (beats are the quarter notes bpm counts)."""
        return self.beats_per_bar * 60.0 / self.bpm

    def replace(self, **values: Any) -> Session:
        return dataclasses.replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str  # text | float | int | floats3 | seed | bool | unit
    lo: float | None = None
    hi: float | None = None
    cc_lo: float | None = None  # what CC 0 and CC 127 mean for a knob mapped without its own range
    cc_hi: float | None = None
    help: str = ""

    def coerce(self, args: Sequence[Any]) -> Any:
        """OSC arguments (or one preset/CC value in a list) -> the session value, or CommandError."""
        what = self.name
        if not args:
            raise CommandError(f"{what}: a value is needed")
        if self.kind == "text":
            limit = MAX_LYRICS_CHARS if self.name == "lyrics" else MAX_NAME_CHARS
            # several string arguments are joined with spaces: some clients split text at spaces
            return to_text(" ".join(to_text(a, what, max_chars=limit) for a in args), what, max_chars=limit)
        if len(args) > (3 if self.kind == "floats3" else 1):
            raise CommandError(f"{what}: too many values ({len(args)})")
        if self.kind == "floats3":
            values = tuple(self._check(to_float(a, what)) for a in args)
            if len(values) == 2:
                raise CommandError(f"{what}: give one value (all levels) or three (levels 0, 1, 2)")
            return values * 3 if len(values) == 1 else values
        value = args[0]
        if self.kind == "float":
            return self._check(to_float(value, what))
        if self.kind == "int":
            return int(self._check(to_int(value, what)))
        if self.kind == "bool":
            return to_bool(value, what)
        if self.kind == "seed":
            if isinstance(value, str) and value.strip().lower() in ("random", "none", ""):
                return None
            seed = to_int(value, what)
            if seed < 0:
                return None  # -1: random, as many UIs write it
            return int(self._check(seed))
        if self.kind == "unit":
            unit = to_text(value, what, max_chars=10).strip().lower()
            aliases = {"s": "s", "sec": "s", "secs": "s", "seconds": "s", "second": "s", "bar": "bars", "bars": "bars"}
            if unit not in aliases:
                raise CommandError(f"{what}: expected 's' or 'bars', got {value!r}")
            return aliases[unit]
        raise AssertionError(self.kind)

    def _check(self, number: float) -> float:
        if (self.lo is not None and number < self.lo) or (self.hi is not None and number > self.hi):
            raise CommandError(f"{self.name}: {number:g} is outside [{self.lo:g}, {self.hi:g}]")
        return number

    def from_cc(self, value: int, lo: float | None = None, hi: float | None = None) -> Any:
        """A 7-bit CC value (0–127) mapped linearly onto [lo, hi] (default: the spec's knob range)."""
        lo = self.cc_lo if lo is None else lo
        hi = self.cc_hi if hi is None else hi
        if lo is None or hi is None:
            raise CommandError(f"{self.name} cannot be set from a CC knob")
        x = lo + (hi - lo) * max(0, min(127, value)) / 127.0
        if self.kind == "bool":
            return value >= 64
        if self.kind in ("int", "seed"):
            return self.coerce([round(x)])
        return self.coerce([x])


PARAMS: dict[str, ParamSpec] = {
    p.name: p
    for p in (
        ParamSpec("artist", "text", help="artist name as in the id tables ('unknown' if not found)"),
        ParamSpec("genre", "text", help="genre name(s); several words for the v2 tables"),
        ParamSpec("lyrics", "text", help="lyrics text (lyrics priors only)"),
        ParamSpec("temperature", "floats3", 0.05, 3.0, 0.5, 1.2, help="one value or three (levels 0, 1, 2)"),
        ParamSpec("top_k", "int", 0, 4096, 0, 256, help="0 disables"),
        ParamSpec("top_p", "float", 0.0, 1.0, 0.0, 1.0, help="0 disables"),
        ParamSpec(
            "length",
            "float",
            0.05,
            3600.0,
            1.0,
            60.0,
            help="length of new material in length_unit (the kept prime or earlier take comes on top)",
        ),
        ParamSpec("length_unit", "unit", help="'s' or 'bars'"),
        ParamSpec(
            "bpm", "float", 20.0, 999.0, 60.0, 187.0, help="tempo for bar lengths (followed from the DAW if set up)"
        ),
        ParamSpec("beats_per_bar", "int", 1, 99, 1, 16),
        ParamSpec("total_s", "float", 1.0, 7200.0, 10.0, 600.0, help="song length for the timing label, seconds"),
        ParamSpec("offset_s", "float", 0.0, 7200.0, 0.0, 600.0, help="where the take starts in the song, seconds"),
        ParamSpec("hop_fraction", "floats3", 0.01, 1.0, 0.05, 1.0, help="window hop per level"),
        ParamSpec("n_takes", "int", 1, 64, 1, 16),
        ParamSpec("seed", "seed", 0, 2**31 - 1, help="-1 or 'random' for a fresh seed per job"),
        ParamSpec("levels", "int", 1, 3, 1, 3, help="levels to render, top first"),
        ParamSpec("prime_s", "float", 0.0, 3600.0, 0.0, 30.0, help="seconds of the prime clip to keep"),
        ParamSpec("keep_prime", "bool", cc_lo=0, cc_hi=1, help="1: the take starts with the prime's own audio"),
        ParamSpec("loudness_lufs", "float", -70.0, 0.0, -30.0, -6.0, help="loudness target in LUFS; 0 disables"),
        ParamSpec("dc_remove", "bool", cc_lo=0, cc_hi=1, help="1: remove the take's DC offset"),
        ParamSpec("fade_ms", "float", 0.0, 1000.0, 0.0, 50.0, help="fade at each end, ms; 0 disables"),
        ParamSpec("trim_bars", "bool", cc_lo=0, cc_hi=1, help="1: cut the take's end to whole bars"),
        ParamSpec("loop_clean", "bool", cc_lo=0, cc_hi=1, help="1: the take loops without a click, same length"),
    )
}


def parse_param(name: str, args: Sequence[Any]) -> Any:
    spec = PARAMS.get(name)
    if spec is None:
        raise CommandError(f"unknown parameter {name!r}; known: {', '.join(PARAMS)}")
    return spec.coerce(args)


def session_from_values(values: Mapping[str, Any], base: Session | None = None, *, source: str = "values") -> Session:
    """Apply a mapping of parameter values (a preset, a sidecar) to `base`; every value is checked
    as if it came over OSC, and an unknown name is an error naming `source`."""
    changes = {}
    for name, value in values.items():
        if name not in PARAMS:
            raise CommandError(f"{source}: unknown parameter {name!r}; known: {', '.join(PARAMS)}")
        args = list(value) if isinstance(value, (list, tuple)) else [value]
        if name == "seed" and value is None:
            args = ["random"]
        try:
            changes[name] = PARAMS[name].coerce(args)
        except CommandError as e:
            raise CommandError(f"{source}: {e}") from None
    return (base or Session()).replace(**changes)
