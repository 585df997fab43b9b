"""The job board: every job's record, the one writer of job state, and what the model reported of itself.

Each job event goes through `publish`: the board applies it to the job's record under the
record's lock, journals the record when the event changes what a restart needs, and then tells
the listeners (the OSC transport turns them into replies). The worker publishes; the transports
read `status()` snapshots. The queue holds the same records in run order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.commands import Origin
from bridge.errors import CommandError
from bridge.events import (
    EventBus,
    JobEnded,
    JobEvent,
    JobQueued,
    JobState,
    ModelState,
    ModelStateChanged,
    Stage,
)
from bridge.jobs.admission import JobLimits, check_admission
from bridge.jobs.eta import Throughput, levels_seconds
from bridge.jobs.journal import JobJournal
from bridge.jobs.queue import JobQueue
from bridge.jobs.record import JobRecord
from bridge.jobs.spec import UPSAMPLE, JobSpec
from bridge.untrusted.confine import confine_codes
from jukebox_model.api import ModelInfo, TakeRequest

log = logging.getLogger(__name__)

MAX_JOBS_KEPT = 500  # finished jobs remembered for status/continue; older ones are forgotten
Checker = Callable[[TakeRequest], list[str]]


class JobBoard:
    def __init__(
        self, queue: JobQueue, bus: EventBus, *, journal: JobJournal | None = None, limits: JobLimits | None = None
    ):
        self.queue, self.bus, self.journal, self.limits = queue, bus, journal, limits
        self.throughput = Throughput()
        self._lock = threading.RLock()
        self._jobs: dict[str, JobRecord] = {}
        self._order: list[str] = []  # job ids, oldest first
        self._running: str | None = None
        self._model_state = ModelState.WARMING
        self._model_info: ModelInfo | None = None
        self._model_error: str | None = None
        self._check: Checker | None = None

    # --- the model ----------------------------------------------------------------------------------

    def set_model_state(
        self,
        state: ModelState,
        *,
        info: ModelInfo | None = None,
        error: str | None = None,
        check: Checker | None = None,
    ) -> None:
        with self._lock:
            self._model_state = state
            if info is not None:
                self._model_info = info
            if error is not None:
                self._model_error = error
            if check is not None:
                self._check = check
            bundle = self._model_info.bundle if self._model_info else ""
        self.bus.publish(ModelStateChanged(state, bundle, error))

    @property
    def model_state(self) -> ModelState:
        with self._lock:
            return self._model_state

    @property
    def model_info(self) -> ModelInfo | None:
        with self._lock:
            return self._model_info

    def ready_model(self) -> tuple[ModelInfo, Checker]:
        """The model's facts and request check, or CommandError while it is loading or failed."""
        with self._lock:
            state, info, check, error = self._model_state, self._model_info, self._check, self._model_error
        if state is ModelState.FAILED:
            raise CommandError(f"the model did not load: {error or 'see the log'}")
        if state is ModelState.STOPPING:
            raise CommandError("the bridge is shutting down; no new jobs")
        if info is None or check is None:
            raise CommandError("the model is still loading; try again once /jb/state says ready")
        return info, check

    # --- records ------------------------------------------------------------------------------------

    def publish(self, event: JobEvent) -> None:
        """Apply a job event to its record, journal it if it is a journaled kind, then tell the listeners."""
        record = self.get(event.job_id)
        if not record.apply(event):
            return  # the job had already ended: nothing happened
        if event.journaled:
            self._journal(record)
        self.bus.publish(event)

    def _journal(self, record: JobRecord) -> None:
        if self.journal is not None:
            self.journal.write(record)

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            record = self._jobs.get(job_id)
        if record is None:
            raise CommandError(f"unknown job {job_id!r}")
        return record

    def records(self) -> list[JobRecord]:
        with self._lock:
            return [self._jobs[i] for i in self._order]

    def latest(self) -> JobRecord | None:
        with self._lock:
            return self._jobs[self._order[-1]] if self._order else None

    def source_for(self, job_id: str | None, what: str) -> JobRecord:
        """The job whose codes a continue/upsample starts from: the named one, or the newest with codes."""
        if job_id is None:
            for record in reversed(self.records()):
                if record.status().codes_path:
                    return record
            raise CommandError(f"no earlier take to {what} yet")
        record = self.get(job_id)
        codes = record.status().codes_path
        if not codes or not Path(codes).is_file():
            raise CommandError(f"job {job_id} has no codes yet (it has not finished a level)")
        return record

    def set_running(self, job_id: str | None) -> None:
        with self._lock:
            self._running = job_id

    @property
    def running(self) -> str | None:
        with self._lock:
            return self._running

    # --- queueing -----------------------------------------------------------------------------------

    def submit(self, spec: JobSpec, *, record: JobRecord | None = None, force: bool = False) -> JobRecord:
        """Queue a new job (or, with `record`, one restored from the journal); CommandError when the queue is full
        or the job is over the limits (checked here, where every path that makes a job passes)."""
        if self.limits is not None:
            check_admission(self.limits, spec.request, spec.session.levels, self.model_info)
        record = record or JobRecord(spec)
        with self._lock:
            if record.id in self._jobs:
                raise CommandError(f"job {record.id} exists already")
            self._jobs[record.id] = record
            self._order.append(record.id)
        try:
            self.queue.put(
                record, record.priority, force=force, announce=lambda position: self._queued(record, position)
            )
        except CommandError:
            with self._lock:
                self._jobs.pop(record.id, None)
                self._order.remove(record.id)
            raise
        with self._lock:
            self._forget_old()
        return record

    def requeue(self, record: JobRecord) -> None:
        """A job's second stage (the levels below the preview), behind every waiting preview; never refused."""
        self.queue.put(
            record, UPSAMPLE, force=True, announce=lambda position: self._queued(record, position, Stage.UPSAMPLE)
        )

    def _queued(self, record: JobRecord, position: int, stage: Stage | None = None) -> None:
        """Runs under the queue's lock, before any worker can take the job: 'queued' always precedes 'started'."""
        spec = record.spec
        stage = stage or record.status().stage
        self.publish(
            JobQueued(record.id, spec.origin, position, self.eta_for(record.id), spec.mode.value, spec.seed, stage)
        )

    def _forget_old(self) -> None:
        while len(self._order) > MAX_JOBS_KEPT:
            old = self._order[0]
            if not self._jobs[old].finished():
                break
            self._order.pop(0)
            del self._jobs[old]

    def cancel(self, job_id: str | None, *, origin: Origin) -> list[str]:
        """Cancel one job (or, with None, the running one and everything queued); what was sampled
        is kept in the job's codes file."""
        with self._lock:
            ids = [job_id] if job_id is not None else [i for i in self._order if not self._jobs[i].finished()]
        records = [self.get(i) for i in ids]
        cancelled = []
        for record in records:
            if record.finished():
                if job_id is not None:
                    raise CommandError(f"job {record.id} has already {record.status().state.value}")
                continue
            record.cancel.set()
            if self.queue.remove(record.id) is not None:  # not started (or between stages): done now
                self.finish(record, JobState.CANCELLED)
            cancelled.append(record.id)
        return cancelled

    def finish(self, record: JobRecord, state: JobState, error: str | None = None) -> None:
        status = record.status()
        self.publish(JobEnded(record.id, record.spec.origin, state, len(status.files), status.codes_path or "", error))

    # --- after a restart ----------------------------------------------------------------------------

    def restore(self, confine_prime: Callable[[str], Path], codes_dir: Path) -> list[str]:
        """Queue again the jobs a previous run left unfinished; a record whose prime or codes lie outside
        the folders a request could name is logged and skipped, never run."""
        if self.journal is None:
            return []
        ids = []
        for record in self.journal.unfinished():
            request = record.spec.request
            try:
                if request.prime_path is not None:
                    confine_prime(request.prime_path)
                if request.codes_path is not None:
                    confine_codes(request.codes_path, codes_dir)
                self.submit(record.spec, record=record, force=True)
            except CommandError as e:
                log.error("journal record of job %s is not resumed: %s", record.id, e)
                continue
            ids.append(record.id)
        return ids

    # --- estimates and status -----------------------------------------------------------------------

    def eta_for(self, job_id: str) -> float:
        """Seconds until `job_id` is done (its own work and all ahead of it); -1 while unmeasured."""
        info = self.model_info
        if info is None:
            return -1.0
        ahead: list[JobRecord] = []
        running = self.running
        if running is not None:
            with self._lock:
                current = self._jobs.get(running)
            if current is not None and not current.finished():
                ahead.append(current)
        for record, _ in self.queue.waiting():
            if record not in ahead:
                ahead.append(record)
            if record.id == job_id:
                break
        total = 0.0
        for record in ahead:
            status, s = record.status(), record.spec.session
            todo = status.remaining_levels or tuple(info.levels[: s.levels])
            seconds = levels_seconds(
                self.throughput,
                todo,
                s.length_s * info.sr,
                info.hop_lengths,
                s.n_takes,
                record.spec.request.params.max_batch_size,
                running=(status.level, status.fraction) if status.level is not None else None,
            )
            if seconds is None:
                return -1.0
            total += seconds
        return total

    def summary(self) -> dict[str, Any]:
        info = self.model_info
        return {
            "state": self.model_state.value,
            "queued": len(self.queue),
            "running": self.running or "",
            "bundle": info.bundle if info else "",
        }
