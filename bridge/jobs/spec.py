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
from dataclasses import dataclass, field
from typing import Any

from bridge.commands import Origin
from bridge.session.params import Session
from bridge.untrusted import typed_reads as checked
from jukebox_model.api import Mode, TakeRequest

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

    def for_take(self, row: int) -> Lineage:
        """Where take `row` of this job grew from: the same relation and job, that row's parent take alone."""
        take = self.take_for(row)
        return Lineage(self.relation, self.job, None if take is None else (take,))

    @property
    def take(self) -> int | None:
        """The parent take of a one-take lineage (a take record's)."""
        return self.takes[0] if self.takes else None

    def to_dict(self, *, one_take: bool = False) -> dict[str, Any]:
        """The journal's shape (`takes`), or a take sidecar's (`take`: one take, or null)."""
        if one_take:
            return {"relation": self.relation, "job": self.job, "take": self.take}
        return {
            "relation": self.relation,
            "job": self.job,
            "takes": list(self.takes) if self.takes is not None else None,
        }

    @classmethod
    def from_dict(cls, value: Any, *, one_take: bool = False) -> Lineage:
        """From either shape, read as untrusted: a relation this bridge makes, a job id, take numbers in range."""
        data = checked.mapping(value, "lineage")
        relation = checked.one_of(data.get("relation"), "lineage relation", RELATIONS)
        job = checked.job_id(data.get("job"), "lineage job")
        if one_take:
            take = data.get("take")
            takes = None if take is None else (checked.integer(take, "lineage take", lo=1, hi=MAX_TAKE_NUMBER),)
        else:
            found = data.get("takes")
            takes = None if found is None else checked.integers(found, "lineage takes", lo=1, hi=MAX_TAKE_NUMBER)
        return cls(relation, job, takes)


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
    clip_as_named: str | None = None  # regenerate from the kept copy: the clip the take names, compared when it runs
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
