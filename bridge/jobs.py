"""Jobs and the queue the model worker takes them from.

A job is a frozen request (`JobSpec`: mode, the session it was queued with, the seed, its prime or
source take) plus a lock-guarded status record. It runs in stages: the top level first (a
preview, delivered as soon as it is done), then the levels below as a second stage queued behind
every waiting preview — preview-first scheduling, so a new idea is heard before an old one is
upsampled. Cancel is cooperative: the job's event is checked between tokens.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .controls import Origin
from .errors import CommandError
from .params import Session

PREVIEW, UPSAMPLE = 0, 1  # stage priorities: lower runs first


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True)
class JobSpec:
    id: str
    mode: str  # ancestral | primed | continue | upsample
    session: Session
    seed: int
    origin: Origin
    preset: str | None = None
    prime_path: str | None = None  # primed
    source_job: str | None = None  # continue / upsample: the job whose codes are used
    source_codes: str | None = None
    source_takes: tuple[int, ...] | None = None
    created: float = field(default_factory=time.time)

    @property
    def n_takes(self) -> int:
        return self.session.n_takes


def new_job_id() -> str:
    """'j' and 7 hex digits: short enough for file names, never mistaken for a take number."""
    return "j" + uuid.uuid4().hex[:7]


class Job:
    """A spec plus its status; status fields are read and written under `lock`."""

    def __init__(self, spec: JobSpec):
        self.spec = spec
        self.cancel = threading.Event()
        self.lock = threading.Lock()
        self.state = JobState.QUEUED
        self.stage = "preview"
        self.level: int | None = None
        self.fraction = 0.0  # of the current level
        self.eta_s: float | None = None
        self.files: list[str] = []
        self.error: str | None = None
        self.codes_path: str | None = None
        self.work: Any = None  # what the worker carries between stages (codes in memory)
        self.remaining_levels: tuple[int, ...] = ()
        self.delivered_levels: set[int] = set()
        self.resumed = False  # re-queued from the journal after a restart
        self.queued_position = 0  # where it entered the queue (its reply says so even if it started at once)
        self.interrupted = False  # stopped by a shutdown, not by a user: it resumes at the next start

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def priority(self) -> int:
        """Upsampling work (an upsample job, or a job's second stage) waits behind every preview."""
        return UPSAMPLE if self.spec.mode == "upsample" or self.stage == "upsample" else PREVIEW

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "id": self.id, "mode": self.spec.mode, "state": self.state.value, "stage": self.stage,
                "level": self.level, "fraction": self.fraction, "eta_s": self.eta_s, "files": list(self.files),
                "error": self.error, "seed": self.spec.seed, "n_takes": self.spec.n_takes, "codes": self.codes_path,
                "resumed": self.resumed,
            }

    def finished(self) -> bool:
        with self.lock:
            return self.state in (JobState.DONE, JobState.CANCELLED, JobState.FAILED)


class JobQueue:
    """Thread-safe priority queue (stage priority, then arrival); bounded, so a flood of requests
    gets a clear 'queue full' instead of unbounded memory."""

    def __init__(self, max_queued: int = 32):
        self.max_queued = max_queued
        self._heap: list[tuple[int, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(threading.RLock())  # announce() may look at the queue again
        self._closed = False

    def put(self, job: Job, priority: int = PREVIEW, *, force: bool = False,
            announce: Callable[[int], None] | None = None) -> int:
        """Queue a stage; returns its position (1 = next). `force` skips the bound (a job's own
        second stage must never be refused once its first ran). `announce(position)` runs before
        any worker can take the stage, so 'queued' always reaches clients before 'started'."""
        with self._cond:
            if self._closed:
                raise CommandError("the bridge is shutting down; no new jobs")
            if not force and len(self._heap) >= self.max_queued:
                raise CommandError(f"the queue is full ({self.max_queued} jobs); wait or cancel some")
            heapq.heappush(self._heap, (priority, next(self._seq), job))
            position = self._position_locked(job)
            if announce is not None:
                announce(position)
            self._cond.notify()
            return position

    def get(self, timeout: float | None = None) -> tuple[Job, int] | None:
        """The next stage to run and its priority, or None on timeout or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._heap:
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            priority, _, job = heapq.heappop(self._heap)
            return job, priority

    def remove(self, job_id: str) -> Job | None:
        with self._cond:
            for i, (_, _, job) in enumerate(self._heap):
                if job.id == job_id:
                    self._heap.pop(i)
                    heapq.heapify(self._heap)
                    return job
        return None

    def _position_locked(self, job: Job) -> int:
        ordered = sorted(self._heap, key=lambda item: (item[0], item[1]))
        return next(i for i, (_, _, j) in enumerate(ordered, start=1) if j is job)

    def position(self, job_id: str) -> int | None:
        with self._cond:
            ordered = sorted(self._heap, key=lambda item: (item[0], item[1]))
            return next((i for i, (_, _, j) in enumerate(ordered, start=1) if j.id == job_id), None)

    def waiting(self) -> list[tuple[Job, int]]:
        """Queued stages in the order they will run, with their priorities."""
        with self._cond:
            return [(j, p) for p, _, j in sorted(self._heap, key=lambda item: (item[0], item[1]))]

    def __len__(self) -> int:
        with self._cond:
            return len(self._heap)

    def close(self) -> list[Job]:
        """Stop handing out work; returns the stages still queued (the caller cancels or keeps them)."""
        with self._cond:
            self._closed = True
            left = [j for _, _, j in sorted(self._heap, key=lambda item: (item[0], item[1]))]
            self._heap.clear()
            self._cond.notify_all()
            return left
