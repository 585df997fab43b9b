"""The controller: what every transport calls (see bridge.commands), in front of the session state,
the job board and the replays.

Calls are quick and thread-safe: they check the request, change the session or queue a job, and
return; events tell the clients what happened. A take is built as the model's `TakeRequest` and
checked by the model when the request arrives, so a request the model refuses is an error reply on
its own address, not a failed job later. A bad request raises CommandError, whose message the
transport sends back; the session is left as it was. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bridge.commands import ACTIONS, Origin
from bridge.errors import CommandError
from bridge.events import EventBus, JobsCancelled, JobWarning, Notice
from bridge.jobs.admission import JobLimits
from bridge.jobs.board import JobBoard
from bridge.jobs.journal import JobJournal
from bridge.jobs.queue import JobQueue
from bridge.jobs.record import JobStatus
from bridge.jobs.retry_and_regenerate import Replays, fresh_seed
from bridge.jobs.spec import JobSpec, Lineage, new_job_id
from bridge.session.params import Session
from bridge.session.state import PresetStore, SessionState
from bridge.settings import BridgeSettings
from bridge.takes.finishing import loop_run_on_samples
from jukebox_model.api import Mode, ModelInfo, SamplingParams, TakeRequest


def take_request(
    mode: Mode,
    session: Session,
    *,
    seed: int,
    sr: int,
    prime: Path | None = None,
    codes_path: str | None = None,
    codes_takes: tuple[int, ...] | None = None,
) -> TakeRequest:
    """The model's request for a job queued with `session` (lengths in seconds or bars become samples)."""
    defaults = SamplingParams()
    params = dataclasses.replace(
        defaults,
        temperature=session.temperature,
        top_k=session.top_k,
        top_p=session.top_p,
        hop_fraction=session.hop_fraction,
        seed=seed,
    )
    return TakeRequest(
        mode=mode,
        artist=session.artist,
        genre=session.genre,
        lyrics=session.lyrics,
        new_samples=max(1, round(session.length_s * sr)) if mode is not Mode.UPSAMPLE else 0,
        run_on_samples=loop_run_on_samples(session, sr),
        total_samples=round(session.total_s * sr),
        offset_samples=round(session.offset_s * sr),
        n_takes=session.n_takes,
        params=params,
        prime_path=str(prime) if prime is not None else None,
        prime_samples=round(session.prime_s * sr) if mode is Mode.PRIMED else 0,
        codes_path=codes_path,
        codes_takes=codes_takes,
        bpm=session.bpm,
        beats_per_bar=session.beats_per_bar,
    )


class Controller:
    def __init__(
        self,
        settings: BridgeSettings,
        queue: JobQueue,
        bus: EventBus,
        *,
        presets: PresetStore | None = None,
        check_clip: Callable[[Path], Any] | None = None,
        latest_inbox_clip: Callable[[], Path | None] | None = None,
        session: Session | None = None,
        journal: JobJournal | None = None,
        codes_dir: Path | None = None,
        state: SessionState | None = None,
        board: JobBoard | None = None,
    ):
        """`state` and `board`: the session and job board the app built (and hands to others too); made here
        when not given (tests that drive a controller alone)."""
        self.settings, self.bus = settings, bus
        self.codes_dir = codes_dir or Path(settings.project_dir) / ".jukebox" / "codes"
        self.state = state or SessionState(
            settings, bus, presets=presets, check_clip=check_clip, latest_inbox_clip=latest_inbox_clip, session=session
        )
        self.board = board or JobBoard(queue, bus, journal=journal, limits=JobLimits.from_settings(settings))
        self.state.prime_roots()  # resolved now, at start: a folder swapped for a link later moves nothing
        self.replays = Replays(settings, self.board, self.state, bus, codes_dir=self.codes_dir)

    # --- what tests and the app read ----------------------------------------------------------------

    @property
    def session(self) -> Session:
        return self.state.session

    @property
    def prime(self) -> Path | None:
        return self.state.prime

    @property
    def preset(self) -> str | None:
        return self.state.preset

    @property
    def model_state(self) -> str:
        return self.board.model_state.value

    # --- the Controls surface (bridge.commands) -----------------------------------------------------

    def set_param(self, name: str, args: Sequence[Any], *, origin: Origin) -> Any:
        return self.state.set_param(name, args, origin=origin)

    def load_preset(self, name: str, *, origin: Origin) -> None:
        self.state.load_preset(name, origin=origin)

    def set_prime(self, path: Path | str, *, origin: Origin, start_job: bool = False) -> str | None:
        self.state.set_prime(path, origin=origin)
        return self.generate(Mode.PRIMED.value, origin=origin) if start_job else None

    def prime_from_inbox(self, *, origin: Origin) -> Path:
        clip = self.state.newest_inbox_clip()
        self.set_prime(clip, origin=origin)
        return clip

    def trigger(self, action: str, *, origin: Origin) -> str | None:
        if action not in ACTIONS:
            raise CommandError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
        if action == "retry":
            return self.replays.retry(origin=origin)
        if action == "cancel":
            self.bus.publish(JobsCancelled(origin, tuple(self.board.cancel(None, origin=origin))))
            return None
        return self.generate(None if action == "generate" else action, origin=origin)

    def follow_tempo(self, bpm: float, beats_per_bar: int | None, source: str) -> None:
        """The DAW's tempo (and bar length, when it says) becomes the session's: bars are the DAW's bars,
        and a preset loaded later (OSC, MIDI) keeps them. A value outside the parameters' ranges is
        reported, and the session keeps what it had."""
        origin = Origin("daw", address=f"{source} tempo")
        try:
            self.state.follow_daw("bpm", [bpm], origin=origin)
            if beats_per_bar is not None:
                self.state.follow_daw("beats_per_bar", [beats_per_bar], origin=origin)
        except CommandError as e:
            self.report(origin, f"the DAW's tempo was not followed: {e}")

    def report(self, origin: Origin, message: str, *, error: bool = True) -> None:
        self.bus.publish(Notice(origin, message, error))

    # --- jobs ---------------------------------------------------------------------------------------

    def generate(
        self,
        mode: str | None = None,
        *,
        origin: Origin,
        source_job: str | None = None,
        takes: Sequence[int] | None = None,
        seed: int | None = None,
    ) -> str:
        """Queue a job with the current session; returns its id. `takes` are 1-based take numbers
        (as in the file names) of the source job for continue/upsample."""
        info, check = self.board.ready_model()
        session, preset, prime = self.state.snapshot()
        try:
            chosen = Mode.parse(mode) if mode else (Mode.PRIMED if prime is not None else Mode.ANCESTRAL)
        except ValueError as e:
            raise CommandError(str(e)) from None
        source = codes = None
        codes_takes: tuple[int, ...] | None = None
        if chosen is Mode.PRIMED:
            if prime is None:
                raise CommandError("no prime is set: send /jb/prime/file <path> or drop a clip into the inbox")
            if not prime.is_file():
                raise CommandError(f"the prime {prime} is gone")
        lineage = None
        if chosen.extends_codes:
            record = self.board.source_for(source_job, chosen.value)
            parent = record.spec
            source, codes, n = record.id, record.status().codes_path, parent.n_takes
            numbers = [parent.take_number(row) for row in range(n)]
            if takes:
                bad = [t for t in takes if t not in numbers]
                if bad:
                    raise CommandError(f"job {record.id} has takes {', '.join(map(str, numbers))}, not {bad}")
                codes_takes = tuple(numbers.index(t) for t in takes)
            rows = codes_takes if codes_takes else tuple(range(n))
            lineage = Lineage(chosen.value, record.id, tuple(numbers[row] for row in rows))
            session = session.replace(n_takes=len(codes_takes) if codes_takes else n)
            if chosen is Mode.UPSAMPLE:
                session = session.replace(levels=3)
        seed = seed if seed is not None else (session.seed if session.seed is not None else fresh_seed())
        try:
            request = take_request(
                chosen,
                session,
                seed=seed,
                sr=info.sr,
                prime=prime if chosen is Mode.PRIMED else None,
                codes_path=codes,
                codes_takes=codes_takes,
            )
            unknown = check(request)
        except ValueError as e:
            raise CommandError(f"the model refuses this take: {e}") from None
        spec = JobSpec(
            id=new_job_id(),
            request=request,
            session=session,
            origin=origin,
            preset=preset,
            source_job=source,
            lineage=lineage,
        )
        record = self.board.submit(spec)
        for name in unknown:
            self.board.publish(
                JobWarning(record.id, origin, f"{name} is not in the model's id tables; conditioned as 'unknown'")
            )
        return record.id

    def status(self) -> dict[str, Any]:
        prime, preset = self.state.prime, self.state.preset
        return {**self.board.summary(), "preset": preset or "", "prime": str(prime) if prime else ""}

    # --- queries the transports answer from -----------------------------------------------------------

    def save_preset(self, name: str, *, origin: Origin, description: str = "") -> str:
        return self.state.save_preset(name, origin=origin, description=description)

    def cancel(self, job_id: str | None, *, origin: Origin) -> list[str]:
        """Cancel one job, or every unfinished one; returns the ids cancelled."""
        return self.board.cancel(job_id, origin=origin)

    def job_status(self, job_id: str) -> tuple[JobStatus, int]:
        """A job's status and its place in the queue (0: not waiting)."""
        status = self.board.get(job_id).status()
        return status, self.board.queue.position(status.id) or 0

    def get_param(self, name: str) -> Any:
        return self.state.get_param(name)

    def clear_prime(self) -> None:
        self.state.clear_prime()

    def model_info(self) -> ModelInfo:
        """The loaded model's facts; CommandError while it loads, or if it failed."""
        info, _ = self.board.ready_model()
        return info

    def queued(self, job_id: str) -> tuple[int, float, str, int]:
        """A queued job's position, estimate (-1: not measured), mode and seed: what a generate replies."""
        record = self.board.get(job_id)
        return record.status().queued_position, self.board.eta_for(job_id), record.spec.mode.value, record.spec.seed
