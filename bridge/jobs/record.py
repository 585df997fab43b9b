"""A job's record: its spec plus everything that has happened to it, changed only by applying events.

The job board is the one writer: it applies each job event here under the record's lock, then
journals the record and tells the listeners. Readers take a `JobStatus` snapshot. `to_dict` /
`from_dict` are the journal's format (a `JobJournalEntry`, versioned); `from_dict` reads an untrusted
file and refuses any shape it did not write.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from bridge.events import (
    JobEnded,
    JobEvent,
    JobInterrupted,
    JobPlanned,
    JobProgress,
    JobQueued,
    JobStarted,
    JobState,
    LevelDone,
    Stage,
    TakeDelivered,
)
from bridge.jobs.spec import PREVIEW, UPSAMPLE, JobSpec
from bridge.untrusted import record_codec
from bridge.untrusted.record_codec import RecordShape, on_disk
from jukebox_model.api import Mode

VERSION = 2


@dataclass(frozen=True)
class JobStatus:
    id: str
    mode: str
    state: JobState
    stage: Stage
    level: int | None
    fraction: float
    eta_s: float | None
    files: tuple[str, ...]
    error: str | None
    seed: int
    n_takes: int
    codes_path: str | None
    resumed: bool
    remaining_levels: tuple[int, ...]
    delivered_levels: tuple[int, ...]
    queued_position: int


class JobRecord:
    def __init__(
        self,
        spec: JobSpec,
        *,
        resumed: bool = False,
        state: JobState = JobState.QUEUED,
        stage: Stage = Stage.PREVIEW,
        codes_path: str | None = None,
        files: tuple[str, ...] = (),
        delivered_levels: tuple[int, ...] = (),
        remaining_levels: tuple[int, ...] = (),
        error: str | None = None,
        gains_db: Mapping[int, float] | None = None,
        lufs: Mapping[int, float] | None = None,
    ):
        self.spec = spec
        self.resumed = resumed  # re-queued from the journal after a restart
        self.cancel = threading.Event()  # checked between tokens: cooperative cancel
        self._lock = threading.Lock()
        self._state, self._stage, self._error = state, stage, error
        self._codes_path = codes_path
        self._files = list(files)
        self._gains: dict[int, float] = dict(gains_db or {})  # take number -> its latest level's loudness gain
        self._lufs: dict[int, float] = dict(lufs or {})  # take number -> its latest level's delivered loudness
        self._delivered = set(delivered_levels)
        self._remaining = tuple(remaining_levels)
        self._level: int | None = None
        self._fraction = 0.0
        self._eta_s: float | None = None
        self._position = 0  # where it entered the queue (its reply says so even if it started at once)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def priority(self) -> int:
        """Upsampling work (an upsample job, or a job's second stage) waits behind every preview."""
        with self._lock:
            stage = self._stage
        return UPSAMPLE if self.spec.mode is Mode.UPSAMPLE or stage is Stage.UPSAMPLE else PREVIEW

    def finished(self) -> bool:
        with self._lock:
            return self._state.ended

    # --- the one way state changes ------------------------------------------------------------------

    def apply(self, event: JobEvent) -> bool:
        """Apply one of this job's events; False (and no change) for an end after the end."""
        if event.job_id != self.id:
            raise ValueError(f"event for job {event.job_id} applied to job {self.id}")
        with self._lock:
            if self._state.ended:
                return False
            if isinstance(event, JobQueued):
                self._state, self._stage, self._position = JobState.QUEUED, event.stage, event.position
            elif isinstance(event, JobStarted):
                self._state, self._stage = JobState.RUNNING, event.stage
            elif isinstance(event, JobPlanned):
                self._remaining = tuple(lv for lv in event.levels if lv not in self._delivered)
                self._codes_path = event.codes_path
            elif isinstance(event, JobProgress):
                self._level, self._fraction, self._eta_s = event.level, event.fraction, event.eta_s
            elif isinstance(event, TakeDelivered):
                self._files.append(event.path)
                if event.gain_db is not None:
                    self._gains[event.take] = event.gain_db
                if event.lufs is not None:
                    self._lufs[event.take] = event.lufs
            elif isinstance(event, LevelDone):
                self._delivered.add(event.level)
                self._remaining = tuple(lv for lv in self._remaining if lv != event.level)
            elif isinstance(event, JobInterrupted):
                self._state = JobState.QUEUED
            elif isinstance(event, JobEnded):
                self._state, self._error = event.state, event.error
            return True

    # --- reading ------------------------------------------------------------------------------------

    def gain_db(self, take: int) -> float | None:
        """The loudness gain take `take` was delivered with (its finest level so far); None: not normalised."""
        with self._lock:
            return self._gains.get(take)

    def lufs(self, take: int) -> float | None:
        """The loudness take `take` was delivered at (its finest level so far); None: not normalised."""
        with self._lock:
            return self._lufs.get(take)

    def status(self) -> JobStatus:
        with self._lock:
            return JobStatus(
                id=self.id,
                mode=self.spec.mode.value,
                state=self._state,
                stage=self._stage,
                level=self._level,
                fraction=self._fraction,
                eta_s=self._eta_s,
                files=tuple(self._files),
                error=self._error,
                seed=self.spec.seed,
                n_takes=self.spec.n_takes,
                codes_path=self._codes_path,
                resumed=self.resumed,
                remaining_levels=self._remaining,
                delivered_levels=tuple(sorted(self._delivered)),
                queued_position=self._position,
            )

    # --- the journal's format -----------------------------------------------------------------------

    def journal_entry(self) -> JobJournalEntry:
        """The job as the journal keeps it, taken under the record's lock."""
        with self._lock:
            return JobJournalEntry(
                spec=self.spec,
                state=self._state,
                stage=self._stage,
                error=self._error,
                codes_path=self._codes_path,
                files=tuple(self._files),
                delivered_levels=tuple(sorted(self._delivered)),
                remaining_levels=self._remaining,
                gains_db=dict(sorted(self._gains.items())),
                lufs=dict(sorted(self._lufs.items())),
            )

    def to_dict(self) -> dict[str, Any]:
        return record_codec.encode(self.journal_entry())

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], *, resumed: bool = False) -> JobRecord:
        """A record read back from the journal; ValueError for any field it would not have written."""
        entry = record_codec.decode(JobJournalEntry, record, what="journal record")
        values = {f.name: getattr(entry, f.name) for f in fields(entry)}
        return cls(values.pop("spec"), resumed=resumed, **values)


@dataclass(frozen=True, kw_only=True)
class JobJournalEntry:
    """A job's record in the journal (versioned): its spec's keys at the top, then how far it got."""

    ON_DISK: ClassVar[RecordShape] = RecordShape(version=VERSION)

    spec: JobSpec = field(metadata=on_disk(flatten=True))
    state: JobState
    stage: Stage = Stage.PREVIEW
    error: str | None = field(default=None, metadata=on_disk(max_chars=20_000))
    codes_path: str | None = None
    files: tuple[str, ...] = field(default=(), metadata=on_disk(max_items=10_000))
    delivered_levels: tuple[int, ...] = field(default=(), metadata=on_disk(lo=0, hi=2))
    remaining_levels: tuple[int, ...] = field(default=(), metadata=on_disk(lo=0, hi=2))
    # take number -> its latest level's loudness gain, and the loudness it was delivered at (a step's range)
    gains_db: Mapping[int, float] = field(default_factory=dict, metadata=on_disk(lo=-100.0, hi=100.0))
    lufs: Mapping[int, float] = field(default_factory=dict, metadata=on_disk(lo=-100.0, hi=10.0))
