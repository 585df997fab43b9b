"""Two-way OSC and the DAW's tempo through the running bridge: the tempo followed from peers speaking
AbletonOSC's and REAPER's documented messages over real UDP, changes made from MIDI or the DAW echoed to
subscribers, a state dump, and the model's artist and genre names in pages."""

from __future__ import annotations

import dataclasses
import socket
import threading
from pathlib import Path

import mido
import soundfile as sf
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.session.params import PARAMS
from tests.bridge.fake_engine import INFO, FakeEngine
from tests.bridge.harness import wait_until


def _osc(address: str, *args) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeLive:
    """AbletonOSC as its README and song.py describe it: requests on its listen port, every reply (and each
    change after start_listen) to the client's host on the fixed reply port, on /live/song/get/<property>."""

    def __init__(self, reply_port: int, tempo: float, numerator: int, denominator: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port, self.reply_port = self.sock.getsockname()[1], reply_port
        self.values = {"tempo": tempo, "signature_numerator": numerator, "signature_denominator": denominator}
        self.listening: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            address = OscMessage(data).address
            for verb in ("get", "start_listen", "stop_listen"):
                prefix = f"/live/song/{verb}/"
                if address.startswith(prefix):
                    prop = address[len(prefix) :]
                    if verb == "stop_listen":
                        self.listening.discard(prop)
                        continue
                    if verb == "start_listen":
                        self.listening.add(prop)
                    self.push(prop)

    def push(self, prop: str) -> None:
        self.sock.sendto(_osc(f"/live/song/get/{prop}", self.values[prop]), ("127.0.0.1", self.reply_port))

    def change(self, prop: str, value) -> None:
        self.values[prop] = value
        if prop in self.listening:
            self.push(prop)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def test_the_session_follows_lives_tempo_and_signature_through_abletonosc_and_subscribers_hear_it(make_bridge):
    reply_port = _free_port()
    live = FakeLive(reply_port, tempo=93.5, numerator=7, denominator=4)
    try:
        bridge, c = make_bridge(engine=FakeEngine, tempo_follow="live", tempo_port=reply_port, tempo_daw_port=live.port)
        c.ask("/jb/subscribe")
        wait_until(
            lambda: bridge.controller.session.bpm == 93.5 and bridge.controller.session.beats_per_bar == 7, timeout=10
        )
        live.change("tempo", 128.0)
        echo = c.wait_for(lambda m: m.address == "/jb/set/bpm" and m.args == [128.0], timeout=10)
        assert echo and c.ask("/jb/get/bpm").args == [128.0]
        assert "tempo" in live.listening
        c.ask("/jb/set/length", 2, "bars")
        c.ask("/jb/set/levels", 1)
        job = c.ask("/jb/generate").args[0]
        assert c.wait_job(job, timeout=30).address == "/jb/job/done"
        take = c.wait_for(lambda m: m.address == "/jb/job/take" and m.args[0] == job)
        assert sf.info(take.args[3]).frames == round(2 * 7 * 60 / 128 * 44100)  # two 7/4 bars at Live's tempo
        bridge.stop()
        wait_until(lambda: "tempo" not in live.listening, timeout=5)  # it unsubscribes when it stops
    finally:
        live.close()


def test_the_session_follows_reapers_tempo_raw_messages(make_bridge):
    port = _free_port()
    bridge, c = make_bridge(engine=FakeEngine, tempo_follow="reaper", tempo_port=port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as reaper:
        reaper.sendto(_osc("/tempo/raw", 101.25), ("127.0.0.1", port))
        wait_until(lambda: bridge.controller.session.bpm == 101.25, timeout=10)
        reaper.sendto(b"garbage", ("127.0.0.1", port))
        reaper.sendto(_osc("/tempo/raw", 5000.0), ("127.0.0.1", port))  # out of any DAW's range: ignored
        reaper.sendto(_osc("/tempo/raw", 140.0), ("127.0.0.1", port))
        wait_until(lambda: bridge.controller.session.bpm == 140.0, timeout=10)
    assert c.ask("/jb/ping").args[0] == "ok"


def test_a_tempo_port_another_program_holds_is_reported_and_the_bridge_serves_on(make_bridge):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        bridge, c = make_bridge(engine=FakeEngine, tempo_follow="reaper", tempo_port=holder.getsockname()[1])
        assert bridge.tempo is None and c.ask("/jb/ping").args[0] == "ok"


def test_changes_made_from_a_midi_controller_are_echoed_to_subscribers(make_bridge, tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "warm.toml").write_text('artist = "Alan Jackson"\nlength = 0.5\n')
    (presets / "midi.toml").write_text(
        '[input]\nport = ""\n[program]\n5 = "warm"\n[cc]\n21 = { param = "top_p", min = 0, max = 1 }\n'
    )
    port = mido.ports.EchoPort("test-controller")
    _, c = make_bridge(engine=FakeEngine, presets_dir=presets, midi_ports=[port])
    c.ask("/jb/subscribe")
    port.send(mido.Message("control_change", control=21, value=127))
    assert c.wait_for(lambda m: m.address == "/jb/set/top_p" and m.args == [1.0], timeout=10)
    port.send(mido.Message("program_change", program=5))
    assert c.wait_for(lambda m: m.address == "/jb/preset/load" and m.args == ["warm"], timeout=10)
    assert c.wait_for(lambda m: m.address == "/jb/set/artist" and m.args == ["Alan Jackson"], timeout=10)
    before = len(c.messages("/jb/set/top_k"))
    c.ask("/jb/set/top_k", 9)  # made over OSC: answered once, not echoed again
    c.ask("/jb/ping")
    assert len(c.messages("/jb/set/top_k")) == before + 1


def test_a_state_dump_gives_the_requester_every_parameter_and_the_bridges_state(make_bridge):
    _, c = make_bridge(engine=FakeEngine)
    c.ask("/jb/set/bpm", 97)
    start = len(c.messages())
    reply = c.ask("/jb/state/dump")
    got = {m.address: m.args for m in c.messages()[start:]}
    assert reply.args == [len(PARAMS) + 4]
    assert {f"/jb/get/{name}" for name in PARAMS} <= set(got) and got["/jb/get/bpm"] == [97.0]
    assert got["/jb/state"][0] == "ready" and "/jb/status" in got and "/jb/preset/current" in got


def test_the_models_artist_and_genre_names_come_in_pages_that_together_hold_every_name(make_bridge):
    artists = tuple(sorted(f"Artist {i:04d} {'x' * (i % 40)}" for i in range(1500))) + ("Alan Jackson",)
    info = dataclasses.replace(INFO, artists=tuple(sorted(artists)), genres=("country", "jazz", "rock"))
    _, c = make_bridge(engine=lambda: FakeEngine(info))
    seen: list[str] = []
    while True:
        total, start, *names = c.ask("/jb/model/artists", len(seen)).args
        assert total == len(artists) and start == len(seen) and names
        seen += names
        if len(seen) == total:
            break
    assert seen == sorted(artists)
    assert c.ask("/jb/model/artists", "alan").args == [1, 0, "Alan Jackson"]
    assert c.ask("/jb/model/genres").args == [3, 0, "country", "jazz", "rock"]
    assert c.ask("/jb/model/genres", "j", 0).args == [1, 0, "jazz"]
    assert c.ask("/jb/model/genres", -1).args[0] == "error"


def test_a_take_made_in_bars_is_sized_at_the_tempo_the_session_had_when_it_was_asked(make_bridge):
    _, c = make_bridge(engine=FakeEngine)
    c.ask("/jb/set/length", 1, "bars", 90)
    c.ask("/jb/set/levels", 1)
    job = c.ask("/jb/generate").args[0]
    c.ask("/jb/set/bpm", 180)  # a tempo change after the request does not change that take
    assert c.wait_job(job, timeout=30).address == "/jb/job/done"
    take = Path(c.wait_for(lambda m: m.address == "/jb/job/take" and m.args[0] == job).args[3])
    assert sf.info(str(take)).frames == round(4 * 60 / 90 * 44100) and "_90bpm-1bars_" in take.name
