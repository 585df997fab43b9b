"""What a job is: its frozen request, its lineage and its id; the queue is `bridge.jobs.queue`.

A job is a frozen request (`JobSpec`: the take request, the session it was queued with, where it
came from) plus its record (`bridge.jobs.record.JobRecord`), which only the job board changes. It runs in stages:
the top level first (a
preview, delivered as soon as it is done), then the levels below as a second stage queued behind
every waiting preview — preview-first scheduling, so a new idea is heard before an old one is
upsampled. Cancel is cooperative: the job's event is checked between tokens.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bridge.commands import Origin
from bridge.session.params import Session, session_from_values
from bridge.untrusted import typed_reads as checked
from bridge.untrusted.record_codec import RecordShape, StoredAs, on_disk
from jukebox_model.api import Mode, TakeRequest

PREVIEW, UPSAMPLE = 0, 1  # stage priorities: lower runs first


RELATIONS = ("continue", "upsample", "regenerate", "retry")
MAX_TAKE_NUMBER = 10_000  # the highest take number a record may name: file names keep it whole


def _session_back(values: Mapping[str, Any], name: str) -> Session:
    """A recorded session, each value checked as if it came over OSC (a null other than the seed's: unset)."""
    return session_from_values({k: v for k, v in values.items() if v is not None or k == "seed"}, source=name)


def _request_back(values: Mapping[str, Any], name: str) -> TakeRequest:
    """A recorded take request, checked by the model side's own reader."""
    try:
        return TakeRequest.from_dict(values)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


SESSION_ON_DISK = StoredAs(Mapping[str, Any], to=Session.as_dict, back=_session_back)
REQUEST_ON_DISK = StoredAs(Mapping[str, Any], to=TakeRequest.to_dict, back=_request_back)


@dataclass(frozen=True)
class Lineage:
    """Where a job's takes come from: the parent job and, per take, the parent's take number. The journal
    keeps it as it is (`takes`); a take's sidecar keeps its one take (`ONE_TAKE_LINEAGE`)."""

    relation: str = field(metadata=on_disk(choices=RELATIONS))
    job: str = field(metadata=on_disk(read=checked.job_id))
    takes: tuple[int, ...] | None = field(  # 1-based, one per row of this job (None: not take by take)
        default=None, metadata=on_disk(lo=1, hi=MAX_TAKE_NUMBER)
    )

    def take_for(self, row: int) -> int | None:
        return self.takes[row] if self.takes is not None and row < len(self.takes) else None

    def for_take(self, row: int) -> Lineage:
        """Where take `row` of this job grew from: the same relation and job, that row's parent take alone."""
        take = self.take_for(row)
        return Lineage(self.relation, self.job, None if take is None else (take,))

    @property
    def take(self) -> int | None:
        """The parent take of a one-take lineage (a take record's)."""
        return self.takes[0] if self.takes else None


@dataclass(frozen=True)
class TakeLineage:
    """A take sidecar's lineage: the parent take alone (`take`, or null), where the journal keeps a list."""

    relation: str = field(metadata=on_disk(choices=RELATIONS))
    job: str = field(metadata=on_disk(read=checked.job_id))
    take: int | None = field(default=None, metadata=on_disk(lo=1, hi=MAX_TAKE_NUMBER))

    @classmethod
    def of(cls, lineage: Lineage) -> TakeLineage:
        return cls(lineage.relation, lineage.job, lineage.take)

    def lineage(self) -> Lineage:
        return Lineage(self.relation, self.job, None if self.take is None else (self.take,))


ONE_TAKE_LINEAGE = StoredAs(TakeLineage, to=TakeLineage.of, back=lambda stored, _name: stored.lineage())


def _take_numbers_fit(spec: JobSpec) -> None:
    if spec.take_numbers is not None and len(spec.take_numbers) != spec.n_takes:
        raise ValueError(f"take_numbers has {len(spec.take_numbers)} entries for {spec.n_takes} takes")


@dataclass(frozen=True)
class JobSpec:
    """A job as it was asked for: the take request (checked when it arrived), the session it was
    queued with (lengths in bars, how many levels, whether the prime is kept), and where it came from.
    The journal keeps it at the top of a job's record (`bridge.jobs.record.JobJournalEntry`)."""

    ON_DISK: ClassVar[RecordShape] = RecordShape(
        derived=lambda spec: {"mode": spec.mode}, agree=("mode",), check=_take_numbers_fit
    )

    id: str = field(metadata=on_disk(read=checked.job_id))
    request: TakeRequest = field(metadata=on_disk(stored_as=REQUEST_ON_DISK))
    session: Session = field(metadata=on_disk(stored_as=SESSION_ON_DISK))
    origin: Origin = field(metadata=on_disk(absent=Origin("app"), null_is_absent=True))
    preset: str | None = field(default=None, metadata=on_disk(max_chars=200))
    source_job: str | None = field(  # continue / upsample: the job whose codes are used
        default=None, metadata=on_disk(read=checked.job_id)
    )
    created: float = field(default_factory=time.time, metadata=on_disk(absent=0.0))
    expect_prime_sha256: str | None = field(  # regenerate: the prime's hash when the take was made
        default=None, metadata=on_disk(max_chars=64)
    )
    clip_as_named: str | None = None  # regenerate from the kept copy: the clip the take names, compared when it runs
    lineage: Lineage | None = None
    take_numbers: tuple[int, ...] | None = field(  # 1-based number of each row (regenerate keeps the original's)
        default=None, metadata=on_disk(lo=1, hi=MAX_TAKE_NUMBER)
    )

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
