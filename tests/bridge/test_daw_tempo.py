"""Following a DAW's tempo: real UDP on 127.0.0.1 against fake peers that speak AbletonOSC's and REAPER's protocols.

FakeAbletonOSC behaves as AbletonOSC's `osc_server.py`/`handler.py` do: it answers `/live/song/get/<prop>` on
the same address with the value alone, to the asker's host on its fixed response port (here an ephemeral one,
set to the follower's port, as 11001 would be); `start_listen` sends the value at once and on each change,
to the last client; unknown addresses get no answer. FakeReaper sends `/tempo/raw <float>` to its device port,
in bundles with the other TEMPO patterns as REAPER's feedback does, and answers action 41743 with a refresh.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pythonosc import osc_bundle_builder, osc_message_builder, osc_packet

from bridge.transports.daw_tempo import (
    LIVE_LISTEN_PORT,
    LIVE_REPLY_PORT,
    REAPER_DEVICE_PORT,
    AbletonTempo,
    ReaperTempo,
)
from tests.bridge.harness import wait_until

LOCAL = "127.0.0.1"


def osc(address: str, *args: Any) -> bytes:
    """One message; args are values (python-osc infers f/i/s, as AbletonOSC's vendored copy does) or (value, tag)."""
    builder = osc_message_builder.OscMessageBuilder(address)
    for arg in args:
        if isinstance(arg, tuple):
            builder.add_arg(*arg)
        else:
            builder.add_arg(arg)
    return builder.build().dgram


def bundle(*messages: bytes) -> bytes:
    builder = osc_bundle_builder.OscBundleBuilder(osc_bundle_builder.IMMEDIATELY)
    for dgram in messages:
        builder.add_content(osc_packet.OscPacket(dgram).messages[0].message)
    return builder.build().dgram


class FakePeer:
    """A UDP socket on 127.0.0.1 with a reader thread recording every message it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCAL, 0))
        self.sock.settimeout(0.05)
        self.received: list[tuple[str, list[Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fake-{type(self).__name__}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def addresses(self) -> list[str]:
        return [address for address, _ in self.received]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, client = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            for timed in osc_packet.OscPacket(data).messages:
                self.handle(timed.message.address, list(timed.message.params), client)
                self.received.append((timed.message.address, list(timed.message.params)))  # after any answer

    def handle(self, address: str, args: list[Any], client: tuple[str, int]) -> None:
        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class FakeAbletonOSC(FakePeer):
    def __init__(self, *, with_signature: bool = True) -> None:
        self.values: dict[str, Any] = {"tempo": 120.0}
        if with_signature:  # AbletonOSC before signature_* were exposed answers nothing for them
            self.values |= {"signature_numerator": 4, "signature_denominator": 4}
        self.response_port = 0  # AbletonOSC's OSC_RESPONSE_PORT (11001)
        self.listening: set[str] = set()
        self.remote = (LOCAL, 0)  # replies for listeners go to the last client, on the response port
        super().__init__()

    def handle(self, address: str, args: list[Any], client: tuple[str, int]) -> None:
        self.remote = (client[0], self.response_port)
        verb, _, prop = address.removeprefix("/live/song/").partition("/")
        if prop not in self.values:
            return  # "Unknown OSC address", logged by AbletonOSC, not answered
        if verb == "get":
            self.push(prop)
        elif verb == "start_listen":
            self.listening.add(prop)
            self.push(prop)  # _start_listen sends the current value at once
        elif verb == "stop_listen":
            self.listening.discard(prop)

    def push(self, prop: str) -> None:
        self.sock.sendto(osc(f"/live/song/get/{prop}", self.values[prop]), self.remote)

    def change(self, prop: str, value: Any, *, notify: bool = True) -> None:
        """Live's value changes; listeners hear of it (unless the notice is lost)."""
        self.values[prop] = value
        if notify and prop in self.listening:
            self.push(prop)

    def restart(self) -> None:
        """AbletonOSC reloads: listeners forgotten, /live/startup sent to its default remote."""
        self.listening.clear()
        self.sock.sendto(osc("/live/startup"), (LOCAL, self.response_port))


class FakeReaper(FakePeer):
    def __init__(self) -> None:
        self.tempo = 120.0
        self.device_port = 0  # REAPER's "Device port": where its feedback goes
        super().__init__()

    def handle(self, address: str, args: list[Any], client: tuple[str, int]) -> None:
        if address == "/action/41743":  # Control surface: Refresh all surfaces -> a full state burst
            self.sock.sendto(
                bundle(osc("/track/1/name", "Drums"), osc("/time", 0.0), *self._tempo_messages()),
                (LOCAL, self.device_port),
            )

    def _tempo_messages(self) -> list[bytes]:
        # TEMPO n/tempo f/tempo/raw r/tempo/rotary s/tempo/str (rotary is never sent as feedback)
        return [
            osc("/tempo", (self.tempo - 1) / 959),
            osc("/tempo/raw", self.tempo),
            osc("/tempo/str", f"{self.tempo:.2f}"),
        ]

    def change_tempo(self, bpm: float) -> None:
        self.tempo = bpm
        self.sock.sendto(bundle(*self._tempo_messages()), (LOCAL, self.device_port))

    def send(self, dgram: bytes) -> None:
        self.sock.sendto(dgram, (LOCAL, self.device_port))


class Calls:
    """Records on_tempo calls (made on the reader thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, int | None, str]] = []
        self._changed = threading.Condition()

    def __call__(self, bpm: float, beats_per_bar: int | None, source: str) -> None:
        with self._changed:
            self.calls.append((bpm, beats_per_bar, source))
            self._changed.notify_all()

    def wait_for(self, call: tuple[float, int | None, str], timeout: float = 30.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: call in self.calls, timeout), f"{call} not in {self.calls}"


def tempo_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("jb-tempo")]


@pytest.fixture
def live(no_new_threads) -> Iterator[FakeAbletonOSC]:
    fake = FakeAbletonOSC()
    yield fake
    fake.close()


@pytest.fixture
def reaper(no_new_threads) -> Iterator[FakeReaper]:
    fake = FakeReaper()
    yield fake
    fake.close()


@pytest.fixture
def followers() -> Iterator[list]:
    made: list = []
    yield made
    for follower in made:
        follower.stop()


def follow_live(fake: FakeAbletonOSC, followers: list, calls: Calls, **kwargs: Any) -> AbletonTempo:
    follower = AbletonTempo(calls, port=0, live_port=fake.port, **kwargs)
    followers.append(follower)
    fake.response_port = follower.port
    follower.start()
    return follower


def follow_reaper(fake: FakeReaper, followers: list, calls: Calls, **kwargs: Any) -> ReaperTempo:
    follower = ReaperTempo(calls, port=0, **kwargs)
    followers.append(follower)
    fake.device_port = follower.port
    follower.start()
    return follower


# --- Ableton Live (AbletonOSC) -------------------------------------------------------------------------------


def test_defaults_are_abletonosc_ports_and_a_reaper_port_clear_of_the_bridge():
    assert (LIVE_LISTEN_PORT, LIVE_REPLY_PORT) == (11000, 11001)
    assert REAPER_DEVICE_PORT not in (9950, 9951, 8000, 9000, 11000, 11001)


def test_live_start_listens_asks_and_reports_tempo_and_numerator_once(live, followers):
    calls = Calls()
    follow_live(live, followers, calls)
    calls.wait_for((120.0, 4, "live"))
    wait_until(lambda: live.addresses().count("/live/song/get/tempo") >= 1)
    for prop in ("tempo", "signature_numerator", "signature_denominator"):
        assert f"/live/song/start_listen/{prop}" in live.addresses()
        assert f"/live/song/get/{prop}" in live.addresses()
    live.change("tempo", 121.0)  # after the duplicate answers (listen + get), so they have all been read
    calls.wait_for((121.0, 4, "live"))
    assert calls.calls == [(120.0, 4, "live"), (121.0, 4, "live")]


def test_live_follows_tempo_and_signature_changes(live, followers):
    calls = Calls()
    follower = follow_live(live, followers, calls)
    calls.wait_for((120.0, 4, "live"))
    live.change("tempo", 93.7)  # travels as a 32-bit float, 93.69999695; arrives as the 93.7 Live shows
    calls.wait_for((93.7, 4, "live"))
    live.change("signature_numerator", 7)
    calls.wait_for((93.7, 7, "live"))
    live.change("signature_denominator", 8)
    wait_until(lambda: follower.signature_denominator == 8)
    assert (follower.bpm, follower.beats_per_bar) == (93.7, 7)
    assert calls.calls[-1] == (93.7, 7, "live")


def test_live_without_signature_support_reports_no_beats_per_bar(followers, no_new_threads):
    fake = FakeAbletonOSC(with_signature=False)
    try:
        calls = Calls()
        follow_live(fake, followers, calls)
        calls.wait_for((120.0, None, "live"))
    finally:
        followers.pop().stop()
        fake.close()


def test_live_stop_says_stop_listen_closes_the_socket_and_leaves_no_thread(live, followers):
    calls = Calls()
    follower = follow_live(live, followers, calls)
    calls.wait_for((120.0, 4, "live"))
    assert tempo_threads() == ["jb-tempo-live"]
    port = follower.port
    follower.stop()
    assert tempo_threads() == []
    wait_until(
        lambda: (
            {"tempo", "signature_numerator"}
            <= {a.rsplit("/", 1)[1] for a in live.addresses() if a.startswith("/live/song/stop_listen/")}
        )
    )
    assert live.listening == set()
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    again.bind((LOCAL, port))  # the port is free again
    again.close()
    follower.stop()  # twice is fine
    with pytest.raises(RuntimeError):
        follower.start()


def test_live_context_manager_starts_and_stops(live):
    calls = Calls()
    follower = AbletonTempo(calls, port=0, live_port=live.port)
    live.response_port = follower.port
    with follower as running:
        assert running is follower and tempo_threads() == ["jb-tempo-live"]
        calls.wait_for((120.0, 4, "live"))
    assert tempo_threads() == [] and not follower.running


def test_live_listens_again_after_abletonosc_restarts(live, followers):
    calls = Calls()
    follow_live(live, followers, calls, resync_s=0)
    calls.wait_for((120.0, 4, "live"))
    live.restart()
    wait_until(lambda: live.listening == {"tempo", "signature_numerator", "signature_denominator"})
    live.change("tempo", 132.5)
    calls.wait_for((132.5, 4, "live"))


def test_live_resync_catches_a_change_whose_notice_was_lost(live, followers):
    calls = Calls()
    follow_live(live, followers, calls, resync_s=0.2)
    calls.wait_for((120.0, 4, "live"))
    live.change("tempo", 87.0, notify=False)
    calls.wait_for((87.0, 4, "live"), timeout=3.0)


def test_live_without_resync_asks_only_at_start(live, followers):
    calls = Calls()
    follow_live(live, followers, calls, resync_s=0)
    calls.wait_for((120.0, 4, "live"))
    time.sleep(0.4)
    assert live.addresses().count("/live/song/get/tempo") == 1


def test_live_ignores_datagrams_from_other_hosts(live, followers):
    calls = Calls()
    follower = follow_live(live, followers, calls)
    calls.wait_for((120.0, 4, "live"))
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        stranger.bind(("127.0.0.2", 0))
    except OSError:
        stranger.close()
        pytest.skip("no 127.0.0.2 on this loopback")
    try:
        stranger.sendto(osc("/live/song/get/tempo", 66.0), (LOCAL, follower.port))
        wait_until(lambda: follower.ignored >= 1)
    finally:
        stranger.close()
    live.change("tempo", 99.0)
    calls.wait_for((99.0, 4, "live"))
    assert (66.0, 4, "live") not in calls.calls


BAD_LIVE = [
    b"",
    b"\x00",
    b"garbage",
    b"/live/song/get/tempo",
    b"#bundle\x00\xff",
    bytes(range(256)) * 4,
    b"\xff" * 65507,  # the largest UDP payload
    osc("/live/song/get/tempo", "x" * 60000),  # huge, well formed, wrong type
    osc("/live/song/get/tempo"),
    osc("/live/song/get/tempo", "fast"),
    osc("/live/song/get/tempo", True),
    osc("/live/song/get/tempo", (float("nan"), "f")),
    osc("/live/song/get/tempo", (float("inf"), "d")),
    osc("/live/song/get/tempo", 5.0),
    osc("/live/song/get/tempo", 1000.0),
    osc("/live/song/get/tempo", -120.0),
    osc("/live/song/get/tempo", None),
    osc("/live/song/get/signature_numerator", 0),
    osc("/live/song/get/signature_numerator", 100),
    osc("/live/song/get/signature_numerator", 2.5),
    osc("/live/song/get/signature_denominator", 3),
    osc("/not/live", 1.0),
    bundle(osc("/live/song/get/tempo", 0.0), osc("/live/song/get/signature_numerator", -4)),
]


def test_live_ignores_malformed_huge_and_out_of_range_datagrams_and_keeps_following(live, followers):
    calls = Calls()
    follower = follow_live(live, followers, calls)
    calls.wait_for((120.0, 4, "live"))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for dgram in BAD_LIVE:
            sender.sendto(dgram, (LOCAL, follower.port))
        wait_until(lambda: follower.ignored >= len(BAD_LIVE))  # a bundle of two bad messages counts twice
    finally:
        sender.close()
    assert follower.running and calls.calls == [(120.0, 4, "live")]
    assert (follower.bpm, follower.beats_per_bar) == (120.0, 4)
    live.change("tempo", 140.0)
    calls.wait_for((140.0, 4, "live"))


def test_a_failing_callback_costs_that_call_only(live, followers):
    seen: list[float] = []

    def fragile(bpm: float, beats_per_bar: int | None, source: str) -> None:
        seen.append(bpm)
        if bpm == 120.0:
            raise RuntimeError("boom")

    follower = AbletonTempo(fragile, port=0, live_port=live.port)
    followers.append(follower)
    live.response_port = follower.port
    follower.start()
    wait_until(lambda: 120.0 in seen)
    live.change("tempo", 100.0)
    wait_until(lambda: 100.0 in seen)
    assert follower.running


def test_the_reply_port_in_use_is_refused_with_the_reason(no_new_threads):
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind((LOCAL, 0))
    try:
        with pytest.raises(OSError, match="another AbletonOSC client"):
            AbletonTempo(lambda *a: None, port=holder.getsockname()[1])
        with pytest.raises(OSError, match="device port"):
            ReaperTempo(lambda *a: None, port=holder.getsockname()[1])
    finally:
        holder.close()
    assert tempo_threads() == []


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"host": "example.com"}, "IP address"),
        ({"port": 70000}, "port"),
        ({"port": -1}, "port"),
        ({"live_port": 0}, "port"),
        ({"live_host": "live.local"}, "IP address"),
        ({"resync_s": -1.0}, "resync_s"),
        ({"resync_s": float("nan")}, "resync_s"),
    ],
)
def test_bad_live_settings_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        AbletonTempo(lambda *a: None, **({"port": 0} | kwargs))


# --- REAPER --------------------------------------------------------------------------------------------------


def test_reaper_tempo_raw_is_followed_in_bundles_and_plain_messages(reaper, followers):
    calls = Calls()
    follow_reaper(reaper, followers, calls)
    reaper.change_tempo(96.5)
    calls.wait_for((96.5, None, "reaper"))
    reaper.send(osc("/tempo/raw", 140))  # an int is a number too
    calls.wait_for((140.0, None, "reaper"))
    reaper.send(osc("/tempo/raw", 174.3))
    calls.wait_for((174.3, None, "reaper"))
    assert [c[0] for c in calls.calls] == [96.5, 140.0, 174.3]


def test_reaper_refresh_action_fetches_the_current_tempo(reaper, followers):
    calls = Calls()
    reaper.tempo = 87.25
    follow_reaper(reaper, followers, calls, reaper_port=reaper.port)
    calls.wait_for((87.25, None, "reaper"))
    wait_until(lambda: reaper.addresses() == ["/action/41743"])  # recorded just after it was answered


def test_reaper_listen_only_sends_nothing(reaper, followers):
    calls = Calls()
    follow_reaper(reaper, followers, calls)
    reaper.change_tempo(101.0)
    calls.wait_for((101.0, None, "reaper"))
    time.sleep(0.2)
    assert reaper.received == []


def test_reaper_ignores_bad_tempos_and_garbage_and_keeps_following(reaper, followers):
    calls = Calls()
    follower = follow_reaper(reaper, followers, calls)
    bad = [
        b"\x00" * 7,
        b"\xff" * 65507,
        osc("/tempo/raw"),
        osc("/tempo/raw", "120"),
        osc("/tempo/raw", 0.0),
        osc("/tempo/raw", 1e9),
        osc("/tempo/raw", (float("nan"), "f")),
        bundle(osc("/tempo/raw", 12.0)),
    ]
    for dgram in bad:
        reaper.send(dgram)
    wait_until(lambda: follower.ignored >= len(bad))
    reaper.send(osc("/track/1/vu", 0.5))  # REAPER's other feedback is passed over quietly
    reaper.change_tempo(128.0)
    calls.wait_for((128.0, None, "reaper"))
    assert calls.calls == [(128.0, None, "reaper")] and follower.ignored == len(bad)


def test_reaper_stop_leaves_no_thread(reaper, followers):
    calls = Calls()
    follower = follow_reaper(reaper, followers, calls)
    reaper.change_tempo(110.0)
    calls.wait_for((110.0, None, "reaper"))
    assert tempo_threads() == ["jb-tempo-reaper"]
    follower.stop()
    assert tempo_threads() == [] and not follower.running


def test_a_stopped_follower_that_never_started_releases_its_port():
    follower = ReaperTempo(lambda *a: None, port=0)
    port = follower.port
    follower.stop()
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    again.bind((LOCAL, port))
    again.close()


def test_a_burst_of_live_startups_is_answered_once_now_and_once_after_the_interval(live, followers):
    calls = Calls()
    follower = follow_live(live, followers, calls, resync_s=0)
    calls.wait_for((120.0, 4, "live"))
    before = live.addresses().count("/live/song/start_listen/tempo")
    for _ in range(50):  # forged, or AbletonOSC reloading in a loop
        live.restart()
    wait_until(lambda: follower.startups_coalesced >= 48)
    time.sleep(0.3)
    assert live.addresses().count("/live/song/start_listen/tempo") == before + 1  # the first, at once
    wait_until(lambda: live.addresses().count("/live/song/start_listen/tempo") == before + 2, timeout=10)
    wait_until(lambda: live.listening == {"tempo", "signature_numerator", "signature_denominator"})
    time.sleep(0.3)
    assert live.addresses().count("/live/song/start_listen/tempo") == before + 2  # and the rest were one
