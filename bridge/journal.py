"""The job journal: every job's request and progress on disk, so a restart loses nothing.

One small JSON file per job in <project>/.jukebox/jobs/, rewritten atomically at each change of
state (queued, each level delivered, ended). After a crash or a kill, the bridge reads the files
of jobs that had not ended and queues them again; the worker resumes each from the codes it had
saved, so finished levels are not sampled twice and nothing delivered is delivered again.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jukebox_model.atomic import atomic_write

from .controls import Origin
from .errors import CommandError
from .jobs import Job, JobSpec, JobState
from .params import session_from_values

log = logging.getLogger(__name__)

VERSION = 1
ENDED = {JobState.DONE.value, JobState.CANCELLED.value, JobState.FAILED.value}


@dataclass(frozen=True)
class Resumable:
    spec: JobSpec
    stage: str
    codes_path: str | None
    files: list[str]
    delivered_levels: list[int]


class JobJournal:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # a snapshot and its write are one step, so records never go back in time

    def path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.json"

    def write(self, job: Job) -> None:
        """Record the job as it is now; a failing disk is logged, never raised into the job's thread."""
        with self._lock:
            self._write(job)

    def _write(self, job: Job) -> None:
        spec = job.spec
        with job.lock:
            record = {
                "version": VERSION, "id": spec.id, "mode": spec.mode, "session": spec.session.as_dict(),
                "seed": spec.seed, "preset": spec.preset, "prime_path": spec.prime_path,
                "source_job": spec.source_job, "source_codes": spec.source_codes,
                "source_takes": list(spec.source_takes) if spec.source_takes is not None else None,
                "created": spec.created, "origin": {"kind": spec.origin.kind, "client": list(spec.origin.client or []),
                                                    "address": spec.origin.address},
                "state": job.state.value, "stage": job.stage, "error": job.error, "codes_path": job.codes_path,
                "files": list(job.files), "delivered_levels": sorted(job.delivered_levels),
            }
        try:
            with atomic_write(self.path(spec.id)) as f:
                f.write((json.dumps(record, indent=1) + "\n").encode())
        except OSError as e:
            log.error("could not record job %s in the journal: %s", spec.id, e)

    def unfinished(self) -> list[Resumable]:
        """Jobs that had not ended when the bridge last stopped, oldest first; unreadable records are
        logged and skipped (and left on disk for a person to look at)."""
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = json.loads(path.read_text())
                if record.get("state") in ENDED:
                    continue
                found.append(self._resumable(record))
            except (OSError, ValueError, KeyError, TypeError, CommandError) as e:
                log.error("journal record %s cannot be resumed: %s", path, e)
        return sorted(found, key=lambda r: r.spec.created)

    @staticmethod
    def _resumable(record: dict[str, Any]) -> Resumable:
        session = dict(record["session"])
        session_values = {k: v for k, v in session.items() if v is not None or k == "seed"}
        origin = record.get("origin") or {}
        client = tuple(origin.get("client") or ()) or None
        spec = JobSpec(
            id=str(record["id"]), mode=str(record["mode"]),
            session=session_from_values(session_values, source=f"journal {record['id']}"),
            seed=int(record["seed"]), preset=record.get("preset"), prime_path=record.get("prime_path"),
            source_job=record.get("source_job"), source_codes=record.get("source_codes"),
            source_takes=tuple(record["source_takes"]) if record.get("source_takes") is not None else None,
            created=float(record.get("created", 0.0)),
            origin=Origin(str(origin.get("kind", "app")), client=(str(client[0]), int(client[1])) if client else None,
                          address=str(origin.get("address", ""))),
        )
        return Resumable(spec=spec, stage=str(record.get("stage", "preview")), codes_path=record.get("codes_path"),
                         files=[str(f) for f in record.get("files", [])],
                         delivered_levels=[int(v) for v in record.get("delivered_levels", [])])
