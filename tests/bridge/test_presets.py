"""bridge.session.presets: shipped presets load, bad files are refused by file and key, hot reload keeps the last good one."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from watchdog.observers.polling import PollingEmitter

from bridge.errors import CommandError
from bridge.session.params import Session
from bridge.session.presets import ERROR, LOADED, REMOVED, PresetLibrary, check_preset_name, parse_preset
from tests.bridge.harness import wait_until
from tests.reference import REPO_ROOT, reference_dir

SHIPPED = REPO_ROOT / "presets"


pytestmark = pytest.mark.usefixtures("no_new_threads")


class Events:
    """A recording on_event callback (called from the reload thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, kind: str, name: str, message: str) -> None:
        with self._lock:
            self.seen.append((kind, name, message))

    def of(self, kind: str, name: str) -> list[str]:
        with self._lock:
            return [m for k, n, m in self.seen if (k, n) == (kind, name)]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped examples ------------------------------------------------------------------------


def shipped_files() -> list[Path]:
    return sorted(p for p in SHIPPED.glob("*.toml") if p.name != "midi.toml")


def test_shipped_presets_all_parse_and_describe_themselves() -> None:
    files = shipped_files()
    assert 4 <= len(files) <= 8  # one per loop style the embedded model knows, a top-only sketch and an orchestral one
    for path in files:
        preset = parse_preset(path)
        assert preset.description.strip(), f"{path} has no description"
        preset.apply(Session())  # applies cleanly over the defaults


def test_shipped_presets_make_loop_friendly_takes_at_sensible_temperatures() -> None:
    for path in shipped_files():
        session = parse_preset(path).apply(Session())
        assert session.length_unit == "bars" and session.length in (1, 2, 4, 8, 16), path
        assert 2 <= session.n_takes <= 3, path
        assert 0.96 <= session.temperature[2] <= 0.99, path  # the top level
        assert session.length_s < session.total_s - session.offset_s, path


def test_the_official_model_presets_name_artists_and_genres_of_openais_v2_and_v3_tables() -> None:
    from jukebox_model.labels.tables import load_id_tables, normalise_v2

    ids = reference_dir() / "ids"
    if not (ids / "v2_artist_ids.txt").is_file():
        pytest.skip(f"OpenAI's id tables are not in {ids}")
    v2, v3 = load_id_tables(ids, v3=False), load_id_tables(ids, v3=True)
    official = sorted((SHIPPED / "official").glob("*.toml"))
    assert official
    for path in official:
        session = parse_preset(path).apply(Session())
        assert v3.artists.lookup(session.artist.lower()) is not None, (path, session.artist)
        assert v3.genres.lookup(session.genre.lower()) is not None, (path, session.genre)
        assert v2.artists.lookup(normalise_v2(session.artist)) is not None, (path, session.artist)
        for word in normalise_v2(session.genre).split("_"):
            assert v2.genres.lookup(word) is not None, (path, session.genre, word)


# --- parsing -------------------------------------------------------------------------------------


def test_preset_values_are_checked_and_coerced_like_osc(tmp_path: Path) -> None:
    path = write(tmp_path / "slow.toml", 'description = "d"\ntemperature = 0.97\nlength = 2\nlength_unit = "bar"\n')
    preset = parse_preset(path)
    assert (preset.name, preset.description, preset.path) == ("slow", "d", path)
    assert dict(preset.values) == {"temperature": (0.97, 0.97, 0.97), "length": 2.0, "length_unit": "bars"}
    session = preset.apply(Session(artist="kept"))
    assert (session.artist, session.temperature, session.length_s) == ("kept", (0.97,) * 3, 4.0)


@pytest.mark.parametrize(
    "text, needles",
    [
        ("tempreature = 0.9\n", ["unknown key 'tempreature'", "known: description, artist"]),
        ("temperature = 9.0\n", ["temperature", "outside"]),
        ('n_takes = "many"\n', ["n_takes", "expected a number"]),
        ("length = 2.5\nn_takes = 1.5\n", ["n_takes", "whole number"]),
        ("temperature = [0.9, 0.9]\n", ["temperature", "three"]),
        ("[sampler]\ntop_k = 5\n", ["unknown key 'sampler'"]),
        ("artist = { name = 'x' }\n", ["'artist'", "not a table"]),
        ("description = 3\nlength = 2\n", ["'description' must be text"]),
        ('artist = "unterminated\n', ["not valid TOML"]),
        ('description = "only words"\n', ["sets no parameters"]),
    ],
)
def test_invalid_preset_is_refused_naming_the_file_and_the_key(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = write(tmp_path / "broken.toml", text)
    with pytest.raises(CommandError) as e:
        parse_preset(path)
    message = str(e.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_non_utf8_preset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes('artist = "Bj\xf6rk"\n'.encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        parse_preset(path)


# --- the library -----------------------------------------------------------------------------------


def test_library_loads_presets_but_not_the_midi_map_or_hidden_and_temp_files(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", "length = 2\n")
    write(tmp_path / "midi.toml", "[input]\nport = 'x'\n")
    write(tmp_path / ".hidden.toml", "length = 2\n")
    write(tmp_path / "b.toml~", "length = 2\n")
    write(tmp_path / "c.toml.tmp", "length = 2\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "d.toml", "length = 2\n")
    library = PresetLibrary(tmp_path)
    assert library.reload() == {}
    assert library.names() == ["a"]


def test_unknown_preset_lists_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path / "house.toml", "length = 2\n")
    write(tmp_path / "funk.toml", "length = 4\n")
    library = PresetLibrary(tmp_path)
    library.reload()
    with pytest.raises(CommandError, match=r"unknown preset 'jazz'; known: funk, house"):
        library.get("jazz")
    assert library.get("HOUSE").name == "house"  # a unique case-insensitive match is fine


def test_reload_reports_refused_files_and_keeps_their_last_good_version(tmp_path: Path) -> None:
    events = Events()
    path = write(tmp_path / "p.toml", "length = 2\n")
    library = PresetLibrary(tmp_path, on_event=events)
    library.reload()
    write(path, "length = -1\n")
    errors = library.reload()
    assert set(errors) == {"p"} and "length" in errors["p"] and "keeping the previous version" in errors["p"]
    assert library.get("p").values["length"] == 2.0
    assert events.of(ERROR, "p") == [errors["p"]]
    path.unlink()
    assert library.reload() == {} and library.names() == []
    assert events.of(REMOVED, "p")


def test_saved_preset_reads_back_as_the_same_session(tmp_path: Path) -> None:
    folder = tmp_path / "presets"
    session = Session(
        artist="Kraftwerk",
        genre="Electronic",
        lyrics="a\nb",
        temperature=(0.99, 0.98, 0.97),
        length=8,
        length_unit="bars",
        bpm=123.5,
        seed=None,
        keep_prime=False,
    )
    library = PresetLibrary(folder)
    saved = library.save("my take 1", session, description="from the DAW")
    assert saved.name == "my take 1" and saved.description == "from the DAW"
    assert sorted(p.name for p in folder.iterdir()) == ["my take 1.toml"]  # no temp file left behind
    fresh = PresetLibrary(folder)
    fresh.reload()
    assert fresh.get("my take 1").apply(Session(artist="other", seed=7)) == session
    library.save("seeded", session.replace(seed=1234))
    fresh.reload()
    assert fresh.get("seeded").apply(Session()).seed == 1234


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../up",
        "a/b",
        "a\\b",
        ".hidden",
        "trailing.",
        "trailing ",
        " lead",
        "midi",
        "MIDI",
        "con",
        "nul.x",
        "colon:name",
        "x" * 65,
        "tab\tname",
        "émoji",
    ],
)
def test_unsafe_preset_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CommandError, match="preset name"):
        check_preset_name(name)
    with pytest.raises(CommandError):
        PresetLibrary(tmp_path).save(name, Session())
    assert list(tmp_path.iterdir()) == []


def test_safe_preset_names_are_kept_as_given() -> None:
    for name in ("House Loop", "v2.1", "a_b-c", "x" * 64):
        assert check_preset_name(name) == name


# --- hot reload ------------------------------------------------------------------------------------


@pytest.mark.parametrize("polling", [False, True], ids=["observer", "polling"])
def test_hot_reload_follows_edits_and_keeps_the_last_good_version(tmp_path: Path, polling: bool) -> None:
    events = Events()
    write(tmp_path / "keep.toml", "length = 2\n")
    library = PresetLibrary(tmp_path, on_event=events, poll_interval_s=0.05, debounce_s=0.1)
    library.start(polling=polling)
    try:
        assert any(isinstance(t, PollingEmitter) for t in threading.enumerate()) == polling
        assert library.names() == ["keep"] and events.of(LOADED, "keep")

        path = write(tmp_path / "live.toml", 'description = "v1"\nlength = 4\n')
        wait_until(lambda: "live" in library.names())
        assert library.get("live").values["length"] == 4.0

        write(path, 'description = "v2"\nlength = 8\n')
        wait_until(lambda: library.get("live").description == "v2")
        assert library.get("live").values["length"] == 8.0

        write(path, 'description = "v3"\nlength = 8\nbpm = 9999\n')
        wait_until(lambda: events.of(ERROR, "live"))
        (message,) = events.of(ERROR, "live")
        assert str(path) in message and "bpm" in message and "keeping the previous version" in message
        assert library.get("live").description == "v2"

        write(path, 'description = "v4"\nlength = 1\n')
        wait_until(lambda: library.get("live").description == "v4")

        os.replace(path, tmp_path / "renamed.toml")
        wait_until(lambda: library.names() == ["keep", "renamed"])
        assert events.of(REMOVED, "live")

        (tmp_path / "renamed.toml").unlink()
        wait_until(lambda: library.names() == ["keep"])
    finally:
        library.stop()
    assert library.names() == ["keep"]  # stop() leaves the last state readable


def test_hot_reload_debounces_a_file_written_in_pieces(tmp_path: Path) -> None:
    events = Events()
    library = PresetLibrary(tmp_path, on_event=events, debounce_s=0.3)
    with library:
        with (tmp_path / "slow.toml").open("w", encoding="utf-8") as f:
            for line in ('description = "written slowly"\n', "length = 4\n", 'length_unit = "bars"\n'):
                f.write(line[:5])
                f.flush()
                time.sleep(0.05)
                f.write(line[5:])
                f.flush()
                time.sleep(0.05)
        wait_until(lambda: "slow" in library.names())
        time.sleep(0.4)  # one more debounce: nothing else arrives
    assert [k for k, n, _ in events.seen if n == "slow"] == [LOADED]
    assert library.get("slow").values == {"length": 4.0, "length_unit": "bars"}


def test_hot_reload_ignores_the_midi_map_and_temp_files(tmp_path: Path) -> None:
    events = Events()
    library = PresetLibrary(tmp_path, on_event=events, debounce_s=0.05)
    with library:
        write(tmp_path / "midi.toml", "[program]\n0 = 'x'\n")
        write(tmp_path / ".swap.toml", "not toml at all [[[\n")
        write(tmp_path / "x.toml.part", "length = 2\n")
        write(tmp_path / "sentinel.toml", "length = 2\n")
        wait_until(lambda: "sentinel" in library.names())
        time.sleep(0.2)
    assert library.names() == ["sentinel"]
    assert [n for _, n, _ in events.seen] == ["sentinel"]


def test_library_save_while_watching_loads_once_and_leaves_no_temp_files(tmp_path: Path) -> None:
    events = Events()
    library = PresetLibrary(tmp_path, on_event=events, debounce_s=0.05)
    with library:
        library.save("fresh", Session(length=3.0))
        assert library.get("fresh").values["length"] == 3.0  # at once, not after the debounce
        time.sleep(0.3)
    assert events.of(LOADED, "fresh") and len(events.of(LOADED, "fresh")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.toml"]


def test_a_failing_event_callback_does_not_stop_hot_reload(tmp_path: Path) -> None:
    calls: list[str] = []

    def on_event(kind: str, name: str, message: str) -> None:
        calls.append(name)
        raise RuntimeError("listener bug")

    library = PresetLibrary(tmp_path, on_event=on_event, debounce_s=0.05)
    with library:
        write(tmp_path / "one.toml", "length = 2\n")
        wait_until(lambda: "one" in library.names())
        write(tmp_path / "two.toml", "length = 2\n")
        wait_until(lambda: "two" in library.names())
    assert calls == ["one", "two"]
