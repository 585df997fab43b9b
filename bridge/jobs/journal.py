"""The job journal: every job's record on disk, so a restart loses nothing.

One small JSON file per job in <project>/.jukebox/jobs/, rewritten atomically whenever the job
board applies a journaled event (queued, started, planned, a take delivered, a level done, ended).
After a crash or a kill the bridge reads the records of jobs that had not ended and queues them
again; the worker resumes each from the codes it had saved, so finished levels are not sampled
twice and nothing delivered is delivered again. The files are read back as untrusted input: a
record of any other shape is logged and skipped (and left on disk for a person to look at).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from bridge.jobs.record import JobRecord
from bridge.untrusted.files import UntrustedFileError, read_json_object
from jukebox_model.atomic import atomic_write

log = logging.getLogger(__name__)

MAX_RECORDS = 10_000  # records read at a start; a folder flooded with files cannot stall it for long


class JobJournal:
    def __init__(self, folder: Path, *, follow_links: bool = False):
        self.folder = Path(folder)
        self.follow_links = follow_links  # a record that is a symlink was not written by the bridge
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # a snapshot and its write are one step, so records never go back in time

    def path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.json"  # ids are checked (checked.JOB_ID): never a path elsewhere

    def write(self, record: JobRecord) -> None:
        """Record the job as it is now; a failing disk is logged, never raised into the job's thread."""
        with self._lock:
            data = record.to_dict()
            try:
                with atomic_write(self.path(record.id)) as f:
                    f.write((json.dumps(data, indent=1) + "\n").encode())
            except OSError as e:
                log.error("could not record job %s in the journal: %s", record.id, e.strerror or e)

    def unfinished(self) -> list[JobRecord]:
        """Records of jobs that had not ended when the bridge last stopped, oldest first."""
        found = []
        for n, path in enumerate(sorted(self.folder.glob("*.json"))):
            if n >= MAX_RECORDS:
                log.error("journal %s holds over %d records; the rest are not read", self.folder, MAX_RECORDS)
                break
            try:
                data = read_json_object(path, what="journal record", follow_links=self.follow_links)
                record = JobRecord.from_dict(data, resumed=True)
                if record.id != path.stem:
                    raise ValueError(f"it names job {record.id}, not {path.stem}")
            except (UntrustedFileError, ValueError, TypeError, RecursionError) as e:
                log.error("journal record %s cannot be resumed: %s", path, e)
                continue
            if not record.finished():
                found.append(record)
        return sorted(found, key=lambda r: r.spec.created)
