"""The MIDI transport, driven by real mido messages through mido port objects (no ALSA needed).

Most tests use a callback port (a real `mido.ports.BaseInput` that calls its callback as rtmidi ports do,
but on the test's thread, so results are there when `feed` returns); raw bytes go through `mido.Parser`.
Ports without callbacks (EchoPort, mido's socket PortServer) exercise the polling reader thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import mido
import mido.sockets
import pytest
from mido.ports import BaseInput

from bridge.commands import Origin
from bridge.errors import CommandError
from bridge.session.midi_map import CCBinding, MidiInput, MidiMap, load_midi_map, save_midi_map
from bridge.transports.midi import MidiControl, MidiUnavailable, match_input, port_base_name
from tests.bridge.harness import wait_until

OSC = Origin("osc", client=("127.0.0.1", 9001), address="/jb/midi/learn")
LAUNCHKEY_NAMES = [
    "Midi Through:Midi Through Port-0 14:0",
    "Launchkey MK3:Launchkey MK3 MIDI 1 24:0",
    "Launchkey MK3:Launchkey MK3 MIDI 2 24:1",
]


class RecordingControls:
    """Records every call; raises CommandError (or any exception) for the inputs listed in `fail`."""

    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.reports: list[tuple[Origin, str, bool]] = []
        self.fail = fail or {}
        self._changed = threading.Condition()

    def _record(self, call: tuple[Any, ...], key: str) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        if key in self.fail:
            raise self.fail[key]

    def set_param(self, name: str, args: Sequence[Any], *, origin: Origin) -> Any:
        self._record(("set_param", name, list(args)), name)
        return args

    def load_preset(self, name: str, *, origin: Origin) -> None:
        self._record(("load_preset", name), name)

    def trigger(self, action: str, *, origin: Origin) -> str | None:
        self._record(("trigger", action), action)
        return "job-1"

    def set_prime(self, path: Path, *, origin: Origin, start_job: bool = False) -> str | None:
        raise AssertionError("MIDI never sets a prime")

    def report(self, origin: Origin, message: str, *, error: bool = True) -> None:
        with self._changed:
            self.reports.append((origin, message, error))
            self._changed.notify_all()

    def wait_for_calls(self, n: int, timeout: float = 30.0) -> list[tuple[Any, ...]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.calls) >= n, timeout), self.calls
            return list(self.calls)


class CallbackPort(BaseInput):
    """A real mido input port that delivers each message to its callback, as rtmidi's ports do."""

    def _open(self, **kwargs: Any) -> None:
        self._callback = None

    @property
    def callback(self) -> Any:
        return self._callback

    @callback.setter
    def callback(self, func: Any) -> None:
        self._callback = func

    def feed(self, *messages: mido.Message) -> None:
        for message in messages:
            if self._callback is None:
                self._messages.append(message)
            else:
                self._callback(message)

    def feed_bytes(self, data: bytes) -> None:
        parser = mido.Parser()
        parser.feed(data)
        self.feed(*parser)


class FakeBackend:
    """A mido backend with the given port names; opening returns a CallbackPort and records the call."""

    def __init__(self, names: list[str], error: Exception | None = None) -> None:
        self.names, self.error = names, error
        self.opened: list[tuple[str | None, bool, CallbackPort]] = []

    def get_input_names(self) -> list[str]:
        if self.error is not None:
            raise self.error
        return self.names

    def open_input(self, name: str | None = None, virtual: bool = False, **kwargs: Any) -> BaseInput:
        port = CallbackPort(name)
        port.callback = kwargs.get("callback")
        self.opened.append((name, virtual, port))
        return port


MAPPING = MidiMap(
    input=MidiInput(port="Launchkey"),
    programs={3: "ambient-pads", 4: "missing"},
    notes={60: "generate", 61: "continue", 62: "retry", 63: "upsample", 64: "cancel", 72: "learn"},
    cc={21: CCBinding("temperature", 0.7, 1.1), 22: CCBinding("length"), 23: CCBinding("top_k", 0, 512)},
)


@pytest.fixture(autouse=True)
def _no_midi_threads_left() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("midi-in")]
    assert not left, f"MIDI reader threads left running: {left}"


@pytest.fixture
def controls() -> RecordingControls:
    return RecordingControls()


@pytest.fixture
def port() -> CallbackPort:
    return CallbackPort("Launchkey MK3 MIDI 1")


def listening(controls: RecordingControls, port: BaseInput, mapping: MidiMap = MAPPING, **kw: Any) -> MidiControl:
    """A MidiControl listening to `port` (closed at the end of a `with`)."""
    return MidiControl(controls, mapping, ports=[port], **kw)


# -- message handling ---------------------------------------------------------------------------------------


def test_program_change_recalls_the_mapped_preset(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port):
        port.feed(mido.Message("program_change", program=3))
    assert controls.calls == [("load_preset", "ambient-pads")]


def test_raw_program_change_bytes_through_mido_parser(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port):
        port.feed_bytes(bytes([0xC0, 3]))
    assert controls.calls == [("load_preset", "ambient-pads")]


def test_unmapped_program_is_reported_not_raised(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port, map_path="presets/midi.toml"):
        port.feed(mido.Message("program_change", program=9))
    assert controls.calls == []
    [(origin, message, error)] = controls.reports
    assert error and origin.kind == "midi" and "program 9" in origin.address
    assert "program 9 is not mapped to a preset" in message and "presets/midi.toml" in message


@pytest.mark.parametrize(
    ("note", "action"), [(60, "generate"), (61, "continue"), (62, "retry"), (63, "upsample"), (64, "cancel")]
)
def test_note_on_triggers_its_action(controls: RecordingControls, port: CallbackPort, note: int, action: str) -> None:
    with listening(controls, port):
        port.feed(mido.Message("note_on", note=note, velocity=100))
    assert controls.calls == [("trigger", action)]


def test_raw_note_on_bytes_trigger(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port):
        port.feed_bytes(bytes([0x90, 60, 100]))
    assert controls.calls == [("trigger", "generate")]


def test_note_off_and_velocity_zero_note_on_do_nothing(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port):
        port.feed_bytes(bytes([0x90, 60, 0, 0x80, 60, 64]))  # note-on velocity 0, then a note-off
        port.feed(mido.Message("note_on", note=60, velocity=0), mido.Message("note_off", note=60))
        port.feed(mido.Message("note_on", note=50, velocity=90))  # an unmapped key: played, not an error
    assert controls.calls == [] and controls.reports == []


def test_cc_maps_onto_the_bound_range(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port):
        port.feed(*(mido.Message("control_change", control=21, value=v) for v in (0, 127)))
        port.feed_bytes(bytes([0xB0, 21, 64]))
    low, high, middle = controls.calls
    assert low == ("set_param", "temperature", [pytest.approx(0.7)] * 3)  # one knob sets every level
    assert high == ("set_param", "temperature", [pytest.approx(1.1)] * 3)
    assert middle == ("set_param", "temperature", [pytest.approx(0.7 + 0.4 * 64 / 127)] * 3)


def test_cc_without_own_range_uses_the_parameter_knob_range(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port):
        port.feed(mido.Message("control_change", control=22, value=127), mido.Message("control_change", control=23))
        port.feed(mido.Message("control_change", control=23, value=127), mido.Message("control_change", control=1))
    assert controls.calls == [
        ("set_param", "length", [pytest.approx(60.0)]),
        ("set_param", "top_k", [0]),
        ("set_param", "top_k", [512]),
    ]  # CC 1 (the mod wheel) is not mapped: ignored


def test_channel_filter_passes_only_its_channel(controls: RecordingControls, port: CallbackPort) -> None:
    mapping = MidiMap(input=MidiInput(channel=2), notes={60: "generate"}, programs={3: "ambient-pads"})
    with listening(controls, port, mapping):
        port.feed_bytes(bytes([0x90, 60, 100, 0xC0, 3]))  # channel 1: filtered out
        port.feed_bytes(bytes([0x91, 60, 100, 0xC1, 3]))  # channel 2
    assert controls.calls == [("trigger", "generate"), ("load_preset", "ambient-pads")]


def test_other_message_types_are_ignored(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port):
        port.feed(mido.Message("pitchwheel", pitch=100), mido.Message("clock"), mido.Message("sysex", data=[1, 2]))
        port.feed(mido.Message("aftertouch", value=3), mido.Message("start"))
    assert controls.calls == [] and controls.reports == []


def test_command_error_becomes_a_report_and_later_messages_work(port: CallbackPort) -> None:
    controls = RecordingControls(fail={"missing": CommandError("no preset named 'missing'")})
    with listening(controls, port):
        port.feed(mido.Message("program_change", program=4), mido.Message("note_on", note=60, velocity=1))
    assert controls.calls == [("load_preset", "missing"), ("trigger", "generate")]
    assert [(m, e) for _, m, e in controls.reports] == [("no preset named 'missing'", True)]


def test_unexpected_exception_is_reported_and_the_port_keeps_working(port: CallbackPort) -> None:
    controls = RecordingControls(fail={"generate": RuntimeError("queue exploded")})
    with listening(controls, port):
        port.feed(mido.Message("note_on", note=60, velocity=100), mido.Message("note_on", note=64, velocity=100))
    assert controls.calls == [("trigger", "generate"), ("trigger", "cancel")]
    [(_, message, error)] = controls.reports
    assert error and "RuntimeError: queue exploded" in message


def test_a_failing_report_does_not_escape_the_callback(port: CallbackPort) -> None:
    class BrokenReports(RecordingControls):
        def report(self, origin: Origin, message: str, *, error: bool = True) -> None:
            raise OSError("notifier gone")

    controls = BrokenReports()
    with listening(controls, port):
        port.feed(mido.Message("program_change", program=100), mido.Message("note_on", note=60, velocity=5))
    assert controls.calls == [("trigger", "generate")]


def test_polled_port_without_callback_is_read_on_its_own_thread(controls: RecordingControls) -> None:
    echo = mido.ports.EchoPort("echo")
    with listening(controls, echo):
        echo.send(mido.Message("program_change", program=3))
        echo.send(mido.Message("note_on", note=62, velocity=70))
        assert controls.wait_for_calls(2) == [("load_preset", "ambient-pads"), ("trigger", "retry")]
    assert not echo.closed  # injected ports stay open unless asked


def test_loopback_through_mido_socket_port(controls: RecordingControls) -> None:
    server = mido.sockets.PortServer("127.0.0.1", 0)  # PortServer.poll() itself blocks: listen on the accepted port
    host, number = server._socket.getsockname()  # mido has no public accessor for the bound port
    try:
        with (
            mido.sockets.connect(host, number) as client,
            server.accept() as connection,
            listening(controls, connection),
        ):
            client.send(mido.Message("control_change", control=23, value=127))
            client.send(mido.Message("note_on", note=60, velocity=100))
            calls = controls.wait_for_calls(2, timeout=3.0)
    finally:
        server.close()
    assert calls == [("set_param", "top_k", [512]), ("trigger", "generate")]


# -- life cycle ---------------------------------------------------------------------------------------------


def test_close_detaches_injected_ports_and_ignores_later_messages(controls: RecordingControls) -> None:
    port = CallbackPort("keys")
    midi = listening(controls, port)
    callback = port.callback
    midi.close()
    assert port.callback is None and not port.closed
    callback(mido.Message("note_on", note=60, velocity=100))  # a message already in flight on rtmidi's thread
    assert controls.calls == []
    midi.close()  # closing twice is harmless


def test_close_injected_closes_them_and_stops_the_reader(controls: RecordingControls) -> None:
    echo = mido.ports.EchoPort("echo")
    midi = listening(controls, echo, close_injected=True)
    midi.close()
    assert echo.closed


def test_a_port_that_fails_to_open_leaves_nothing_running(controls: RecordingControls) -> None:
    class RefusingBackend(FakeBackend):
        def open_input(self, name: str | None = None, virtual: bool = False, **kwargs: Any) -> BaseInput:
            raise OSError("device busy")

    with pytest.raises(MidiUnavailable, match="cannot open MIDI input 'Launchkey MK3:Launchkey MK3 MIDI 1 24:0'"):
        MidiControl(controls, MAPPING, backend=RefusingBackend(LAUNCHKEY_NAMES))


# -- opening ports by name ----------------------------------------------------------------------------------


def test_port_name_prefix_ignores_alsa_client_port_numbers() -> None:
    assert port_base_name("Launchkey MK3:Launchkey MK3 MIDI 1 24:0") == "Launchkey MK3:Launchkey MK3 MIDI 1"
    assert match_input("Launchkey", LAUNCHKEY_NAMES) == "Launchkey MK3:Launchkey MK3 MIDI 1 24:0"
    assert match_input("launchkey mk3:launchkey mk3 midi 2", LAUNCHKEY_NAMES) == LAUNCHKEY_NAMES[2]
    assert match_input("Launchkey MK3:Launchkey MK3 MIDI 2 128:1", LAUNCHKEY_NAMES) == LAUNCHKEY_NAMES[2]
    assert match_input("MIDI 1", LAUNCHKEY_NAMES) is None  # a prefix, not a substring
    assert match_input("", LAUNCHKEY_NAMES) is None


def test_opens_the_first_port_matching_the_prefix(controls: RecordingControls) -> None:
    backend = FakeBackend(LAUNCHKEY_NAMES)
    with MidiControl(controls, MAPPING, backend=backend) as midi:
        [(name, virtual, opened)] = backend.opened
        assert (name, virtual) == ("Launchkey MK3:Launchkey MK3 MIDI 1 24:0", False)
        assert midi.port_names == [name]
        opened.feed(mido.Message("note_on", note=60, velocity=100))
    assert controls.calls == [("trigger", "generate")] and controls.reports == []
    assert opened.closed  # ports opened here are closed on close()


def test_port_setting_overrides_the_map_as_the_app_passes_it(controls: RecordingControls) -> None:
    backend = FakeBackend(LAUNCHKEY_NAMES)
    mapping = MidiMap(input=MidiInput(port="Keystation"), notes={60: "generate"})
    with MidiControl(
        controls, mapping, ports=None, map_path=None, port_prefix="Midi Through", virtual=False, backend=backend
    ) as midi:
        assert midi.port_names == ["Midi Through:Midi Through Port-0 14:0"]
    with MidiControl(controls, None, port_prefix="Jukebox In", virtual=True, backend=backend) as midi:
        assert midi.port_names == ["Jukebox In"] and backend.opened[-1][1] is True
        assert midi.mapping == MidiMap()


def test_virtual_port_is_created_under_the_mapped_name(controls: RecordingControls) -> None:
    backend = FakeBackend([])
    mapping = MidiMap(input=MidiInput(port="Jukebox Bridge", virtual=True), notes={60: "generate"})
    with MidiControl(controls, mapping, backend=backend):
        [(name, virtual, opened)] = backend.opened
        opened.feed(mido.Message("note_on", note=60, velocity=100))
    assert (name, virtual) == ("Jukebox Bridge", True)
    assert controls.calls == [("trigger", "generate")]


def test_no_matching_port_is_a_clear_error_listing_the_inputs(controls: RecordingControls) -> None:
    mapping = MidiMap(input=MidiInput(port="Keystation"))
    with pytest.raises(MidiUnavailable, match="no MIDI input matches 'Keystation'; inputs: Midi Through"):
        MidiControl(controls, mapping, backend=FakeBackend(LAUNCHKEY_NAMES))


def test_no_port_configured_is_a_clear_error(controls: RecordingControls) -> None:
    with pytest.raises(MidiUnavailable, match=r"no input port is set \(\[input\] port"):
        MidiControl(controls, MidiMap(), backend=FakeBackend(LAUNCHKEY_NAMES))


def test_backend_failure_becomes_midi_unavailable(controls: RecordingControls) -> None:
    backend = FakeBackend([], error=OSError("open /dev/snd/seq failed"))
    with pytest.raises(MidiUnavailable, match="cannot use the MIDI system: open /dev/snd/seq failed"):
        MidiControl(controls, MAPPING, backend=backend)


def test_opening_with_the_real_rtmidi_backend_fails_clearly_without_midi(controls: RecordingControls) -> None:
    import rtmidi

    try:
        rtmidi.MidiIn().delete()
        have_midi = True
    except rtmidi.RtMidiError:
        have_midi = False
    mapping = MidiMap(input=MidiInput(port="jukebox-bridge-test: no such port"))
    with pytest.raises(MidiUnavailable) as caught:
        MidiControl(controls, mapping)
    expected = "no MIDI input matches" if have_midi else "cannot use the MIDI system"
    assert str(caught.value).startswith(expected)


# -- MIDI learn ---------------------------------------------------------------------------------------------


@pytest.fixture
def map_file(tmp_path: Path) -> Path:
    path = tmp_path / "midi.toml"
    save_midi_map(MAPPING, path)
    return path


def test_learn_binds_the_next_cc_and_persists(controls: RecordingControls, port: CallbackPort, map_file: Path) -> None:
    with listening(controls, port, map_path=map_file) as midi:
        assert midi.start_learn("top_p", OSC) == "midi learn: waiting for a knob (CC) for top_p"
        assert midi.learning == "top_p"
        port.feed(mido.Message("control_change", control=30, value=40))  # consumed by learn
        port.feed(mido.Message("control_change", control=30, value=127))
    assert controls.calls == [("set_param", "top_p", [pytest.approx(1.0)])]
    assert load_midi_map(map_file).cc[30] == CCBinding("top_p")
    assert load_midi_map(map_file).cc[21] == MAPPING.cc[21]  # the rest of the map is kept
    assert controls.reports == [(OSC, "learned cc 30 -> top_p", False)]


def test_learned_cc_replaces_the_earlier_binding(
    controls: RecordingControls, port: CallbackPort, map_file: Path
) -> None:
    with listening(controls, port, map_path=map_file) as midi:
        midi.start_learn("top_p", OSC)
        port.feed(mido.Message("control_change", control=21, value=5))
        port.feed(mido.Message("control_change", control=21, value=0))
    assert controls.calls == [("set_param", "top_p", [pytest.approx(0.0)])]
    assert load_midi_map(map_file).cc[21] == CCBinding("top_p")


def test_relearned_parameter_keeps_its_knob_range(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port) as midi:
        midi.start_learn("temperature", OSC)
        port.feed(mido.Message("control_change", control=40, value=5))
        assert midi.mapping.cc[40] == CCBinding("temperature", 0.7, 1.1)
    assert controls.reports[-1] == (OSC, "learned cc 40 -> temperature (not saved: no mapping file)", False)


def test_learn_binds_a_note_to_an_action(controls: RecordingControls, port: CallbackPort, map_file: Path) -> None:
    with listening(controls, port, map_path=map_file) as midi:
        midi.start_learn("retry", OSC)
        port.feed(mido.Message("control_change", control=21, value=0))  # not what learn waits for: works as usual
        port.feed_bytes(bytes([0x90, 48, 100, 0x90, 48, 100]))
    assert controls.calls == [("set_param", "temperature", [pytest.approx(0.7)] * 3), ("trigger", "retry")]
    assert load_midi_map(map_file).notes[48] == "retry"


def test_learn_binds_a_program_to_a_preset(controls: RecordingControls, port: CallbackPort, map_file: Path) -> None:
    with listening(controls, port, map_path=map_file) as midi:
        midi.start_learn("preset:jazz-vocal", OSC)
        assert midi.learning == "preset jazz-vocal"
        port.feed_bytes(bytes([0xC0, 3, 0xC0, 3]))
    assert controls.calls == [("load_preset", "jazz-vocal")]
    assert load_midi_map(map_file).programs[3] == "jazz-vocal"
    assert controls.reports[-1] == (OSC, "learned program 3 -> preset jazz-vocal", False)


def test_learn_note_arms_learn_for_the_last_touched_parameter(
    controls: RecordingControls, port: CallbackPort, map_file: Path
) -> None:
    with listening(controls, port, map_path=map_file) as midi:
        midi.note_param_touched("top_p")
        midi.note_param_touched("artist")  # text: no knob can set it, so it is not remembered
        port.feed(mido.Message("note_on", note=72, velocity=100))
        assert midi.learning == "top_p"
        port.feed(mido.Message("control_change", control=33, value=9))
    assert load_midi_map(map_file).cc[33] == CCBinding("top_p")
    learn_origin, waiting, _ = controls.reports[0]
    assert learn_origin.kind == "midi" and "note 72" in learn_origin.address
    assert waiting == "midi learn: waiting for a knob (CC) for top_p"
    assert controls.reports[-1] == (learn_origin, "learned cc 33 -> top_p", False)
    assert controls.calls == []


def test_learn_note_again_cancels(controls: RecordingControls, port: CallbackPort, map_file: Path) -> None:
    with listening(controls, port, map_path=map_file) as midi:
        midi.note_param_touched("length")
        port.feed(*[mido.Message("note_on", note=72, velocity=100)] * 2)
        assert midi.learning is None
        port.feed(mido.Message("control_change", control=21, value=127))
    assert controls.calls == [("set_param", "temperature", [pytest.approx(1.1)] * 3)]
    assert controls.reports[-1][1:] == ("midi learn cancelled (length)", False)
    assert load_midi_map(map_file) == MAPPING


def test_learn_note_with_nothing_touched_is_reported(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port) as midi:
        port.feed(mido.Message("note_on", note=72, velocity=100))
        assert midi.learning is None
    [(_, message, error)] = controls.reports
    assert error and "no parameter has been set yet" in message


def test_cancel_learn_disarms(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port) as midi:
        assert midi.cancel_learn() is False
        midi.start_learn("top_p", OSC)
        assert midi.cancel_learn() is True
        port.feed(mido.Message("control_change", control=30, value=1))
        assert 30 not in midi.mapping.cc
    assert controls.reports == []  # the OSC handler replies to a cancel itself


def test_learn_without_a_target_takes_the_last_touched_parameter(
    controls: RecordingControls, port: CallbackPort
) -> None:
    with listening(controls, port) as midi:
        with pytest.raises(CommandError, match="no parameter has been set yet"):
            midi.start_learn(None, OSC)
        midi.note_param_touched("length")
        midi.note_param_touched("top_p")
        assert midi.start_learn(None, OSC) == "midi learn: waiting for a knob (CC) for top_p"
        port.feed(mido.Message("control_change", control=31, value=1))
    assert controls.reports == [(OSC, "learned cc 31 -> top_p (not saved: no mapping file)", False)]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("tempo", "unknown target 'tempo'"),
        ("artist", "artist is text: a knob cannot set it"),
        ("seed", "seed has no knob range of its own"),
        ("preset:", "'preset:' needs a preset name"),
    ],
)
def test_bad_learn_target_is_a_command_error(
    controls: RecordingControls, port: CallbackPort, target: str, expected: str
) -> None:
    with listening(controls, port) as midi:
        with pytest.raises(CommandError, match=expected):
            midi.start_learn(target, OSC)
        assert midi.learning is None


def test_learn_save_failure_is_reported_and_keeps_the_binding(
    controls: RecordingControls, port: CallbackPort, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the map's folder should be")
    with listening(controls, port, map_path=blocker / "midi.toml") as midi:
        midi.start_learn("top_p", OSC)
        port.feed(mido.Message("control_change", control=30, value=1))
        assert midi.mapping.cc[30] == CCBinding("top_p")
    origin, message, error = controls.reports[-1]
    assert error and origin == OSC and message.startswith("learned cc 30 -> top_p, but saving")


def test_learn_from_another_thread_while_messages_flow(controls: RecordingControls, map_file: Path) -> None:
    echo = mido.ports.EchoPort("echo")  # read on the MIDI reader thread; learn is armed from a third thread
    with listening(controls, echo, map_path=map_file) as midi:
        for _ in range(50):
            echo.send(mido.Message("note_on", note=60, velocity=100))
        learner = threading.Thread(target=midi.start_learn, args=("top_p", OSC))
        learner.start()
        learner.join()
        echo.send(mido.Message("control_change", control=90, value=1))
        controls.wait_for_calls(50)
        wait_until(lambda: midi.learning is None, timeout=2.0, interval=0.001)
    assert load_midi_map(map_file).cc[90] == CCBinding("top_p")
    assert controls.calls == [("trigger", "generate")] * 50


def test_learn_note_is_not_rebound_by_a_note_learn(controls: RecordingControls, port: CallbackPort) -> None:
    with listening(controls, port) as midi:
        midi.start_learn("generate", OSC)
        port.feed(mido.Message("note_on", note=72, velocity=100))  # the learn pad: cancels instead
        assert midi.learning is None and midi.mapping.notes[72] == "learn"
    assert controls.reports[-1][1:] == ("midi learn cancelled (generate)", False)
