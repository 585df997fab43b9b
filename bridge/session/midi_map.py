"""The MIDI mapping file: which port to listen to, and what program changes, notes and CCs do.

One TOML file (default `presets/midi.toml`) that a producer edits by hand and MIDI learn rewrites.
It is checked completely when read, with errors naming the file, the table and the key, so a typo
is found at start-up and not when the knob is first turned on stage:

    [input]
    port = "Launchkey"     # input port name prefix ("" = none); ALSA's "24:0" numbers are ignored
    virtual = false        # open a virtual input port named `port` instead
    channel = 0            # 0 = omni, 1-16 = only that channel
    [program]              # program change -> preset name
    0 = "ambient-pads"
    [notes]                # note number -> action
    60 = "generate"
    [cc]                   # CC number -> parameter, with an optional knob range
    21 = { param = "temperature", min = 0.7, max = 1.1 }
    22 = "length"          # the parameter's own knob range (bridge.session.params)

Saving goes through a hidden temp file, fsync and os.replace, so a crash mid-learn leaves the old
file or the new one, never half of one. tomli_w keeps no comments: a learned file is rewritten plain.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import tomli_w

from bridge.commands import ACTIONS
from bridge.errors import CommandError
from bridge.session.params import PARAMS
from bridge.untrusted.files import UntrustedFileError, read_toml_table
from jukebox_model.atomic import atomic_write

DEFAULT_MIDI_MAP = Path("presets/midi.toml")
MAX_MAP_BYTES = 1_000_000  # 128 notes, programs and CCs fit in a few kB
NOTE_ACTIONS = (*ACTIONS, "learn")  # "learn": arm MIDI learn for the parameter touched last
_TABLES = ("input", "program", "notes", "cc")
_INPUT_KEYS = ("port", "virtual", "channel")
_CC_KEYS = ("param", "min", "max")
_HEADER = (
    "# Jukebox Bridge MIDI map, written by MIDI learn (comments are not kept).\n"
    "# [input] port/virtual/channel; [program] number -> preset; [notes] number -> action; [cc] number -> parameter.\n"
)


class MidiMapError(CommandError):
    """A mapping file that cannot be used; the message names the file, table and key."""


@dataclass(frozen=True)
class CCBinding:
    """A knob: CC 0 sets `lo` and CC 127 sets `hi` (None: the parameter's own knob range)."""

    param: str
    lo: float | None = None
    hi: float | None = None

    def value(self, cc_value: int) -> Any:
        """The parameter value this CC position means (a CommandError if it is out of range)."""
        return PARAMS[self.param].from_cc(cc_value, self.lo, self.hi)


@dataclass(frozen=True)
class MidiInput:
    port: str = ""  # name prefix of the input port to open; "" = none
    virtual: bool = False  # create a virtual port called `port` (not on Windows)
    channel: int = 0  # 0 = omni, 1-16 = that channel only

    def accepts(self, channel: int) -> bool:
        """Whether a message on mido's 0-15 `channel` passes the filter."""
        return self.channel == 0 or channel == self.channel - 1


def _frozen(mapping: Mapping[int, Any]) -> Mapping[int, Any]:
    return MappingProxyType(dict(sorted(mapping.items())))


@dataclass(frozen=True)
class MidiMap:
    """The whole mapping; `with_*` return a changed copy (a learned binding replaces the old one)."""

    input: MidiInput = MidiInput()
    programs: Mapping[int, str] = field(default_factory=dict)  # program number -> preset name
    notes: Mapping[int, str] = field(default_factory=dict)  # note number -> one of NOTE_ACTIONS
    cc: Mapping[int, CCBinding] = field(default_factory=dict)  # controller number -> binding

    def __post_init__(self) -> None:
        for name in ("programs", "notes", "cc"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def with_program(self, number: int, preset: str) -> MidiMap:
        return dataclasses.replace(self, programs={**self.programs, _check_number(number): preset})

    def with_note(self, number: int, action: str) -> MidiMap:
        if action not in NOTE_ACTIONS:
            raise CommandError(f"unknown note action {action!r}; known: {', '.join(NOTE_ACTIONS)}")
        return dataclasses.replace(self, notes={**self.notes, _check_number(number): action})

    def with_cc(self, number: int, binding: CCBinding) -> MidiMap:
        check_cc_binding(binding)
        return dataclasses.replace(self, cc={**self.cc, _check_number(number): binding})

    def range_for(self, param: str) -> tuple[float | None, float | None]:
        """The knob range an existing binding gives `param`, so a re-learned knob keeps it."""
        for binding in self.cc.values():
            if binding.param == param:
                return binding.lo, binding.hi
        return None, None


def _check_number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 127:
        raise CommandError(f"MIDI numbers are 0-127, got {number!r}")
    return number


def check_cc_binding(binding: CCBinding) -> None:
    """Refuse a binding a knob cannot drive: unknown or text parameters, ranges outside the parameter's."""
    spec = PARAMS.get(binding.param)
    if spec is None:
        raise CommandError(f"unknown parameter {binding.param!r}; known: {', '.join(PARAMS)}")
    if spec.kind in ("text", "unit"):
        what = "text" if spec.kind == "text" else "a unit name"
        raise CommandError(f"{binding.param} is {what}: a knob cannot set it")
    if spec.kind == "bool" and (binding.lo is not None or binding.hi is not None):
        raise CommandError(f"{binding.param} is an on/off switch (CC >= 64 is on): min and max mean nothing for it")
    lo, hi = (spec.cc_lo if binding.lo is None else binding.lo), (spec.cc_hi if binding.hi is None else binding.hi)
    if lo is None or hi is None:
        raise CommandError(f"{binding.param} has no knob range of its own: give min and max")
    for end in (0, 127):  # both ends of the knob must give a valid value
        binding.value(end)


def parse_midi_map(data: Mapping[str, Any], source: str = "MIDI map") -> MidiMap:
    """A parsed TOML document -> MidiMap; every problem is a MidiMapError starting with `source`."""
    unknown = [k for k in data if k not in _TABLES]
    if unknown:
        raise MidiMapError(f"{source}: unknown table {_short(unknown[0])}; known: {', '.join(_TABLES)}")
    tables = {}
    for name in _TABLES:
        table = data.get(name, {})
        if not isinstance(table, Mapping):
            raise MidiMapError(f"{source}: [{name}] must be a table, got {_kind(table)}")
        tables[name] = table
    return MidiMap(
        input=_parse_input(tables["input"], source),
        programs=_entries(tables["program"], "program", source, _preset),
        notes=_entries(tables["notes"], "notes", source, _action),
        cc=_entries(tables["cc"], "cc", source, _cc),
    )


def _entries(table: Mapping[str, Any], name: str, source: str, parse: Callable[[Any, str, str], Any]) -> dict[int, Any]:
    """number -> parsed value; messages name the entry by its number, not by the key as written ("0060")."""
    entries = {}
    for key, value in table.items():
        number = _key(key, name, source)
        entries[number] = parse(value, str(number), source)
    return entries


def _parse_input(table: Mapping[str, Any], source: str) -> MidiInput:
    unknown = [k for k in table if k not in _INPUT_KEYS]
    if unknown:
        raise MidiMapError(f"{source}: [input] unknown key {_short(unknown[0])}; known: {', '.join(_INPUT_KEYS)}")
    port, virtual, channel = table.get("port", ""), table.get("virtual", False), table.get("channel", 0)
    if not isinstance(port, str):
        raise MidiMapError(f"{source}: [input] port must be text (a port name prefix), got {_kind(port)}")
    if not isinstance(virtual, bool):
        raise MidiMapError(f"{source}: [input] virtual must be true or false, got {_kind(virtual)}")
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel <= 16:
        raise MidiMapError(f"{source}: [input] channel must be 0 (omni) or 1-16, got {_short(channel)}")
    if virtual and not port.strip():
        raise MidiMapError(f"{source}: [input] virtual = true needs a port name to create")
    return MidiInput(port=port, virtual=virtual, channel=channel)


def _key(key: str, table: str, source: str) -> int:
    text = str(key).strip()
    # at most three digits after any leading zeros: int() of a 5000-digit key would raise a ValueError of its own
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > 3 or not 0 <= int(digits) <= 127:
        raise MidiMapError(f"{source}: [{table}] key {_short(key)}: MIDI numbers are 0-127")
    return int(digits)


def _preset(value: Any, key: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MidiMapError(f"{source}: [program] {key}: expected a preset name, got {_short(value)}")
    return value


def _action(value: Any, key: str, source: str) -> str:
    if value not in NOTE_ACTIONS:
        raise MidiMapError(f"{source}: [notes] {key}: unknown action {_short(value)}; known: {', '.join(NOTE_ACTIONS)}")
    return str(value)


def _cc(value: Any, key: str, source: str) -> CCBinding:
    where = f"{source}: [cc] {key}"
    if isinstance(value, str):
        value = {"param": value}
    if not isinstance(value, Mapping):
        raise MidiMapError(f"{where}: expected a parameter name or {{ param = ..., min = ..., max = ... }}")
    unknown = [k for k in value if k not in _CC_KEYS]
    if unknown:
        raise MidiMapError(f"{where}: unknown key {_short(unknown[0])}; known: {', '.join(_CC_KEYS)}")
    if not isinstance(value.get("param"), str):
        raise MidiMapError(f"{where}: param must be a parameter name, got {_short(value.get('param'))}")
    ends = {}
    for end in ("min", "max"):
        number = value.get(end)
        if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float))):
            raise MidiMapError(f"{where}: {end} must be a number, got {_short(number)}")
        if (isinstance(number, int) and abs(number) > 2**53) or (
            isinstance(number, float) and not math.isfinite(number)
        ):
            raise MidiMapError(f"{where}: {end} must be a finite number, got {_short(number)}")
        ends[end] = None if number is None else float(number)
    binding = CCBinding(value["param"], ends["min"], ends["max"])
    try:
        check_cc_binding(binding)
    except CommandError as e:
        raise MidiMapError(f"{where}: {e}") from None
    return binding


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {_short(value)}"


def _short(value: Any, limit: int = 80) -> str:
    """repr of a value from the file, cut short: a hostile file must not make a multi-megabyte message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def load_midi_map(path: str | Path = DEFAULT_MIDI_MAP, *, missing_ok: bool = False) -> MidiMap:
    """Read and check a mapping file; with `missing_ok` a missing file is the empty map (learn creates it).

    The file is untrusted: only a regular file is read (a FIFO is refused without blocking), and
    every problem, whatever the TOML holds, is a MidiMapError starting with the path, which the app
    logs as "MIDI disabled: ..."."""
    path = Path(path)
    if not os.path.lexists(path):
        if missing_ok:
            return MidiMap()
        raise MidiMapError(f"{path}: no such MIDI map file")
    try:
        data = read_toml_table(path, max_bytes=MAX_MAP_BYTES, what="MIDI map")
    except UntrustedFileError as e:
        detail = str(e).removeprefix(f"MIDI map {str(path)!r} ")
        if detail.startswith("is not valid TOML"):
            raise MidiMapError(f"{path}: not valid TOML: {detail.removeprefix('is not valid TOML ')}") from None
        raise MidiMapError(f"{path}: cannot read the MIDI map: it {detail}") from None
    try:
        return parse_midi_map(data, str(path))
    except MidiMapError:
        raise
    except (TypeError, ValueError, ArithmeticError) as e:  # a shape no check foresaw: still a clear refusal
        raise MidiMapError(f"{path}: unusable MIDI map ({type(e).__name__}: {e})") from None


def midi_map_document(mapping: MidiMap) -> dict[str, Any]:
    """The TOML document for `mapping`; parse_midi_map(midi_map_document(m)) == m."""
    cc: dict[str, Any] = {}
    for number, b in mapping.cc.items():
        ends = {k: v for k, v in (("min", b.lo), ("max", b.hi)) if v is not None}
        cc[str(number)] = {"param": b.param, **ends} if ends else b.param
    return {
        "input": dataclasses.asdict(mapping.input),
        "program": {str(k): v for k, v in mapping.programs.items()},
        "notes": {str(k): v for k, v in mapping.notes.items()},
        "cc": cc,
    }


def save_midi_map(mapping: MidiMap, path: str | Path = DEFAULT_MIDI_MAP) -> None:
    """Write `mapping` atomically: readers see the old file or the new one, never a part.

    A full disk or any other OS error is raised as the OSError itself (MIDI learn reports its words,
    "No space left on device"), and the file on disk is left as it was."""
    text = _HEADER + tomli_w.dumps(midi_map_document(mapping))
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))
