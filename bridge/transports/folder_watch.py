"""What the preset library and the inbox share: a watchdog observer that only records events, one thread
of our own that acts on them, and stopping both in that order.

A subclass keeps its recorded work in `self._pending` and guards it (and `self._stopping`) with the
condition `self._wake`, which its thread waits on. `_observe` starts the observer before the subclass
reads the folder, so nothing written meanwhile is missed; `stop()` stops the observer first, so no
event arrives after the thread has been told to end.

The watched folder itself can go away: deleted (the emitter then stops for good), moved (inotify
follows it to its new name) or replaced by a new folder of the same name (which no watch covers).
The subclass's thread calls `_check_folder()` every loop; at most every `folder_check_s` it compares
the folder with the one armed (device and inode, and whether the emitter still runs). When the
folder is lost, the observer is stopped and `_folder_gone()` is called; once a folder is at that
path again, a new observer is armed on it and `_folder_back()` is called, where the subclass
re-reads what it missed. Both hooks run on the subclass's thread with no lock held.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

Identity = tuple[int, int]  # (st_dev, st_ino) of the folder an observer was armed on


@dataclass(frozen=True)
class _WatchSpec:
    folder: Path
    handler: FileSystemEventHandler
    polling: bool
    poll_interval_s: float
    name: str
    root_link: bool = False  # the folder was a symlink when watching began: the user's choice, followed

    def identity(self) -> Identity | None:
        """The folder's identity now; a real folder that was replaced by a symlink counts as gone, so a link
        cannot move where clips or presets come from behind the user's back."""
        if not self.root_link and os.path.islink(self.folder):
            return None
        return folder_identity(self.folder)


class FolderWatch:
    _wake: threading.Condition
    _pending: dict[Path, Any]
    folder_check_s: float = 1.0  # how often the own thread checks that the folder is still the one watched

    def _init_watch(self, wake: threading.Condition) -> None:
        self._wake = wake
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        # guards _observer, _spec, _identity, _closed between start/stop and a re-arm on the own thread;
        # never taken on watchdog's threads, so joining an observer while holding it cannot deadlock
        self._watch_lock = threading.Lock()
        self._spec: _WatchSpec | None = None
        self._identity: Identity | None = None
        self._closed = True
        self._lost = False  # only read and written on the own thread (and by _observe before it starts)
        self._next_folder_check = 0.0

    def _observe(
        self, folder: Path, handler: FileSystemEventHandler, *, polling: bool, poll_interval_s: float, name: str
    ) -> None:
        """Start watching `folder` (OS events, or polling for network drives and container mounts).

        A folder that is missing (or cannot be watched) now is not an error: it is reported through
        `_folder_gone()` by the own thread and armed when it appears."""
        spec = _WatchSpec(folder, handler, polling, poll_interval_s, name, root_link=os.path.islink(folder))
        with self._wake:
            self._stopping = False
        with self._watch_lock:
            self._spec, self._closed, self._lost = spec, False, False
            armed = self._arm_locked()
        # not armed: the first check (at once) finds no live observer and reports the folder as gone
        self._next_folder_check = time.monotonic() + self.folder_check_s if armed else 0.0

    def _arm_locked(self) -> bool:
        """Start an observer on the spec's folder (with `_watch_lock` held); False if the folder cannot be watched."""
        spec = self._spec
        identity = None if spec is None else spec.identity()
        if spec is None or identity is None:
            return False
        observer: BaseObserver = PollingObserver(timeout=spec.poll_interval_s) if spec.polling else Observer()
        observer.name = spec.name
        try:
            observer.schedule(spec.handler, str(spec.folder), recursive=False)
            observer.start()  # inotify adds its watch here: a folder deleted meanwhile fails now
        except OSError as e:
            log.debug("cannot watch %s yet: %s", spec.folder, e)
            _stop_observer(observer)
            return False
        self._observer, self._identity = observer, identity
        return True

    def _check_folder(self) -> None:
        """On the own thread: notice a lost folder (stop its observer, `_folder_gone`) and re-arm a returned one."""
        now = time.monotonic()
        if now < self._next_folder_check:
            return
        self._next_folder_check = now + self.folder_check_s
        with self._watch_lock:
            if self._closed or self._spec is None:
                return
            observer, newly_lost = None, not self._lost
            if newly_lost:
                if self._spec.identity() == self._identity and _emitting(self._observer):
                    return
                observer, self._observer, self._identity, self._lost = self._observer, None, None, True
        if newly_lost:
            if observer is not None:
                _stop_observer(observer)
            self._call_hook(self._folder_gone)
        with self._watch_lock:
            if self._closed or not self._lost or not self._arm_locked():
                return
            self._lost = False
        self._call_hook(self._folder_back)

    def _folder_wait_s(self) -> float:
        """Seconds until `_check_folder` has work again (a bound for the own thread's waits)."""
        return max(0.0, self._next_folder_check - time.monotonic())

    @property
    def folder_lost(self) -> bool:
        """Whether the watched folder is gone (or not there yet) and nothing in it is being watched."""
        return self._lost

    def _folder_gone(self) -> None:
        """The watched folder was deleted, moved or replaced; its observer is stopped. Subclasses report it."""

    def _folder_back(self) -> None:
        """A folder is at the watched path again and is being watched; subclasses report it and re-read it."""

    def _call_hook(self, hook: Any) -> None:
        try:
            hook()
        except Exception:  # a bug in a hook must not end the own thread
            log.exception("folder watch %s failed", getattr(hook, "__name__", hook))

    def stop(self) -> None:
        with self._watch_lock:
            observer, self._observer = self._observer, None
            self._closed = True
        thread, self._thread = self._thread, None
        if observer is not None:
            _stop_observer(observer)
        with self._wake:
            self._stopping = True
            self._pending.clear()
            self._wake.notify_all()
        if thread is not None:
            thread.join()

    def __enter__(self) -> Self:
        self.start()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def folder_identity(folder: Path) -> Identity | None:
    """(device, inode) of `folder` if it is a folder now (symlinks followed), else None."""
    try:
        st = os.stat(folder)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _emitting(observer: BaseObserver | None) -> bool:
    """Whether the observer still has a running emitter (watchdog stops it when the folder is deleted)."""
    return observer is not None and any(emitter.is_alive() for emitter in observer.emitters)


def _stop_observer(observer: BaseObserver) -> None:
    observer.stop()
    if observer.is_alive():
        observer.join()
