"""The queue the model worker takes job stages from: stage priority first (every waiting preview before
any upsampling stage), then arrival; bounded, so a flood of requests gets a clear 'queue full'."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from bridge.errors import CommandError
from bridge.jobs.spec import PREVIEW

Job = TypeVar("Job")  # what is queued: the board's job records (the queue never looks inside them)


class JobQueue(Generic[Job]):
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
