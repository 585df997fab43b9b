"""Everything the bridge reads back is untrusted: presets, MIDI maps and inbox clips may be FIFOs, devices,
hostile TOML or hostile names, and their folders may be deleted and made again while the bridge runs.

Real files in temp folders and real threads throughout. A FIFO that a reader blocked on would hang the
test, so every FIFO made here is released (its write end opened and closed) before the test ends, and
each check that could block runs on a thread with a deadline.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mido
import pytest

import jukebox_model.atomic
from bridge.commands import Origin
from bridge.errors import CommandError
from bridge.session.midi_map import MidiMap, MidiMapError, load_midi_map
from bridge.session.params import Session
from bridge.session.presets import ERROR, LOADED, REMOVED, WATCHING, PresetLibrary, parse_preset
from bridge.transports.midi import MidiControl
from bridge.transports.watch import InboxWatcher
from bridge.untrusted.clip_check import check_clip
from bridge.untrusted.files import UntrustedFileError, open_regular, read_toml_table
from tests.bridge.harness import wait_until
from tests.bridge.test_presets import Events
from tests.bridge.test_watch import RecordingControls, wav_bytes

pytestmark = pytest.mark.usefixtures("no_new_threads")

DEADLINE_S = 5.0
CHECK_S = 0.05  # folder_check_s: how soon a lost folder is noticed


@contextmanager
def fifos(*paths: Path) -> Iterator[list[Path]]:
    """Make FIFOs; on exit release any reader blocked opening one (the bug under test) so nothing hangs."""
    for path in paths:
        os.mkfifo(path)
    try:
        yield list(paths)
    finally:
        for path in paths:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO: no reader waits, as it should be
            except OSError:
                pass


def finishes(fn: Callable[[], Any], what: str, seconds: float = DEADLINE_S) -> Any:
    """fn() run on a thread; the test fails (instead of hanging) if it is still running after `seconds`."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except Exception as e:  # noqa: BLE001 - handed to the test below, raised there
            outcome["error"] = e

    thread = threading.Thread(target=run, name=f"deadline {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what} blocked for more than {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- bridge.untrusted: the readers themselves -----------------------------------------------------------


def test_open_regular_refuses_a_fifo_and_a_device_before_opening_them(tmp_path: Path) -> None:
    (tmp_path / "zero").symlink_to("/dev/zero")
    with fifos(tmp_path / "pipe"):
        for name, kind in (("pipe", "a FIFO"), ("zero", "a character device")):
            with pytest.raises(UntrustedFileError, match=f"is {kind}, not a regular file"):
                finishes(lambda n=name: open_regular(tmp_path / n, what="clip"), f"open_regular({name})")


def test_read_toml_table_turns_every_decoding_failure_into_one_error_naming_the_file(tmp_path: Path) -> None:
    cases = {
        "deep.toml": "a = " + "[" * 5000 + "]" * 5000 + "\n",  # RecursionError inside tomllib
        "digits.toml": "a = " + "9" * 5000 + "\n",  # ValueError: more digits than int() takes
        "broken.toml": "a = [\n",
        "latin.toml": None,
    }
    (tmp_path / "latin.toml").write_bytes('a = "Bj\xf6rk"\n'.encode("latin-1"))
    for name, text in cases.items():
        if text is not None:
            write(tmp_path / name, text)
        with pytest.raises(UntrustedFileError) as e:
            read_toml_table(tmp_path / name, what="preset")
        assert str(tmp_path / name) in str(e.value) and len(str(e.value)) < 500


# --- presets ----------------------------------------------------------------------------------------------


def test_a_fifo_named_like_a_preset_neither_blocks_start_up_nor_stops_the_other_presets(tmp_path: Path) -> None:
    events = Events()
    write(tmp_path / "good.toml", "length = 2\n")
    library = PresetLibrary(tmp_path, on_event=events, debounce_s=0.05, folder_check_s=CHECK_S)
    with fifos(tmp_path / "pipe.toml"):
        try:
            finishes(library.start, "PresetLibrary.start with a FIFO in the folder")
            assert library.names() == ["good"]
            (message,) = events.of(ERROR, "pipe")
            assert str(tmp_path / "pipe.toml") in message and "FIFO" in message
        finally:
            library.stop()


def test_a_fifo_dropped_into_the_watched_presets_folder_is_reported_and_hot_reload_goes_on(tmp_path: Path) -> None:
    events = Events()
    library = PresetLibrary(tmp_path, on_event=events, debounce_s=0.05, folder_check_s=CHECK_S)
    try:
        library.start()
        with fifos(tmp_path / "late.toml"):
            wait_until(lambda: events.of(ERROR, "late"))
            write(tmp_path / "after.toml", "length = 4\n")  # the reload thread is not stuck on the FIFO
            wait_until(lambda: "after" in library.names())
    finally:
        library.stop()
    assert "FIFO" in events.of(ERROR, "late")[0] and "late" not in library.names()


def test_a_preset_that_is_a_link_to_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "zero.toml").symlink_to("/dev/zero")
    with pytest.raises(CommandError, match="is a character device, not a regular file"):
        finishes(lambda: parse_preset(tmp_path / "zero.toml"), "parse_preset(/dev/zero)")


HOSTILE_PRESETS = {
    "list-at-top": ("values = [1, 2]\n", "unknown key 'values'"),
    "table-of-tables": ("[values]\ntemperature = { a = 1 }\n", "unknown key 'values'"),
    "name-as-list": ('name = ["x"]\n', "unknown key 'name'"),
    "inline-table": ("temperature = { a = 1 }\n", "must be a value, not a table"),
    "nested-list": ("temperature = [[0.9, 0.9, 0.9]]\n", "not nested lists or tables"),
    "list-of-tables": ("temperature = [{ a = 1 }]\n", "not nested lists or tables"),
    "array-of-tables": ("[[temperature]]\na = 1\n", "temperature"),
    "datetime-number": ("length = 1979-05-27T07:32:00Z\n", "length"),
    "datetime-text": ("artist = 1979-05-27\n", "artist"),
    "empty-list": ("artist = []\n", "artist"),
    "unit-list": ('length_unit = ["s", "bars"]\n', "length_unit"),
    "infinite": ("temperature = inf\n", "temperature"),
    "not-a-number": ("bpm = nan\n", "bpm"),
    "huge-int": ("n_takes = " + "9" * 400 + "\n", "n_takes"),  # float() of it overflows
    "huge-seed": ("seed = " + "9" * 400 + "\n", "seed"),
    "description-list": ('description = ["x"]\nlength = 2\n', "'description' must be text"),
    "description-table": ("description = { a = 1 }\nlength = 2\n", "'description' must be text"),
    "empty-key": ('"" = 1\n', "unknown key ''"),
    "control-key": ('"len\\u0000gth" = 1\n', "unknown key 'len\\x00gth'"),
    "bool-for-text": ("artist = true\n", "artist"),
    "nul-in-text": ('artist = "a\\u0000b"\n', "NUL"),
}


@pytest.mark.parametrize("text, needle", HOSTILE_PRESETS.values(), ids=HOSTILE_PRESETS.keys())
def test_hostile_preset_shapes_are_refused_with_a_command_error_naming_the_file(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = write(tmp_path / "hostile.toml", text)
    with pytest.raises(CommandError) as e:
        parse_preset(path)
    assert str(path) in str(e.value) and needle in str(e.value)


def test_a_folder_full_of_hostile_presets_is_logged_and_skipped_and_start_up_goes_on(tmp_path: Path) -> None:
    events = Events()
    for name, (text, _) in HOSTILE_PRESETS.items():
        write(tmp_path / f"{name}.toml", text)
    write(tmp_path / "good.toml", "length = 2\n")
    library = PresetLibrary(tmp_path, on_event=events)
    with library:
        assert library.names() == ["good"]
    refused = {n for k, n, _ in events.seen if k == ERROR}
    assert refused == set(HOSTILE_PRESETS)


def test_preset_files_with_hostile_names_are_refused_and_reported_with_printable_names(tmp_path: Path) -> None:
    events = Events()
    write(tmp_path / "line\nbreak.toml", "length = 2\n")
    write(tmp_path / "bidi\u202eevil.toml", "length = 2\n")
    with open(os.path.join(os.fsencode(tmp_path), b"latin-\xe9.toml"), "w", encoding="utf-8") as f:  # not UTF-8
        f.write("length = 2\n")
    write(tmp_path / "Dub (slow) é.toml", "length = 2\n")  # unusual but harmless: kept
    library = PresetLibrary(tmp_path, on_event=events)
    errors = library.reload()
    assert library.names() == ["Dub (slow) é"]
    assert sorted(errors) == ["bidi\\u202eevil", "latin-\\udce9", "line\\nbreak"]
    for _kind, name, message in events.seen:
        (name + message).encode("utf-8")  # a report can carry them: no lone surrogates
        assert "\n" not in name + message and "\u202e" not in name + message
    assert all("rename the file" in m for k, _, m in events.seen if k == ERROR)


@pytest.mark.parametrize("name", ["../escape", "..", "sub/../../escape", "/tmp/escape", "..\\escape", "a\x00b"])
def test_a_preset_name_with_dot_dot_never_writes_outside_the_presets_folder(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    before, absolute_there = sorted(tmp_path.rglob("*")), Path("/tmp/escape.toml").exists()
    with pytest.raises(CommandError, match="preset name"):
        PresetLibrary(folder).save(name, Session())
    assert sorted(tmp_path.rglob("*")) == before
    assert Path("/tmp/escape.toml").exists() == absolute_there  # folder / "/tmp/escape.toml" is that path


def test_saving_over_a_preset_that_links_outside_replaces_the_link_not_the_file_it_points_to(tmp_path: Path) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    outside = write(tmp_path / "outside.toml", "length = 2\n")
    (folder / "linked.toml").symlink_to(outside)
    library = PresetLibrary(folder)
    library.reload()
    library.save("linked", Session(length=7.0))
    assert outside.read_text(encoding="utf-8") == "length = 2\n"
    assert not (folder / "linked.toml").is_symlink() and library.get("linked").values["length"] == 7.0


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync of a written file fails as a full disk does (delayed allocation reports ENOSPC there)."""

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(jukebox_model.atomic.os, "fsync", fsync)


def test_saving_a_preset_on_a_full_disk_says_so_and_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    library = PresetLibrary(tmp_path)
    library.save("keep", Session(length=3.0))
    _full_disk(monkeypatch)
    with pytest.raises(CommandError) as e:
        library.save("keep", Session(length=9.0))
    assert type(e.value) is CommandError  # not an AssertionError or a bare OSError
    assert "No space left on device" in str(e.value) and str(tmp_path / "keep.toml") in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.toml"]  # no temp file left behind
    assert parse_preset(tmp_path / "keep.toml").values["length"] == 3.0


def test_a_deleted_and_recreated_presets_folder_is_reported_and_watched_again(tmp_path: Path) -> None:
    events = Events()
    folder = tmp_path / "presets"
    folder.mkdir()
    write(folder / "first.toml", "length = 2\n")
    library = PresetLibrary(folder, on_event=events, debounce_s=0.05, folder_check_s=CHECK_S)
    with library:
        assert library.names() == ["first"]
        shutil.rmtree(folder)
        wait_until(lambda: events.of(ERROR, ""))
        assert "is gone" in events.of(ERROR, "")[0] and library.names() == []
        assert events.of(REMOVED, "first") and library.folder_lost
        folder.mkdir()
        write(folder / "early.toml", "length = 3\n")  # may land before the new watch: found by the re-read
        wait_until(lambda: events.of(WATCHING, ""))
        wait_until(lambda: "early" in library.names())
        write(folder / "later.toml", "length = 4\n")  # hot reload works on the new folder
        wait_until(lambda: "later" in library.names())
        write(folder / "later.toml", "length = 5\n")
        wait_until(lambda: library.get("later").values["length"] == 5.0)
    assert str(folder) in events.of(WATCHING, "")[0]


@pytest.mark.parametrize("polling", [False, True], ids=["observer", "polling"])
def test_a_presets_folder_replaced_faster_than_the_check_still_gets_new_presets(tmp_path: Path, polling: bool) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    library = PresetLibrary(folder, debounce_s=0.05, poll_interval_s=0.05, folder_check_s=CHECK_S)
    library.start(polling=polling)
    try:
        shutil.rmtree(folder)
        folder.mkdir()  # at once: the old watch is dead, the path is a folder again
        time.sleep(4 * CHECK_S)
        write(folder / "fresh.toml", "length = 2\n")
        wait_until(lambda: "fresh" in library.names())
    finally:
        library.stop()


def test_a_presets_path_that_is_a_file_does_not_stop_start_up_and_is_watched_once_it_is_a_folder(
    tmp_path: Path,
) -> None:
    events = Events()
    folder = write(tmp_path / "presets", "not a folder")
    library = PresetLibrary(folder, on_event=events, debounce_s=0.05, folder_check_s=CHECK_S)
    with library:
        wait_until(lambda: events.of(ERROR, ""))
        folder.unlink()
        folder.mkdir()
        write(folder / "p.toml", "length = 2\n")
        wait_until(lambda: library.names() == ["p"])
    assert events.of(WATCHING, "") and events.of(LOADED, "p")


# --- MIDI maps --------------------------------------------------------------------------------------------

HOSTILE_MAPS = {
    "top-level-list": ("input = [1, 2]\n", "[input] must be a table"),
    "array-of-tables": ("[[cc]]\nparam = 'top_p'\n", "[cc] must be a table"),
    "port-list": ("[input]\nport = ['x']\n", "[input] port must be text"),
    "program-list": ("[program]\n0 = ['a']\n", "[program] 0: expected a preset name"),
    "note-table": ("[notes]\n60 = { a = 1 }\n", "[notes] 60: unknown action"),
    "cc-list": ("[cc]\n21 = ['top_p']\n", "[cc] 21: expected a parameter name"),
    "infinite-range": ("[cc]\n21 = { param = 'top_k', min = inf, max = 1 }\n", "min must be a finite number"),
    "nan-range": ("[cc]\n21 = { param = 'temperature', max = nan }\n", "max must be a finite number"),
    "huge-range": ("[cc]\n21 = { param = 'top_k', min = 0, max = " + "9" * 400 + " }\n", "max must be a finite"),
    "huge-key": ('[notes]\n"' + "6" * 5000 + '" = "generate"\n', "MIDI numbers are 0-127"),
    "huge-zero-key": ('[notes]\n"' + "0" * 5000 + '" = "cancel"\n[cc]\n' + "0" * 4999 + "1 = 'x'\n", "[cc] 1: unknown"),
    "deep-nesting": ("input = " + "[" * 3000 + "]" * 3000 + "\n", "not valid TOML"),
    "datetime-channel": ("[input]\nchannel = 1979-05-27\n", "[input] channel must be 0"),
    "param-table": ("[cc]\n21 = { param = { a = 1 } }\n", "param must be a parameter name"),
}


@pytest.mark.parametrize("text, needle", HOSTILE_MAPS.values(), ids=HOSTILE_MAPS.keys())
def test_a_midi_map_of_the_wrong_shape_is_a_midi_map_error_naming_the_file(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = write(tmp_path / "midi.toml", text)
    with pytest.raises(MidiMapError) as e:  # the error the app turns into "MIDI disabled: <message>"
        load_midi_map(path)
    assert str(e.value).startswith(f"{path}: ") and needle in str(e.value)
    assert len(str(e.value)) < 600  # a hostile value is quoted, not copied whole


def test_a_midi_map_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    with fifos(tmp_path / "midi.toml") as (path,), pytest.raises(MidiMapError) as e:
        finishes(lambda: load_midi_map(path, missing_ok=True), "load_midi_map(FIFO)")
    assert str(e.value).startswith(f"{path}: ") and "FIFO" in str(e.value)


def test_a_missing_midi_map_is_still_the_empty_map_when_allowed_but_a_dangling_link_is_an_error(
    tmp_path: Path,
) -> None:
    assert load_midi_map(tmp_path / "midi.toml", missing_ok=True) == MidiMap()
    (tmp_path / "linked.toml").symlink_to(tmp_path / "nowhere.toml")
    with pytest.raises(MidiMapError, match="linked.toml: cannot read the MIDI map: it does not exist"):
        load_midi_map(tmp_path / "linked.toml", missing_ok=True)


def test_midi_learn_on_a_full_disk_reports_the_systems_words_and_keeps_the_binding(tmp_path: Path, monkeypatch) -> None:
    controls = RecordingControls()
    path = tmp_path / "midi.toml"
    midi = MidiControl(controls, MidiMap(), map_path=path, ports=[])
    try:
        midi.start_learn("top_p", Origin("osc", client=("127.0.0.1", 9), address="/jb/midi/learn"))
        _full_disk(monkeypatch)
        midi.handle(mido.Message("control_change", control=30, value=1))
    finally:
        midi.close()
    ((_, message, error),) = controls.reports
    assert error and message.startswith("learned cc 30 -> top_p, but saving") and "No space left on device" in message
    assert "AssertionError" not in message and midi.mapping.cc[30].param == "top_p"
    assert list(tmp_path.iterdir()) == []  # neither a half map nor a temp file


# --- inbox clips ------------------------------------------------------------------------------------------


def test_check_clip_refuses_a_fifo_and_a_device_named_like_clips_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "zero.wav").symlink_to("/dev/zero")
    with (
        fifos(tmp_path / "pipe.wav") as (pipe,),
        pytest.raises(CommandError, match=r"pipe\.wav: not a regular file \(it is a FIFO\)"),
    ):
        finishes(lambda: check_clip(pipe), "check_clip(FIFO)")
    with pytest.raises(CommandError, match=r"zero\.wav: not a regular file \(it is a character device\)"):
        finishes(lambda: check_clip(tmp_path / "zero.wav"), "check_clip(/dev/zero)")


def _inbox(folder: Path, controls: RecordingControls, **kw: Any) -> InboxWatcher:
    kw.setdefault("quiet_s", 0.2)
    kw.setdefault("poll_interval_s", 0.05)
    kw.setdefault("folder_check_s", CHECK_S)
    return InboxWatcher(folder, controls, **kw)


def test_a_fifo_dropped_into_the_inbox_is_reported_and_the_next_clip_is_still_primed(tmp_path: Path) -> None:
    controls = RecordingControls()
    with fifos(tmp_path / "early.wav"):  # there at start-up: the scan must not open it either
        inbox = _inbox(tmp_path, controls)
        try:
            finishes(inbox.start, "InboxWatcher.start with a FIFO in the folder")
            with fifos(tmp_path / "pipe.wav"):
                wait_until(lambda: any("pipe.wav" in m for m in controls.messages()))
                (tmp_path / "real.wav").write_bytes(wav_bytes())
                wait_until(controls.primed)
        finally:
            inbox.stop()
    (refusal,) = [m for m in controls.messages() if "pipe.wav" in m]
    assert refusal.startswith("inbox clip refused:") and "FIFO" in refusal
    assert controls.primed() == [tmp_path / "real.wav"]


@pytest.mark.parametrize("polling", [False, True], ids=["observer", "polling"])
def test_a_deleted_and_recreated_inbox_is_reported_and_keeps_accepting_clips(tmp_path: Path, polling: bool) -> None:
    controls = RecordingControls()
    folder = tmp_path / "inbox"
    with _inbox(folder, controls, polling=polling):
        (folder / "before.wav").write_bytes(wav_bytes(seed=1))
        wait_until(controls.primed)
        shutil.rmtree(folder)
        wait_until(lambda: any("is gone" in m for m in controls.messages()))
        folder.mkdir()
        wait_until(lambda: any("there again" in m for m in controls.messages()))
        (folder / "after.wav").write_bytes(wav_bytes(seed=2))
        wait_until(lambda: len(controls.primed()) == 2)
    assert controls.primed() == [folder / "before.wav", folder / "after.wav"]
    gone, back = [(o, m, e) for o, m, e in controls.reports if "inbox folder" in m]
    assert gone[0] == back[0] == Origin("watch", address=str(folder))
    assert gone[2] is True and back[2] is False and str(folder) in gone[1]


def test_a_clip_exported_into_a_recreated_inbox_before_the_new_watch_begins_is_primed(tmp_path: Path) -> None:
    controls = RecordingControls()
    folder = tmp_path / "inbox"
    with _inbox(folder, controls, folder_check_s=0.5):  # a wide window between mkdir and the new watch
        shutil.rmtree(folder)
        wait_until(lambda: any("is gone" in m for m in controls.messages()))
        folder.mkdir()
        (folder / "early.wav").write_bytes(wav_bytes())  # no watch sees this event
        wait_until(controls.primed)
    assert controls.primed() == [folder / "early.wav"]


def test_an_inbox_moved_away_and_back_remembers_its_clips_without_priming_them_again(tmp_path: Path) -> None:
    controls = RecordingControls()
    folder = tmp_path / "inbox"
    with _inbox(folder, controls, auto_start_job=True) as inbox:
        (folder / "take.wav").write_bytes(wav_bytes())
        wait_until(controls.primed)
        os.replace(folder, tmp_path / "away")
        wait_until(lambda: any("is gone" in m for m in controls.messages()))
        os.replace(tmp_path / "away", folder)  # the same folder, the same clips: not new exports
        wait_until(lambda: any("there again" in m for m in controls.messages()))
        time.sleep(0.6)  # longer than the quiet period: a second prime (and job) would have come by now
        assert controls.primed() == [folder / "take.wav"] and inbox.latest() == folder / "take.wav"
        (folder / "next.wav").write_bytes(wav_bytes(seed=5))
        wait_until(lambda: len(controls.primed()) == 2)
    assert controls.primed() == [folder / "take.wav", folder / "next.wav"]


def test_an_inbox_moved_away_is_reported_and_a_new_folder_in_its_place_is_watched(tmp_path: Path) -> None:
    controls = RecordingControls()
    folder = tmp_path / "inbox"
    with _inbox(folder, controls):
        os.replace(folder, tmp_path / "elsewhere")  # inotify's watch follows it there: no event says it left
        wait_until(lambda: any("is gone" in m for m in controls.messages()))
        folder.mkdir()
        (folder / "new.wav").write_bytes(wav_bytes())
        wait_until(controls.primed)
    assert controls.primed() == [folder / "new.wav"]


# --- the whole bridge -------------------------------------------------------------------------------------


def test_a_bridge_with_a_fifo_hostile_presets_and_a_wrong_shaped_midi_map_starts_and_serves_without_midi(
    make_bridge, tmp_path: Path, caplog
) -> None:
    presets = tmp_path / "presets"
    presets.mkdir()
    write(presets / "good.toml", "length = 0.1\nlevels = 1\n")
    write(presets / "shape.toml", "[values]\ntemperature = { a = 1 }\n")
    write(presets / "midi.toml", "[cc]\n21 = { param = 'top_k', min = inf, max = 1 }\n")  # an OverflowError once
    with fifos(presets / "pipe.toml"):
        bridge, c = finishes(
            lambda: make_bridge(presets_dir=presets, midi_ports=[mido.ports.EchoPort("x")]),
            "starting the bridge",
            seconds=60,
        )
    assert bridge.midi is None
    (disabled,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("MIDI disabled")]
    assert str(presets / "midi.toml") in disabled and "min must be a finite number" in disabled
    assert c.ask("/jb/preset/list").args == ["good"]
    assert c.ask("/jb/preset/load", "good").args == ["good"]
