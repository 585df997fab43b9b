"""Jobs made from earlier ones: retry (the last job with a fresh seed) and regenerate (one take
alone, from its sidecar). A sidecar is read as untrusted input: its prime and codes pass the same
confinement as an OSC request's, and the worker checks the prime against the hash it recorded
(hashing a long clip here would hold up the OSC thread)."""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from pathlib import Path

from bridge.commands import Origin
from bridge.errors import CommandError
from bridge.events import EventBus
from bridge.jobs.board import JobBoard
from bridge.jobs.spec import JobSpec, Lineage, new_job_id
from bridge.session.state import SessionState
from bridge.settings import BridgeSettings
from bridge.takes.record import TakeRecord
from bridge.untrusted.confine import confine_codes
from bridge.untrusted.files import UntrustedFileError, read_json_object
from jukebox_model.api import Mode


def fresh_seed() -> int:
    return secrets.randbelow(2**31 - 1)


class Replays:
    def __init__(
        self, settings: BridgeSettings, board: JobBoard, state: SessionState, bus: EventBus, *, codes_dir: Path
    ):
        self.settings, self.board, self.state, self.bus = settings, board, state, bus
        self.codes_dir = codes_dir

    def retry(self, *, origin: Origin) -> str:
        """The last job again with a fresh seed (its mode, settings and prime)."""
        last = self.board.latest()
        if last is None:
            raise CommandError("nothing to retry yet")
        self.board.ready_model()
        request = last.spec.request
        request = request.replace(params=dataclasses.replace(request.params, seed=fresh_seed()))
        spec = dataclasses.replace(
            last.spec,
            id=new_job_id(),
            origin=origin,
            request=request,
            created=time.time(),
            lineage=Lineage("retry", last.id),
            take_numbers=None,
        )
        return self.board.submit(spec).id

    def regenerate(self, sidecar: Path | str, *, origin: Origin) -> str:
        """Queue the take a sidecar describes, alone: its own seed, one take, the same settings, prime and source."""
        _, check = self.board.ready_model()
        path = Path(os.path.expanduser(str(sidecar)))
        if not path.is_absolute():
            path = Path(self.settings.project_dir) / path
        try:
            path = path.resolve()
        except (OSError, RuntimeError, ValueError) as e:
            raise CommandError(f"{str(sidecar)!r} cannot be used ({getattr(e, 'strerror', None) or e})") from None
        project = Path(self.settings.project_dir).resolve()
        if project not in path.parents or path.suffix != ".json":
            raise CommandError(f"{str(sidecar)!r} is not a take's .json sidecar in the project folder {project}")
        try:
            record = TakeRecord.from_dict(read_json_object(path, what="sidecar"), source=path.name)
        except UntrustedFileError as e:
            raise CommandError(str(e)) from None
        except (ValueError, TypeError) as e:
            raise CommandError(f"{path.name} is not a take sidecar written by the bridge ({e})") from None
        request = record.request
        clip_as_named = None
        if request.mode is Mode.PRIMED:
            assert request.prime_path is not None
            try:  # the kept copy under the project, which survives a re-export of the clip
                prime = self.state.confine_prime(request.prime_path)
                if record.prime is not None and record.prime.path != request.prime_path:
                    clip_as_named = record.prime.path  # a re-export since is worth a notice (the worker reads it)
            except CommandError:
                if record.prime is None or record.prime.path == request.prime_path:
                    raise
                prime = self.state.confine_prime(record.prime.path)  # the copy is gone: the clip as named
            request = request.replace(prime_path=str(prime))  # its hash is compared by the worker, off this thread
        if request.mode.extends_codes:
            assert request.codes_path is not None
            try:
                request = request.replace(codes_path=str(confine_codes(request.codes_path, self.codes_dir)))
            except CommandError as e:
                raise CommandError(f"the codes {path.name} was made from cannot be used: {e}") from None
        session = record.session.replace(n_takes=1, levels=max(1, min(3, len(record.levels))))
        try:
            check(request)
        except ValueError as e:
            raise CommandError(f"{path.name}: this model refuses the take ({e})") from None
        spec = JobSpec(
            id=new_job_id(),
            request=request,
            session=session,
            origin=origin,
            preset=record.preset,
            source_job=record.source.job if record.source else None,
            expect_prime_sha256=record.prime.sha256 if record.prime else None,
            clip_as_named=clip_as_named,
            lineage=Lineage("regenerate", record.job, (record.take,)),
            take_numbers=(record.take,),
        )
        return self.board.submit(spec).id
