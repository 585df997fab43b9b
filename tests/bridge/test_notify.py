"""Outgoing OSC: order kept, requester and subscribers each get one copy, progress rate-limited but a
level's last update always sent, and large or odd values still make valid datagrams."""

from __future__ import annotations

import time

from pythonosc.osc_message import OscMessage

from bridge.transports.notify import MAX_STRING_BYTES, Notifier, build_message
from tests.bridge.harness import OscClient


def test_datagrams_carry_big_ints_none_and_cut_long_text():
    msg = OscMessage(build_message("/a", [2**40, None, True, "é" * 10000, float("nan")]))
    assert msg.params[0] == 2**40 and msg.params[1] is None and msg.params[2] is True
    assert len(msg.params[3].encode()) <= MAX_STRING_BYTES and msg.params[4] == -1.0


def test_requester_and_subscribers_hear_everything_once_and_progress_is_rate_limited(no_thread_leaks):
    n = Notifier(progress_interval_s=10.0)
    n.start()
    a, b = OscClient(1), OscClient(1)
    try:
        me = ("127.0.0.1", a.port)
        n.subscribe(("127.0.0.1", b.port))
        n.subscribe(me)  # the requester is also a subscriber: still one copy
        for i in range(20):
            n.send(me, "/jb/x", i)
        sent = [n.send_limited("job", me, "/jb/job/progress", "job", f) for f in (0.1, 0.2, 0.3)]
        assert sent == [True, False, False]
        assert n.send_limited("job", me, "/jb/job/progress", "job", 1.0, final=True)
        a.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[1] == 1.0)
        b.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[1] == 1.0)
        time.sleep(0.1)
        assert [m.args[0] for m in a.messages("/jb/x")] == list(range(20))
        assert len(b.messages("/jb/x")) == 20 and len(a.messages("/jb/job/progress")) == 2
    finally:
        a.close()
        b.close()
        n.stop()


def test_a_storm_of_parameter_events_is_coalesced_and_the_last_value_always_arrives(no_thread_leaks):
    n = Notifier(event_interval_s=0.05)
    n.start()
    sub = OscClient(1)
    try:
        n.subscribe(("127.0.0.1", sub.port))
        started = time.monotonic()
        for bpm in range(60, 5060):  # a DAW's tempo automation, as fast as it comes
            n.send_latest("param:bpm", "/jb/set/bpm", float(bpm))
            n.send_latest("param:top_k", "/jb/set/top_k", 7)  # another key has its own turn
        elapsed = time.monotonic() - started
        sub.wait_for(lambda m: m.address == "/jb/set/bpm" and m.args == [5059.0], timeout=5)
        time.sleep(0.2)
        got = [m.args[0] for m in sub.messages("/jb/set/bpm")]
        assert got[0] == 60.0 and got[-1] == 5059.0 and got == sorted(got)  # newest wins, order kept
        assert len(got) <= elapsed / 0.05 + 3, (len(got), elapsed)
        assert 1 <= len(sub.messages("/jb/set/top_k")) <= elapsed / 0.05 + 3
        assert n.coalesced > 4000
    finally:
        sub.close()
        n.stop()
