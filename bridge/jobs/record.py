"""A job's record: its spec plus everything that has happened to it, changed only by applying events.

The job board is the one writer: it applies each job event here under the record's lock, then
journals the record and tells the listeners. Readers take a `JobStatus` snapshot. `to_dict` /
`from_dict` are the journal's format (versioned); `from_dict` reads an untrusted file and refuses
any shape it did not write.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.commands import Origin
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
from bridge.jobs.spec import MAX_TAKE_NUMBER, PREVIEW, UPSAMPLE, JobSpec, Lineage
from bridge.session.params import session_from_values
from bridge.untrusted import typed_reads as checked
from jukebox_model.api import Mode, TakeRequest

VERSION = 2
ORIGIN_KINDS = ("osc", "midi", "watch", "daw", "app")


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

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        with self._lock:
            return {
                "version": VERSION,
                "id": spec.id,
                "mode": spec.mode.value,
                "request": spec.request.to_dict(),
                "session": spec.session.as_dict(),
                "preset": spec.preset,
                "source_job": spec.source_job,
                "created": spec.created,
                "origin": origin_to_dict(spec.origin),
                "expect_prime_sha256": spec.expect_prime_sha256,
                "clip_as_named": spec.clip_as_named,
                "lineage": None if spec.lineage is None else spec.lineage.to_dict(),
                "take_numbers": list(spec.take_numbers) if spec.take_numbers is not None else None,
                "state": self._state.value,
                "stage": self._stage.value,
                "error": self._error,
                "codes_path": self._codes_path,
                "files": list(self._files),
                "delivered_levels": sorted(self._delivered),
                "remaining_levels": list(self._remaining),
                "gains_db": {str(take): gain for take, gain in sorted(self._gains.items())},
                "lufs": {str(take): value for take, value in sorted(self._lufs.items())},
            }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], *, resumed: bool = False) -> JobRecord:
        """A record read back from the journal; ValueError for any field it would not have written."""
        checked.mapping(record, "journal record")
        version = record.get("version")
        if type(version) is not int or version != VERSION:  # true == 1 and 2.0 == 2: not versions
            raise ValueError(f"journal record version {version!r}; this bridge reads version {VERSION}")
        job_id = checked.job_id(record.get("id"))
        request = TakeRequest.from_dict(checked.mapping(record.get("request"), "request"))
        if record.get("mode") != request.mode.value:
            raise ValueError(f"mode {record.get('mode')!r} disagrees with its request's {request.mode.value!r}")
        source_job = record.get("source_job")
        spec = JobSpec(
            id=job_id,
            request=request,
            session=session_from_values(_session_values(record.get("session")), source=f"journal {job_id}"),
            origin=origin_from_dict(record.get("origin")),
            preset=checked.optional_text(record.get("preset"), "preset", max_chars=200),
            source_job=None if source_job is None else checked.job_id(source_job, "source_job"),
            created=checked.number(record.get("created", 0.0), "created"),
            expect_prime_sha256=checked.optional_text(
                record.get("expect_prime_sha256"), "expect_prime_sha256", max_chars=64
            ),
            clip_as_named=checked.optional_text(record.get("clip_as_named"), "clip_as_named"),
            lineage=None if record.get("lineage") is None else Lineage.from_dict(record.get("lineage")),
            take_numbers=_take_numbers(record.get("take_numbers"), request.n_takes),
        )
        try:
            state, stage = JobState(record.get("state")), Stage(record.get("stage", Stage.PREVIEW.value))
        except ValueError as e:
            raise ValueError(f"journal record {job_id}: {e}") from None
        return cls(
            spec,
            resumed=resumed,
            state=state,
            stage=stage,
            codes_path=checked.optional_text(record.get("codes_path"), "codes_path"),
            files=checked.texts(record.get("files", []), "files"),
            delivered_levels=checked.integers(record.get("delivered_levels", []), "delivered_levels", lo=0, hi=2),
            remaining_levels=checked.integers(record.get("remaining_levels", []), "remaining_levels", lo=0, hi=2),
            error=checked.optional_text(record.get("error"), "error", max_chars=20_000),
            gains_db=_per_take(record.get("gains_db", {}), "gains_db", -100.0, 100.0),
            lufs=_per_take(record.get("lufs", {}), "lufs", -100.0, 10.0),
        )


def _per_take(value: Any, name: str, lo: float, hi: float) -> dict[int, float]:
    """Take numbers (as JSON keys) to dB values, each a finite number a loudness step could have given."""
    out = {}
    for key, number in checked.mapping(value, name).items():
        if not isinstance(key, str) or not key.isdigit() or len(key) > 6:
            raise ValueError(f"{name}: {key!r} is not a take number")
        found = checked.number(number, f"{name}[{key}]")
        if not lo <= found <= hi:
            raise ValueError(f"{name}[{key}]: {found} is outside {lo:g} to {hi:g}")
        out[int(key)] = found
    return out


def _session_values(value: Any) -> dict[str, Any]:
    session = checked.mapping(value, "session")
    return {k: v for k, v in session.items() if v is not None or k == "seed"}


def _take_numbers(value: Any, n_takes: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    numbers = checked.integers(value, "take_numbers", lo=1, hi=MAX_TAKE_NUMBER)
    if len(numbers) != n_takes:
        raise ValueError(f"take_numbers has {len(numbers)} entries for {n_takes} takes")
    return numbers


def origin_to_dict(origin: Origin) -> dict[str, Any]:
    return {"kind": origin.kind, "client": list(origin.client) if origin.client else None, "address": origin.address}


def origin_from_dict(value: Any) -> Origin:
    """Where a job came from, as recorded; its client must be an IP address and a port (events go there)."""
    if value is None:
        return Origin("app")
    data = checked.mapping(value, "origin")
    kind = checked.one_of(data.get("kind", "app"), "origin kind", ORIGIN_KINDS)
    client = data.get("client")
    target = None
    if client:
        if not isinstance(client, (list, tuple)) or len(client) != 2:
            raise ValueError("origin client must be [host, port]")
        host = checked.text(client[0], "origin host", max_chars=64)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"origin host {host!r} is not an IP address") from None
        target = (host, checked.integer(client[1], "origin port", lo=1, hi=65535))
    return Origin(kind, client=target, address=checked.text(data.get("address", ""), "origin address", max_chars=4096))
