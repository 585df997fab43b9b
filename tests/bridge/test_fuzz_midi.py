"""Fuzzing the MIDI input of a running bridge: every message type, and raw byte streams through mido.Parser.

The bridge runs with an injected mido port and a MIDI map that binds programs, every note action
and knobs of every parameter kind. Messages go into `MidiControl.handle` (what the port callback
calls) one at a time; a subscribed loopback client hears the reports, and a /jb/ping after each
message is the barrier. The property: handle never raises, a message the map gives meaning to
does exactly what the map says (one `/jb/error` naming the message when that cannot be done, and
never an "internal" failure), every other message changes nothing and says nothing. Afterwards
mapped messages sent through the port itself still work. Jobs are kept out by a max_seconds below
any length, so a note mapped to generate is refused (a clear error) instead of sampling.
"""

from __future__ import annotations

import time
from collections import Counter

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mido.messages import specs

from bridge.transports.midi import describe_message
from tests.bridge.harness import Message, OscClient, wait_until

MIDI_MAP = """\
[input]
port = ""
[program]
5 = "warm"
6 = "not-a-preset"
[notes]
36 = "generate"
37 = "continue"
38 = "retry"
39 = "upsample"
40 = "cancel"
[cc]
21 = { param = "temperature", min = 0.5, max = 1.0 }
22 = "length"
23 = "keep_prime"
24 = { param = "seed", min = 0, max = 127 }
25 = "n_takes"
26 = "top_p"
27 = "levels"
28 = "hop_fraction"
29 = { param = "bpm", min = 60, max = 180 }
"""
TALLY: Counter[str] = Counter()


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture
def midi_bridge(make_bridge, tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "warm.toml").write_text('artist = "Alan Jackson"\ntemperature = 0.95\nlength = 2\n')
    (presets / "midi.toml").write_text(MIDI_MAP)
    port = mido.ports.EchoPort("fuzz-controller")
    bridge, client = make_bridge(presets_dir=presets, midi_ports=[port], max_seconds=0.01)
    assert bridge.midi is not None and bridge.controller.model_state == "ready"
    assert client.ask("/jb/subscribe").args == ["127.0.0.1", client.port]  # MIDI reports go to subscribers
    return bridge, client, port


def _barrier(bridge, client: OscClient, start: int, timeout: float = 10.0) -> list[Message]:
    """What the bridge said since `start`: coalesced parameter events go out up to 50 ms late, so wait for
    them to be queued first; the ping's reply then comes after everything the message caused."""
    wait_until(bridge.notifier.settled, timeout)
    client.send("/jb/ping")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = client.messages()[start:]
        for i, m in enumerate(got):
            if m.address == "/jb/ping":
                return got[:i]
        time.sleep(0.001)
    raise AssertionError("no reply to the barrier ping")


def _expected(bridge, message: mido.Message) -> tuple[str, object]:
    """What the map says this message should do: ('nothing'|'error'|'set'|'preset'|'cancel', detail)."""
    mapping = bridge.midi.mapping
    if message.type == "program_change":
        name = mapping.programs.get(message.program)
        return ("preset", name) if name == "warm" else ("error", None)
    if message.type == "note_on" and message.velocity > 0:
        action = mapping.notes.get(message.note)
        if action is None:
            return ("nothing", None)
        return ("cancel", None) if action == "cancel" else ("error", None)
    if message.type == "control_change" and message.control in mapping.cc:
        binding = mapping.cc[message.control]
        value = binding.value(message.value)
        return ("set", (binding.param, value))
    return ("nothing", None)


def _handle_and_check(bridge, client: OscClient, message: mido.Message) -> str:
    controller = bridge.controller
    before = (controller.session, controller.preset)
    kind, detail = _expected(bridge, message)
    start = len(client.messages())
    bridge.midi.handle(message)  # must not raise, whatever the message
    said = _barrier(bridge, client, start)
    errors = [m for m in said if m.address == "/jb/error"]
    session, preset = controller.session, controller.preset
    where = (str(message), kind, [(m.address, m.args) for m in said])
    if kind == "error":
        assert len(errors) == 1 and errors[0].args[0] == describe_message(message), where
        assert "failed:" not in errors[0].args[1] and len(errors[0].args[1]) > 10, where
        assert (session, preset) == before, where
    else:
        assert not errors, where
    if kind == "nothing":
        assert said == [] and (session, preset) == before, where
    elif kind == "set":
        name, value = detail
        assert session == before[0].replace(**{name: value}), where
    elif kind == "preset":
        assert preset == "warm" and session == bridge.presets.get("warm").apply(before[0]), where
    elif kind == "cancel":
        assert [m.address for m in said] == ["/jb/cancel"] and said[0].args == [0], where
    return kind


def _field_values(spec: dict) -> st.SearchStrategy[dict]:
    ranges = {
        "channel": (0, 15),
        "note": (0, 127),
        "velocity": (0, 127),
        "control": (0, 127),
        "value": (0, 127),
        "program": (0, 127),
        "pitch": (-8192, 8191),
        "frame_type": (0, 7),
        "frame_value": (0, 15),
        "pos": (0, 16383),
        "song": (0, 127),
    }
    fields = {}
    for name in spec["value_names"]:
        if name == "data":
            fields[name] = st.lists(st.integers(0, 127), max_size=40).map(tuple)
        elif name == "note" and spec["type"] == "note_on":
            fields[name] = st.one_of(st.integers(0, 127), st.integers(34, 42))  # often a mapped note
        elif name == "control":
            fields[name] = st.one_of(st.integers(0, 127), st.integers(20, 30))  # often a mapped knob
        elif name == "program":
            fields[name] = st.one_of(st.integers(0, 127), st.sampled_from([5, 6]))
        else:
            fields[name] = st.integers(*ranges[name])
    return st.fixed_dictionaries(fields)


HANDLED = [spec for spec in specs.SPECS if spec["type"] in ("program_change", "note_on", "control_change")]
every_type = st.one_of(st.sampled_from(specs.SPECS), st.sampled_from(HANDLED)).flatmap(
    lambda spec: _field_values(spec).map(lambda values, t=spec["type"]: mido.Message(t, **values))
)
raw_streams = st.one_of(
    st.binary(max_size=64),
    st.lists(
        st.tuples(
            st.sampled_from([0x90, 0xB0, 0xC0, 0x9F, 0xBF, 0xF0, 0xF7, 0xF8, 0xFF]),
            st.lists(st.integers(0, 255), max_size=4),
        ),
        max_size=8,
    ).map(lambda parts: b"".join(bytes([s, *d]) for s, d in parts)),
)


def test_midi_messages_of_every_type_do_what_the_map_says_or_report_one_clear_error(midi_bridge):
    bridge, client, _ = midi_bridge
    kinds: Counter[str] = Counter()

    @fuzz(900)
    @given(message=every_type)
    def run(message: mido.Message) -> None:
        kinds[_handle_and_check(bridge, client, message)] += 1
        TALLY["messages"] += 1

    run()
    assert kinds["set"] > 50 and kinds["error"] > 20 and kinds["nothing"] > 100 and kinds["preset"] > 0
    _mapped_messages_through_the_port_still_work(*midi_bridge)
    print(f"\nMIDI fuzz, messages of every type: {sum(kinds.values())}, {dict(kinds)}")


def test_raw_midi_byte_streams_through_the_parser_never_break_the_input(midi_bridge):
    bridge, client, _ = midi_bridge
    counts: Counter[str] = Counter()

    @fuzz(500)
    @given(stream=raw_streams)
    def run(stream: bytes) -> None:
        parser = mido.Parser()
        parser.feed(stream)
        for message in parser:
            counts[_handle_and_check(bridge, client, message)] += 1
        counts["streams"] += 1
        counts["bytes"] += len(stream)

    run()
    assert counts["streams"] == 500 and counts["set"] + counts["error"] + counts["nothing"] > 200
    _mapped_messages_through_the_port_still_work(*midi_bridge)
    print(f"\nMIDI fuzz, raw streams: {dict(counts)}")


def _mapped_messages_through_the_port_still_work(bridge, client: OscClient, port) -> None:
    port.send(mido.Message("control_change", control=21, value=127))
    port.send(mido.Message("program_change", program=5))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and bridge.controller.preset != "warm":
        time.sleep(0.01)
    session = bridge.controller.session
    assert (
        bridge.controller.preset == "warm"
        and session.temperature == (0.95, 0.95, 0.95)
        and session.artist == "Alan Jackson"
    )
    port.send(mido.Message("control_change", control=21, value=0))
    while time.monotonic() < deadline and bridge.controller.session.temperature != (0.5, 0.5, 0.5):
        time.sleep(0.01)
    assert bridge.controller.session.temperature == (0.5, 0.5, 0.5)
    assert client.ask("/jb/ping").args[0] == "ok" and all(r.is_alive() for r in bridge.midi._readers)


def test_a_midi_map_that_is_not_toml_or_binds_nonsense_disables_midi_naming_the_file_and_the_bridge_serves_on(
    make_bridge, tmp_path
):
    cases = {
        "binary.toml": b"\x00\xff\xfe garbage",
        "syntax.toml": b"[cc\n21 = temperature",
        "param.toml": b'[cc]\n21 = "lyrics"\n',
        "range.toml": b'[cc]\n21 = { param = "temperature", min = 0.5, max = 99 }\n',
        "number.toml": b'[notes]\n128 = "generate"\n',
        "table.toml": b"[input]\nchannel = 17\n",
    }
    needles = {
        "binary.toml": "cannot read",
        "syntax.toml": "not valid TOML",
        "param.toml": "lyrics",
        "range.toml": "temperature",
        "number.toml": "0-127",
        "table.toml": "channel",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        listener = OscClient(0)  # only listens: a subscriber from the start hears the start-up report
        try:
            bridge, client = make_bridge(
                midi_map=path, midi_ports=[mido.ports.EchoPort("x")], subscribers=(("127.0.0.1", listener.port),)
            )
            assert bridge.midi is None, name
            report = listener.wait_for(lambda m: m.address == "/jb/error" and "MIDI disabled" in str(m.args), 10)
            assert report.args[0] == "midi" and str(path) in report.args[1] and needles[name] in report.args[1], report
            reply = client.ask("/jb/midi/learn", "temperature")
            assert reply.args[0] == "error" and "MIDI is not enabled" in reply.args[1]
            assert client.ask("/jb/set/top_k", 5).args == [5]  # everything else serves on
        finally:
            listener.close()
        client.close()
        bridge.stop()
        TALLY["bad maps"] += 1
    print(f"\nMIDI map files refused: {TALLY['bad maps']}")
