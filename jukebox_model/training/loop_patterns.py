"""One loop of the corpus written as MIDI: drums, bass, chords, lead and pad in a style's idiom.

A loop is a four-bar phrase (a one-bar groove over a four-bar progression) repeated with the
parts coming in and out, fills at the end of eight-bar sections, and nothing else that would
break the repetition: what a small prior should learn is that a loop goes on. Everything is
drawn from one `numpy.random.Generator`, so a seed gives the same MIDI file.
"""

from __future__ import annotations

from dataclasses import dataclass

import mido
import numpy as np

from .loop_styles import (
    CLAP,
    CLOSED_HAT,
    CRASH,
    HIGH_TOM,
    INSTRUMENT_SETS,
    KICK,
    LOW_TOM,
    MID_TOM,
    OPEN_HAT,
    PROGRESSIONS,
    RIDE,
    RIM,
    SCALES,
    SHAKER,
    SNARE,
    TAMBOURINE,
    InstrumentSet,
    Style,
)

TICKS_PER_BEAT = 480
STEPS_PER_BAR = 16
TICKS_PER_STEP = TICKS_PER_BEAT // 4
PHRASE_BARS = 4
CHANNELS = {"bass": 0, "chords": 1, "lead": 2, "pad": 3, "drums": 9}
KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class Note:
    bar: int
    step: float  # 16ths from the bar's start (fractional for swing)
    part: str
    pitch: int
    velocity: int
    steps: float  # duration in 16ths


@dataclass(frozen=True)
class LoopSpec:
    """What was drawn for one loop; the corpus's tracks.json records it."""

    style: str
    instruments: str
    bpm: int
    key: int  # pitch class of the tonic
    mode: str
    bars: int
    progression: tuple[int, ...]
    parts: tuple[str, ...]

    @property
    def key_name(self) -> str:
        return f"{KEY_NAMES[self.key]} {self.mode}"

    @property
    def seconds(self) -> float:
        return self.bars * 4 * 60.0 / self.bpm


Hits = list[tuple[int, int, int]]  # (step, pitch, velocity) within one bar


def _drum_groove(style: Style, rng: np.random.Generator) -> Hits:
    """One bar of drums in the style's idiom, with a few drawn variations."""
    hits: Hits = []

    def add(steps, pitch, lo, hi):
        hits.extend((s, pitch, int(rng.integers(lo, hi + 1))) for s in steps)

    name = style.name
    if name in ("techno", "house"):
        add((0, 4, 8, 12), KICK, 112, 124)
        if name == "house" or rng.random() < 0.7:
            add((4, 12), CLAP, 90, 110)
        if rng.random() < 0.5:
            add((2, 6, 10, 14), OPEN_HAT, 70, 90)
            add((0, 4, 8, 12), CLOSED_HAT, 45, 60)
        else:
            add(range(16), CLOSED_HAT, 40, 55)
            add((2, 6, 10, 14), CLOSED_HAT, 75, 90)
        if name == "house" and rng.random() < 0.6:
            add(range(1, 16, 2), SHAKER, 40, 60)
        if rng.random() < 0.6:
            add(sorted(rng.choice([3, 7, 9, 11, 13, 15], size=2, replace=False)), RIM, 60, 85)
        if name == "techno" and rng.random() < 0.3:
            add((15,), KICK, 80, 95)
    elif name == "funk":
        kicks = [(0, 10), (0, 6, 10), (0, 3, 10, 14), (0, 7, 10), (0, 2, 7, 10, 11)]
        add(kicks[rng.integers(len(kicks))], KICK, 100, 120)
        add((4, 12), SNARE, 105, 120)
        ghosts = [s for s in (3, 6, 9, 11, 13, 15) if rng.random() < 0.35]
        add(ghosts, SNARE, 30, 48)
        add(range(0, 16, 2), CLOSED_HAT, 75, 90)
        add(range(1, 16, 2), CLOSED_HAT, 40, 55)
        if rng.random() < 0.5:
            add((14,), OPEN_HAT, 75, 90)
        if rng.random() < 0.3:
            add((0, 4, 8, 12), TAMBOURINE, 50, 70)
    elif name == "hiphop":
        kicks = [(0, 7, 10), (0, 3, 8, 10), (0, 10, 11), (0, 2, 9), (0, 6, 10)]
        add(kicks[rng.integers(len(kicks))], KICK, 105, 122)
        add((4, 12), SNARE if rng.random() < 0.6 else CLAP, 100, 118)
        add(range(0, 16, 2), CLOSED_HAT, 55, 80)
        if rng.random() < 0.4:
            add((7,), OPEN_HAT, 60, 75)
        if rng.random() < 0.3:
            add((15,), SNARE, 30, 45)
    elif name == "synthwave":
        add((0, 8) if rng.random() < 0.5 else (0, 4, 8, 12), KICK, 108, 122)
        add((4, 12), SNARE, 100, 118)
        add(range(0, 16, 2), CLOSED_HAT, 55, 75)
        if rng.random() < 0.5:
            add((4, 12), TAMBOURINE, 50, 65)
    else:  # ambient: a soft brushed or orchestral pulse
        add((0,), KICK, 60, 80)
        if rng.random() < 0.5:
            add((8,), KICK, 50, 65)
        add((4, 12), RIM if rng.random() < 0.5 else SNARE, 45, 65)
        add((0, 4, 8, 12), RIDE, 40, 60)
    return hits


def _fill(rng: np.random.Generator) -> Hits:
    """The last beat of an eight-bar section: a snare or tom run."""
    toms = (HIGH_TOM, MID_TOM, LOW_TOM, LOW_TOM) if rng.random() < 0.5 else (SNARE,) * 4
    return [(12 + i, toms[i], 80 + 8 * i) for i in range(4)]


def _scale_note(tonic: int, scale: tuple[int, ...], degree: int, octave: int) -> int:
    """MIDI pitch of a scale degree (any integer; wraps into neighbouring octaves)."""
    o, d = divmod(degree, len(scale))
    return 12 * (octave + o + 1) + tonic + scale[d]


def _chord(tonic: int, scale: tuple[int, ...], degree: int, octave: int, size: int) -> list[int]:
    return [_scale_note(tonic, scale, degree + 2 * i, octave) for i in range(size)]


def _rhythm(style: Style, part: str, rng: np.random.Generator) -> list[tuple[int, float]]:
    """(step, length in 16ths) of one bar of a melodic part."""
    n = style.name
    if part == "bass":
        if n == "techno":
            options = [[(s, 1.5) for s in (2, 6, 10, 14)], [(s, 0.9) for s in range(16) if s % 4]]
        elif n == "house":
            options = [[(0, 1.5), (3, 1), (6, 1.5), (10, 1), (11, 1), (14, 1.5)], [(s, 1.5) for s in (2, 6, 10, 14)]]
        elif n == "funk":
            steps = sorted({0, *rng.choice([2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15], size=6, replace=False).tolist()})
            options = [[(s, 0.8) for s in steps]]
        elif n == "hiphop":
            options = [[(0, 6), (7, 2.5), (10, 4)], [(0, 9), (10, 5)]]
        elif n == "synthwave":
            options = [[(s, 1.6) for s in range(0, 16, 2)], [(s, 0.9) for s in range(16)]]
        else:
            options = [[(0, 16)], [(0, 8), (8, 8)]]
    elif part == "chords":
        if n == "techno":
            options = [[(0, 1)], [(2, 1), (10, 1)], [(3, 1), (6, 1), (10, 1)]]
        elif n == "house":
            options = [[(s, 1.2) for s in (2, 6, 10, 14)], [(3, 1.5), (6, 1.5), (10, 1.5)], [(0, 3), (6, 2), (10, 2)]]
        elif n == "funk":
            steps = sorted(rng.choice(range(16), size=6, replace=False).tolist())
            options = [[(s, 0.6) for s in steps]]
        elif n == "hiphop":
            options = [[(0, 7), (8, 7)], [(0, 14)], [(0, 3), (6, 2), (12, 3)]]
        else:
            options = [[(0, 16)], [(0, 8), (8, 8)]]
    else:  # lead: arpeggios and riffs
        if n in ("techno", "synthwave"):
            options = [[(s, 0.9) for s in range(16)], [(s, 1.6) for s in range(0, 16, 2)]]
        elif n == "ambient":
            options = [[(s, 3.5) for s in range(0, 16, 2)], [(s, 4) for s in range(0, 16, 4)]]
        else:
            steps = sorted(rng.choice(range(16), size=int(rng.integers(3, 7)), replace=False).tolist())
            options = [[(s, 1.5) for s in steps]]
    return options[rng.integers(len(options))]


def _parts_by_phrase(style: Style, n_phrases: int, rng: np.random.Generator) -> list[set[str]]:
    """Which parts play in each four-bar phrase: a fixed line-up with parts entering and a rare breakdown."""
    chance = {"drums": style.drums, "bass": style.bass, "chords": style.chords, "lead": style.lead, "pad": style.pad}
    lineup = {p for p, c in chance.items() if rng.random() < c}
    melodic = {"bass", "chords", "lead", "pad"}
    if not lineup & melodic:
        lineup.add("chords" if style.chords >= style.bass else "bass")
    if len(lineup) < 2:
        lineup.add("bass" if "bass" not in lineup else "chords")
    phrases = []
    for p in range(n_phrases):
        playing = set(lineup)
        if p == 0 and rng.random() < 0.5:  # an intro without the top line
            playing -= {"lead"} if "lead" in playing else {"pad"}
        elif p > 1 and p < n_phrases - 1 and rng.random() < 0.12:  # breakdown
            playing -= {"drums"}
        if not playing:
            playing = set(lineup)
        phrases.append(playing)
    return phrases


def write_loop(style: Style, rng: np.random.Generator, *, bars: int) -> tuple[mido.MidiFile, LoopSpec]:
    """A loop of `bars` bars (a multiple of four) as a type-1 MIDI file and what it is."""
    if bars % PHRASE_BARS:
        raise ValueError(f"bars must be a multiple of {PHRASE_BARS}, got {bars}")
    kit: InstrumentSet = INSTRUMENT_SETS[style.sets[rng.integers(len(style.sets))]]
    bpm = int(rng.integers(style.bpm[0], style.bpm[1] + 1))
    tonic = int(rng.integers(12))
    mode = style.modes[rng.integers(len(style.modes))]
    scale = SCALES[mode]
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    phrases = _parts_by_phrase(style, bars // PHRASE_BARS, rng)

    groove = _drum_groove(style, rng)
    fills = rng.random() < 0.6
    rhythms = {p: _rhythm(style, p, rng) for p in ("bass", "chords", "lead")}
    # scale steps away from the chord's root (fifth, octave, sixth below) on some of the bass's 16ths
    bass_shape = [int(rng.choice([0, 0, 0, 4, 7, -3])) if style.name in ("funk", "house") else 0 for _ in range(16)]
    octave_jumps = style.name in ("synthwave", "funk", "house") and rng.random() < 0.6
    chord_size = 4 if style.name in ("house", "hiphop", "funk") and rng.random() < 0.7 else 3
    lead_contour = rng.integers(0, 6, size=16).tolist()
    bass_octave = 1 if tonic >= 5 else 2

    notes: list[Note] = []
    for bar in range(bars):
        playing = phrases[bar // PHRASE_BARS]
        degree = progression[bar % PHRASE_BARS]
        if "drums" in playing:
            hits = groove
            if fills and bar % 8 == 7:
                hits = [h for h in groove if h[0] < 12 or h[1] == KICK] + _fill(rng)
            if bar % 8 == 0 and bar > 0 and rng.random() < 0.5 and style.name != "ambient":
                hits = [*hits, (0, CRASH, 90)]
            for step, pitch, vel in hits:
                length = 2 if pitch in (OPEN_HAT, CRASH, RIDE) else 1
                notes.append(Note(bar, step, "drums", pitch, vel, length))
        if "bass" in playing:
            for i, (step, length) in enumerate(rhythms["bass"]):
                pitch = _scale_note(tonic, scale, degree + bass_shape[step], bass_octave)
                if octave_jumps and i % 2:
                    pitch += 12
                notes.append(Note(bar, step, "bass", pitch, int(rng.integers(95, 112)), length))
        if "chords" in playing:
            chord = _chord(tonic, scale, degree, 4, chord_size)
            arpeggiate = style.name == "ambient" and kit.chords == 46
            for i, (step, length) in enumerate(rhythms["chords"]):
                voices = [chord[i % len(chord)]] if arpeggiate else chord
                for pitch in voices:
                    notes.append(Note(bar, step, "chords", pitch, int(rng.integers(70, 90)), length))
        if "lead" in playing:
            chord = _chord(tonic, scale, degree, 5, 3) + [_scale_note(tonic, scale, degree + 7, 5)]
            chord += [chord[1] + 12, chord[2] + 12]
            for i, (step, length) in enumerate(rhythms["lead"]):
                pitch = chord[lead_contour[i % 16] % len(chord)]
                notes.append(Note(bar, step, "lead", pitch, int(rng.integers(65, 85)), length))
        if "pad" in playing:
            for pitch in _chord(tonic, scale, degree, 3 if style.name != "ambient" else 4, 3):
                notes.append(Note(bar, 0, "pad", pitch + 12, 55, 16))

    spec = LoopSpec(
        style=style.name,
        instruments=kit.name,
        bpm=bpm,
        key=tonic,
        mode=mode,
        bars=bars,
        progression=tuple(progression),
        parts=tuple(sorted(set().union(*phrases))),
    )
    return _to_midi(notes, kit, bpm, style.swing, bars, rng), spec


def _to_midi(
    notes: list[Note], kit: InstrumentSet, bpm: int, swing: float, bars: int, rng: np.random.Generator
) -> mido.MidiFile:
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    conductor.append(mido.MetaMessage("end_of_track", time=bars * STEPS_PER_BAR * TICKS_PER_STEP))
    mid.tracks.append(conductor)
    programs = {"bass": kit.bass, "chords": kit.chords, "lead": kit.lead, "pad": kit.pad, "drums": kit.kit}
    volumes = {"drums": 112, "bass": 104, "chords": 84, "lead": 76, "pad": 66}
    total = bars * STEPS_PER_BAR * TICKS_PER_STEP
    for part, channel in CHANNELS.items():
        events: list[tuple[int, int, mido.Message]] = []
        for n in (n for n in notes if n.part == part):
            step = n.step + (swing if int(n.step) % 2 else 0.0)
            start = round((n.bar * STEPS_PER_BAR + step) * TICKS_PER_STEP)
            end = min(start + max(1, round(n.steps * TICKS_PER_STEP) - 6), total)  # a loop ends on its last bar
            events.append((start, 1, mido.Message("note_on", channel=channel, note=n.pitch, velocity=n.velocity)))
            events.append((end, 0, mido.Message("note_off", channel=channel, note=n.pitch, velocity=0)))
        track = mido.MidiTrack()
        volume = int(np.clip(volumes[part] + rng.integers(-8, 9), 1, 127))
        track.append(mido.Message("control_change", channel=channel, control=7, value=volume, time=0))
        track.append(mido.Message("program_change", channel=channel, program=programs[part], time=0))
        now = 0
        for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(track)
    return mid
