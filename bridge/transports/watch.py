"""The inbox watch folder: an audio clip dropped there becomes the prime once it is complete.

watchdog says a file was created at its first byte and sends a stream of modified events while a
DAW or a copy writes it (daw-anchors §4.1-4.2), so no single event means "done". A clip is taken
only when all three hold:

1. quiet: no event and no change of size/mtime for `quiet_s`;
2. stable: the same (inode, size, mtime) on `stable_checks` consecutive checks (this also covers
   network drives, where a polling observer sees changes late and inotify sees none);
3. decodable: bridge.untrusted.clip_check accepts it (header sizes agree with the length, the end decodes).

Then `controls.set_prime` is called, optionally starting a primed job. A clip that has gone quiet
but is still not usable (an interrupted copy) is reported once and left alone until it changes.
Atomic hand-offs (`.x.wav.part` renamed to `x.wav`) arrive as a move and are taken the same way.
Only the folder itself is watched: subfolders are free for staging exports, and names that are
hidden, temporary or DAW analysis files (`*.part`, `*.tmp`, `*.asd`, `*.reapeaks`) are ignored.

Threads: watchdog's observer (and its emitter) only record events; one checker thread of our own
does every stat, decode and call into the controls. `stop()` joins both. A FIFO or device with a
clip's name is refused by its stat before anything opens it, so it never blocks that thread.

The inbox folder may be deleted (or moved) and made again while the bridge runs: the checker
thread notices within `folder_check_s`, reports it, and watches the new folder; clips that arrived
in it meanwhile are taken like new ones.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from bridge.commands import Controls, Origin
from bridge.errors import CommandError
from bridge.transports.folder_watch import FolderWatch
from bridge.untrusted.clip_check import ClipIncomplete, check_clip

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset({".wav", ".aif", ".aiff", ".flac", ".ogg", ".mp3"})
IGNORED_SUFFIXES = frozenset({".part", ".tmp", ".asd", ".reapeaks"})  # never audio, whatever precedes them
_ACTIVITY_EVENTS = ("created", "modified", "moved", "closed")  # opened/closed_no_write/attrib: readers, us too

Signature = tuple[int, int, int]  # (inode, size, mtime_ns): a rewrite or an atomic replace changes it


def is_inbox_clip(path: Path) -> bool:
    """An audio file name the inbox takes: not hidden, not an editor/copy temp, an audio extension."""
    name = path.name
    suffix = path.suffix.lower()
    return not name.startswith((".", "~")) and suffix in AUDIO_SUFFIXES and suffix not in IGNORED_SUFFIXES


@dataclass
class _Candidate:
    """A clip that had activity and is waiting to go quiet (mutable, only touched under the lock)."""

    last_activity: float
    signature: Signature | None = None
    stable: int = 0  # consecutive checks since `signature` was first seen that found it unchanged


class InboxWatcher(FolderWatch):
    """Watch `folder`; complete clips become the prime through `controls.set_prime`."""

    def __init__(
        self,
        folder: str | Path,
        controls: Controls,
        *,
        quiet_s: float = 1.0,
        stable_checks: int = 2,
        polling: bool = False,
        poll_interval_s: float = 0.5,
        auto_start_job: bool = False,
        scan_existing: bool = True,
        check_interval_s: float | None = None,
        folder_check_s: float = 1.0,
    ) -> None:
        if quiet_s < 0 or stable_checks < 1 or poll_interval_s <= 0:
            raise ValueError(
                f"quiet_s must be >= 0, stable_checks >= 1 and poll_interval_s > 0; got {quiet_s}, "
                f"{stable_checks}, {poll_interval_s}"
            )
        self.folder = Path(folder)
        self.controls = controls
        self.quiet_s = quiet_s
        self.stable_checks = stable_checks
        self.polling = polling
        self.poll_interval_s = poll_interval_s
        self.auto_start_job = auto_start_job
        self.scan_existing = scan_existing
        self.check_interval_s = check_interval_s or max(0.02, min(0.25, quiet_s / 4))
        self.folder_check_s = folder_check_s
        self._init_watch(threading.Condition())
        self._pending: dict[Path, _Candidate] = {}
        self._settled: dict[Path, Signature] = {}  # taken or refused as it was then; ignored until it changes
        self._accepted: dict[Path, None] = {}  # accepted clips, oldest first (a dict as an ordered set)

    # --- public ---------------------------------------------------------------------------------

    def latest(self) -> Path | None:
        """The newest accepted clip that still exists (what `/jb/prime/inbox` primes with), or None."""
        with self._wake:
            newest_first = list(reversed(self._accepted))
        return next((p for p in newest_first if p.is_file()), None)

    def scan(self) -> Path | None:
        """Remember the usable clips already in the folder (newest by mtime last) without priming any."""
        clips = []
        for path in self.folder.iterdir() if self.folder.is_dir() else ():
            signature = _signature(path)
            if signature is not None and is_inbox_clip(path) and path.is_file():
                clips.append((signature[2], path, signature))
        for _, path, signature in sorted(clips):
            try:
                check_clip(path)
            except CommandError as e:
                log.warning("inbox: ignoring a clip already in the folder: %s", e)
                with self._wake:
                    self._settled[path] = signature
                continue
            with self._wake:
                self._settled[path] = signature
                self._accepted.pop(path, None)
                self._accepted[path] = None
        return self.latest()

    def start(self) -> None:
        """Watch the folder (created if missing), scan what is there, start the checker thread.

        A folder that cannot be created now (a file in its place) is reported, not raised: the
        checker thread watches for it to appear, as it does for an inbox deleted while running."""
        if self._thread is not None:
            raise RuntimeError("InboxWatcher already started")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            log.warning("inbox: the folder %s cannot be created (%s)", self.folder, e.strerror or e)
        handler = _Handler(self._on_activity, self._on_gone)
        name = f"jb-inbox-observer {self.folder}"
        self._observe(self.folder, handler, polling=self.polling, poll_interval_s=self.poll_interval_s, name=name)
        try:
            if self.scan_existing:
                self.scan()
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._run, name=f"jb-inbox-checker {self.folder}", daemon=True)
        self._thread.start()

    # --- watchdog's thread: record only ---------------------------------------------------------

    def _on_activity(self, path: Path) -> None:
        with self._wake:
            if self._stopping:
                return
            candidate = self._pending.get(path)
            if candidate is None:
                self._pending[path] = _Candidate(last_activity=time.monotonic())
            else:
                candidate.last_activity = time.monotonic()

    def _on_gone(self, path: Path) -> None:
        with self._wake:
            self._pending.pop(path, None)
            self._settled.pop(path, None)
            self._accepted.pop(path, None)

    # --- the checker thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._check_folder()
            with self._wake:
                if not self._stopping:
                    self._wake.wait(timeout=self.check_interval_s)
                if self._stopping:
                    return
                paths = list(self._pending)
            for path in paths:
                try:
                    self._check(path)
                except Exception:  # a bug here must not end the inbox for the rest of the session
                    log.exception("inbox: checking %s failed", path)

    def _folder_gone(self) -> None:
        with self._wake:
            self._pending.clear()  # nothing half-written in it can be finished now; the re-read finds it again
        self._report(
            Origin("watch", address=str(self.folder)),
            f"inbox folder {self.folder} is gone (deleted, moved, or not a folder); clips are taken again "
            "once it is back",
        )

    def _folder_back(self) -> None:
        """Every clip in the returned folder is looked at as if an event had named it: one that arrived while
        no watch ran is taken as new, while one already taken or refused as it is (same inode, size and mtime:
        a folder moved away and back) changes nothing, so it neither primes nor starts a job a second time."""
        self._report(
            Origin("watch", address=str(self.folder)),
            f"inbox folder {self.folder} is there again; watching it",
            error=False,
        )
        try:
            names = sorted(self.folder.iterdir())
        except OSError as e:
            log.warning("inbox: cannot list %s: %s", self.folder, e.strerror or e)
            return
        for path in names:
            if is_inbox_clip(path):
                self._on_activity(path)

    def _check(self, path: Path) -> None:
        """One look at one candidate: still changing, spurious, not yet quiet, or ready to decide."""
        signature = _signature(path)
        now = time.monotonic()
        with self._wake:
            candidate = self._pending.get(path)
            if candidate is None:
                return
            if signature is None:  # deleted (or renamed away) before it was read: nothing to say
                del self._pending[path]
                log.debug("inbox: %s went away before it was complete", path)
                return
            if self._settled.get(path) == signature:  # an event that changed nothing (a reader, a touch)
                del self._pending[path]
                return
            if signature != candidate.signature:
                candidate.signature, candidate.stable, candidate.last_activity = signature, 0, now
                return
            candidate.stable += 1
            if now - candidate.last_activity < self.quiet_s or candidate.stable < self.stable_checks:
                return
            del self._pending[path]
        self._decide(path, signature)

    def _decide(self, path: Path, signature: Signature) -> None:
        origin = Origin("watch", address=str(path))
        incomplete = False
        try:
            check_clip(path)
            problem = None
        except ClipIncomplete as e:  # a stalled export: the inbox keeps watching, and takes it once it is whole
            problem, incomplete = str(e), True
        except CommandError as e:
            problem = str(e)
        after = _signature(path)
        if after is None:
            log.debug("inbox: %s went away while it was read", path)
            return
        with self._wake:
            if after != signature:  # it changed while we read it: wait for it to go quiet again
                self._pending.setdefault(path, _Candidate(last_activity=time.monotonic()))
                return
            self._settled[path] = signature
            self._accepted.pop(path, None)  # a clip rewritten into something unusable is no longer `latest()`
            if problem is None:
                self._accepted[path] = None
        if incomplete:
            self._report(origin, f"inbox clip not complete yet: {problem}; it is primed once it is", error=False)
            return
        if problem is not None:
            self._report(origin, f"inbox clip refused: {problem}")
            return
        log.info("inbox: %s is complete; priming with it", path)
        try:
            self.controls.set_prime(path, origin=origin, start_job=self.auto_start_job)
        except CommandError as e:
            self._report(origin, str(e))
        except Exception as e:
            log.exception("inbox: set_prime(%s) failed", path)
            self._report(origin, f"inbox: priming with {path} failed ({type(e).__name__}: {e})")

    def _report(self, origin: Origin, message: str, *, error: bool = True) -> None:
        try:
            self.controls.report(origin, message, error=error)
        except Exception:
            log.exception("inbox: could not report %r", message)


class _Handler(FileSystemEventHandler):
    """watchdog events -> activity/gone calls for inbox clip names (both ends of a move)."""

    def __init__(self, on_activity: Callable[[Path], None], on_gone: Callable[[Path], None]) -> None:
        self._on_activity = on_activity
        self._on_gone = on_gone

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        src = Path(os.fsdecode(event.src_path)) if event.src_path else None
        dest = Path(os.fsdecode(event.dest_path)) if getattr(event, "dest_path", "") else None
        if event.event_type == "deleted" and src is not None and is_inbox_clip(src):
            self._on_gone(src)
        elif event.event_type == "moved":
            if src is not None and is_inbox_clip(src):
                self._on_gone(src)
            if dest is not None and is_inbox_clip(dest):
                self._on_activity(dest)
        elif event.event_type in _ACTIVITY_EVENTS and src is not None and is_inbox_clip(src):
            self._on_activity(src)


def _signature(path: Path) -> Signature | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
