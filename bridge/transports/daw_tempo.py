"""Following the DAW's tempo over OSC, in each DAW's own protocol, so bar lengths match the session.

**Ableton Live, through AbletonOSC** (ideoforms/AbletonOSC, a Remote Script). It listens on UDP 11000 and
answers on the address it was asked, to the asker's host but always on port 11001 (`constants.py`
`OSC_RESPONSE_PORT`; `osc_server.py`). `/live/song/get/tempo` is answered `/live/song/get/tempo <bpm>`
(a float), `/live/song/get/signature_numerator` with an int, likewise `signature_denominator`.
`/live/song/start_listen/<prop>` sends the current value at once and again on every change, on the
same `get` address, to the host that spoke last (`handler.py` `_start_listen`); `stop_listen` ends it.
AbletonOSC sends `/live/startup` when it loads, after which earlier listeners are gone. So `AbletonTempo`
binds the reply port, sends from that same socket (replies reach it whether AbletonOSC answers the fixed
port or, as proposed upstream, the sender's port), starts listening, asks once, asks again every
`resync_s` (which also wins the listeners back from another client: they follow the last one to speak)
and listens again after `/live/startup`. On stop it sends `stop_listen`. Only one program per machine can
hold port 11001: a second AbletonOSC client (TouchOSC on the same computer, a script) is refused with a
clear error. For Live on another computer, bind `host="0.0.0.0"` (or this machine's LAN address) and give
`live_host` as Live's address.

**REAPER's built-in OSC** (`Default.ReaperOSC`: `TEMPO n/tempo f/tempo/raw r/tempo/rotary s/tempo/str`).
REAPER sends `/tempo/raw <bpm>` (a raw float) to the surface's "Device port" when the tempo changes and
in its full refresh; often several messages in one bundle. The default pattern file has no time-signature
message, so REAPER reports no beats per bar (None). Given REAPER's listen port, `ReaperTempo` asks for that
refresh once at start with action 41743 ("Control surface: Refresh all surfaces"), as `/action/41743`;
this refreshes every surface REAPER drives, so it is opt-in. Set the device port to `REAPER_DEVICE_PORT`
(9952: 9950 is the bridge and 9951 the subscriber port the README's examples use).

Values are checked before anyone sees them: a tempo must be finite and 20-999 bpm (Live's range), a
numerator 1-99, a denominator 1, 2, 4, 8 or 16. Anything else, a malformed or foreign datagram included,
is counted in `ignored`, logged (the first few, then every thousandth) and dropped; the reader never dies
of it. `on_tempo(bpm, beats_per_bar, source)` runs on the reader thread ("jb-tempo-<source>") and only
when the tempo or the numerator changed; it should only store or enqueue.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

from pythonosc import osc_packet
from pythonosc.osc_message_builder import OscMessageBuilder

log = logging.getLogger(__name__)

TempoCallback = Callable[[float, int | None, str], None]

LIVE_LISTEN_PORT = 11000  # AbletonOSC's OSC_LISTEN_PORT
LIVE_REPLY_PORT = 11001  # AbletonOSC's OSC_RESPONSE_PORT: fixed, whatever port the request came from
REAPER_DEVICE_PORT = 9952  # our default for REAPER's "Device port"
REAPER_REFRESH_ACTION = 41743  # Control surface: Refresh all surfaces
MIN_BPM, MAX_BPM = 20.0, 999.0
DENOMINATORS = (1, 2, 4, 8, 16)
MAX_DATAGRAM = 65535
POLL_S = 0.1  # how often the reader looks at the stop flag and the resync clock
STARTUP_INTERVAL_S = 2.0  # /live/startup is answered (log line, 6 datagrams) at most this often
LOGGED_IGNORES = 10  # the first this many ignored datagrams are logged as warnings, then every thousandth


def _ip(host: str, what: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{what} {host!r} must be an IP address (or localhost)") from None


def _port(port: Any, what: str, *, ephemeral: bool = False) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not (0 if ephemeral else 1) <= port <= 65535:
        raise ValueError(f"{what} {port!r} is not a port number")
    return port


def _bpm(value: Any) -> float | None:
    """A tempo from the wire, or None. OSC floats are 32-bit: keep the 7 digits one holds (93.7, not 93.69999695)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    bpm = float(f"{value:.7g}") if isinstance(value, float) else float(value)
    return bpm if MIN_BPM <= bpm <= MAX_BPM else None


def _whole(value: Any, allowed: Sequence[int] | range) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        return None
    return value


class DawTempo:
    """A UDP socket of its own and a reader thread; subclasses speak one DAW's protocol."""

    source = "daw"

    def __init__(
        self, on_tempo: TempoCallback, *, host: str, port: int, peer: tuple[str, int] | None, accept_from: str | None
    ) -> None:
        self.on_tempo = on_tempo
        self.host = _ip(host, "tempo host")
        self.peer = (_ip(peer[0], "DAW host"), _port(peer[1], "DAW port")) if peer else None
        self.accept_from = _ip(accept_from, "DAW host") if accept_from else None
        self.bpm: float | None = None
        self.beats_per_bar: int | None = None
        self.received = 0  # datagrams read
        self.ignored = 0  # datagrams or messages dropped: malformed, foreign, out of range
        self._delivered: tuple[float, int | None] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        port = _port(port, "tempo port", ephemeral=True)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.bind((self.host, port))
        except OSError as e:
            self._sock.close()
            raise OSError(
                e.errno,
                f"cannot listen for {self.source} tempo on {self.host}:{port}: {e.strerror}"
                f"{self._in_use_hint() if e.errno == errno.EADDRINUSE else ''}",
            ) from e
        self._sock.settimeout(POLL_S)
        self._port: int = self._sock.getsockname()[1]

    # --- lifecycle --------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (useful when 0 asked for an ephemeral one)."""
        return self._port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start reading, then greet the DAW (subscribe, ask)."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} was already started")
        if self._sock.fileno() < 0:
            raise RuntimeError(f"{type(self).__name__} was stopped; make a new one")
        self._thread = threading.Thread(target=self._run, name=f"jb-tempo-{self.source}", daemon=True)
        self._thread.start()
        self._greet()

    def stop(self) -> None:
        """Say goodbye to the DAW, join the reader, close the socket. Safe to call twice."""
        if self._sock.fileno() < 0:
            return
        if self.running:
            self._farewell()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- protocol hooks ------------------------------------------------------------------------------------

    def _greet(self) -> None:
        """Sent once after the reader starts."""

    def _farewell(self) -> None:
        """Sent once before the reader stops."""

    def _tick(self, now: float) -> None:
        """Called about every POLL_S seconds on the reader thread."""

    def _message(self, address: str, args: list[Any]) -> None:
        raise NotImplementedError

    def _in_use_hint(self) -> str:
        return ""

    # --- the reader --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                data, client = self._sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                data = None
            except ConnectionResetError:  # Windows reports an earlier send's ICMP "port unreachable" here
                data = None
            except OSError as e:
                if self._stopping.is_set():
                    return
                log.warning("%s tempo: socket error %s; still listening", self.source, e)
                time.sleep(POLL_S)
                data = None
            if data is not None:
                self._datagram(data, client)
            try:
                self._tick(time.monotonic())
            except Exception:  # a bug in a hook must not end the reader
                log.exception("%s tempo: tick failed", self.source)

    def _datagram(self, data: bytes, client: tuple[Any, ...]) -> None:
        self.received += 1
        if self.accept_from is not None and client[0] != self.accept_from:
            self._ignore(f"a datagram from {client[0]}:{client[1]}, not the DAW at {self.accept_from}")
            return
        try:
            packet = osc_packet.OscPacket(data)
        except Exception as e:  # noqa: BLE001 - python-osc raises ParseError and, on odd input, others
            self._ignore(f"a malformed OSC packet of {len(data)} bytes ({type(e).__name__}: {e})")
            return
        for timed in packet.messages:  # a bundle's messages, in timetag order
            try:
                self._message(timed.message.address, list(timed.message.params))
            except Exception:  # one bad message (or callback) costs that message only
                log.exception("%s tempo: handling %s failed", self.source, timed.message.address)

    def _ignore(self, what: str) -> None:
        self.ignored += 1
        if self.ignored <= LOGGED_IGNORES or self.ignored % 1000 == 0:
            log.warning("%s tempo: ignored %s (%d ignored so far)", self.source, what, self.ignored)
        else:
            log.debug("%s tempo: ignored %s", self.source, what)

    def _update(self, *, bpm: float | None = None, beats_per_bar: int | None = None) -> None:
        """Record a validated value; tell on_tempo when the tempo is known and something changed."""
        if bpm is not None:
            self.bpm = bpm
        if beats_per_bar is not None:
            self.beats_per_bar = beats_per_bar
        if self.bpm is None or (self.bpm, self.beats_per_bar) == self._delivered:
            return
        self._delivered = (self.bpm, self.beats_per_bar)
        self.on_tempo(self.bpm, self.beats_per_bar, self.source)

    def _send(self, address: str, *args: Any) -> None:
        if self.peer is None:
            return
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg)
        try:
            self._sock.sendto(builder.build().dgram, self.peer)
        except OSError as e:  # the DAW may simply not be running yet
            log.warning("%s tempo: could not send %s to %s:%d: %s", self.source, address, *self.peer, e)


class AbletonTempo(DawTempo):
    """Ableton Live's tempo and numerator through AbletonOSC (listens on 11000, answers on 11001)."""

    source = "live"
    PROPERTIES = ("signature_numerator", "signature_denominator", "tempo")  # tempo last: it comes with its numerator

    def __init__(
        self,
        on_tempo: TempoCallback,
        *,
        host: str = "127.0.0.1",
        port: int = LIVE_REPLY_PORT,
        live_host: str = "127.0.0.1",
        live_port: int = LIVE_LISTEN_PORT,
        resync_s: float = 5.0,
    ) -> None:
        if (
            isinstance(resync_s, bool)
            or not isinstance(resync_s, (int, float))
            or not (resync_s == 0 or 0.05 <= resync_s <= 3600)
        ):
            raise ValueError(f"resync_s must be 0 (off) or 0.05-3600 seconds, not {resync_s!r}")
        self.resync_s = float(resync_s)
        self.signature_denominator: int | None = None
        self._next_resync = math.inf
        self._last_startup = -math.inf
        self._startup_waiting = False  # a /live/startup came too soon after the last: answered once, later
        self.startups_coalesced = 0
        super().__init__(on_tempo, host=host, port=port, peer=(live_host, live_port), accept_from=live_host)

    def _in_use_hint(self) -> str:
        return (
            " (another AbletonOSC client on this machine, such as TouchOSC or a script, holds Live's reply "
            "port; only one program can receive AbletonOSC's replies)"
        )

    def _subscribe(self) -> None:
        for prop in self.PROPERTIES:
            self._send(f"/live/song/start_listen/{prop}")
        self._ask()

    def _ask(self) -> None:
        for prop in self.PROPERTIES:
            self._send(f"/live/song/get/{prop}")
        if self.resync_s:
            self._next_resync = time.monotonic() + self.resync_s

    def _greet(self) -> None:
        self._subscribe()

    def _farewell(self) -> None:
        for prop in self.PROPERTIES:
            self._send(f"/live/song/stop_listen/{prop}")

    def _tick(self, now: float) -> None:
        if self._startup_waiting and now - self._last_startup >= STARTUP_INTERVAL_S:
            self._startup_waiting = False
            self._restart_listening(now)
        if now >= self._next_resync:
            self._ask()

    def _restart_listening(self, now: float) -> None:
        self._last_startup = now
        log.info("live tempo: AbletonOSC started; listening again")
        self._subscribe()

    def _message(self, address: str, args: list[Any]) -> None:
        if address == "/live/startup":  # AbletonOSC (re)loaded: its listeners are gone
            now = time.monotonic()
            if now - self._last_startup >= STARTUP_INTERVAL_S:
                self._restart_listening(now)
            else:  # a burst (forged, or a reload loop): one log line and one re-subscribe per interval
                self._startup_waiting = True
                self.startups_coalesced += 1
            return
        if address == "/live/error":
            log.info("live tempo: AbletonOSC reports %s", " ".join(map(str, args)))
            return
        prop = address.removeprefix("/live/song/get/")
        if prop not in self.PROPERTIES:
            if address.startswith("/live/"):  # AbletonOSC says other things too (at start-up, for instance)
                log.debug("live tempo: not ours: %s %r", address, args)
            else:
                self._ignore(f"{address} (not an AbletonOSC message)")
            return
        value = args[-1] if args else None  # a song reply is the value alone; take the last if more arrive
        if prop == "tempo":
            bpm = _bpm(value)
            if bpm is None:
                self._ignore(f"{address} {args!r} (a tempo must be a number from {MIN_BPM:g} to {MAX_BPM:g})")
            else:
                self._update(bpm=bpm)
        elif prop == "signature_numerator":
            numerator = _whole(value, range(1, 100))
            if numerator is None:
                self._ignore(f"{address} {args!r} (a numerator must be a whole number from 1 to 99)")
            else:
                self._update(beats_per_bar=numerator)
        else:
            denominator = _whole(value, DENOMINATORS)
            if denominator is None:
                self._ignore(f"{address} {args!r} (a denominator must be one of {DENOMINATORS})")
            else:
                self.signature_denominator = denominator


class ReaperTempo(DawTempo):
    """REAPER's tempo from its built-in OSC feedback (`/tempo/raw <bpm>`); REAPER reports no beats per bar."""

    source = "reaper"

    def __init__(
        self,
        on_tempo: TempoCallback,
        *,
        host: str = "127.0.0.1",
        port: int = REAPER_DEVICE_PORT,
        reaper_host: str = "127.0.0.1",
        reaper_port: int | None = None,
    ) -> None:
        super().__init__(
            on_tempo,
            host=host,
            port=port,
            peer=(reaper_host, reaper_port) if reaper_port is not None else None,
            accept_from=reaper_host,
        )

    def _in_use_hint(self) -> str:
        return " (pick another device port for REAPER's OSC surface, and the same one here)"

    def _greet(self) -> None:
        self._send(f"/action/{REAPER_REFRESH_ACTION}")  # only when REAPER's listen port is known

    def _message(self, address: str, args: list[Any]) -> None:
        if address != "/tempo/raw":
            return  # REAPER's feedback is mostly other things (tracks, time, VU): not worth a warning
        bpm = _bpm(args[0]) if args else None
        if bpm is None:
            self._ignore(f"/tempo/raw {args!r} (a tempo must be a number from {MIN_BPM:g} to {MAX_BPM:g})")
        else:
            self._update(bpm=bpm)
