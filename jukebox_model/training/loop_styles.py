"""The loop corpus's vocabulary: instrument sets (the artist labels) and styles (the genre labels).

An instrument set is a drum kit and four General MIDI programs from FluidR3_GM (Debian's
fluid-soundfont-gm, MIT). A style fixes a tempo range, the sets that play it, the scales it is
written in, its swing and how often each part plays. The numbers are musical conventions
(four-on-the-floor at 118-134 BPM, boom bap at 84-96 BPM, ...), not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

DRUM_BANK = 128  # General MIDI percussion bank in SoundFont files


@dataclass(frozen=True)
class InstrumentSet:
    """One 'artist': which sounds play the drums, bass, chords, lead and pad parts."""

    name: str
    kit: int  # drum preset in bank 128
    bass: int  # General MIDI program numbers, 0-based
    chords: int
    lead: int
    pad: int


@dataclass(frozen=True)
class Style:
    """One 'genre': how its loops are written."""

    name: str
    bpm: tuple[int, int]  # inclusive range
    sets: tuple[str, ...]  # InstrumentSet names that play it
    modes: tuple[str, ...]  # scale names from SCALES
    swing: float  # delay of every second 16th, as a fraction of a 16th
    drums: float  # probability that a phrase has drums
    bass: float
    chords: float
    lead: float
    pad: float


INSTRUMENT_SETS: dict[str, InstrumentSet] = {
    s.name: s
    for s in (
        InstrumentSet("tr808 machine", kit=25, bass=38, chords=90, lead=81, pad=89),
        InstrumentSet("electronic rig", kit=24, bass=39, chords=5, lead=80, pad=50),
        InstrumentSet("power studio", kit=16, bass=34, chords=17, lead=81, pad=90),
        InstrumentSet("studio band", kit=0, bass=33, chords=4, lead=61, pad=48),
        InstrumentSet("room band", kit=8, bass=36, chords=7, lead=62, pad=16),
        InstrumentSet("jazz trio", kit=32, bass=32, chords=0, lead=11, pad=48),
        InstrumentSet("brush ensemble", kit=40, bass=35, chords=46, lead=11, pad=89),
        InstrumentSet("orchestra", kit=48, bass=42, chords=48, lead=73, pad=49),
    )
}

STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "techno",
            bpm=(124, 134),
            sets=("tr808 machine", "electronic rig", "power studio"),
            modes=("minor", "phrygian", "dorian"),
            swing=0.0,
            drums=1.0,
            bass=0.9,
            chords=0.45,
            lead=0.5,
            pad=0.25,
        ),
        Style(
            "house",
            bpm=(118, 126),
            sets=("tr808 machine", "electronic rig", "studio band"),
            modes=("minor", "major", "dorian"),
            swing=0.08,
            drums=1.0,
            bass=0.9,
            chords=0.8,
            lead=0.25,
            pad=0.3,
        ),
        Style(
            "funk",
            bpm=(92, 108),
            sets=("room band", "studio band", "power studio"),
            modes=("dorian", "mixolydian", "minor"),
            swing=0.12,
            drums=1.0,
            bass=0.95,
            chords=0.8,
            lead=0.35,
            pad=0.0,
        ),
        Style(
            "hiphop",
            bpm=(84, 96),
            sets=("studio band", "jazz trio", "room band", "tr808 machine"),
            modes=("minor", "dorian"),
            swing=0.22,
            drums=1.0,
            bass=0.9,
            chords=0.75,
            lead=0.3,
            pad=0.2,
        ),
        Style(
            "synthwave",
            bpm=(100, 116),
            sets=("electronic rig", "tr808 machine"),
            modes=("minor", "major"),
            swing=0.0,
            drums=1.0,
            bass=0.95,
            chords=0.4,
            lead=0.5,
            pad=0.8,
        ),
        Style(
            "ambient",
            bpm=(70, 90),
            sets=("brush ensemble", "orchestra", "jazz trio"),
            modes=("major", "minor", "lydian", "dorian"),
            swing=0.0,
            drums=0.35,
            bass=0.6,
            chords=0.85,
            lead=0.5,
            pad=0.9,
        ),
    )
}

RHYTHMIC_STYLES = tuple(name for name, s in STYLES.items() if s.drums >= 0.9)

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
}

# four-bar progressions as 0-based scale degrees, one chord a bar
PROGRESSIONS: tuple[tuple[int, ...], ...] = (
    (0, 5, 2, 6),
    (0, 3, 4, 0),
    (0, 6, 5, 6),
    (0, 0, 3, 3),
    (0, 4, 5, 3),
    (0, 3, 0, 4),
    (5, 3, 0, 4),
    (1, 4, 0, 0),
    (0, 0, 0, 0),
    (0, 2, 3, 4),
)

# General MIDI percussion keys
KICK, RIM, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT = 36, 37, 38, 39, 42, 44, 46
LOW_TOM, MID_TOM, HIGH_TOM, CRASH, RIDE, TAMBOURINE, COWBELL, SHAKER = 45, 47, 50, 49, 51, 54, 56, 70
