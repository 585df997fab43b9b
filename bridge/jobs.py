"""Jobs and the queue the model worker takes them from.

A job is a frozen request (`JobSpec`: the take request, the session it was queued with, where it
came from) plus its record (`bridge.job_record.JobRecord`), which only the job board changes. It runs in stages: the top level first (a
preview, delivered as soon as it is done), then the levels below as a second stage queued behind
every waiting preview — preview-first scheduling, so a new idea is heard before an old one is
upsampled. Cancel is cooperative: the job's event is checked between tokens.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jukebox_model.api import Mode, TakeRequest

from .controls import Origin
from .errors import CommandError
from .params import Session

if TYPE_CHECKING:
    from .job_record import JobRecord as Job

PREVIEW, UPSAMPLE = 0, 1  # stage priorities: lower runs first


RELATIONS = ("continue", "upsample", "regenerate", "retry")
MAX_TAKE_NUMBER = 10_000  # the highest take number a record may name: file names keep it whole


@dataclass(frozen=True)
class Lineage:
    """Where a job's takes come from: the parent job and, per take, the parent's take number."""

    relation: str  # one of RELATIONS
    job: str
    takes: tuple[int, ...] | None = None  # 1-based, one per row of this job (None: not take by take)

    def take_for(self, row: int) -> int | None:
        return self.takes[row] if self.takes is not None and row < len(self.takes) else None


@dataclass(frozen=True)
class JobSpec:
    """A job as it was asked for: the take request (checked when it arrived), the session it was
    queued with (lengths in bars, how many levels, whether the prime is kept), and where it came from."""

    id: str
    request: TakeRequest
    session: Session
    origin: Origin
    preset: str | None = None
    source_job: str | None = None  # continue / upsample: the job whose codes are used
    created: float = field(default_factory=time.time)
    expect_prime_sha256: str | None = None  # regenerate: the prime's hash when the take was made
    lineage: Lineage | None = None
    take_numbers: tuple[int, ...] | None = None  # 1-based number of each row (regenerate keeps the original's)

    def take_number(self, row: int) -> int:
        return self.take_numbers[row] if self.take_numbers is not None and row < len(self.take_numbers) else row + 1

    @property
    def mode(self) -> Mode:
        return self.request.mode

    @property
    def seed(self) -> int:
        assert self.request.seed is not None  # the controller resolves it before a job exists
        return self.request.seed

    @property
    def n_takes(self) -> int:
        return self.request.n_takes


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_ids_lock = threading.Lock()
_last_ms = 0


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def new_job_id() -> str:
    """'j', the creation time in milliseconds (8 base-36 digits, enough until the year 2059) and 2 random
    digits: ids sort by time as text (so do the take files named after them), are short enough for file
    names and are never mistaken for a take number. Ids made in one process are strictly increasing."""
    global _last_ms
    with _ids_lock:
        now = max(time.time_ns() // 1_000_000, _last_ms + 1)
        _last_ms = now
    return "j" + _base36(now, 8) + _base36(secrets.randbelow(36 * 36), 2)


class JobQueue:
    """Thread-safe priority queue (stage priority, then arrival); bounded, so a flood of requests
    gets a clear 'queue full' instead of unbounded memory."""

    def __init__(self, max_queued: int = 32):
        self.max_queued = max_queued
        self._heap: list[tuple[int, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(threading.RLock())  # announce() may look at the queue again
        self._closed = False

    def put(
        self, job: Job, priority: int = PREVIEW, *, force: bool = False, announce: Callable[[int], None] | None = None
    ) -> int:
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
