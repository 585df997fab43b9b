"""Outgoing OSC datagrams to the requester and every subscriber, from one thread.

Everything the OSC transport says goes through here, in order, so a client sees `queued` before
`progress` before `done`. Rate-limited sends (progress: a DAW needs a few updates a second, not
one per token) may be dropped; anything else never is. A send that fails (a subscriber gone
away) is logged and forgotten: a client's absence must not stall the bridge. Nothing is ever
sent to the bridge's own OSC socket, in any address form, so no reply loop can form.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import queue
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder

log = logging.getLogger(__name__)

Address = tuple[str, int]
MAX_STRING_BYTES = 8000  # stay under the smallest common UDP limit (macOS ~9216 bytes per datagram)
MAX_DATAGRAM_BYTES = 65507  # the most one UDP datagram over IPv4 can carry


REPLY_FLOOR_BYTES = 8192  # what any request may get back (a page of names, a state dump with short lyrics)
REPLY_FACTOR = 16  # beyond the floor, replies to one datagram are at most this many times its size
SMALL_REPLY_BYTES = 256  # a reply this small always goes (a datagram's own answer, an error, a count)


@dataclass
class ReplyBudget:
    """Bytes the replies to one datagram may still take, for a requester that is not a subscriber."""

    client: Address
    limit: int  # what the replies to the datagram may take in all
    withheld: list[str] = field(default_factory=list)  # addresses of the replies that did not fit
    left: int = field(init=False)

    def __post_init__(self) -> None:
        self.left = self.limit

    def take(self, address: str, size: int) -> bool:
        if size <= SMALL_REPLY_BYTES:  # bounded by the number of messages a request can cause
            return True
        if size > self.left:
            self.withheld.append(address)
            return False
        self.left -= size
        return True


def build_message(address: str, args: Iterable[Any]) -> bytes:
    """An OSC datagram; ints beyond 32 bits travel as 'h' (beyond 64 as text), floats as 'f', None as 'N',
    long text is cut, text that cannot be UTF-8 is escaped: building a reply never raises. A reply that would
    not fit one UDP datagram (a huge request address echoed back) has its text cut further until it does."""
    args = list(args)
    limit = MAX_STRING_BYTES
    dgram = _build(address, args, limit)
    while len(dgram) > MAX_DATAGRAM_BYTES and limit > 16:
        limit //= 2
        dgram = _build(address, args, limit)
    return dgram


def _build(address: str, args: list[Any], max_text_bytes: int) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        if isinstance(arg, bool):
            builder.add_arg(arg)
        elif isinstance(arg, int) and -(2**63) <= arg < 2**63:
            builder.add_arg(arg, "i" if -(2**31) <= arg < 2**31 else "h")
        elif isinstance(arg, float):
            builder.add_arg(arg if math.isfinite(arg) else -1.0, "f")
        elif arg is None:
            builder.add_arg(None)
        else:
            text = str(arg)
            # a file name that is not UTF-8 (os.fsdecode's lone surrogates) travels as \udcXX, not as an exception
            data = text.encode("utf-8", "backslashreplace")
            text = data.decode("utf-8")
            if len(data) > max_text_bytes:
                text = data[: max(0, max_text_bytes - 3)].decode("utf-8", "ignore") + "…"
            builder.add_arg(text, "s")
    return builder.build().dgram


def normalised_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`host` as an address, an IPv4-mapped IPv6 one as its IPv4 form; None if it is not an address."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class Notifier:
    def __init__(
        self,
        *,
        subscribers: Iterable[Address] = (),
        progress_interval_s: float = 0.25,
        max_subscribers: int = 32,
        event_interval_s: float = 0.05,
    ):
        self.progress_interval_s = progress_interval_s
        self.event_interval_s = event_interval_s
        self.max_subscribers = max_subscribers
        self._subscribers: list[Address] = list(dict.fromkeys(subscribers))
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[tuple[Address, ...], bytes] | None] = queue.Queue()
        self._last_progress: dict[str, float] = {}
        self._latest_sent: dict[str, float] = {}  # send_latest: when each key last went out
        self._pending: dict[str, tuple[str, tuple[Any, ...]]] = {}  # and the newest value waiting for its turn
        self.coalesced = 0
        self._own: Address | None = None
        self._own_cache: dict[str, bool] = {}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("0.0.0.0", 0))  # a fixed source port: the OSC server drops datagrams from it
        self._thread = threading.Thread(target=self._run, name="jb-notifier", daemon=True)
        self.sent = 0
        self.dropped_progress = 0
        # peers that sent a datagram to this socket: nothing but an answer to our own output arrives here, so
        # each is a bridge (or an echo) whose datagrams to the OSC server must not be answered again
        self._responders: dict[Address, None] = {}
        self.max_responders = 256
        self._budget = threading.local()  # the reply budget of the datagram this thread is answering
        self.withheld = 0

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Send what is queued, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)
        self._sock.close()

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._flush_pending())
            except queue.Empty:
                continue
            if item is None:
                self._flush_pending(everything=True)
                return
            self._send_to(*item)

    def _send_to(self, targets: Iterable[Address], datagram: bytes) -> None:
        """On the sender thread: one datagram to each target; a failed send is logged, never raised."""
        for target in targets:
            try:
                self._sock.sendto(datagram, target)
                self.sent += 1
            except OSError as e:
                log.warning("could not send to %s:%s (%s)", target[0], target[1], e)

    # --- subscribers ------------------------------------------------------------------------------

    def guard(self, port: int, host: str = "127.0.0.1") -> None:
        """The bridge's own OSC socket: never a target."""
        self._own = (host, port)
        self._own_cache.clear()

    def is_own(self, target: Address) -> bool:
        """Whether `target` reaches the bridge's own OSC socket: its port on the bound address, on any
        loopback or unspecified address, or on any address of this machine (when bound to all)."""
        if self._own is None or target[1] != self._own[1]:
            return False
        ip = normalised_ip(target[0])
        if ip is None:
            return True  # not an address: refuse rather than guess
        if ip.is_loopback or ip.is_unspecified or str(ip) == self._own[0]:
            return True
        if self._own[0] not in ("0.0.0.0", "::"):
            return False
        if str(ip) not in self._own_cache:  # an address this machine can bind is one of its own
            if len(self._own_cache) >= 4096:  # clients from a wide allowed network: keep the answers bounded
                self._own_cache.clear()
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            try:
                with socket.socket(family, socket.SOCK_DGRAM) as probe:
                    probe.bind((str(ip), 0))
                self._own_cache[str(ip)] = True
            except OSError:
                self._own_cache[str(ip)] = False
        return self._own_cache[str(ip)]

    def subscribe(self, target: Address) -> bool:
        if self.is_own(target):
            raise ValueError(f"{target[0]}:{target[1]} is the bridge's own OSC port; events sent there would loop")
        with self._lock:
            if target in self._subscribers:
                return False
            if len(self._subscribers) >= self.max_subscribers:
                raise ValueError(f"at most {self.max_subscribers} subscribers")
            self._subscribers.append(target)
            return True

    def unsubscribe(self, target: Address) -> bool:
        with self._lock:
            if target in self._subscribers:
                self._subscribers.remove(target)
                return True
            return False

    def answered_us(self, peer: Address) -> bool:
        """Whether `peer` has answered what this notifier sent: a datagram from it is a reply or an event,
        and answering it would start an exchange that never ends (two bridges subscribed to each other).

        Reads what is waiting on the notifier's socket first, without blocking: on loopback a peer's answer
        to our source port is there before its copy to our OSC port, which it sends after."""
        flags = getattr(socket, "MSG_DONTWAIT", 0)
        for _ in range(1024):  # bounded: a flood to this port cannot hold the OSC thread
            try:
                if flags:
                    _, sender = self._sock.recvfrom(65536, flags)
                else:  # pragma: no cover - platforms without MSG_DONTWAIT
                    ready, _, _ = select.select([self._sock], [], [], 0)
                    if not ready:
                        break
                    _, sender = self._sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # closed, or an ICMP error reported on the socket: nothing more to read now
                break
            with self._lock:
                if sender[:2] not in self._responders:
                    if len(self._responders) >= self.max_responders:
                        self._responders.pop(next(iter(self._responders)))
                    self._responders[sender[:2]] = None
                    log.warning("%s:%s answers this bridge's replies: its datagrams are not answered", *sender[:2])
        with self._lock:
            return peer[:2] in self._responders

    @property
    def source(self) -> Address:
        """Where this notifier's datagrams come from."""
        return self._sock.getsockname()

    def subscribers(self) -> list[Address]:
        with self._lock:
            return list(self._subscribers)

    # --- sending ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def reply_budget(self, client: Address, request_bytes: int) -> Iterator[None]:
        """While one datagram from `client` is answered: if `client` is not a subscriber, the replies it gets
        stay within REPLY_FACTOR times the datagram's size (at least REPLY_FLOOR_BYTES), so no peer can
        turn a small datagram into a large reflection; what does not fit is named in one error instead."""
        if client in self.subscribers():
            yield
            return
        budget = ReplyBudget(client, max(REPLY_FLOOR_BYTES, REPLY_FACTOR * request_bytes))
        self._budget.current = budget
        try:
            yield
        finally:
            self._budget.current = None
            if budget.withheld:
                self.withheld += len(budget.withheld)
                message = (
                    f"{len(budget.withheld)} repl{'y' if len(budget.withheld) == 1 else 'ies'} withheld: over "
                    f"{budget.limit} bytes for {request_bytes} sent, to a "
                    "client that is not subscribed; /jb/subscribe, then ask again"
                )
                self._queue.put(((client,), build_message("/jb/error", [budget.withheld[0], message])))

    def _within_budget(self, client: Address | None, address: str, datagram: bytes) -> bool:
        budget = getattr(self._budget, "current", None)
        return budget is None or client != budget.client or budget.take(address, len(datagram))

    def send(self, client: Address | None, address: str, *args: Any) -> None:
        """To `client` (the requester, if any) and every subscriber, once each."""
        datagram = build_message(address, args)
        requester = [client] if client and self._within_budget(client, address, datagram) else []
        targets = tuple(t for t in dict.fromkeys(requester + self.subscribers()) if not self.is_own(t))
        if targets:
            self._queue.put((targets, datagram))

    def send_only(self, client: Address | None, address: str, *args: Any) -> None:
        """To `client` alone (a reply meant for one control surface, such as a state dump)."""
        if client is not None and not self.is_own(client):
            datagram = build_message(address, args)
            if self._within_budget(client, address, datagram):
                self._queue.put(((client,), datagram))

    def send_limited(self, key: str, client: Address | None, address: str, *args: Any, final: bool = False) -> bool:
        """At most one send per `progress_interval_s` for `key` (a job); `final` ones always go. Returns whether it was sent."""
        now = time.monotonic()
        with self._lock:
            last = self._last_progress.get(key)
            if not final and last is not None and now - last < self.progress_interval_s:
                self.dropped_progress += 1
                return False
            self._last_progress[key] = now
        self.send(client, address, *args)
        return True

    def send_latest(self, key: str, address: str, *args: Any) -> None:
        """An event where only the newest value matters (a parameter a knob or the DAW's tempo moves), to every
        subscriber: at most one per `event_interval_s` for `key`, and the last value always goes, at most
        that long after the one before. A DAW sending 5000 tempo changes a second sends 20 a second on."""
        now = time.monotonic()
        with self._lock:
            last = self._latest_sent.get(key)
            if key not in self._pending and (last is None or now - last >= self.event_interval_s):
                self._latest_sent[key] = now
                send_now = True
            else:
                if key in self._pending:
                    self.coalesced += 1
                self._pending[key] = (address, args)
                send_now = False
        if send_now:
            self.send(None, address, *args)
        else:
            self._queue.put(((), b""))  # wakes the sender thread, which sends it when its turn comes

    def settled(self) -> bool:
        """True when no coalesced event waits for its turn: what was said so far has been queued to send."""
        with self._lock:
            return not self._pending

    def _flush_pending(self, *, everything: bool = False) -> float | None:
        """Send the coalesced events that are due; seconds until the next one is (None: nothing waits)."""
        now = time.monotonic()
        due: list[tuple[str, tuple[Any, ...]]] = []
        wait = None
        with self._lock:
            for key in list(self._pending):
                at = self._latest_sent.get(key, 0.0) + self.event_interval_s
                if everything or at <= now:
                    due.append(self._pending.pop(key))
                    self._latest_sent[key] = now
                else:
                    wait = at - now if wait is None else min(wait, at - now)
        for address, args in due:
            self._send_to([t for t in self.subscribers() if not self.is_own(t)], build_message(address, args))
        return wait

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._last_progress.pop(job_id, None)
