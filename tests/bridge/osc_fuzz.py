"""Hypothesis strategies for OSC datagrams and the oracle that says which replies each one is owed.

The datagrams are built here byte by byte (not with python-osc's builder), so they can hold what a
well-behaved client never sends: NULs inside strings, bytes that are not UTF-8, unhandled type
tags, arrays that never close, bundles whose element sizes lie. The oracle parses a datagram with
the same parser the server uses, so it knows which messages the server saw.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from pythonosc import osc_packet

from bridge.transports.osc import MAX_DATAGRAM

# events the bridge sends on its own; a fuzzed request on one of these addresses would blur the count
EVENT_ADDRESSES = frozenset({"/jb/prime", "/jb/info", "/jb/state"}) | {
    f"/jb/job/{e}" for e in ("queued", "started", "progress", "take", "warning", "done", "cancelled", "failed")
}
# a fuzzed subscribe could point the bridge's events at somebody else's port: these get fixed, safe arguments
SUBSCRIPTION_ADDRESSES = frozenset({"/jb/subscribe", "/jb/unsubscribe"})
PLAUSIBLE_TEXT = (
    "",
    " ",
    "0",
    "1",
    "-1",
    "2.5",
    "1e3",
    "nan",
    "inf",
    "-inf",
    "random",
    "none",
    "s",
    "bars",
    "BARS",
    "sec",
    "beats",
    "true",
    "off",
    "params",
    "ancestral",
    "primed",
    "continue",
    "upsample",
    "sideways",
    "clip.wav",
    "missing.wav",
    "../clip.wav",
    "/etc/passwd",
    "~/x.wav",
    "warm",
    "WARM",
    "new one",
    "../escape",
    "con",
    "temperature",
    "generate",
    "preset:warm",
    "preset:",
    "Alan Jackson",
    "Country",
    "x" * 300,
    "é" * 201,
    "٣",
    "²",
    "１２",
)


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (4 - len(data) % 4)


def osc_string(value: str | bytes) -> bytes:
    """NUL-terminated and padded; bytes are written as given (invalid UTF-8, NULs inside)."""
    return _pad(value.encode("utf-8") if isinstance(value, str) else value)


def encode_arg(tag: str, value: Any) -> tuple[str, bytes]:
    """One argument as (type tags, bytes); arrays recurse."""
    if tag == "[":
        parts = [encode_arg(t, v) for t, v in value]
        return "[" + "".join(t for t, _ in parts) + "]", b"".join(b for _, b in parts)
    packers = {"i": ">i", "h": ">q", "f": ">f", "d": ">d", "r": ">I", "t": ">Q"}
    if tag in packers:
        return tag, struct.pack(packers[tag], value)
    if tag == "s":
        return tag, osc_string(value)
    if tag == "b":
        return tag, struct.pack(">I", len(value)) + value + b"\x00" * (-len(value) % 4)
    if tag == "m":
        return tag, bytes(value)
    return tag, b""  # T F N I and unknown tags carry no data


def message(address: str | bytes, args: Sequence[tuple[str, Any]]) -> bytes:
    parts = [encode_arg(t, v) for t, v in args]
    return osc_string(address) + osc_string("," + "".join(t for t, _ in parts)) + b"".join(b for _, b in parts)


def bundle(elements: Sequence[bytes], timetag: int = 1) -> bytes:
    return b"#bundle\x00" + struct.pack(">Q", timetag) + b"".join(struct.pack(">I", len(e)) + e for e in elements)


# --- strategies --------------------------------------------------------------------------------------------

utf8_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)  # NUL included, surrogates cannot be sent
long_text = st.builds(
    lambda n, c: c * n,
    st.sampled_from([199, 200, 201, 4095, 4096, 4097, 19_999, 20_000, 20_001]),
    st.sampled_from(["a", "é", "€", "𝄞", "\u202e"]),
)
text_values = st.one_of(utf8_text, st.sampled_from(PLAUSIBLE_TEXT), long_text, st.binary(max_size=24))
scalar_args = st.one_of(
    st.tuples(st.just("i"), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just("i"), st.integers(-3, 130)),
    st.tuples(st.just("h"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("h"), st.sampled_from([2**31, 2**62, 2**62 + 1, -(2**63), 2**63 - 1])),
    st.tuples(st.just("f"), st.floats(width=32)),  # NaN, ±inf, subnormals included
    st.tuples(st.just("f"), st.floats(-2.0, 130.0, width=32)),
    st.tuples(st.just("d"), st.floats()),
    st.tuples(st.just("s"), text_values),
    st.tuples(st.just("b"), st.binary(max_size=40)),
    st.tuples(st.sampled_from("TFNI"), st.none()),
    st.tuples(st.just("m"), st.binary(min_size=4, max_size=4)),
    st.tuples(st.just("r"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("t"), st.integers(0, 2**64 - 1)),
)
arg_lists = st.lists(st.one_of(scalar_args, st.tuples(st.just("["), st.lists(scalar_args, max_size=3))), max_size=5)


def addresses(routes: Sequence[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(sorted(routes)),
        st.sampled_from(sorted(routes)),  # twice: real addresses get most of the examples
        st.builds(
            lambda p, t: p + t,
            st.sampled_from(
                [
                    "/jb/",
                    "/jb/set/",
                    "/jb/get/",
                    "/jb/generate/",
                    "/jb/prime/",
                    "/jb/job/",
                    "/jb/preset/",
                    "/jb/midi/learn/",
                ]
            ),
            utf8_text,
        ),
        st.sampled_from(
            [
                "/jb",
                "/jb/",
                "/JB/ping",
                "//jb/ping",
                "/jb/ping/",
                "/jb//ping",
                "/jb/error",
                "/jb/set",
                "/jb/get",
                "/",
                "/live/song/get/tempo",
                "/jb/ping ",
                "/jb/set/Temperature",
                "/jb/get/session/",
            ]
        ),
        utf8_text.map(lambda t: "/" + t),
    )


def single_messages(routes: Sequence[str]) -> st.SearchStrategy[bytes]:
    return st.builds(message, addresses(routes), arg_lists)


def broken_datagrams(routes: Sequence[str]) -> st.SearchStrategy[bytes]:
    """Random bytes, valid messages cut short or with a byte flipped, raw-byte addresses, odd bundles."""
    valid = single_messages(routes)
    return st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=60).map(lambda b: b"/jb/" + b),
        st.builds(lambda d, n: d[: max(0, len(d) - n)], valid, st.integers(1, 64)),
        st.builds(
            lambda d, i, x: d[: i % len(d)] + bytes([x]) + d[i % len(d) + 1 :],
            valid,
            st.integers(0, 10**6),
            st.integers(0, 255),
        ),
        st.builds(message, st.binary(max_size=20).map(lambda b: b"/jb/" + b), arg_lists),
        st.builds(lambda d: b"#bundle\x00" + d, st.binary(max_size=60)),
        st.builds(
            lambda els, lie: bundle(els)[:-1] if lie else bundle(els), st.lists(valid, max_size=3), st.booleans()
        ),
    )


def bundles(routes: Sequence[str]) -> st.SearchStrategy[bytes]:
    element = single_messages(routes)
    inner = st.builds(bundle, st.lists(element, max_size=3), st.sampled_from([0, 1, 2**32, 2**64 - 1]))
    return st.builds(
        bundle, st.lists(st.one_of(element, inner), min_size=1, max_size=4), st.sampled_from([0, 1, 2**63, 2**64 - 1])
    )


# --- the oracle --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What the server sees in a datagram: its messages, or None when it cannot be parsed."""

    messages: tuple[tuple[str, tuple[Any, ...]], ...] | None

    @property
    def addresses(self) -> list[str]:
        return [a for a, _ in self.messages or ()]


def parse(datagram: bytes) -> Parsed:
    try:
        packet = osc_packet.OscPacket(datagram)
    except Exception:  # noqa: BLE001 - the server answers every failure as malformed; so does the oracle
        return Parsed(None)
    return Parsed(tuple((t.message.address, tuple(t.message.params)) for t in packet.messages))


def sendable(datagram: bytes, parsed: Parsed) -> bool:
    """Fits one UDP datagram and asks nothing of the subscription list or on an event's address."""
    return len(datagram) <= MAX_DATAGRAM and not (set(parsed.addresses) & (SUBSCRIPTION_ADDRESSES | EVENT_ADDRESSES))
