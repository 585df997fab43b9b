"""The session: what the next take will use — the parameters, the preset they came from, the prime.

Calls are quick and thread-safe; every transport reaches them through the controller. The
session is immutable (`bridge.session.params.Session`): a change makes a new one, so a queued job keeps
exactly the settings it was queued with. Nothing here imports torch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bridge.commands import Origin
from bridge.errors import CommandError
from bridge.events import EventBus, ParamChanged, PresetLoaded, PrimeChanged
from bridge.session.params import PARAMS, Session, parse_param, session_from_values
from bridge.settings import BridgeSettings
from bridge.untrusted.confine import confine_file

log = logging.getLogger(__name__)


class PresetStore(Protocol):
    def names(self) -> list[str]: ...
    def get(self, name: str) -> Any: ...  # has .values (mapping) and .description
    def save(self, name: str, session: Session, description: str = "") -> Any: ...


class SessionState:
    def __init__(
        self,
        settings: BridgeSettings,
        bus: EventBus,
        *,
        presets: PresetStore | None = None,
        check_clip: Callable[[Path], Any] | None = None,
        latest_inbox_clip: Callable[[], Path | None] | None = None,
        session: Session | None = None,
    ):
        self.settings, self.bus = settings, bus
        self.presets = presets
        self.check_clip = check_clip
        self.latest_inbox_clip = latest_inbox_clip
        self.param_listeners: list[Callable[[str], None]] = []  # e.g. MIDI learn's "last touched parameter"
        self._lock = threading.Lock()
        self._session = session or Session()
        self._preset: str | None = None
        self._prime: Path | None = None
        self._daw_owned: dict[str, Any] = {}
        self._prime_roots: list[Path] | None = None  # parameters the DAW sets while it is followed (its tempo)

    # --- parameters ---------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        with self._lock:
            return self._session

    def set_param(self, name: str, args: Sequence[Any], *, origin: Origin) -> Any:
        value = parse_param(name, args)
        with self._lock:
            before = getattr(self._session, name)
            self._session = self._session.replace(**{name: value})
        if value != before:
            self.bus.publish(ParamChanged(origin, name, value))
        for listener in list(self.param_listeners):
            try:
                listener(name)
            except Exception:  # a listener's bug must not fail the request
                log.exception("parameter listener failed")
        return value

    def get_param(self, name: str) -> Any:
        if name not in PARAMS:
            raise CommandError(f"unknown parameter {name!r}; known: {', '.join(PARAMS)}")
        return getattr(self.session, name)

    # --- presets ------------------------------------------------------------------------------------

    def _store(self) -> PresetStore:
        if self.presets is None:
            raise CommandError("no presets folder is configured")
        return self.presets

    def preset_names(self) -> list[str]:
        return self._store().names()

    def load_preset(self, name: str, *, origin: Origin) -> None:
        preset = self._store().get(name)  # CommandError naming the known presets
        with self._lock:
            before = self._session
            values = {**preset.values, **self._daw_owned}  # a preset never takes the tempo from a followed DAW
            self._session = session_from_values(values, self._session, source=f"preset {name!r}")
            self._preset = name
            after = self._session
        changed = tuple(p for p in PARAMS if getattr(before, p) != getattr(after, p))
        self.bus.publish(PresetLoaded(origin, name, changed))
        for param in changed:
            self.bus.publish(ParamChanged(origin, param, getattr(after, param)))

    def follow_daw(self, name: str, args: Sequence[Any], *, origin: Origin) -> Any:
        """Set a parameter the DAW owns from now on: presets loaded later keep the DAW's value."""
        value = self.set_param(name, args, origin=origin)
        with self._lock:
            self._daw_owned[name] = value
        return value

    def save_preset(self, name: str, *, origin: Origin, description: str = "") -> str:
        self._store().save(name, self.session, description)
        with self._lock:
            self._preset = name
        return name

    @property
    def preset(self) -> str | None:
        with self._lock:
            return self._preset

    def snapshot(self) -> tuple[Session, str | None, Path | None]:
        """The session, preset and prime as one consistent triple (what a job is queued with)."""
        with self._lock:
            return self._session, self._preset, self._prime

    # --- the prime ----------------------------------------------------------------------------------

    def prime_roots(self) -> list[Path]:
        """The folders primes may come from, resolved once, the first time they are needed (at start): a
        folder replaced by a symlink later (the inbox, say) does not move where primes may come from."""
        with self._lock:
            if self._prime_roots is None:
                roots = [self.settings.project_dir, *self.settings.prime_roots]
                if self.settings.inbox_dir is not None:
                    roots.append(self.settings.inbox_dir)
                self._prime_roots = [Path(r).expanduser().resolve() for r in roots]
            return list(self._prime_roots)

    def confine_prime(self, path: Path | str) -> Path:
        """A prime may only come from the configured roots (inbox, project, prime_roots)."""
        base = self.settings.inbox_dir or self.settings.project_dir
        return confine_file(path, self.prime_roots(), base=Path(base), what="prime")

    def set_prime(self, path: Path | str, *, origin: Origin) -> Path:
        resolved = self.confine_prime(path)
        if self.check_clip is not None:
            self.check_clip(resolved)  # CommandError: not complete or not decodable
        with self._lock:
            self._prime = resolved
        self.bus.publish(PrimeChanged(origin, str(resolved)))
        return resolved

    def newest_inbox_clip(self) -> Path:
        clip = self.latest_inbox_clip() if self.latest_inbox_clip is not None else None
        if clip is None:
            raise CommandError("no clip has arrived in the inbox yet")
        return clip

    def clear_prime(self) -> None:
        with self._lock:
            self._prime = None

    @property
    def prime(self) -> Path | None:
        with self._lock:
            return self._prime
