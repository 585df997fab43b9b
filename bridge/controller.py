"""The controller: the session (what the next take will use), presets, the prime, and job submission.

Every transport calls in here (see bridge.controls). Calls are quick and thread-safe: they check
the request, change the session or queue a job, and tell the clients; the model work happens on
the worker thread. Nothing here imports torch. A bad request raises CommandError, whose message
the transport sends back; the session is left as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .controls import ACTIONS, Origin
from .errors import CommandError
from .eta import Throughput, level_positions
from .jobs import Job, JobQueue, JobSpec, JobState, new_job_id
from .notify import Notifier
from .params import PARAMS, Session, parse_param, session_from_values
from .settings import BridgeSettings

log = logging.getLogger(__name__)

MAX_JOBS_KEPT = 500  # finished jobs remembered for status/continue; older ones are forgotten


class PresetStore(Protocol):
    def names(self) -> list[str]: ...
    def get(self, name: str) -> Any: ...  # has .values (mapping) and .description
    def save(self, name: str, session: Session, description: str = "") -> Any: ...


class Controller:
    def __init__(
        self,
        settings: BridgeSettings,
        queue: JobQueue,
        notifier: Notifier,
        *,
        presets: PresetStore | None = None,
        check_clip: Callable[[Path], Any] | None = None,
        latest_inbox_clip: Callable[[], Path | None] | None = None,
        session: Session | None = None,
        journal: Any = None,
    ):
        self.settings = settings
        self.queue = queue
        self.notifier = notifier
        self.presets = presets
        self.check_clip = check_clip
        self.latest_inbox_clip = latest_inbox_clip
        self.throughput = Throughput()
        self.journal = journal  # bridge.journal.JobJournal, or None (tests of the control paths)
        self.param_listeners: list[Callable[[str], None]] = []  # e.g. MIDI learn's "last touched parameter"
        self._lock = threading.RLock()
        self._session = session or Session()
        self._preset: str | None = None
        self._prime: Path | None = None
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []  # job ids, oldest first
        self._running: str | None = None
        self.model_state = "warming"
        self.model_info: dict[str, Any] = {}

    # --- the session ------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        with self._lock:
            return self._session

    def set_param(self, name: str, args: Sequence[Any], *, origin: Origin) -> Any:
        value = parse_param(name, args)
        with self._lock:
            self._session = self._session.replace(**{name: value})
        for listener in list(self.param_listeners):
            try:
                listener(name)
            except Exception:  # a listener's bug must not fail the request
                log.exception("parameter listener failed")
        return value

    def get_param(self, name: str) -> Any:
        if name not in PARAMS:
            raise CommandError(f"unknown parameter {name!r}; known: {', '.join(PARAMS)}")
        return getattr(self.session, name)

    # --- presets ----------------------------------------------------------------------------------

    def _store(self) -> PresetStore:
        if self.presets is None:
            raise CommandError("no presets folder is configured")
        return self.presets

    def preset_names(self) -> list[str]:
        return self._store().names()

    def load_preset(self, name: str, *, origin: Origin) -> None:
        preset = self._store().get(name)  # CommandError naming the known presets
        with self._lock:
            self._session = session_from_values(preset.values, self._session, source=f"preset {name!r}")
            self._preset = name

    def save_preset(self, name: str, *, origin: Origin, description: str = "") -> str:
        self._store().save(name, self.session, description)
        with self._lock:
            self._preset = name
        return name

    @property
    def preset(self) -> str | None:
        with self._lock:
            return self._preset

    # --- the prime --------------------------------------------------------------------------------

    def prime_roots(self) -> list[Path]:
        roots = [self.settings.project_dir, *self.settings.prime_roots]
        if self.settings.inbox_dir is not None:
            roots.append(self.settings.inbox_dir)
        return [Path(r).expanduser().resolve() for r in roots]

    def confine_prime(self, path: Path | str) -> Path:
        """A prime may only come from the configured roots (inbox, project, prime_roots): `..`,
        absolute paths elsewhere and symlinks that lead out are refused."""
        try:
            raw = Path(os.path.expanduser(str(path)))
            if not raw.is_absolute():
                base = self.settings.inbox_dir or self.settings.project_dir
                raw = Path(base).expanduser() / raw
            resolved = raw.resolve()
            roots = self.prime_roots()
            if not any(resolved == root or root in resolved.parents for root in roots):
                listed = ", ".join(str(r) for r in roots)
                raise CommandError(f"prime {str(path)!r} is outside the folders primes may come from ({listed})")
            if not resolved.is_file():
                raise CommandError(f"prime {str(path)!r} is not a file")
        except (OSError, RuntimeError, ValueError) as e:  # a name too long, a symlink loop, a NUL byte
            if isinstance(e, CommandError):
                raise
            raise CommandError(f"prime {str(path)!r} cannot be used ({getattr(e, 'strerror', None) or e})") from None
        return resolved

    def set_prime(self, path: Path | str, *, origin: Origin, start_job: bool = False) -> str | None:
        resolved = self.confine_prime(path)
        if self.check_clip is not None:
            self.check_clip(resolved)  # CommandError: not complete or not decodable
        with self._lock:
            self._prime = resolved
        self.notifier.send(origin.client, "/jb/prime", str(resolved))
        return self.generate("primed", origin=origin) if start_job else None

    def prime_from_inbox(self, *, origin: Origin) -> Path:
        clip = self.latest_inbox_clip() if self.latest_inbox_clip is not None else None
        if clip is None:
            raise CommandError("no clip has arrived in the inbox yet")
        self.set_prime(clip, origin=origin)
        return clip

    def clear_prime(self) -> None:
        with self._lock:
            self._prime = None

    @property
    def prime(self) -> Path | None:
        with self._lock:
            return self._prime

    # --- jobs -------------------------------------------------------------------------------------

    def _check_lengths(self, session: Session, mode: str) -> None:
        if mode != "upsample" and session.length_s > self.settings.max_seconds:
            raise CommandError(f"length {session.length_s:.1f} s is over the limit of {self.settings.max_seconds:g} s")
        if session.n_takes > self.settings.max_takes:
            raise CommandError(f"n_takes {session.n_takes} is over the limit of {self.settings.max_takes}")
        minimum = self.model_info.get("upsample_min_seconds")
        if mode != "upsample" and session.levels > 1 and minimum and session.length_s + (session.prime_s if mode == "primed" else 0) < minimum:
            raise CommandError(
                f"this model upsamples takes of at least {minimum:.2f} s; make the take longer or set levels 1 (preview only)"
            )

    def _source(self, job_id: str | None, mode: str) -> Job:
        with self._lock:
            if job_id is None:
                candidates = [self._jobs[i] for i in reversed(self._order) if self._jobs[i].codes_path]
                if not candidates:
                    raise CommandError(f"no earlier take to {mode} yet")
                return candidates[0]
            job = self._jobs.get(job_id)
        if job is None:
            raise CommandError(f"unknown job {job_id!r}")
        if not job.codes_path or not Path(job.codes_path).is_file():
            raise CommandError(f"job {job_id} has no codes yet (it has not finished a level)")
        return job

    def generate(self, mode: str | None = None, *, origin: Origin, source_job: str | None = None,
                 takes: Sequence[int] | None = None, seed: int | None = None) -> str:
        """Queue a job with the current session; returns its id. `takes` are 1-based take numbers
        (as in the file names) of the source job for continue/upsample."""
        if self.model_state == "failed":
            raise CommandError(f"the model did not load: {self.model_info.get('error', 'see the log')}")
        with self._lock:
            session, preset, prime = self._session, self._preset, self._prime
        if mode is None:
            mode = "primed" if prime is not None else "ancestral"
        if mode not in ("ancestral", "primed", "continue", "upsample"):
            raise CommandError(f"unknown mode {mode!r}; use ancestral, primed, continue or upsample")
        source = source_codes = None
        source_takes: tuple[int, ...] | None = None
        if mode == "primed":
            if prime is None:
                raise CommandError("no prime is set: send /jb/prime/file <path> or drop a clip into the inbox")
            if not prime.is_file():
                raise CommandError(f"the prime {prime} is gone")
        if mode in ("continue", "upsample"):
            src = self._source(source_job, mode)
            source, source_codes = src.id, src.codes_path
            if takes:
                bad = [t for t in takes if not 1 <= t <= src.spec.n_takes]
                if bad:
                    raise CommandError(f"job {src.id} has takes 1–{src.spec.n_takes}, not {bad}")
                source_takes = tuple(t - 1 for t in takes)
            session = session.replace(n_takes=len(source_takes) if source_takes else src.spec.n_takes)
            if mode == "upsample":
                session = session.replace(levels=3)
        self._check_lengths(session, mode)
        spec = JobSpec(
            id=new_job_id(), mode=mode, session=session, preset=preset, origin=origin,
            seed=seed if seed is not None else (session.seed if session.seed is not None else secrets.randbelow(2**31 - 1)),
            prime_path=str(prime) if mode == "primed" else None,
            source_job=source, source_codes=source_codes, source_takes=source_takes,
        )
        return self._enqueue(Job(spec))

    def _enqueue(self, job: Job, *, force: bool = False) -> str:
        with self._lock:
            self._jobs[job.id] = job
            self._order.append(job.id)
        try:
            self.queue.put(job, job.priority, force=force, announce=lambda position: self.announce_queued(job, position))
        except CommandError:
            with self._lock:
                self._jobs.pop(job.id, None)
                self._order.remove(job.id)
            raise
        self.record(job)
        with self._lock:
            self._forget_old()
        return job.id

    def announce_queued(self, job: Job, position: int, stage: str | None = None) -> None:
        """/jb/job/queued for a job (or, with stage "upsample", its second stage); called under the queue's lock."""
        job.queued_position = position
        self.notifier.send(job.spec.origin.client, "/jb/job/queued", job.id, position, self.eta_for(job.id),
                           stage or job.spec.mode, job.spec.seed)

    def record(self, job: Job) -> None:
        if self.journal is not None:
            self.journal.write(job)

    def restore(self) -> list[str]:
        """Queue again the jobs a previous run left unfinished (from the journal); returns their ids."""
        if self.journal is None:
            return []
        ids = []
        for found in self.journal.unfinished():
            job = Job(found.spec)
            job.resumed = True
            job.codes_path = found.codes_path
            job.files = list(found.files)
            job.delivered_levels = set(found.delivered_levels)
            job.stage = found.stage
            self._enqueue(job, force=True)
            ids.append(job.id)
        return ids

    def retry(self, *, origin: Origin) -> str:
        """The last job again with a fresh seed (its mode, settings and prime)."""
        with self._lock:
            last = self._jobs[self._order[-1]] if self._order else None
        if last is None:
            raise CommandError("nothing to retry yet")
        spec = dataclasses.replace(last.spec, id=new_job_id(), origin=origin, seed=secrets.randbelow(2**31 - 1),
                                   created=time.time())
        return self._enqueue(Job(spec))

    def regenerate(self, sidecar: Path | str, *, origin: Origin) -> str:
        """Queue the take a sidecar describes, alone: its own seed, one take, the same settings,
        prime and source. The prime is checked against the hash the sidecar recorded."""
        path = Path(os.path.expanduser(str(sidecar)))
        if not path.is_absolute():
            path = Path(self.settings.project_dir) / path
        path = path.resolve()
        project = Path(self.settings.project_dir).resolve()
        if project not in path.parents or path.suffix != ".json":
            raise CommandError(f"{str(sidecar)!r} is not a take's .json sidecar in the project folder {project}")
        try:
            data = json.loads(path.read_text())
            session = session_from_values(data["session"], source=path.name).replace(n_takes=1)
            seed, mode = int(data["seed"]), str(data["mode"])
            request = data["regenerate"]["request"]
            levels = len(data["regenerate"]["levels"])
        except FileNotFoundError:
            raise CommandError(f"sidecar {path.name} not found") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CommandError(f"{path.name} is not a take sidecar written by the bridge ({e})") from None
        prime = None
        if mode == "primed":
            prime = self.confine_prime(request["prime_path"])
            recorded = (data.get("prime") or {}).get("sha256")
            if recorded and hashlib.sha256(prime.read_bytes()).hexdigest() != recorded:
                self.report(origin, f"the prime {prime} has changed since {path.name} was made; the take will differ",
                            error=False)
        source_codes = request.get("codes_path")
        if mode in ("continue", "upsample") and (not source_codes or not Path(source_codes).is_file()):
            raise CommandError(f"the codes {source_codes} that {path.name} was made from are gone")
        takes = request.get("codes_takes")
        spec = JobSpec(id=new_job_id(), mode=mode, session=session.replace(levels=max(1, min(3, levels))),
                       preset=data.get("preset"), origin=origin, seed=seed,
                       prime_path=str(prime) if prime else None,
                       source_job=(data.get("source") or {}).get("job"), source_codes=source_codes,
                       source_takes=tuple(takes) if takes else None)
        self._check_lengths(spec.session, mode)
        return self._enqueue(Job(spec))

    def _forget_old(self) -> None:
        while len(self._order) > MAX_JOBS_KEPT:
            old = self._order[0]
            if not self._jobs[old].finished():
                break
            self._order.pop(0)
            del self._jobs[old]

    def cancel(self, job_id: str | None = None, *, origin: Origin) -> list[str]:
        """Cancel one job (or, with None, the running one and everything queued); what was sampled
        is kept in the job's codes file."""
        with self._lock:
            ids = [job_id] if job_id is not None else [i for i in self._order if not self._jobs[i].finished()]
            jobs = []
            for i in ids:
                job = self._jobs.get(i)
                if job is None:
                    raise CommandError(f"unknown job {i!r}")
                jobs.append(job)
        cancelled = []
        for job in jobs:
            if job.finished():
                if job_id is not None:
                    raise CommandError(f"job {job.id} has already {job.snapshot()['state']}")
                continue
            job.cancel.set()
            if self.queue.remove(job.id) is not None:  # not started (or between stages): done now
                self.finish(job, JobState.CANCELLED)
            cancelled.append(job.id)
        return cancelled

    def finish(self, job: Job, state: JobState, error: str | None = None) -> None:
        """Mark a job ended and tell its requester and the subscribers."""
        with job.lock:
            if job.state in (JobState.DONE, JobState.CANCELLED, JobState.FAILED):
                return
            job.state, job.error = state, error
            files, codes = len(job.files), job.codes_path or ""
        self.record(job)
        client = job.spec.origin.client
        if state is JobState.DONE:
            self.notifier.send(client, "/jb/job/done", job.id, files, codes)
        elif state is JobState.CANCELLED:
            self.notifier.send(client, "/jb/job/cancelled", job.id, files, codes)
        else:
            self.notifier.send(client, "/jb/job/failed", job.id, error or "failed")
            self.notifier.send(client, "/jb/error", "/jb/job/failed", job.id, error or "failed")
        self.notifier.forget(job.id)

    def job(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise CommandError(f"unknown job {job_id!r}")
        return job

    def jobs(self) -> list[Job]:
        with self._lock:
            return [self._jobs[i] for i in self._order]

    def set_running(self, job_id: str | None) -> None:
        with self._lock:
            self._running = job_id

    # --- actions (MIDI notes, OSC triggers) -------------------------------------------------------

    def trigger(self, action: str, *, origin: Origin) -> str | None:
        if action not in ACTIONS:
            raise CommandError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
        if action == "generate":
            return self.generate(origin=origin)
        if action == "continue":
            return self.generate("continue", origin=origin)
        if action == "upsample":
            return self.generate("upsample", origin=origin)
        if action == "retry":
            return self.retry(origin=origin)
        cancelled = self.cancel(origin=origin)
        self.notifier.send(origin.client, "/jb/cancel", len(cancelled), *cancelled)
        return None

    def report(self, origin: Origin, message: str, *, error: bool = True) -> None:
        (log.warning if error else log.info)("%s: %s", origin.describe(), message)
        if error:
            self.notifier.send(origin.client, "/jb/error", origin.address or origin.kind, message)
        else:
            self.notifier.send(origin.client, "/jb/info", origin.kind, message)

    # --- the model's state and status -------------------------------------------------------------

    def set_model_state(self, state: str, info: dict[str, Any] | None = None) -> None:
        self.model_state = state
        if info is not None:
            self.model_info = dict(info)
        self.notifier.send(None, "/jb/state", state, str(self.model_info.get("bundle", "")))

    def eta_for(self, job_id: str) -> float:
        """Seconds until `job_id` is done (its own work and all ahead of it); -1 while unmeasured."""
        hops = self.model_info.get("hop_lengths")
        levels = self.model_info.get("levels")
        if not hops or not levels:
            return -1.0
        total = 0.0
        ahead: list[Job] = []
        with self._lock:
            running = self._jobs.get(self._running) if self._running else None
        if running is not None and not running.finished():
            ahead.append(running)
        for job, _ in self.queue.waiting():
            if job not in ahead:
                ahead.append(job)
            if job.id == job_id:
                break
        for job in ahead:
            s = job.spec.session
            n_samples = s.length_s * self.model_info.get("sr", 44100)
            with job.lock:
                todo = job.remaining_levels or tuple(levels[: s.levels])
                current, fraction = job.level, job.fraction
            for level in todo:
                seconds = self.throughput.seconds(level, level_positions(n_samples, hops[level], s.n_takes))
                if seconds is None:
                    return -1.0
                total += seconds * ((1 - fraction) if level == current else 1)
        return total

    def status(self) -> dict[str, Any]:
        with self._lock:
            running = self._running
            prime = str(self._prime) if self._prime else ""
            preset = self._preset or ""
        return {"state": self.model_state, "queued": len(self.queue), "running": running or "",
                "bundle": str(self.model_info.get("bundle", "")), "preset": preset, "prime": prime}
