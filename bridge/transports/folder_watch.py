"""What the preset library and the inbox share: a watchdog observer that only records events, one thread
of our own that acts on them, and stopping both in that order.

A subclass keeps its recorded work in `self._pending` and guards it (and `self._stopping`) with the
condition `self._wake`, which its thread waits on. `_observe` starts the observer before the subclass
reads the folder, so nothing written meanwhile is missed; `stop()` stops the observer first, so no
event arrives after the thread has been told to end.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Self

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver


class FolderWatch:
    _wake: threading.Condition
    _pending: dict[Path, Any]

    def _init_watch(self, wake: threading.Condition) -> None:
        self._wake = wake
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    def _observe(self, folder: Path, handler: FileSystemEventHandler, *, polling: bool, poll_interval_s: float, name: str) -> None:
        """Start watching `folder` (OS events, or polling for network drives and container mounts)."""
        observer: BaseObserver = PollingObserver(timeout=poll_interval_s) if polling else Observer()
        observer.schedule(handler, str(folder), recursive=False)
        observer.name = name
        with self._wake:
            self._stopping = False
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        observer, thread = self._observer, self._thread
        self._observer = self._thread = None
        if observer is not None:
            observer.stop()
            observer.join()
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
