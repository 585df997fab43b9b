"""The OSC surface: one prefix, AbletonOSC-style verbs, replies on the request's address.

Every request is answered, to the sender's own port and to every subscriber: on the request's
address (job id first where there is a job), or with `"error", message` on that address plus
`/jb/error <address> <message>`. Handlers only parse and call the controller; the datagram thread
never waits for the model. Malformed packets, unknown addresses and wrong arguments get an
error reply; datagrams from addresses outside the allow-list get nothing at all (they are counted
in `OscServer.refused`). The server binds 127.0.0.1 unless told otherwise.

Bursts: requests are handled one at a time in arrival order, so a burst waits in the socket's
receive buffer. The server asks for a 4 MiB buffer (`RCVBUF_BYTES`); Linux grants at most
`net.core.rmem_max` and reports twice the granted size. `OscServer.burst_limit` is how many requests
of up to 1000 bytes may be in flight (sent, not yet answered) without the kernel dropping any:
the granted size over `DATAGRAM_COST`. On a stock Linux (rmem_max 212992) that is 184; with
`sysctl net.core.rmem_max=4194304` it is 3640. A client that keeps within it loses nothing
(tests/bridge/test_flood.py, docs/reliability.md).

    /jb/ping                          -> /jb/ping ok <version>
    /jb/status                        -> /jb/status <state> <queued> <running job> <bundle> <preset> <prime>
    /jb/help                          -> /jb/help <address> ...
    /jb/set/<param> <value...>        -> /jb/set/<param> <value...>      (params: /jb/help params)
    /jb/get/<param>                   -> /jb/get/<param> <value...>
    /jb/get/session                   -> /jb/get/session <name> <value> ... (lists as comma-joined text)
    /jb/set/length <n> [s|bars] [bpm] -> lengths in seconds or bars at a tempo
    /jb/prime/file <path>             -> /jb/prime/file <resolved path>
    /jb/prime/inbox                   -> /jb/prime/inbox <path of the newest inbox clip>
    /jb/prime/clear                   -> /jb/prime/clear ok
    /jb/generate [mode]               -> /jb/generate <job> queued <position> <eta_s> <mode> <seed>
    /jb/generate/<mode> [job] [take…] -> same; mode ancestral | primed | continue | upsample
    /jb/retry                         -> /jb/retry <job> queued ...
    /jb/regenerate <take.json>        -> /jb/regenerate <job> queued ...  (that take alone, from its sidecar)
    /jb/cancel [job]                  -> /jb/cancel <count> <job> ...
    /jb/job/status <job>              -> /jb/job/status <job> <state> <stage> <level> <fraction> <eta_s> <position> <files>
    /jb/jobs                          -> /jb/jobs <job> ... (oldest first)
    /jb/preset/list | load <name> | save <name> [description]
    /jb/subscribe [port] [host]       -> /jb/subscribe <host> <port>   (default: the sender's address)
    /jb/unsubscribe [port] [host]
    /jb/midi/learn <param|action|preset:name> | /jb/midi/learn/cancel
    /jb/state/dump                    -> /jb/get/<param> ... /jb/get/prime /jb/preset/current /jb/state /jb/status,
                                         then /jb/state/dump <count>  (to the requester alone)
    /jb/model/artists [prefix] [start] -> /jb/model/artists <total> <start> <name> ...  (also /jb/model/genres)

Events (to the requester and subscribers): /jb/state, /jb/job/queued|started|progress|take|warning|
done|cancelled|failed|resumed, /jb/prime, /jb/info, /jb/error; to subscribers, changes not made with
/jb/set/...: /jb/set/<param> <value...> (a MIDI knob, the DAW's tempo, a preset) and /jb/preset/load <name>.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pythonosc import osc_packet

from bridge import __version__
from bridge.commands import Origin
from bridge.controller import Controller
from bridge.errors import CommandError
from bridge.events import (
    Event,
    JobEnded,
    JobEvent,
    JobProgress,
    JobQueued,
    JobResumed,
    JobsCancelled,
    JobStarted,
    JobState,
    JobWarning,
    ModelState,
    ModelStateChanged,
    Notice,
    ParamChanged,
    PresetLoaded,
    PrimeChanged,
    Stage,
    TakeDelivered,
)
from bridge.session.params import PARAMS
from bridge.transports.notify import Notifier, normalised_ip
from bridge.untrusted.coerce import to_int, to_text
from jukebox_model.api import Mode

log = logging.getLogger(__name__)

PREFIX = "/jb"
MAX_DATAGRAM = 65507
NAMES_PER_REPLY_BYTES = 6000  # /jb/model/artists: a page of names stays well inside one datagram
RCVBUF_BYTES = 4 * 1024 * 1024  # asked of the kernel for the receive buffer; it grants up to net.core.rmem_max
DATAGRAM_COST = 2304  # receive-buffer bytes one datagram of up to 1000 bytes takes on Linux (payload + skb overhead)
Handler = Callable[[Origin, list[Any]], tuple[Any, ...] | None]


def _value_args(value: Any) -> tuple[Any, ...]:
    if isinstance(value, tuple):
        return value
    return (value if value is not None else "random",) if not isinstance(value, bool) else (int(value),)


class OscSurface:
    """Routes decoded messages to the controller; independent of sockets so it can be tested directly."""

    def __init__(self, controller: Controller, notifier: Notifier, *, midi: Any = None, allow: Sequence[str] = ()):
        self.controller, self.notifier, self.midi = controller, notifier, midi
        self.allow = tuple(allow)
        c = controller
        self.routes: dict[str, Handler] = {
            "/jb/ping": lambda o, a: ("ok", __version__),
            "/jb/status": self._status,
            "/jb/help": self._help,
            "/jb/get/session": self._session,
            "/jb/get/prime": lambda o, a: (str(c.state.prime or ""),),
            "/jb/prime/file": self._prime_file,
            "/jb/prime/inbox": lambda o, a: (str(c.prime_from_inbox(origin=o)),),
            "/jb/prime/clear": self._prime_clear,
            "/jb/generate": self._generate,
            "/jb/retry": lambda o, a: self._queued(c.replays.retry(origin=o)),
            "/jb/regenerate": self._regenerate,
            "/jb/cancel": self._cancel,
            "/jb/job/status": self._job_status,
            "/jb/jobs": lambda o, a: tuple(j.id for j in c.board.records()),
            "/jb/preset/list": lambda o, a: tuple(c.state.preset_names()),
            "/jb/preset/load": self._preset_load,
            "/jb/preset/save": self._preset_save,
            "/jb/state/dump": self._dump,
            "/jb/model/artists": self._names("artists"),
            "/jb/model/genres": self._names("genres"),
            "/jb/subscribe": self._subscribe,
            "/jb/unsubscribe": self._unsubscribe,
            "/jb/midi/learn": self._learn,
            "/jb/midi/learn/cancel": self._learn_cancel,
        }
        for mode in Mode:
            self.routes[f"/jb/generate/{mode.value}"] = self._generate_as(mode.value)
        for name in PARAMS:
            self.routes[f"/jb/set/{name}"] = self._setter(name)
            self.routes[f"/jb/get/{name}"] = self._getter(name)

    # --- handler factories (one per mode and parameter) ----------------------------------------

    def _generate_as(self, mode: str) -> Handler:
        return lambda origin, args: self._generate(origin, [mode, *args])

    def _setter(self, name: str) -> Handler:
        return lambda origin, args: _value_args(self._set(origin, name, args))

    def _getter(self, name: str) -> Handler:
        return lambda origin, args: _value_args(self.controller.get_param(name))

    # --- entry point ------------------------------------------------------------------------------

    def handle(self, address: str, args: Sequence[Any], client: tuple[str, int] | None) -> None:
        """Answer one message; never raises."""
        origin = Origin("osc", client=client, address=address)
        try:
            route = self.routes.get(address)
            if route is None:
                hint = (
                    " (addresses start with /jb/; see /jb/help)"
                    if not address.startswith(PREFIX + "/")
                    else "; see /jb/help"
                )
                raise CommandError(f"unknown address {address!r}{hint}")
            reply = route(origin, list(args))
            if reply is not None:
                self.notifier.send(client, address, *reply)
        except CommandError as e:
            self.error(client, address, str(e))
        except Exception as e:  # a bug must cost one reply, not the server (logged with its traceback)
            log.exception("OSC handler for %s failed", address)
            self.error(client, address, f"internal error: {type(e).__name__}: {e}")

    def error(self, client: tuple[str, int] | None, address: str, message: str) -> None:
        """An error goes back on the request's address and on /jb/error, naming the address."""
        self.notifier.send(client, address, "error", message)
        self.notifier.send(client, "/jb/error", address, message)

    # --- handlers ---------------------------------------------------------------------------------

    def _set(self, origin: Origin, name: str, args: list[Any]) -> Any:
        if name == "length" and len(args) > 1:  # /jb/set/length 8 bars 120
            if len(args) > 3:
                raise CommandError("length: give <value> [s|bars] [bpm]")
            unit = PARAMS["length_unit"].coerce([args[1]])
            bpm = PARAMS["bpm"].coerce([args[2]]) if len(args) == 3 else None
            value = PARAMS["length"].coerce([args[0]])
            if bpm is not None:
                self.controller.set_param("bpm", [bpm], origin=origin)
            self.controller.set_param("length_unit", [unit], origin=origin)
            self.controller.set_param("length", [value], origin=origin)
            return (value, unit) + ((bpm,) if bpm is not None else ())
        return self.controller.set_param(name, args, origin=origin)

    def _status(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        s = self.controller.status()
        return (s["state"], s["queued"], s["running"], s["bundle"], s["preset"], s["prime"])

    def _help(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        if args and args[0] == "params":
            return tuple(f"{p.name}: {p.help or p.kind}" for p in PARAMS.values())
        return tuple(a for a in self.routes if not a.startswith(("/jb/set/", "/jb/get/"))) + (
            "/jb/set/<param>",
            "/jb/get/<param>",
        )

    def _session(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        out: list[Any] = []
        for name, value in self.controller.session.as_dict().items():
            if name == "lyrics" and len(value) > 200:
                value = value[:200] + "…"
            out += [
                name,
                ",".join(f"{v:g}" for v in value)
                if isinstance(value, tuple)
                else ("random" if value is None else (int(value) if isinstance(value, bool) else value)),
            ]
        return tuple(out)

    def _dump(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        """Everything a control surface shows, to the requester alone, as the replies it already knows
        (/jb/get/<param> for each parameter, then prime, preset, model state and queue); the reply on
        /jb/state/dump, last, counts them."""
        session, status = self.controller.session, self.controller.status()
        messages = [(f"/jb/get/{name}", _value_args(getattr(session, name))) for name in PARAMS] + [
            ("/jb/get/prime", (status["prime"],)),
            ("/jb/preset/current", (status["preset"],)),
            ("/jb/state", (status["state"], status["bundle"])),
            ("/jb/status", self._status(origin, [])),
        ]
        for address, values in messages:
            self.notifier.send_only(origin.client, address, *values)
        return (len(messages),)

    def _names(self, kind: str) -> Handler:
        return lambda origin, args: self._list_names(kind, args)

    def _list_names(self, kind: str, args: list[Any]) -> tuple[Any, ...]:
        """/jb/model/<artists|genres> [prefix] [start] -> <total> <start> <name> ...: the names the loaded
        model's id tables know (those starting with `prefix`, case-insensitive), as many as fit one reply."""
        info = self.controller.model_info()  # CommandError while it loads, or if it failed
        prefix, start = "", 0
        rest = list(args)
        if rest and isinstance(rest[0], str) and not rest[0].strip().isdigit():
            prefix = to_text(rest.pop(0), "prefix", max_chars=100).strip().lower()
        if rest:
            start = to_int(rest.pop(0), "start")
        if rest or start < 0:
            raise CommandError(f"/jb/model/{kind} takes [prefix] [start]")
        names = [name for name in getattr(info, kind) if name.lower().startswith(prefix)]
        page, size = [], 0
        for name in names[start:]:
            size += len(name.encode("utf-8", "backslashreplace")) + 8
            if size > NAMES_PER_REPLY_BYTES:
                break
            page.append(name)
        return (len(names), start, *page)

    def _prime_clear(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        self.controller.clear_prime()
        return ("ok",)

    def _prime_file(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        if len(args) != 1:
            raise CommandError("/jb/prime/file needs one path")
        path = to_text(args[0], "path", max_chars=4096)
        self.controller.set_prime(path, origin=origin)
        return (str(self.controller.prime),)

    def _queued(self, job_id: str) -> tuple[Any, ...]:
        return (job_id, "queued", *self.controller.queued(job_id))

    def _generate(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        mode = None
        if args:
            mode = to_text(args[0], "mode", max_chars=20).strip().lower() or None
        rest = args[1:]
        source = None
        takes: list[int] = []
        if mode in ("continue", "upsample"):
            if rest and isinstance(rest[0], str) and not rest[0].strip().lstrip("-").isdigit():
                source = rest[0]
                rest = rest[1:]
            takes = [to_int(t, "take") for t in rest]
        elif rest:
            raise CommandError(f"/jb/generate {mode}: takes no further arguments")
        return self._queued(self.controller.generate(mode, origin=origin, source_job=source, takes=takes or None))

    def _regenerate(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        if len(args) != 1:
            raise CommandError("/jb/regenerate needs the path of a take's .json sidecar")
        return self._queued(
            self.controller.replays.regenerate(to_text(args[0], "sidecar", max_chars=4096), origin=origin)
        )

    def _cancel(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        if len(args) > 1:
            raise CommandError("/jb/cancel takes at most one job id")
        job_id = to_text(args[0], "job", max_chars=64) if args else None
        ids = self.controller.cancel(job_id, origin=origin)
        return (len(ids), *ids)

    def _job_status(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        if len(args) != 1:
            raise CommandError("/jb/job/status needs a job id")
        status, position = self.controller.job_status(to_text(args[0], "job", max_chars=64))
        eta = status.eta_s if status.eta_s is not None else -1.0
        level = status.level if status.level is not None else -1
        return (
            status.id,
            status.state.value,
            status.stage.value,
            level,
            float(status.fraction),
            float(eta),
            position,
            len(status.files),
        )

    def _preset_load(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        if len(args) != 1:
            raise CommandError("/jb/preset/load needs a preset name")
        name = to_text(args[0], "preset", max_chars=100)
        self.controller.load_preset(name, origin=origin)
        return (name,)

    def _preset_save(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        if not 1 <= len(args) <= 2:
            raise CommandError("/jb/preset/save needs a name and optionally a description")
        name = to_text(args[0], "preset", max_chars=100)
        description = to_text(args[1], "description", max_chars=500) if len(args) == 2 else ""
        return (self.controller.save_preset(name, origin=origin, description=description),)

    def _target(self, origin: Origin, args: list[Any]) -> tuple[str, int]:
        sender_host, sender_port = origin.client if origin.client is not None else ("", 0)
        if len(args) > 2 or (origin.client is None and len(args) < 2):
            raise CommandError("give [port] [host]")
        port = to_int(args[0], "port") if args else sender_port
        host = to_text(args[1], "host", max_chars=64) if len(args) == 2 else sender_host
        if not 0 < port < 65536:
            raise CommandError(f"port {port} is not a port number")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise CommandError(f"host {host!r} must be an IP address") from None
        if self.notifier.is_own((host, port)):
            raise CommandError(f"{host}:{port} is the bridge's own OSC port; events sent there would loop")
        # events go only where a client could have asked for them itself: a remote client's own host; for a
        # client on this machine, this machine or an allowed client
        if origin.client is not None and not _same_host(host, origin.client[0]):
            if not _is_loopback(origin.client[0]):
                raise CommandError(f"{host} is not your address; a remote client may subscribe only its own host")
            if not allowed((host, port), self.allow):
                raise CommandError(f"{host} is neither your address nor an allowed client; subscribe from that host")
        return host, port

    def _subscribe(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        target = self._target(origin, args)
        try:
            self.notifier.subscribe(target)
        except ValueError as e:
            raise CommandError(str(e)) from None
        return target

    def _unsubscribe(self, origin: Origin, args: list[Any]) -> None:
        target = self._target(origin, args)
        if not self.notifier.unsubscribe(target):
            raise CommandError(f"{target[0]}:{target[1]} was not subscribed")
        self.notifier.send(origin.client, "/jb/unsubscribe", *target)  # the former subscriber hears it too

    def _learn(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        if self.midi is None:
            raise CommandError("MIDI is not enabled (no MIDI input is open)")
        target = to_text(args[0], "target", max_chars=100) if args else None
        self.midi.start_learn(target, origin=origin)
        return (target or "last-touched", "waiting")

    def _learn_cancel(self, origin: Origin, args: list[Any]) -> tuple[Any, ...]:
        if self.midi is None:
            raise CommandError("MIDI is not enabled (no MIDI input is open)")
        if not self.midi.cancel_learn(origin):
            raise CommandError("MIDI learn was not armed")
        return ("cancelled",)


class OscEvents:
    """The bridge's events as OSC, to the requester (the job's origin) and every subscriber."""

    def __init__(self, notifier: Notifier):
        self.notifier = notifier

    def __call__(self, event: Event) -> None:
        n = self.notifier
        if isinstance(event, JobEvent):
            client = event.origin.client
            if isinstance(event, JobProgress):
                eta = event.eta_s if event.eta_s is not None else -1.0
                n.send_limited(
                    event.job_id,
                    client,
                    "/jb/job/progress",
                    event.job_id,
                    event.level,
                    event.fraction,
                    round(eta, 2),
                    event.window,
                    event.n_windows,
                    final=event.final,
                )
            elif isinstance(event, JobQueued):
                stage = Stage.UPSAMPLE.value if event.stage is Stage.UPSAMPLE else event.mode
                n.send(client, "/jb/job/queued", event.job_id, event.position, event.eta_s, stage, event.seed)
            elif isinstance(event, JobStarted):
                n.send(client, "/jb/job/started", event.job_id, event.stage.value)
            elif isinstance(event, TakeDelivered):
                n.send(client, "/jb/job/take", event.job_id, event.take, event.level, event.path, event.seed)
            elif isinstance(event, JobWarning):
                n.send(client, "/jb/job/warning", event.job_id, event.message)
            elif isinstance(event, JobResumed):
                n.send(client, "/jb/job/resumed", event.job_id, event.levels_done, event.levels_total)
            elif isinstance(event, JobEnded):
                if event.state is JobState.FAILED:
                    message = event.error or "failed"
                    n.send(client, "/jb/job/failed", event.job_id, message)
                    n.send(client, "/jb/error", "/jb/job/failed", event.job_id, message)
                else:
                    n.send(client, f"/jb/job/{event.state.value}", event.job_id, event.files, event.codes_path)
                n.forget(event.job_id)
        elif isinstance(event, ModelStateChanged):
            # a failed load says why (memory short: what it needs and what is free), where the bundle name would be
            detail = event.error if event.state is ModelState.FAILED and event.error else event.bundle
            n.send(None, "/jb/state", event.state.value, detail)
        elif isinstance(event, ParamChanged):
            # a change made with /jb/set/... was answered to the requester and every subscriber already
            if not (event.origin.kind == "osc" and event.origin.address.startswith("/jb/set/")):
                n.send_latest(f"param:{event.name}", f"/jb/set/{event.name}", *_value_args(event.value))
        elif isinstance(event, PresetLoaded):
            if not (event.origin.kind == "osc" and event.origin.address == "/jb/preset/load"):
                n.send(None, "/jb/preset/load", event.name)
        elif isinstance(event, PrimeChanged):
            n.send(event.origin.client, "/jb/prime", event.path)
        elif isinstance(event, JobsCancelled):
            n.send(event.origin.client, "/jb/cancel", len(event.job_ids), *event.job_ids)
        elif isinstance(event, Notice):
            if event.error:
                n.send(event.origin.client, "/jb/error", event.origin.address or event.origin.kind, event.message)
            else:
                n.send(event.origin.client, "/jb/info", event.origin.kind, event.message)


def unreadable_bundle_elements(data: bytes, depth: int = 0) -> int:
    """Elements of an OSC bundle that are neither a message nor a bundle (python-osc skips them with a log
    line only): each gets its own error reply. 0 for a plain message."""
    if not data.startswith(b"#bundle\x00") or depth > 8:
        return 0
    bad, at = 0, 16  # "#bundle\0" and the 8-byte timetag
    while at + 4 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        element = data[at + 4 : at + 4 + size]
        at += 4 + size
        if element.startswith(b"#bundle\x00"):
            bad += unreadable_bundle_elements(element, depth + 1)
        elif not element.startswith(b"/"):
            bad += 1
    return bad


def _same_host(a: str, b: str) -> bool:
    ia, ib = normalised_ip(a.split("%")[0]), normalised_ip(b.split("%")[0])
    return a == b if ia is None or ib is None else ia == ib


def _is_loopback(host: str) -> bool:
    ip = normalised_ip(host.split("%")[0])
    return ip is not None and ip.is_loopback


def allowed(client: tuple[str, int], allow: Sequence[str]) -> bool:
    """Loopback always; anything else only when listed (an address or a network like 192.168.1.0/24)."""
    try:
        ip = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    for entry in allow:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


class _Datagram(socketserver.BaseRequestHandler):
    server: OscServer

    def handle(self) -> None:
        data, _sock = self.request
        self.server.handle_datagram(data, self.client_address)


class OscServer(socketserver.UDPServer):
    """One blocking UDP server on its own thread: messages are handled in arrival order."""

    allow_reuse_address = False
    max_packet_size = MAX_DATAGRAM

    def __init__(self, host: str, port: int, surface: OscSurface, *, allow: Sequence[str] = ()):
        self.surface, self.allow = surface, tuple(allow)
        self.refused = 0
        self.received = 0
        self.looped = 0  # datagrams from the bridge's own notifier, dropped
        self.rcvbuf = 0  # receive-buffer bytes the kernel granted (read back after bind)
        super().__init__((host, port), _Datagram)
        surface.notifier.guard(self.port, host)
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="jb-osc", daemon=True
        )

    def server_bind(self) -> None:
        """A big receive buffer, so a burst of requests waits in the kernel instead of being dropped there."""
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        except OSError as e:  # keep the system's default
            log.warning("could not enlarge the OSC receive buffer: %s", e)
        super().server_bind()
        self.rcvbuf = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if self.burst_limit < 1000:
            log.info(
                "OSC receive buffer %d bytes: bursts of up to %d requests are safe (raise net.core.rmem_max for more)",
                self.rcvbuf,
                self.burst_limit,
            )

    @property
    def burst_limit(self) -> int:
        """Requests of up to 1000 bytes that may be in flight, unanswered, without the kernel dropping one."""
        return self.rcvbuf // DATAGRAM_COST

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()

    def handle_datagram(self, data: bytes, client: tuple[str, int]) -> None:
        if not allowed(client, self.allow):
            self.refused += 1
            log.warning("refused OSC from %s:%s (not in the allow-list)", *client[:2])
            return
        notifier = self.surface.notifier
        if client[1] == notifier.source[1] and notifier.is_own((client[0], self.port)):
            self.looped += 1  # the bridge's own replies, sent back to it: answering would start a loop
            return
        if notifier.answered_us(client):
            self.looped += 1  # another bridge's replies or events: answered, they would come back for ever
            return
        self.received += 1
        with notifier.reply_budget(client, len(data)):
            self._answer(data, client)

    def _answer(self, data: bytes, client: tuple[str, int]) -> None:
        notifier = self.surface.notifier
        try:
            packet = osc_packet.OscPacket(data)
        except Exception as e:  # noqa: BLE001 - python-osc raises ParseError and, on odd input, others
            notifier.send(client, "/jb/error", "(malformed)", f"malformed OSC packet ({len(data)} bytes): {e}")
            return
        if not packet.messages:
            notifier.send(client, "/jb/error", "(empty)", f"an OSC bundle with no messages ({len(data)} bytes)")
            return
        for timed in packet.messages:  # a bundle's messages run at once, in timetag order (python-osc sorts them)
            self.surface.handle(timed.message.address, timed.message.params, client)
        for _ in range(unreadable_bundle_elements(data)):
            notifier.send(client, "/jb/error", "(bundle element)", "an element of the bundle is not an OSC message")

    def handle_error(self, request: Any, client_address: Any) -> None:  # socketserver's hook: log, keep serving
        log.exception("error handling a datagram from %s", client_address)
