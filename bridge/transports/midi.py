"""MIDI input: program change -> preset, note -> action, CC -> parameter, and MIDI learn.

Messages arrive on rtmidi's own thread (a port callback) or, for ports without callbacks (mido
socket ports, test ports, MultiPort), on a small polling thread owned here. Either way the handler
only looks up the mapping and calls `Controls`; a `CommandError` becomes `controls.report(...)` and
any other failure is logged and reported, so a bad message never kills the MIDI thread.

MIDI learn can be armed from OSC (`start_learn("temperature", origin)`), or from MIDI with a note
mapped to "learn": that arms learn for the parameter the controller last told us about through
`note_param_touched(name)`; pressing it while learn is armed cancels (it is never itself re-bound). The next CC, note or program change binds,
replacing the earlier binding of that number, and the map file is rewritten atomically.

Port names are matched by prefix with ALSA's client:port numbers ("24:0") removed, since those
change from session to session (daw-anchors §3.1). Opening fails loudly with `MidiUnavailable` when
there is no MIDI system (no /dev/snd/seq in containers and CI): the app logs "MIDI disabled: ..." and
runs on without MIDI.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

import mido
from mido.ports import BaseInput

from bridge.commands import Controls, Origin
from bridge.errors import CommandError
from bridge.session.midi_map import NOTE_ACTIONS, CCBinding, MidiMap, check_cc_binding, save_midi_map
from bridge.session.params import PARAMS

log = logging.getLogger(__name__)

POLL_S = 0.002  # how often a polling reader looks at a port without callbacks
JOIN_S = 2.0  # how long close() waits for a polling reader to stop
_HANDLED = ("program_change", "note_on", "control_change")
_ALSA_NUMBERS = re.compile(r"\s+\d+:\d+\s*$")


class MidiUnavailable(RuntimeError):
    """No MIDI input could be opened; the app logs "MIDI disabled: <message>" and keeps running."""


class MidiBackend(Protocol):
    """What is used of a mido backend (the `mido` module itself is one: its default, rtmidi)."""

    def get_input_names(self) -> list[str]: ...

    def open_input(self, name: str | None = None, virtual: bool = False, **kwargs: Any) -> BaseInput: ...


def port_base_name(name: str) -> str:
    """'Launchkey MK3:Launchkey MK3 MIDI 1 24:0' -> 'Launchkey MK3:Launchkey MK3 MIDI 1'."""
    return _ALSA_NUMBERS.sub("", name).strip()


def match_input(prefix: str, names: Sequence[str]) -> str | None:
    """The first of `names` that starts with `prefix` (case-insensitive, client:port numbers ignored)."""
    wanted = port_base_name(prefix).casefold()
    if not wanted:
        return None
    return next((name for name in names if port_base_name(name).casefold().startswith(wanted)), None)


def describe_message(message: mido.Message) -> str:
    """A short, human reading of a message for error reports; channels are shown 1-16 as DAWs show them."""
    if message.type == "program_change":
        return f"ch{message.channel + 1} program {message.program}"
    if message.type == "note_on":
        return f"ch{message.channel + 1} note {message.note} vel {message.velocity}"
    if message.type == "control_change":
        return f"ch{message.channel + 1} cc {message.control} = {message.value}"
    return str(message.type)


@dataclass(frozen=True)
class LearnTarget:
    """What the next matching message binds to: a CC to a parameter, a note to an action, a program to a preset."""

    kind: str  # "cc" | "note" | "program"
    name: str  # parameter, action or preset name
    origin: Origin  # who asked: the learned (or cancelled) report goes there

    @classmethod
    def parse(cls, target: str, origin: Origin) -> LearnTarget:
        """'temperature' -> cc, 'generate' -> note, 'preset:ambient-pads' -> program; anything else is an error."""
        text = target.strip()
        if text.startswith("preset:"):
            preset = text.removeprefix("preset:").strip()
            if not preset:
                raise CommandError("midi learn: 'preset:' needs a preset name, e.g. preset:ambient-pads")
            return cls("program", preset, origin)
        if text in NOTE_ACTIONS:
            return cls("note", text, origin)
        if text in PARAMS:
            try:
                check_cc_binding(CCBinding(text))
            except CommandError as e:
                raise CommandError(f"midi learn: {e}") from None
            return cls("cc", text, origin)
        raise CommandError(
            f"midi learn: unknown target {target!r}; give a parameter ({', '.join(PARAMS)}), "
            f"an action ({', '.join(NOTE_ACTIONS)}) or preset:<name>"
        )

    def waiting_for(self) -> str:
        what = {"cc": "a knob (CC)", "note": "a note", "program": "a program change"}[self.kind]
        return f"midi learn: waiting for {what} for {self.label}"

    @property
    def label(self) -> str:
        return f"preset {self.name}" if self.kind == "program" else self.name


class _PortReader(threading.Thread):
    """Polls one port without callbacks and hands its messages on; stopped and joined by MidiControl.close."""

    def __init__(self, port: BaseInput, handle: Callable[[mido.Message], None]) -> None:
        super().__init__(name=f"midi-in {port.name or '?'}", daemon=True)
        self.port = port
        self._handle = handle
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                message = self.port.poll()
            except (OSError, ValueError) as e:  # the port was closed under us
                log.warning("MIDI input %s stopped: %s", self.port.name, e)
                return
            if message is None:
                self._stop_event.wait(POLL_S)
            else:
                self._handle(message)

    def stop(self) -> None:
        self._stop_event.set()


class MidiControl:
    """The MIDI transport: listens to injected ports or opens one by name prefix, and drives `controls`.

    The ports are opened (or attached to) by the constructor, which raises MidiUnavailable when that
    cannot be done; `close()` releases them.

    Args:
        controls: the bridge surface (bridge.commands.Controls).
        mapping: the MIDI map (None: empty); MIDI learn replaces it with changed copies (see `mapping`).
        map_path: where learned bindings are saved; None keeps them in memory only.
        ports: already open input ports to listen to instead of opening one by name.
        port_prefix: the input port name prefix to open, instead of the map's `[input] port`.
        virtual: True creates a virtual port (named by the prefix); None or False leaves it to the map.
        backend: a mido backend for opening ports by name (default: mido's, i.e. python-rtmidi).
        close_injected: also close the injected `ports` on `close()` (ports opened here always are).

    Wiring: the app builds it (on MidiUnavailable it logs "MIDI disabled: <message>" and goes on) and calls
    `close()` when stopping transports; the controller calls `note_param_touched(name)` after each successful
    set_param; the OSC learn addresses call `start_learn(target, origin)` and `cancel_learn()`.
    """

    def __init__(
        self,
        controls: Controls,
        mapping: MidiMap | None = None,
        *,
        map_path: str | Path | None = None,
        ports: Sequence[BaseInput] | None = None,
        port_prefix: str | None = None,
        virtual: bool | None = None,
        backend: MidiBackend | None = None,
        close_injected: bool = False,
    ) -> None:
        self._controls = controls
        self._map = mapping if mapping is not None else MidiMap()
        self._map_path = None if map_path is None else Path(map_path)
        self._lock = threading.Lock()  # guards _map, _learn, _touched, _closed (rtmidi, OSC and controller threads)
        self._save_lock = threading.Lock()  # one writer at a time, always writing the newest map
        self._learn: LearnTarget | None = None
        self._touched: str | None = None
        self._closed = False
        self._ports: list[tuple[BaseInput, bool]] = []  # (port, close it on close())
        self._readers: list[_PortReader] = []
        try:
            if ports is not None:
                for port in ports:
                    self._attach(port, owned=close_injected)
            else:
                prefix = port_prefix or self._map.input.port
                self._open(prefix, bool(virtual) or self._map.input.virtual, backend)
        except BaseException:
            self.close()
            raise

    @property
    def mapping(self) -> MidiMap:
        with self._lock:
            return self._map

    @property
    def port_names(self) -> list[str]:
        """The names of the ports listened to (for the start-up log line)."""
        return [port.name or "" for port, _ in self._ports]

    @property
    def learning(self) -> str | None:
        """What MIDI learn is waiting to bind ("temperature", "generate", "preset ambient-pads"), or None."""
        with self._lock:
            return None if self._learn is None else self._learn.label

    # -- life cycle -------------------------------------------------------------------------------------------

    def _attach(self, port: BaseInput, *, owned: bool) -> None:
        handle = self._handler_for(port.name or "")
        self._ports.append((port, owned))
        if hasattr(port, "callback"):  # rtmidi ports call us on their own thread
            port.callback = handle
        else:
            reader = _PortReader(port, handle)
            self._readers.append(reader)
            reader.start()

    def _open(self, prefix: str, virtual: bool, backend: MidiBackend | None) -> None:
        if not prefix.strip():
            raise MidiUnavailable("no input port is set ([input] port in the MIDI map, or the port setting)")
        midi: Any = backend if backend is not None else mido
        try:
            if virtual:
                port = midi.open_input(prefix, virtual=True, callback=self._handler_for(prefix))
                self._ports.append((port, True))
                return
            names = list(midi.get_input_names())
        except Exception as e:  # rtmidi raises its own SystemError without ALSA; ImportError without python-rtmidi
            raise MidiUnavailable(f"cannot use the MIDI system: {e}") from e
        name = match_input(prefix, names)
        if name is None:
            raise MidiUnavailable(f"no MIDI input matches {prefix!r}; inputs: {', '.join(names) or 'none'}")
        try:
            port = midi.open_input(name, callback=self._handler_for(name))
        except Exception as e:
            raise MidiUnavailable(f"cannot open MIDI input {name!r}: {e}") from e
        self._ports.append((port, True))

    def close(self) -> None:
        """Stop listening: detach callbacks, stop and join polling threads, close the ports opened here."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._learn = None
        for reader in self._readers:
            reader.stop()
        for reader in self._readers:
            reader.join(JOIN_S)
            if reader.is_alive():  # e.g. mido's PortServer, whose poll() blocks despite its name
                log.error("MIDI reader %s did not stop within %.0f s: its port's poll() blocks", reader.name, JOIN_S)
        for port, owned in self._ports:
            try:
                if owned:
                    port.close()
                elif hasattr(port, "callback"):
                    port.callback = None
            except Exception:
                log.exception("closing MIDI input %s", port.name)
        self._readers.clear()
        self._ports.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- messages ---------------------------------------------------------------------------------------------

    def _handler_for(self, port_name: str) -> Callable[[mido.Message], None]:
        return lambda message: self.handle(message, port_name=port_name)

    def handle(self, message: mido.Message, *, port_name: str = "") -> None:
        """One incoming message (the port callback). Never raises: errors are reported to the clients."""
        what = describe_message(message)
        origin = Origin("midi", address=f"{port_name}: {what}" if port_name else what)
        try:
            self._dispatch(message, origin)
        except CommandError as e:
            self._report(origin, str(e))
        except Exception as e:  # a bug here must not kill rtmidi's thread or the reader
            log.exception("MIDI message %s failed", message)
            self._report(origin, f"MIDI {what} failed: {type(e).__name__}: {e}")

    def _dispatch(self, message: mido.Message, origin: Origin) -> None:
        if message.type not in _HANDLED:
            return
        if message.type == "note_on" and message.velocity == 0:
            return  # velocity-0 note-on is a note-off (mido does not convert it)
        with self._lock:
            if self._closed or not self._map.input.accepts(message.channel):
                return
            mapping = self._map
            learned = self._bind_learn(message)
        if learned is not None:
            self._finish_learn(*learned)
            return
        if message.type == "program_change":
            preset = mapping.programs.get(message.program)
            if preset is None:
                where = f" in {self._map_path}" if self._map_path else ""
                raise CommandError(
                    f"program {message.program} is not mapped to a preset; add it under [program]{where} "
                    "or learn it with preset:<name>"
                )
            self._controls.load_preset(preset, origin=origin)
        elif message.type == "note_on":
            action = mapping.notes.get(message.note)
            if action == "learn":
                self._learn_note(origin)
            elif action is not None:
                self._controls.trigger(action, origin=origin)
        else:
            binding = mapping.cc.get(message.control)
            if binding is not None:
                value = binding.value(message.value)
                args = list(value) if isinstance(value, tuple) else [value]  # floats3: one knob sets all levels
                self._controls.set_param(binding.param, args, origin=origin)

    def _report(self, origin: Origin, message: str, *, error: bool = True) -> None:
        try:
            self._controls.report(origin, message, error=error)
        except Exception:
            log.exception("reporting %r to %s failed", message, origin.describe())

    # -- MIDI learn -------------------------------------------------------------------------------------------

    def start_learn(self, target: str | None, origin: Origin) -> str:
        """Arm learn: a parameter name binds the next CC, an action the next note, "preset:<name>" the next
        program change; None: the parameter set most recently. Replaces a learn already armed; returns what
        it waits for. A bad target is a CommandError (the OSC handler's error reply). The binding, when it
        comes, is reported to `origin`."""
        if target is None:
            with self._lock:
                target = self._touched
            if target is None:
                raise CommandError("midi learn: no parameter has been set yet; set one first, or name a target")
        learn = LearnTarget.parse(target, origin)
        with self._lock:
            if self._closed:
                raise CommandError("midi learn: the MIDI input is closed")
            self._learn = learn
        return learn.waiting_for()

    def cancel_learn(self, origin: Origin | None = None) -> bool:
        """Disarm learn; True if one was armed. Reported to `origin` when given (an OSC caller replies itself)."""
        with self._lock:
            learn, self._learn = self._learn, None
        if learn is not None and origin is not None:
            self._report(origin, f"midi learn cancelled ({learn.label})", error=False)
        return learn is not None

    def note_param_touched(self, name: str) -> None:
        """Called by the controller after each successful set_param: a MIDI "learn" note arms learn for the
        parameter set most recently. Parameters a knob cannot set (text, unit, seed) are not remembered."""
        try:
            check_cc_binding(CCBinding(name))
        except CommandError:
            return
        with self._lock:
            self._touched = name

    def _learn_note(self, origin: Origin) -> None:
        with self._lock:
            armed, touched = self._learn is not None, self._touched
        if armed:
            self.cancel_learn(origin)
        elif touched is None:
            raise CommandError("midi learn: no parameter has been set yet; set one first, or start learn with a name")
        else:
            self._report(origin, self.start_learn(touched, origin), error=False)

    def _bind_learn(self, message: mido.Message) -> tuple[LearnTarget, str] | None:
        """With the lock held: if learn waits for this kind of message, bind it and return (target, binding)."""
        learn = self._learn
        if learn is None:
            return None
        if learn.kind == "cc" and message.type == "control_change":
            old = self._map.cc.get(message.control)
            same = old is not None and old.param == learn.name  # re-learning a knob keeps its range
            lo, hi = (old.lo, old.hi) if old is not None and same else self._map.range_for(learn.name)
            self._map = self._map.with_cc(message.control, CCBinding(learn.name, lo, hi))
            binding = f"cc {message.control} -> {learn.name}"
        elif learn.kind == "note" and message.type == "note_on" and self._map.notes.get(message.note) != "learn":
            self._map = self._map.with_note(message.note, learn.name)
            binding = f"note {message.note} -> {learn.name}"
        elif learn.kind == "program" and message.type == "program_change":
            self._map = self._map.with_program(message.program, learn.name)
            binding = f"program {message.program} -> preset {learn.name}"
        else:
            return None
        self._learn = None
        return learn, binding

    def _finish_learn(self, learn: LearnTarget, binding: str) -> None:
        if self._map_path is None:
            self._report(learn.origin, f"learned {binding} (not saved: no mapping file)", error=False)
            return
        try:
            with self._save_lock:  # the newest map is written last, whatever order learns finish in
                save_midi_map(self.mapping, self._map_path)
        except OSError as e:
            self._report(learn.origin, f"learned {binding}, but saving {self._map_path} failed: {e}")
            return
        self._report(learn.origin, f"learned {binding}", error=False)
