"""Presets: one TOML file per preset in `presets/`, re-read when the producer edits one mid-session.

A preset file holds top-level parameter values (the names of `bridge.session.params.PARAMS`) and an
optional `description`:

    description = "Four-bar funk loops"
    artist = "James Brown"
    genre = "Funk"
    temperature = [0.99, 0.99, 0.98]   # levels 0 (finest), 1, 2 (top)
    length = 4
    length_unit = "bars"

Every value is checked exactly as OSC would check it, so a preset that loads can always be
applied. Editing happens while the bridge runs (a text editor beside the DAW), so the folder is
watched: a changed file is re-read after a short debounce (editors write in pieces); a file that
no longer parses keeps the previous good version of that preset and the error is reported, since
a typo on stage must not take a working preset away; a deleted file removes its preset.
`midi.toml` lives in the same folder but is the MIDI map (bridge.session.midi_map), not a preset.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import tomli_w
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from bridge.errors import CommandError
from bridge.session.params import PARAMS, Session, session_from_values
from bridge.transports.folder_watch import FolderWatch
from bridge.untrusted.files import UntrustedFileError, check_regular, read_toml_table
from jukebox_model.atomic import atomic_write

log = logging.getLogger(__name__)

SUFFIX = ".toml"
MIDI_MAP_NAME = "midi.toml"  # the MIDI mapping file shares the folder (bridge.session.midi_map)
DESCRIPTION_KEY = "description"
MAX_NAME_CHARS = 64
MAX_FILE_BYTES = 1_000_000  # a preset with a whole song's lyrics is a few kB
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\- ]+")
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_WATCHED_EVENTS = ("created", "modified", "moved", "deleted", "closed")
_HOSTILE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_MAX_INT = 2**62  # what bridge.untrusted.coerce takes; TOML promises 64 bits, tomllib reads any length

# on_event(kind, name, message): kind is one of these; name is "" for events about the folder itself
LOADED, REMOVED, ERROR, WATCHING = "loaded", "removed", "error", "watching"
PresetEventCallback = Callable[[str, str, str], None]


@dataclass(frozen=True)
class Preset:
    """A checked preset: `values` are session values (already coerced), applied over the current session."""

    name: str
    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""
    path: Path | None = None

    def apply(self, base: Session | None = None) -> Session:
        """The session `base` becomes when this preset is loaded (unnamed parameters keep their value)."""
        return session_from_values(self.values, base, source=f"preset {self.name!r}")


def check_preset_name(name: str) -> str:
    """The name as a file stem that is safe on every platform, or CommandError saying why not."""
    if not isinstance(name, str) or not name:
        raise CommandError("preset name: a name is needed")
    if len(name) > MAX_NAME_CHARS:
        raise CommandError(f"preset name: {len(name)} characters is more than the limit of {MAX_NAME_CHARS}")
    if not _SAFE_NAME.fullmatch(name):
        raise CommandError(f"preset name {name!r}: use only letters, digits, space, '_', '-' and '.'")
    if name.startswith((".", " ")) or name.endswith((".", " ")):
        raise CommandError(f"preset name {name!r}: may not start with '.' or a space, or end with '.' or a space")
    if (name + SUFFIX).lower() == MIDI_MAP_NAME or name.split(".")[0].lower() in _WINDOWS_RESERVED:
        raise CommandError(f"preset name {name!r} is reserved")
    return name


def is_preset_file(path: Path) -> bool:
    """`*.toml` directly named, not hidden, not an editor/temp file, not the MIDI map."""
    name = path.name
    return (
        name.lower().endswith(SUFFIX)
        and not name.startswith((".", "~", "#"))
        and name.lower() != MIDI_MAP_NAME
        and len(name) > len(SUFFIX)
    )


def parse_preset(path: str | Path, *, follow_links: bool = True) -> Preset:
    """Read and check one preset file; CommandError names the file and, for a bad entry, the key.

    The file is untrusted: only a regular file is read (a FIFO is refused without blocking), and
    any TOML shape that is not a preset is a CommandError, never another exception. The library reads
    its folder with `follow_links=False`: a link there could make it read any file on the machine."""
    path = Path(path)
    name = _stem(path)
    problem = loaded_name_problem(name)
    if problem:
        raise CommandError(f"preset {_printable(str(path))}: {problem}; rename the file to use it")
    try:
        size = check_regular(
            path, what="preset", follow_links=follow_links
        ).st_size  # a FIFO or device is refused before it is opened
        if size > MAX_FILE_BYTES:
            raise CommandError(f"preset {path}: {size} bytes is more than the limit of {MAX_FILE_BYTES}")
        data = read_toml_table(
            path, max_bytes=MAX_FILE_BYTES, what="preset", follow_links=follow_links
        )  # checks again what it opened
    except UntrustedFileError as e:
        raise CommandError(str(e)) from None
    description = data.pop(DESCRIPTION_KEY, "")
    if not isinstance(description, str):
        raise CommandError(f"preset {path}: {DESCRIPTION_KEY!r} must be text, got {type(description).__name__}")
    for key, value in data.items():
        if key not in PARAMS:
            known = ", ".join((DESCRIPTION_KEY, *PARAMS))
            raise CommandError(f"preset {path}: unknown key {_quoted(key)}; known: {known}")
        if isinstance(value, dict):
            raise CommandError(f"preset {path}: {key!r} must be a value, not a table")
        if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            raise CommandError(
                f"preset {path}: {key!r} must be a value or a list of values, not nested lists or tables"
            )
        if any(isinstance(v, int) and abs(v) > _MAX_INT for v in (value if isinstance(value, list) else [value])):
            raise CommandError(f"preset {path}: {key!r} is out of range (a number of more than 18 digits)")
    if not data:
        raise CommandError(f"preset {path}: sets no parameters")
    try:
        session = session_from_values(data, source=f"preset {path}")  # CommandError names the file and the key
    except CommandError:
        raise
    except (TypeError, ValueError, ArithmeticError) as e:  # a value no check foresaw (a 400-digit int): still refused
        raise CommandError(f"preset {path}: unusable value ({type(e).__name__}: {e})") from None
    values = MappingProxyType({key: getattr(session, key) for key in data})
    return Preset(name=name, values=values, description=description, path=path)


def loaded_name_problem(name: str) -> str | None:
    """Why a preset file's stem cannot be a preset name (it travels in OSC replies and reports), or None.

    Looser than check_preset_name, so hand-named files such as "Dub (slow).toml" keep working: only
    names no reply could carry or that would mislead a reader are refused: not UTF-8, control, format
    (bidi overrides) and line-separator characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8"
    if any(unicodedata.category(c) in _HOSTILE_CATEGORIES for c in name):
        return "the file name contains control or invisible formatting characters"
    return None


def _printable(text: str) -> str:
    """`text` with control characters and undecodable bytes escaped, for log lines and reports."""
    return "".join(
        c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _HOSTILE_CATEGORIES else c
        for c in text
    )


def _quoted(text: str, limit: int = 80) -> str:
    """repr of a key from the file (control characters escaped), cut short so a hostile file cannot flood the log."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}..."


def preset_toml(session: Session, description: str = "") -> str:
    """A whole session as preset text (tuples as arrays; a random seed as -1, TOML has no null)."""
    data: dict[str, Any] = {DESCRIPTION_KEY: description} if description else {}
    for key, value in session.as_dict().items():
        if value is None:
            value = -1  # seed: -1 reads back as "a fresh seed per job"
        data[key] = list(value) if isinstance(value, tuple) else value
    return tomli_w.dumps(data)


class PresetLibrary(FolderWatch):
    """The presets of one folder, kept current by a folder watcher; reads are thread-safe.

    `on_event(kind, name, message)` is called with LOADED (new or changed), REMOVED or ERROR
    (the previous version, if any, stays) from `reload()` and from the watcher's thread. The folder
    itself may be deleted and made again while the bridge runs: that is ERROR with name "" (its
    presets are removed), then WATCHING with name "" when a folder is there again (its presets are
    loaded); the reload thread looks every `folder_check_s`.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        on_event: PresetEventCallback | None = None,
        polling: bool = False,
        poll_interval_s: float = 0.5,
        debounce_s: float = 0.2,
        folder_check_s: float = 1.0,
        follow_links: bool = False,
    ) -> None:
        self.folder = Path(folder)
        self.follow_links = follow_links
        self.folder_check_s = folder_check_s
        self._on_event = on_event
        self._polling = polling
        self._poll_interval_s = poll_interval_s
        self._debounce_s = debounce_s
        self._lock = threading.Lock()  # guards the fields below; never held while reading a file
        self._reading = threading.RLock()  # one file read at a time, so an older read never lands after a newer
        self._presets: dict[str, Preset] = {}
        self._pending: dict[Path, float] = {}  # file -> when to re-read it (monotonic)
        self._init_watch(threading.Condition(self._lock))

    # --- reading ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._presets)

    def get(self, name: str) -> Preset:
        """The named preset (exact, else a unique case-insensitive match), or CommandError listing the known ones."""
        with self._lock:
            preset = self._presets.get(name)
            if preset is None:
                matches = [p for n, p in self._presets.items() if n.lower() == str(name).lower()]
                preset = matches[0] if len(matches) == 1 else None
            if preset is not None:
                return preset
            known = ", ".join(sorted(self._presets)) or f"none (the folder {self.folder} has no valid presets)"
        raise CommandError(f"unknown preset {name!r}; known: {known}")

    def reload(self) -> dict[str, str]:
        """Re-read every preset file now; returns {name: error} for the files that were refused."""
        with self._reading:
            try:
                files = sorted(p for p in self.folder.glob("*") if is_preset_file(p)) if self.folder.is_dir() else []
            except OSError as e:  # no permission to list it: keep what is loaded, say why nothing changes
                message = (
                    f"presets folder {self.folder} cannot be listed ({e.strerror or e}); keeping the loaded presets"
                )
                self._emit(ERROR, "", message)
                return {"": message}
            with self._lock:
                known = {p.path for p in self._presets.values() if p.path is not None}
            errors: dict[str, str] = {}
            for path in sorted(set(files) | known):  # known ones that are gone are removed
                try:
                    error = self._reload_file(path)
                except Exception as e:  # a bug must cost one preset, never start-up or the other presets
                    log.exception("preset reload of %s failed", path)
                    error = f"preset {_printable(str(path))}: could not be loaded ({type(e).__name__}: {e})"
                    self._emit(ERROR, _stem(path), error)
                if error:
                    errors[_printable(_stem(path))] = error
            return errors

    # --- writing ------------------------------------------------------------------------------

    def save(self, name: str, session: Session, description: str = "") -> Preset:
        """Write the whole session as `<folder>/<name>.toml` (atomically: the watcher never sees half a file)."""
        check_preset_name(name)
        if not isinstance(description, str) or "\x00" in description or len(description) > 1000:
            raise CommandError("preset description: expected text of at most 1000 characters")
        path = self.folder / f"{name}{SUFFIX}"
        if path.parent != self.folder:  # check_preset_name already refuses separators; never write outside anyway
            raise CommandError(f"preset name {name!r} would not be a file in {self.folder}")
        text = preset_toml(session, description)
        try:
            with atomic_write(path) as f:
                f.write(text.encode("utf-8"))
        except OSError as e:
            raise CommandError(f"preset {name!r}: cannot be written to {path} ({e.strerror or e})") from None
        error = self._reload_file(path)
        if error:  # our own output must read back; anything else is a bug worth hearing about
            raise CommandError(error)
        return self.get(name)

    # --- watching -----------------------------------------------------------------------------

    def start(self, *, polling: bool | None = None) -> None:
        """Load the folder and follow it: a debounce thread plus watchdog's observer, both joined by stop().

        `polling` (default: the constructor's) polls the folder instead of using OS events, for
        network drives and container mounts where inotify/FSEvents see nothing."""
        if self._thread is not None:
            raise RuntimeError("PresetLibrary already started")
        if polling is not None:
            self._polling = polling
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file where the folder should be, no permission: reported, watched for
            log.warning("presets folder %s cannot be created (%s)", self.folder, e.strerror or e)
        name = f"jb-presets-observer {self.folder}"
        self._observe(
            self.folder,
            _Handler(self._file_event),
            polling=self._polling,
            poll_interval_s=self._poll_interval_s,
            name=name,
        )
        self._thread = threading.Thread(target=self._run, name=f"jb-presets-reload {self.folder}", daemon=True)
        self._thread.start()
        self.reload()

    def _file_event(self, path: Path) -> None:
        """Called on watchdog's thread: only schedule a re-read, never read here."""
        with self._wake:
            if not self._stopping:
                self._pending[path] = time.monotonic() + self._debounce_s
                self._wake.notify_all()

    def _run(self) -> None:
        while True:
            self._check_folder()
            with self._wake:
                ready: list[Path] = []
                while not self._stopping:
                    now = time.monotonic()
                    ready = [p for p, t in self._pending.items() if t <= now]
                    if ready:
                        break
                    wait_s = self._folder_wait_s()
                    if wait_s <= 0:
                        break
                    if self._pending:
                        wait_s = min(wait_s, min(self._pending.values()) - now)
                    self._wake.wait(timeout=wait_s)
                if self._stopping:
                    return
                for path in ready:
                    del self._pending[path]
            for path in sorted(ready):
                try:
                    self._reload_file(path)
                except Exception:  # a bug here must not end hot reload for the rest of the session
                    log.exception("preset reload of %s failed", path)

    def _folder_gone(self) -> None:
        self._emit(
            ERROR,
            "",
            f"presets folder {self.folder} is gone (deleted, moved, or not a folder); its "
            "presets are unavailable until it is back",
        )
        self.reload()  # what was in it is gone too

    def _folder_back(self) -> None:
        self._emit(WATCHING, "", f"presets folder {self.folder} is there again; watching it")
        self.reload()  # files written before the new watch began

    # --- one file -----------------------------------------------------------------------------

    def _reload_file(self, path: Path) -> str | None:
        """Bring one preset in line with its file; returns the error message if the file was refused."""
        with self._reading:
            return self._reload_file_locked(path)

    def _reload_file_locked(self, path: Path) -> str | None:
        name = _stem(path)
        if not path.exists():
            self._forget(name)
            return None
        try:
            preset = parse_preset(path, follow_links=self.follow_links)
        except CommandError as e:
            if not path.exists():  # deleted while we read it
                self._forget(name)
                return None
            with self._lock:
                kept = name in self._presets
            message = f"{e}; keeping the previous version" if kept else str(e)
            self._emit(ERROR, name, message)
            return message
        with self._lock:
            unchanged = self._presets.get(name) == preset
            self._presets[name] = preset
        if not unchanged:
            self._emit(LOADED, name, f"preset {name!r} loaded from {path}")
        return None

    def _forget(self, name: str) -> None:
        with self._lock:
            preset = self._presets.pop(name, None)
        if preset is not None:
            self._emit(REMOVED, name, f"preset {name!r} removed ({preset.path} is gone)")

    def _emit(self, kind: str, name: str, message: str) -> None:
        (log.warning if kind == ERROR else log.info)("%s", message)
        if self._on_event is None:
            return
        try:
            self._on_event(kind, _printable(name), message)
        except Exception:  # the callback's failure is its own; the library stays consistent
            log.exception("preset %s callback failed for %r", kind, name)


class _Handler(FileSystemEventHandler):
    """watchdog -> `schedule(path)` for every preset file an event touches (both ends of a move)."""

    def __init__(self, schedule: Callable[[Path], None]) -> None:
        self._schedule = schedule

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in _WATCHED_EVENTS:
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                path = Path(str(raw))
                if is_preset_file(path):
                    self._schedule(path)


def _stem(path: Path) -> str:
    return path.name[: -len(SUFFIX)]
