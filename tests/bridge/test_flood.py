"""Load and confinement of the OSC server: a loopback flood while a job runs, the allow-list, the bind address.

The flood comes from one client on 127.0.0.1, is bounded in count and in time, and keeps within
`OscServer.burst_limit` requests in flight (with the 4 MiB buffer Linux grants when
net.core.rmem_max allows it, that is the whole burst at once). Every request must be answered, in
order, while the job's progress keeps arriving; /jb/generate beyond the queue limit is refused
with an error, never dropped.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from bridge.app import Bridge
from bridge.controller import Controller
from bridge.jobs.queue import JobQueue
from bridge.settings import BridgeSettings
from bridge.transports.notify import Notifier
from bridge.transports.osc import RCVBUF_BYTES, OscServer, OscSurface, allowed
from tests.bridge.harness import OscClient

N_PINGS, N_SETS, N_GENERATES = 1200, 780, 20  # 2000 requests
MAX_QUEUE = 3
FLOOD_LIMIT_S = 30.0
BURST, PAUSE_S = 500, 0.25  # four bursts of 500 datagrams, sent as fast as the socket takes them
JOB_S = 0.6  # a preview of this length keeps the worker sampling for a few seconds on a CPU


class _Replies:
    """Counts replies on some addresses as they arrive, reading only what is new."""

    def __init__(self, client: OscClient, addresses: set[str]):
        self.client, self.addresses = client, addresses
        self.start = self.seen = len(client.messages())
        self.count = 0

    def update(self) -> int:
        new = self.client.messages()[self.seen :]
        self.seen += len(new)
        self.count += sum(1 for m in new if m.address in self.addresses)
        return self.count

    def wait(self, total: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.update() < total:
            assert time.monotonic() < deadline, f"{self.count} of {total} replies within {timeout} s"
            time.sleep(0.01)


def _flood(client: OscClient, requests: list[tuple[str, tuple]], window: int, replies: _Replies) -> float:
    """Send every request in bursts of BURST, never more than `window` unanswered; returns the seconds it took."""
    began = time.monotonic()
    deadline = began + FLOOD_LIMIT_S
    sent = 0
    while sent < len(requests):
        if sent and sent % BURST == 0:
            time.sleep(PAUSE_S)  # so the flood spans several of the job's progress updates
        room = min(window - (sent - replies.update()), BURST - sent % BURST)
        if room <= 0:
            assert time.monotonic() < deadline, f"flood stalled: {replies.count} of {sent} answered"
            time.sleep(0.001)
            continue
        for address, args in requests[sent : sent + room]:
            client.send(address, *args)
        sent += min(room, len(requests) - sent)
    return time.monotonic() - began


def test_a_flood_of_requests_while_a_job_runs_is_answered_in_full_and_in_order_with_progress_still_arriving(
    make_bridge,
):
    bridge, c = make_bridge(max_queue=MAX_QUEUE)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
    assert bridge.osc.rcvbuf >= 2 * 212992 > 0  # at least the stock default, read back after bind
    window = min(N_PINGS + N_SETS + N_GENERATES, bridge.osc.burst_limit)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/length", JOB_S)
    job = c.ask("/jb/generate").args[0]
    c.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[0] == job, timeout=60)

    requests: list[tuple[str, tuple]] = []
    for i in range(N_PINGS + N_SETS + N_GENERATES):
        if i % 100 == 50 and sum(1 for a, _ in requests if a == "/jb/generate") < N_GENERATES:
            requests.append(("/jb/generate", ()))
        elif i % 5 in (1, 3) and sum(1 for a, _ in requests if a.startswith("/jb/set/")) < N_SETS:
            requests.append(("/jb/set/top_k", (i % 4096,)))
        else:
            requests.append(("/jb/ping", ()))
    counts = {a: sum(1 for r, _ in requests if r == a) for a in ("/jb/ping", "/jb/set/top_k", "/jb/generate")}
    assert sum(counts.values()) == 2000 and counts["/jb/generate"] == N_GENERATES
    replies = _Replies(c, set(counts))
    start = replies.start
    received = bridge.osc.received
    seconds = _flood(c, requests, window, replies)
    replies.wait(len(requests), FLOOD_LIMIT_S)
    assert bridge.osc.received - received == len(requests) and bridge.osc.refused == 0

    got = [m for m in c.messages()[start:] if m.address in counts]
    assert {a: sum(1 for m in got if m.address == a) for a in counts} == counts  # nothing lost
    assert [m.args[0] for m in got if m.address == "/jb/set/top_k"] == [
        a[0] for r, a in requests if r == "/jb/set/top_k"
    ]
    generated = [m for m in got if m.address == "/jb/generate"]
    queued = [m.args[0] for m in generated if m.args[1] == "queued"]
    refused = [m for m in generated if m.args[0] == "error"]
    assert len(queued) == MAX_QUEUE and len(refused) == N_GENERATES - MAX_QUEUE  # the documented queue limit
    assert all("queue is full (3 jobs)" in m.args[1] for m in refused)

    window_of_flood = c.messages()[start:]
    first = next(i for i, m in enumerate(window_of_flood) if m.address in counts)
    last = max(i for i, m in enumerate(window_of_flood) if m.address in counts)
    during = [m for m in window_of_flood[first:last] if m.address == "/jb/job/progress" and m.args[0] == job]
    assert len(during) >= 2, "progress stopped during the flood"

    assert c.ask("/jb/cancel", queued[0]).args[:2] == [1, queued[0]]
    for extra in queued[1:]:
        c.ask("/jb/cancel", extra)
    end = c.wait_job(job, timeout=120)
    assert end.address == "/jb/job/done" and end.args[1] == 1
    assert all(c.wait_job(q).address == "/jb/job/cancelled" for q in queued)
    print(
        f"\nflood: {len(requests)} requests in {seconds:.2f} s (window {window}, rcvbuf {bridge.osc.rcvbuf}), "
        f"{len(got)} replies, {len(during)} progress messages during the flood, {len(refused)} 'queue full'"
    )


def test_a_client_that_keeps_within_the_burst_limit_loses_nothing_with_the_stock_linux_receive_buffer(
    make_bridge, monkeypatch
):
    from bridge.transports import osc

    monkeypatch.setattr(osc, "RCVBUF_BYTES", 212992)  # what net.core.rmem_max allows on a stock kernel
    bridge, c = make_bridge()
    assert bridge.osc.burst_limit < 2000
    replies = _Replies(c, {"/jb/ping"})
    _flood(c, [("/jb/ping", ())] * 2000, bridge.osc.burst_limit, replies)
    replies.wait(2000, FLOOD_LIMIT_S)
    assert replies.update() == 2000 and bridge.osc.received >= 2000


def _offline_server(allow: tuple[str, ...] = ()) -> OscServer:
    """A server whose notifier never starts: whatever it would send stays queued, nothing leaves the machine."""
    settings = BridgeSettings(port=0, presets_dir=None)
    notifier = Notifier()
    controller = Controller(settings, JobQueue(), notifier)
    return OscServer("127.0.0.1", 0, OscSurface(controller, notifier), allow=allow)


def test_a_datagram_from_an_address_outside_the_allow_list_is_dropped_unanswered_and_counted():
    server = _offline_server(allow=("192.168.1.0/24",))
    try:
        ping = b"/jb/ping\x00\x00\x00\x00,\x00\x00\x00"
        server.handle_datagram(ping, ("203.0.113.9", 9000))
        server.handle_datagram(b"garbage", ("10.0.0.1", 9000))
        assert server.refused == 2 and server.received == 0
        assert server.surface.notifier._queue.qsize() == 0  # not even a reply queued
        server.handle_datagram(ping, ("192.168.1.20", 9000))  # listed network: answered
        server.handle_datagram(ping, ("127.0.0.1", 9000))  # loopback: always
        assert server.received == 2 and server.refused == 2
        assert server.surface.notifier._queue.qsize() == 2
    finally:
        server.server_close()
        server.surface.notifier.stop()


@pytest.mark.parametrize(
    ("client", "allow", "expected"),
    [
        ("127.0.0.1", (), True),
        ("127.3.4.5", (), True),
        ("::1", (), True),
        ("192.168.1.20", (), False),
        ("192.168.1.20", ("192.168.1.20",), True),
        ("192.168.1.21", ("192.168.1.20",), False),
        ("192.168.1.77", ("192.168.1.0/24",), True),
        ("192.168.2.77", ("192.168.1.0/24",), False),
        ("10.1.2.3", ("not-an-address", "10.0.0.0/8"), True),  # a bad entry is skipped, the rest still count
        ("10.1.2.3", ("not-an-address",), False),
        ("fe80::1", ("fe80::/10",), True),
        ("localhost", ("localhost",), False),  # names are never resolved
        ("", (), False),
    ],
)
def test_the_allow_list_admits_loopback_and_listed_addresses_or_networks_only(client, allow, expected):
    assert allowed((client, 9000), allow) is expected


def test_the_server_binds_loopback_by_default_and_asks_for_a_big_receive_buffer(tiny_engine_factory, tmp_path):
    assert BridgeSettings().host == "127.0.0.1"
    from bridge.cli import build_parser, settings_from_args

    assert settings_from_args(build_parser().parse_args([])).host == "127.0.0.1"
    bridge = Bridge(BridgeSettings(port=0, project_dir=tmp_path / "p", presets_dir=None), engine=tiny_engine_factory)
    try:
        assert bridge.osc.server_address[0] == "127.0.0.1"
        rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text()) if _linux() else None
        if rmem_max is not None:
            assert bridge.osc.rcvbuf == 2 * min(RCVBUF_BYTES, rmem_max)  # Linux reports twice what it grants
        assert bridge.osc.burst_limit == bridge.osc.rcvbuf // 2304 >= 184
    finally:
        bridge.osc.server_close()
        bridge.notifier.stop()


def _linux() -> bool:
    import sys

    return sys.platform.startswith("linux")


def test_a_small_datagram_gets_a_bounded_reply_unless_the_requester_subscribed(make_bridge):
    from pythonosc import osc_bundle_builder, osc_message_builder

    bridge, c = make_bridge()
    c.ask("/jb/set/lyrics", "la " * 6000)  # long lyrics: each state dump sends 8 kB of them back
    bundle = osc_bundle_builder.OscBundleBuilder(osc_bundle_builder.IMMEDIATELY)
    for _ in range(3):
        bundle.add_content(osc_message_builder.OscMessageBuilder(address="/jb/state/dump").build())
    datagram = bundle.build().dgram  # under 100 bytes asking for three dumps

    def dumps() -> list:
        start = len(c.messages())
        c.send_raw(datagram)
        c.wait_for(lambda m: len([x for x in c.messages()[start:] if x.address == "/jb/state/dump"]) == 3, timeout=15)
        time.sleep(0.2)
        return c.messages()[start:]

    got = dumps()
    assert len([m for m in got if m.address == "/jb/get/lyrics"]) == 1  # the first fits; the others are withheld
    assert len([m for m in got if m.address == "/jb/get/artist"]) == 3  # small replies always go
    error = next(m for m in got if m.address == "/jb/error")
    assert error.args[0] == "/jb/get/lyrics" and "2 replies withheld" in error.args[1] and "subscribe" in error.args[1]
    c.ask("/jb/subscribe")
    got = dumps()
    assert len([m for m in got if m.address == "/jb/get/lyrics"]) == 3 and not [
        m for m in got if m.address == "/jb/error"
    ]
    assert bridge.notifier.withheld == 2
