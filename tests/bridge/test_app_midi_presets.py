"""MIDI and presets through the whole bridge: an injected mido port recalls a preset by program
change, sets a knob, starts a job by note and learns a CC from an OSC request; a broken MIDI map
disables MIDI with a clear error while everything else keeps working."""

from __future__ import annotations

import shutil
from pathlib import Path

import mido

from bridge.session.midi_map import load_midi_map

REPO = Path(__file__).resolve().parents[2]


def _presets(tmp_path: Path, midi_text: str) -> Path:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "warm.toml").write_text(
        'description = "test"\nartist = "Alan Jackson"\ngenre = "Country"\n'
        "temperature = 0.95\nlength = 0.1\nlevels = 1\nn_takes = 1\n"
    )
    (folder / "midi.toml").write_text(midi_text)
    return folder


MAP = '[input]\nport = ""\n[program]\n5 = "warm"\n[notes]\n36 = "generate"\n[cc]\n21 = { param = "temperature", min = 0.5, max = 1.0 }\n'


def test_a_controller_recalls_presets_turns_knobs_starts_jobs_and_learns_over_the_real_bridge(make_bridge, tmp_path):
    presets = _presets(tmp_path, MAP)
    port = mido.ports.EchoPort("test-controller")
    bridge, c = make_bridge(presets_dir=presets, midi_ports=[port])
    assert bridge.midi is not None
    assert c.ask("/jb/preset/list").args == ["warm"]
    c.ask("/jb/subscribe")  # jobs started from MIDI have no OSC sender: subscribers hear them

    port.send(mido.Message("program_change", program=5))
    _eventually(lambda: bridge.controller.preset == "warm")
    assert bridge.controller.session.artist == "Alan Jackson"

    port.send(mido.Message("control_change", control=21, value=127))
    _eventually(lambda: bridge.controller.session.temperature == (1.0, 1.0, 1.0))

    port.send(mido.Message("note_on", note=36, velocity=100))
    queued = c.wait_for(lambda m: m.address == "/jb/job/queued", timeout=10)
    assert c.wait_job(queued.args[0]).address == "/jb/job/done"
    take = c.wait_for(lambda m: m.address == "/jb/job/take")
    assert "_warm_" in Path(take.args[3]).name  # the preset is in the take's name

    assert c.ask("/jb/midi/learn", "top_p").args == ["top_p", "waiting"]
    port.send(mido.Message("control_change", control=30, value=64))
    learned = c.wait_for(lambda m: m.address == "/jb/info" and "cc 30" in str(m.args), timeout=5)
    assert learned and load_midi_map(presets / "midi.toml").cc[30].param == "top_p"
    assert c.ask("/jb/midi/learn/cancel").args[0] == "error"  # nothing armed any more


def test_a_broken_midi_map_disables_midi_with_a_clear_error_and_the_bridge_serves_on(make_bridge, tmp_path):
    presets = _presets(tmp_path, '[notes]\n36 = "explode"\n')
    bridge, c = make_bridge(presets_dir=presets, midi_ports=[mido.ports.EchoPort("x")])
    assert bridge.midi is None
    assert c.ask("/jb/preset/load", "warm").args == ["warm"]
    reply = c.ask("/jb/midi/learn", "temperature")
    assert reply.args[0] == "error" and "MIDI is not enabled" in reply.args[1]


def test_saving_a_preset_over_osc_writes_a_file_the_library_reads_back(make_bridge, tmp_path):
    presets = _presets(tmp_path, MAP)
    bridge, c = make_bridge(presets_dir=presets)
    c.ask("/jb/set/genre", "Jazz")
    assert c.ask("/jb/preset/save", "my jazz", "saved from the test").args == ["my jazz"]
    _eventually(lambda: "my jazz" in bridge.presets.names())
    c.ask("/jb/set/genre", "Rock")
    c.ask("/jb/preset/load", "my jazz")
    assert bridge.controller.session.genre == "Jazz"
    bad = c.ask("/jb/preset/save", "../escape")
    assert bad.args[0] == "error" and not (tmp_path / "escape.toml").exists()


def _eventually(check, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    assert check()


def test_the_shipped_midi_map_and_presets_load(tmp_path):
    folder = tmp_path / "p"
    shutil.copytree(REPO / "presets", folder)
    mapping = load_midi_map(folder / "midi.toml")
    from bridge.session.presets import PresetLibrary

    library = PresetLibrary(folder)
    assert library.reload() == {}  # no file refused
    assert set(mapping.programs.values()) <= set(library.names())
