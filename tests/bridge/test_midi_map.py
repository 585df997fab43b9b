"""The MIDI mapping file: the shipped example, round trips through disk, and the errors a producer would make."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.commands import ACTIONS
from bridge.errors import CommandError
from bridge.session.midi_map import (
    NOTE_ACTIONS,
    CCBinding,
    MidiInput,
    MidiMap,
    MidiMapError,
    load_midi_map,
    midi_map_document,
    parse_midi_map,
    save_midi_map,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "presets" / "midi.toml"


def test_shipped_example_is_a_valid_map_using_every_action() -> None:
    mapping = load_midi_map(EXAMPLE)
    assert mapping.input == MidiInput(port="Launchkey", virtual=False, channel=0)
    assert set(mapping.notes.values()) == set(NOTE_ACTIONS)
    assert mapping.cc[21] == CCBinding("temperature", 0.7, 1.1)
    assert mapping.cc[22] == CCBinding("length")  # the parameter's own knob range
    assert mapping.programs[0] == "orchestral-theme"


def test_learn_can_arm_each_controller_action() -> None:
    assert NOTE_ACTIONS == (*ACTIONS, "learn")


def test_saved_map_loads_back_equal_and_leaves_no_temp_files(tmp_path: Path) -> None:
    mapping = load_midi_map(EXAMPLE).with_cc(30, CCBinding("top_p", 0.2, 0.9)).with_note(61, "retry")
    path = tmp_path / "maps" / "midi.toml"
    save_midi_map(mapping, path)
    assert load_midi_map(path) == mapping
    save_midi_map(mapping.with_program(5, "dark"), path)  # overwriting an existing file
    assert load_midi_map(path).programs[5] == "dark"
    assert sorted(p.name for p in path.parent.iterdir()) == ["midi.toml"]


def test_document_round_trips_without_a_file() -> None:
    mapping = MidiMap(
        input=MidiInput(port="IAC Driver Bus 1", virtual=True, channel=16),
        programs={3: "lofi-keys"},
        notes={60: "generate", 62: "cancel"},
        cc={1: CCBinding("temperature"), 7: CCBinding("seed", 0, 100)},
    )
    assert parse_midi_map(midi_map_document(mapping)) == mapping


def test_with_binding_replaces_the_same_number_and_keeps_the_original() -> None:
    original = MidiMap(cc={21: CCBinding("temperature")}, notes={60: "generate"}, programs={0: "a"})
    changed = original.with_cc(21, CCBinding("top_p")).with_note(60, "retry").with_program(0, "b")
    assert (changed.cc[21].param, changed.notes[60], changed.programs[0]) == ("top_p", "retry", "b")
    assert (original.cc[21].param, original.notes[60], original.programs[0]) == ("temperature", "generate", "a")


def test_map_tables_cannot_be_changed_in_place() -> None:
    mapping = MidiMap(notes={60: "generate"})
    with pytest.raises(TypeError):
        mapping.notes[61] = "retry"  # type: ignore[index]


def test_with_binding_refuses_bad_numbers_and_actions() -> None:
    with pytest.raises(CommandError, match="0-127"):
        MidiMap().with_note(128, "generate")
    with pytest.raises(CommandError, match="unknown note action 'play'"):
        MidiMap().with_note(60, "play")
    with pytest.raises(CommandError, match="lyrics is text"):
        MidiMap().with_cc(21, CCBinding("lyrics"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[knobs]\n", "unknown table 'knobs'"),
        ("notes = 3\n", "[notes] must be a table"),
        ("[input]\nname = 'x'\n", "[input] unknown key 'name'"),
        ("[input]\nport = 5\n", "[input] port must be text"),
        ("[input]\nvirtual = 'yes'\n", "[input] virtual must be true or false"),
        ("[input]\nchannel = 17\n", "[input] channel must be 0 (omni) or 1-16"),
        ("[input]\nchannel = true\n", "[input] channel must be 0 (omni) or 1-16"),
        ("[input]\nvirtual = true\n", "virtual = true needs a port name"),
        ("[program]\n128 = 'a'\n", "[program] key '128': MIDI numbers are 0-127"),
        ("[program]\nC3 = 'a'\n", "[program] key 'C3': MIDI numbers are 0-127"),
        ("[program]\n0 = ''\n", "[program] 0: expected a preset name"),
        ("[program]\n0 = 4\n", "[program] 0: expected a preset name"),
        ("[notes]\n60 = 'play'\n", "[notes] 60: unknown action 'play'"),
        ("[notes]\n-1 = 'generate'\n", "[notes] key '-1': MIDI numbers are 0-127"),
        ("[cc]\n21 = 'tempreature'\n", "[cc] 21: unknown parameter 'tempreature'"),
        ("[cc]\n21 = 'artist'\n", "[cc] 21: artist is text: a knob cannot set it"),
        ("[cc]\n21 = 'length_unit'\n", "[cc] 21: length_unit is a unit name"),
        ("[cc]\n21 = { param = 'temperature', min = 'low' }\n", "[cc] 21: min must be a number"),
        ("[cc]\n21 = { param = 'temperature', max = true }\n", "[cc] 21: max must be a number"),
        ("[cc]\n21 = { param = 'temperature', max = 5.0 }\n", "[cc] 21: temperature: 5 is outside [0.05, 3]"),
        ("[cc]\n21 = { param = 'top_k', min = -1, max = 10 }\n", "[cc] 21: top_k: -1 is outside [0, 4096]"),
        ("[cc]\n21 = 'seed'\n", "[cc] 21: seed has no knob range of its own: give min and max"),
        ("[cc]\n21 = { param = 'keep_prime', min = 0, max = 1 }\n", "[cc] 21: keep_prime is an on/off switch"),
        ("[cc]\n21 = { param = 'top_p', step = 2 }\n", "[cc] 21: unknown key 'step'"),
        ("[cc]\n21 = { min = 0 }\n", "[cc] 21: param must be a parameter name"),
        ("[cc]\n21 = 0.5\n", "[cc] 21: expected a parameter name or"),
        ("[cc\n", "not valid TOML"),
    ],
)
def test_invalid_map_is_refused_naming_file_table_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "midi.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MidiMapError) as caught:
        load_midi_map(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_missing_map_is_an_error_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "midi.toml"
    with pytest.raises(MidiMapError, match="no such MIDI map file"):
        load_midi_map(path)
    assert load_midi_map(path, missing_ok=True) == MidiMap()


def test_map_errors_are_command_errors_for_the_osc_reply() -> None:
    with pytest.raises(CommandError):
        parse_midi_map({"notes": {"60": "dance"}})


def test_channel_filter_uses_daw_channel_numbers() -> None:
    assert MidiInput(channel=0).accepts(0) and MidiInput(channel=0).accepts(15)
    assert MidiInput(channel=2).accepts(1)  # mido's channel 1 is the DAW's channel 2
    assert not MidiInput(channel=2).accepts(0)
