"""Fuzzing the OSC surface of a running bridge over real UDP on 127.0.0.1 (hypothesis, derandomized).

Each example sends one datagram, then a /jb/ping: the server handles datagrams in order and the
notifier sends in order, so everything that arrives before the ping's reply is what the fuzzed
datagram was owed. The property: every request gets exactly one reply on its address, an error
reply (`"error", message`) always comes with `/jb/error <address> <message>`, no reply is an
"internal error", a malformed datagram gets one `/jb/error (malformed) ...`, and the session only
changes the way a valid set (or preset load) changes it. Afterwards the server still answers and
none of its threads died. Jobs are kept out (max_seconds is below any length a set can give), so
no example spends CPU sampling. The counts are printed (`pytest -s`) for docs/reliability.md.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.session.params import PARAMS, parse_param
from tests.bridge import osc_fuzz
from tests.bridge.harness import Message, OscClient


def fuzz(max_examples: int) -> settings:
    """Bounded and reproducible: the same examples on every run, so the counts in the docs can be checked."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


TALLY: Counter[str] = Counter()  # datagrams and messages fuzzed, per test (printed)
PRIME_ADDRESSES = {"/jb/prime/file", "/jb/prime/inbox", "/jb/prime/clear"}
PRESET_ADDRESSES = {"/jb/preset/load", "/jb/preset/save"}
# what /jb/state/dump sends its requester before its own reply
DUMP_REPLIES = {f"/jb/get/{name}" for name in PARAMS} | {
    "/jb/get/prime",
    "/jb/preset/current",
    "/jb/state",
    "/jb/status",
}


@pytest.fixture
def fuzz_bridge(make_bridge, tmp_path):
    inbox, presets = tmp_path / "inbox", tmp_path / "presets"
    inbox.mkdir()
    presets.mkdir()
    t = np.arange(4410) / 44100
    sf.write(inbox / "clip.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
    (presets / "warm.toml").write_text('description = "fuzz"\nartist = "Alan Jackson"\ntemperature = 0.95\n')
    bridge, client = make_bridge(inbox_dir=inbox, presets_dir=presets, max_seconds=0.01, max_queue=2)
    assert bridge.controller.model_state == "ready"
    assert client.ask("/jb/preset/list").args == ["warm"]
    return bridge, client


def _state(bridge) -> tuple[Any, Any, Any]:
    c = bridge.controller
    return c.session, c.prime, c.preset


def _exchange(client: OscClient, datagram: bytes, pings: int, timeout: float = 10.0) -> list[Message]:
    """Send the datagram and a ping; return what arrived up to the ping's reply."""
    start = len(client.messages())
    client.send_raw(datagram)
    return _collect(client, start, pings, timeout, repr(datagram[:80]))


def _collect(client: OscClient, start: int, pings: int, timeout: float = 10.0, what: str = "") -> list[Message]:
    """Send the barrier ping; return what arrived from `start` up to its reply (`pings` fuzzed pings come first)."""
    client.send("/jb/ping")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = client.messages()[start:]
        seen = [i for i, m in enumerate(got) if m.address == "/jb/ping"]
        if len(seen) >= pings + 1:
            return got[: seen[pings] + 1]
        time.sleep(0.001)
    raise AssertionError(f"no reply to the barrier ping within {timeout} s after {what}")


def _is_error(m: Message) -> bool:
    return len(m.args) == 2 and m.args[0] == "error"


def _check_replies(parsed: osc_fuzz.Parsed, replies: list[Message], datagram: bytes) -> list[Message]:
    """Exactly one reply per message (an error one with its /jb/error notice); returns the replies in order."""
    where = f"datagram {datagram[:120]!r}: got {[(m.address[:80], repr(m.args)[:200]) for m in replies]}"
    if parsed.messages is None:
        assert [m.address for m in replies] == ["/jb/error", "/jb/ping"], where
        assert replies[0].args[0] == "(malformed)" and "malformed OSC packet" in replies[0].args[1], where
        return []
    addresses = parsed.addresses
    dumps = addresses.count("/jb/state/dump")  # each also sends the requester one message per DUMP_REPLIES address
    owed = []
    for address in set(addresses) | (DUMP_REPLIES if dumps else set()):
        on_it = [
            m for m in replies if m.address == address and not (address == "/jb/error" and m.args[:1] != ["error"])
        ]
        expected = (
            addresses.count(address) + (1 if address == "/jb/ping" else 0) + (dumps if address in DUMP_REPLIES else 0)
        )
        assert len(on_it) == expected, f"{address}: {len(on_it)} replies, expected {expected}; {where}"
        errors = [m for m in on_it if _is_error(m)]
        notices = [m for m in replies if m.address == "/jb/error" and _names(m, address)]
        assert [n.args[1][:40] for n in notices] == [e.args[1][:40] for e in errors], where
        for e in errors:
            assert isinstance(e.args[1], str) and len(e.args[1]) > 10, where
            assert "internal error" not in e.args[1], where
        owed += on_it
    known = set(addresses) | {"/jb/error", "/jb/ping", "/jb/prime"} | (DUMP_REPLIES if dumps else set())
    assert {m.address for m in replies} <= known, where
    return owed


def _names(notice: Message, address: str) -> bool:
    """Whether a /jb/error notice is about `address` (an address too long for a reply arrives cut, ending in '…')."""
    head = notice.args[0] if notice.args and isinstance(notice.args[0], str) else None
    return head == address or (head is not None and head.endswith("…") and address.startswith(head[:-1]))


def _check_state(bridge, parsed: osc_fuzz.Parsed, reply: Message, before: tuple[Any, Any, Any]) -> None:
    """The session changes only as the valid set or preset load that was answered without an error."""
    after = _state(bridge)
    address, params = parsed.messages[0]
    if _is_error(reply) or reply.args[:1] == ["error"]:
        assert after == before, (address, params, reply.args)
        return
    session_before, prime_before, preset_before = before
    session, prime, preset = after
    if address not in PRIME_ADDRESSES:
        assert prime == prime_before
    if address not in PRESET_ADDRESSES:
        assert preset == preset_before
    if address.startswith("/jb/set/"):
        name = address.removeprefix("/jb/set/")
        if name == "length" and len(params) > 1:
            changed = {k for k, v in session.as_dict().items() if v != session_before.as_dict()[k]}
            assert changed <= {"length", "length_unit", "bpm"}, (address, params)
        else:
            assert session == session_before.replace(**{name: parse_param(name, list(params))}), (address, params)
    elif address == "/jb/preset/load":
        assert session == bridge.presets.get(reply.args[0]).apply(session_before) and preset == reply.args[0]
    else:
        assert session == session_before, (address, params)


def _still_serving(bridge, client: OscClient) -> None:
    assert client.ask("/jb/ping").args[0] == "ok"
    assert bridge.worker.alive and bridge.osc._thread.is_alive() and bridge.notifier._thread.is_alive()
    assert bridge.controller.model_state == "ready" and len(bridge.queue) == 0


def _no_handler_crashed(caplog) -> None:
    crashed = [
        r.getMessage()
        for r in caplog.records
        if "failed" in r.getMessage() and r.name.startswith("bridge") and r.exc_info is not None
    ]
    assert not crashed, crashed


def test_fuzzed_messages_on_every_address_get_exactly_their_reply_and_change_only_what_a_valid_set_changes(
    fuzz_bridge, caplog
):
    caplog.set_level(logging.WARNING)
    bridge, client = fuzz_bridge
    received = bridge.osc.received
    outcomes: Counter[str] = Counter()

    @fuzz(1500)
    @given(datagram=osc_fuzz.single_messages(bridge.surface.routes))
    def run(datagram: bytes) -> None:
        parsed = osc_fuzz.parse(datagram)
        if not osc_fuzz.sendable(datagram, parsed):
            return
        before = _state(bridge)
        replies = _exchange(client, datagram, parsed.addresses.count("/jb/ping"))
        owed = _check_replies(parsed, replies, datagram)
        TALLY["single datagrams"] += 1
        TALLY["single messages"] += len(parsed.messages or ())
        if parsed.messages is not None and len(parsed.messages) == 1:
            _check_state(bridge, parsed, owed[0], before)
            outcomes["error" if _is_error(owed[0]) else "accepted"] += 1
        else:
            outcomes["malformed"] += 1

    run()
    _still_serving(bridge, client)
    _no_handler_crashed(caplog)
    assert bridge.osc.received - received == 2 * TALLY["single datagrams"] + 1  # fuzzed + barrier pings + the last ask
    assert outcomes["accepted"] > 100 and outcomes["error"] > 100  # the fuzz reaches both sides
    print(f"\nOSC fuzz, single messages: {TALLY['single datagrams']} datagrams, {dict(outcomes)}")


def test_random_bytes_cut_and_corrupted_packets_get_one_malformed_error_or_the_replies_of_what_parses(
    fuzz_bridge, caplog
):
    caplog.set_level(logging.WARNING)
    bridge, client = fuzz_bridge
    outcomes: Counter[str] = Counter()

    @fuzz(700)
    @given(datagram=osc_fuzz.broken_datagrams(bridge.surface.routes))
    def run(datagram: bytes) -> None:
        parsed = osc_fuzz.parse(datagram)
        if not osc_fuzz.sendable(datagram, parsed):
            return
        _check_replies(parsed, _exchange(client, datagram, parsed.addresses.count("/jb/ping")), datagram)
        TALLY["broken datagrams"] += 1
        outcomes["malformed" if parsed.messages is None else "parsed"] += 1

    run()
    _still_serving(bridge, client)
    _no_handler_crashed(caplog)
    assert outcomes["malformed"] > 100 and outcomes["parsed"] > 50
    print(f"\nOSC fuzz, broken datagrams: {TALLY['broken datagrams']} datagrams, {dict(outcomes)}")


def test_bundles_nested_and_with_any_timetag_have_every_message_answered_in_one_go(fuzz_bridge, caplog):
    caplog.set_level(logging.WARNING)
    bridge, client = fuzz_bridge
    messages = Counter[str]()

    @fuzz(300)
    @given(datagram=osc_fuzz.bundles(bridge.surface.routes))
    def run(datagram: bytes) -> None:
        parsed = osc_fuzz.parse(datagram)
        if not osc_fuzz.sendable(datagram, parsed):
            return
        _check_replies(parsed, _exchange(client, datagram, parsed.addresses.count("/jb/ping")), datagram)
        TALLY["bundles"] += 1
        messages["in bundles"] += len(parsed.messages or ())

    run()
    _still_serving(bridge, client)
    _no_handler_crashed(caplog)
    assert messages["in bundles"] > TALLY["bundles"]
    print(f"\nOSC fuzz, bundles: {TALLY['bundles']} bundles holding {messages['in bundles']} messages")


class _Opaque:
    def __str__(self) -> str:
        raise RuntimeError("str() of this argument fails")


python_values = st.one_of(
    st.text(max_size=30),  # lone surrogates included: no OSC datagram can carry them, a Python caller can
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.binary(max_size=20),
    st.complex_numbers(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(_Opaque()),
    st.just(Path("/tmp")),
    st.just(float("nan")),
)


def test_arguments_no_datagram_can_carry_are_refused_cleanly_when_a_caller_hands_them_to_the_surface(
    fuzz_bridge, caplog
):
    """OscSurface.handle is also called in process (the demo, bundles): surrogates, big ints, dicts, objects."""
    caplog.set_level(logging.WARNING)
    bridge, client = fuzz_bridge
    routes = sorted(set(bridge.surface.routes) - osc_fuzz.SUBSCRIPTION_ADDRESSES)
    me = ("127.0.0.1", client.port)

    @fuzz(400)
    @given(address=st.sampled_from(routes), args=st.lists(python_values, max_size=4))
    def run(address: str, args: list[Any]) -> None:
        before = _state(bridge)
        start = len(client.messages())
        bridge.surface.handle(address, args, me)
        replies = _collect(client, start, 1 if address == "/jb/ping" else 0, what=repr((address, args)))
        parsed = osc_fuzz.Parsed(((address, tuple(args)),))
        owed = _check_replies(parsed, replies, repr((address, args)).encode())
        if owed[0].args[:1] != ["error"]:
            assert (
                all(not isinstance(a, (_Opaque, dict, complex)) for a in args)
                or address
                in (
                    "/jb/ping",
                    "/jb/status",
                    "/jb/help",
                    "/jb/jobs",
                    "/jb/get/session",
                    "/jb/preset/list",
                    "/jb/prime/inbox",
                    "/jb/prime/clear",
                    "/jb/get/prime",
                    "/jb/state/dump",
                )
                or address.startswith("/jb/get/")
            ), (address, args, owed[0].args)
        else:
            assert _state(bridge) == before
        TALLY["in-process calls"] += 1

    run()
    _still_serving(bridge, client)
    _no_handler_crashed(caplog)
    print(f"\nOSC fuzz, in-process calls: {TALLY['in-process calls']}")


def test_text_with_lone_surrogates_is_refused_and_the_session_keeps_its_text(fuzz_bridge):
    bridge, client = fuzz_bridge
    before = _state(bridge)
    start = len(client.messages())
    bridge.surface.handle("/jb/set/artist", ["Caf\udce9"], ("127.0.0.1", client.port))
    replies = _collect(client, start, 0)
    assert replies[0].address == "/jb/set/artist" and replies[0].args[0] == "error"
    assert "not valid Unicode" in replies[0].args[1] and _state(bridge) == before


def test_an_address_as_long_as_a_datagram_allows_still_gets_its_error_reply_on_that_address(fuzz_bridge):
    _, client = fuzz_bridge
    for length in (1_000, 9_000, 40_000, 65_400):
        address = "/jb/" + "x" * (length - 4)
        datagram = osc_fuzz.message(address, [])
        assert len(datagram) <= osc_fuzz.MAX_DATAGRAM
        owed = _check_replies(osc_fuzz.parse(datagram), _exchange(client, datagram, 0), datagram)
        assert owed[0].address == address and "unknown address" in owed[0].args[1]


def test_an_unreadable_element_of_a_bundle_gets_its_own_error_beside_the_good_messages_replies(fuzz_bridge):
    from pythonosc import osc_bundle_builder, osc_message_builder

    _, client = fuzz_bridge
    bundle = osc_bundle_builder.OscBundleBuilder(osc_bundle_builder.IMMEDIATELY)
    bundle.add_content(osc_message_builder.OscMessageBuilder(address="/jb/status").build())
    datagram = bundle.build().dgram + len(b"garbage!").to_bytes(4, "big") + b"garbage!"
    start = len(client.messages())
    client.send_raw(datagram)
    got = _collect(client, start, 0)
    assert [m.address for m in got[:-1]].count("/jb/status") == 1
    errors = [m for m in got if m.address == "/jb/error"]
    assert len(errors) == 1 and errors[0].args[0] == "(bundle element)"
