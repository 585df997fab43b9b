"""What happens in the bridge, as typed events: the controller, the job board and the worker publish
them; transports turn them into their own messages (only `bridge.transports.osc` knows `/jb/...`).

Job events are applied to the job's record by the job board before anyone hears them (see
`bridge.jobs.record.JobRecord.apply`), so a client that asks for a job's status after an event sees
at least that event's change. Listeners run on the publishing thread and must be quick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from bridge.commands import Origin

log = logging.getLogger(__name__)


class ModelState(str, Enum):
    WARMING = "warming"  # loading
    READY = "ready"
    FAILED = "failed"  # did not load; the bridge serves but makes nothing
    STOPPING = "stopping"


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (JobState.DONE, JobState.CANCELLED, JobState.FAILED)


class Stage(str, Enum):
    PREVIEW = "preview"  # the top level, heard as soon as it is done
    UPSAMPLE = "upsample"  # the levels below, queued behind waiting previews


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class JobEvent(Event):
    """Something that happened to one job; `origin` is whoever asked for the job."""

    job_id: str
    origin: Origin
    journaled: ClassVar[bool] = False  # the job's record is written to the journal after it


@dataclass(frozen=True)
class JobQueued(JobEvent):
    position: int  # 1 = next
    eta_s: float  # until this job is done, -1 while unmeasured
    mode: str
    seed: int
    stage: Stage = Stage.PREVIEW
    journaled: ClassVar[bool] = True


@dataclass(frozen=True)
class JobStarted(JobEvent):
    stage: Stage
    journaled: ClassVar[bool] = True


@dataclass(frozen=True)
class JobPlanned(JobEvent):
    """The worker knows which levels it will sample and where the job's codes are kept."""

    levels: tuple[int, ...]  # still to sample, top first
    codes_path: str
    journaled: ClassVar[bool] = True


@dataclass(frozen=True)
class JobResumed(JobEvent):
    """A job re-queued after a restart picked up the codes it had saved."""

    levels_done: int
    levels_total: int


@dataclass(frozen=True)
class JobWarning(JobEvent):
    message: str


@dataclass(frozen=True)
class JobProgress(JobEvent):
    level: int
    fraction: float  # of this level
    eta_s: float | None  # of the whole job; None while a level's rate is unmeasured
    window: int
    n_windows: int
    final: bool  # the level's last update (never dropped by rate limits)


@dataclass(frozen=True)
class TakeDelivered(JobEvent):
    take: int  # 1-based, as in the file name
    level: int
    path: str
    seed: int
    gain_db: float | None = None  # the loudness gain finishing gave it: its continues get the same
    lufs: float | None = None  # its loudness as delivered: its upsamples are brought to the same
    journaled: ClassVar[bool] = True


@dataclass(frozen=True)
class LevelDone(JobEvent):
    level: int
    journaled: ClassVar[bool] = True


@dataclass(frozen=True)
class JobInterrupted(JobEvent):
    """Stopped by a shutdown (it stays queued in the journal and resumes at the next start) or by a new
    preview that asked for the model (it goes back to the queue behind it): never by a user."""

    journaled: ClassVar[bool] = True


@dataclass(frozen=True)
class JobEnded(JobEvent):
    state: JobState  # done, cancelled or failed
    files: int  # takes delivered
    codes_path: str  # "" when nothing was sampled
    error: str | None = None
    journaled: ClassVar[bool] = True


@dataclass(frozen=True)
class ModelStateChanged(Event):
    state: ModelState
    bundle: str
    error: str | None = None


@dataclass(frozen=True)
class PrimeChanged(Event):
    origin: Origin
    path: str


@dataclass(frozen=True)
class ParamChanged(Event):
    """A session parameter changed (over OSC, from a MIDI knob, from the DAW's tempo): control surfaces
    showing it follow."""

    origin: Origin
    name: str
    value: object


@dataclass(frozen=True)
class PresetLoaded(Event):
    origin: Origin
    name: str
    changed: tuple[str, ...]  # the parameters whose values it changed


@dataclass(frozen=True)
class JobsCancelled(Event):
    """A cancel that came from a trigger (a MIDI note), not a request with a reply of its own."""

    origin: Origin
    job_ids: tuple[str, ...]


@dataclass(frozen=True)
class Notice(Event):
    """Something a person should know that happened outside a request (a bad preset edit, a MIDI learn)."""

    origin: Origin
    message: str
    error: bool = True


Listener = Callable[[Event], None]


class EventBus:
    """Fan-out to listeners in subscription order; a listener's failure is logged and costs no one else."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def publish(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # one broken listener must not silence the others or the publisher
                log.exception("event listener failed on %s", type(event).__name__)
