"""Two bridges that can reach each other never start an exchange that feeds itself: what one sends the
other (replies, events) is not answered back, however they were subscribed (issue 22, breaks 1 and 4)."""

from __future__ import annotations

import socket
import time

from tests.bridge.fake_engine import FakeEngine
from tests.bridge.harness import OscClient, wait_until


def _settled(bridges, seconds: float = 1.0) -> list[int]:
    """Received-datagram counts once nothing has arrived for `seconds` (or after 10 s: a loop)."""
    deadline = time.monotonic() + 10
    last = [b.osc.received for b in bridges]
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = [b.osc.received for b in bridges]
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= seconds:
            return now
    raise AssertionError(f"the bridges were still exchanging datagrams after 10 s: {last}")


def test_two_bridges_subscribed_to_each_other_answer_one_ping_and_go_quiet(make_bridge, tmp_path):
    a, ca = make_bridge(engine=FakeEngine, project_dir=tmp_path / "a")
    b, cb = make_bridge(engine=FakeEngine, project_dir=tmp_path / "b")
    assert ca.ask("/jb/subscribe", b.port).args == ["127.0.0.1", b.port]
    assert cb.ask("/jb/subscribe", a.port).args == ["127.0.0.1", a.port]
    before = _settled([a, b], 0.3)
    assert ca.ask("/jb/ping").args[0] == "ok"
    after = _settled([a, b])
    assert after[0] - before[0] <= 3 and after[1] - before[1] <= 3, (before, after)
    assert a.osc.looped + b.osc.looped >= 1  # the exchange was cut, not merely slow
    for client in (ca, cb):  # both answer their own clients at once, and can be unsubscribed in one try
        assert client.ask("/jb/ping").args[0] == "ok"
    assert ca.ask("/jb/unsubscribe", b.port).args == ["127.0.0.1", b.port]
    assert cb.ask("/jb/unsubscribe", a.port).args == ["127.0.0.1", a.port]


def test_a_bridge_set_up_with_the_other_as_subscriber_does_not_loop_on_settings_either(make_bridge, tmp_path):
    b, cb = make_bridge(engine=FakeEngine, project_dir=tmp_path / "b")
    a, ca = make_bridge(engine=FakeEngine, project_dir=tmp_path / "a", subscribers=(("127.0.0.1", b.port),))
    assert cb.ask("/jb/subscribe", a.port).args == ["127.0.0.1", a.port]
    before = _settled([a, b], 0.3)
    ca.ask("/jb/set/bpm", 124)  # echoed as /jb/set/bpm 124: to the other bridge, a request like any
    ca.ask("/jb/nonsense")  # errors are answered too
    after = _settled([a, b])
    assert after[0] - before[0] <= 4 and after[1] - before[1] <= 4, (before, after)


def test_a_remote_client_may_aim_events_only_at_its_own_host(make_bridge):
    bridge, _ = make_bridge(engine=FakeEngine)
    surface, remote = bridge.surface, ("192.168.1.20", 5000)  # as if let in by `allow`
    surface.handle("/jb/subscribe", [9951, "127.0.0.1"], remote)  # another bridge's port, say
    surface.handle("/jb/subscribe", [9951, "192.168.1.21"], remote)
    assert bridge.notifier.subscribers() == []
    surface.handle("/jb/subscribe", [9951, "192.168.1.20"], remote)
    assert bridge.notifier.subscribers() == [("192.168.1.20", 9951)]


def test_a_peer_that_answers_the_bridges_replies_is_not_answered_again(make_bridge):
    bridge, client = make_bridge(engine=FakeEngine)
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    try:
        assert client.ask("/jb/subscribe", echo.getsockname()[1]).args[0] == "127.0.0.1"
        echo.settimeout(5)
        data, source = echo.recvfrom(65536)  # the subscribe reply, from the bridge's notifier
        echo.sendto(data, source)  # answers it back to where it came from ...
        echo.sendto(data, ("127.0.0.1", bridge.port))  # ... and to the OSC port, as a subscribed bridge would
        wait_until(lambda: bridge.osc.looped >= 1, timeout=5)
        plain = OscClient(bridge.port)  # other clients are served as before
        try:
            assert plain.ask("/jb/ping").args[0] == "ok"
        finally:
            plain.close()
    finally:
        echo.close()
