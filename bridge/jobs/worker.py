"""The model worker: the one thread that owns the engine (`jukebox_model.api.TakeEngine`).

It loads the model once (clients see `warming`, then `ready`), then runs job stages from the
queue: the top level first, delivered as a preview the moment it is done, then — queued behind
any waiting previews — the levels below. After every level the job's codes are saved, so a
cancelled or failed job keeps what it sampled and a later `continue` picks up from there. A job
that fails (a bad prime, out of memory) is reported and the worker takes the next one.

The worker keeps each job's codes (tensors) to itself and tells the job board what happened as
events; the board is the only writer of job state.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge import __version__
from bridge.errors import CommandError
from bridge.events import (
    Event,
    JobInterrupted,
    JobPlanned,
    JobProgress,
    JobQueued,
    JobResumed,
    JobStarted,
    JobState,
    JobWarning,
    LevelDone,
    ModelState,
    Stage,
    TakeDelivered,
)
from bridge.jobs.admission import check_admission
from bridge.jobs.board import JobBoard
from bridge.jobs.eta import level_positions, levels_seconds
from bridge.jobs.queue import JobQueue
from bridge.jobs.record import JobRecord
from bridge.jobs.spec import UPSAMPLE, JobSpec
from bridge.jobs.take_plan import Opening, ParentLevel, TakePlan, opening_for, plan_takes
from bridge.takes.finishing import FinishReport
from bridge.takes.prime_store import KeptPrime, PrimeStore
from bridge.takes.renderer import Head, Renderer, delivered_files
from jukebox_model.api import (
    PRIME_MARGIN_S,
    Mode,
    ModelInfo,
    PrimeAudio,
    Progress,
    StartCodes,
    TakeEngine,
    TakeRequest,
    is_out_of_memory,
)

log = logging.getLogger(__name__)

WARMUP_SECONDS_PER_LEVEL = 1.0  # sampling per level while warming, on a machine with no kept token rates
HEAD_CONTEXT_S = 0.05  # the prime's audio read before the part that opens a take, for the renderer's resampler


@dataclass
class Work:
    """What a job carries between its stages; only the worker sees it."""

    request: TakeRequest  # names the kept copy of any prime
    codes: Any  # per level, the engine's own type
    plan: TakePlan
    kept: KeptPrime | None = None  # a primed job's clip, read once: its copy, hash and end
    head: Head | None = None  # the opening's audio, read once per job


class _Stopping:
    """Cancels the warm-up measurement when the bridge stops."""

    def __init__(self, worker: ModelWorker):
        self.worker = worker

    def is_set(self) -> bool:
        return self.worker._stopping


class _Either:
    """Stops sampling when either event is set: the job's own cancel, or a waiting preview's preemption."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


def _generator() -> dict[str, str]:
    import torch  # only for the version the take records name

    return {"software": "jukebox-bridge", "version": __version__, "torch": torch.__version__}


def _rates_key(info: ModelInfo) -> str:
    """What a token rate depends on: the model, where and how it runs, and the threads it has."""
    import torch  # the thread count the worker's torch was given (bridge.cpu_manners)

    return f"{info.bundle}|{info.device}|{info.precision}|threads={torch.get_num_threads()}"


class ModelWorker:
    def __init__(
        self,
        board: JobBoard,
        queue: JobQueue,
        renderer: Renderer,
        engine_factory: Callable[[], TakeEngine],
        *,
        state_dir: Path,
        follow_links: bool = False,
        primes_budget_bytes: int = 2 << 30,
        preempt_upsamples: bool = True,
        measure_rates_s: float = WARMUP_SECONDS_PER_LEVEL,
    ):
        self.board, self.queue, self.renderer = board, queue, renderer
        self.engine_factory = engine_factory
        self.state_dir = Path(state_dir)
        self.primes = PrimeStore(self.state_dir / "primes", follow_links=follow_links)
        self.primes_budget_bytes = primes_budget_bytes
        self.measure_rates_s = measure_rates_s
        self.engine: Any = None
        self.info: ModelInfo | None = None
        self.ready = threading.Event()  # set once loading ended, either way
        self.load_error: str | None = None
        self._work: dict[str, Work] = {}
        self._current: JobRecord | None = None
        self._current_priority: int | None = None
        self._stopping = False
        # set when a new idea's preview is queued while an upsample runs: that stage yields (codes kept)
        self._preempt = threading.Event()
        if preempt_upsamples:
            board.bus.subscribe(self._on_event)
        self._thread = threading.Thread(target=self._run, name="jb-model-worker", daemon=True)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work, interrupt the running stage (its codes are kept; it resumes at the next start), join."""
        self._stopping = True
        self.queue.close()  # what is still queued stays 'queued' in the journal and resumes at the next start
        current = self._current
        if current is not None:
            current.cancel.set()
        self._thread.join(timeout=timeout)

    def _on_event(self, event: Event) -> None:
        """A new preview waits: an upsampling stage in progress yields to it (a new idea is heard first)."""
        if (
            isinstance(event, JobQueued)
            and event.stage is Stage.PREVIEW
            and event.mode != Mode.UPSAMPLE.value
            and self._current_priority == UPSAMPLE
            and self._current is not None
            and event.job_id != self._current.id
        ):
            self._preempt.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        if not self._load():
            return
        while True:
            item = self.queue.get()
            if item is None:
                return
            record, priority = item
            self._preempt.clear()  # whatever asked for it is running now, or is this very stage
            self._current, self._current_priority = record, priority
            self.board.set_running(record.id)
            try:
                self._run_stage(record, priority)
            except Exception as e:  # noqa: BLE001 - the worker outlives every job
                self._fail(record, e)
            finally:
                self._current, self._current_priority = None, None
                self.board.set_running(None)
                self._collect_primes()

    def _collect_primes(self) -> None:
        """Keep the kept primes within their disk budget; copies a waiting or running job names stay."""
        in_use = set()
        for work in list(self._work.values()):
            for path in (work.request.prime_path, work.plan.opening.prime if work.plan.opening else None):
                if path:
                    in_use.add(Path(path).name)
        for record in self.board.records():
            if not record.finished() and record.spec.request.prime_path:
                in_use.add(Path(record.spec.request.prime_path).name)
        try:
            freed = self.primes.collect(self.primes_budget_bytes, in_use)
        except OSError as e:  # a full or read-only disk must not stop the worker
            log.warning("kept primes could not be collected: %s", e)
            return
        if freed:
            log.info(
                "removed %.1f MB of kept primes no job needs (budget %.0f MB)",
                freed / 1e6,
                self.primes_budget_bytes / 1e6,
            )

    def _load(self) -> bool:
        self.board.set_model_state(ModelState.WARMING)
        started = time.perf_counter()
        try:
            self.engine = self.engine_factory()
            self.info = self.engine.info()
        except Exception as e:  # noqa: BLE001 - any load failure is reported, with its message
            self.load_error = f"{type(e).__name__}: {e}"
            log.error("model failed to load: %s", self.load_error)
            self.board.set_model_state(ModelState.FAILED, error=self.load_error)
            self.ready.set()
            return False
        log.info("model ready in %.1f s: %s", time.perf_counter() - started, self.info.bundle)
        self._collect_primes()
        self.board.throughput.keep_in(self.state_dir / "rates.json", _rates_key(self.info))
        self._measure_rates()
        self.board.set_model_state(ModelState.READY, info=self.info, check=self.engine.check)
        self.ready.set()
        return True

    def _measure_rates(self) -> None:
        """On a machine (or with threads) this model never ran with, sample each level briefly while warming,
        so the first job's estimate is a measurement rather than -1; later sessions read the kept rates."""
        assert self.info is not None
        throughput = self.board.throughput
        missing = [level for level in self.info.levels if throughput.rate(level) is None]
        if not missing or self.measure_rates_s <= 0:
            return
        started = time.perf_counter()
        try:
            measured = self.engine.measure_rates(self.measure_rates_s, cancel=_Stopping(self))
        except Exception as e:  # noqa: BLE001 - a failed measurement costs the first estimate, never the model
            log.warning("could not measure the token rates while warming: %s", e)
            return
        for level, (tokens, seconds) in measured.items():
            if level in missing:
                throughput.record(level, tokens, seconds)
        log.info(
            "measured token rates in %.1f s: %s",
            time.perf_counter() - started,
            ", ".join(f"level {lv} {t / s:.0f}/s" for lv, (t, s) in sorted(measured.items()) if s > 0) or "none",
        )

    # --- one stage of a job -----------------------------------------------------------------------

    def _begin(self, record: JobRecord) -> Work:
        """First stage: keep a copy of the prime, find what the take starts from and plan the takes."""
        spec, request = record.spec, record.spec.request
        if record.resumed:  # checked by the model that was loaded when it was queued; this one may differ
            if self.board.limits is not None and self.info is not None:  # its length needs the model's rate
                check_admission(self.board.limits, request, spec.session.levels, self.info)
            self.engine.check(request)
        prime_original, kept = request.prime_path, None
        if spec.mode is Mode.PRIMED and request.prime_path:  # the model hears the kept copy: what it heard stays
            assert self.info is not None
            kept = self.primes.keep_and_read(
                request.prime_path,
                seconds=request.prime_samples / self.info.sr + PRIME_MARGIN_S if request.prime_samples > 0 else None,
                name=spec.clip_as_named or request.prime_path,
            )
            request = request.replace(prime_path=str(kept.copy))
        start = self.engine.start(
            request, None if kept is None else PrimeAudio(kept.audio, kept.sr, kept.sha256, kept.clip)
        )
        levels = start.levels_to_sample
        chosen = levels if spec.mode is Mode.UPSAMPLE else levels[: spec.session.levels]
        codes = start.codes
        codes_path = self._codes_path(record)
        delivered = record.status().delivered_levels
        if record.resumed and codes_path.is_file():  # a restart: pick up what the earlier run had sampled
            saved = self.engine.load_codes(codes_path)
            if len(saved) == len(codes) and all(z.shape[0] == request.n_takes for z in saved):
                codes = saved
                done = [lv for lv in chosen if lv in delivered]
                self.board.publish(JobResumed(record.id, spec.origin, len(done), len(chosen)))
        expected = spec.expect_prime_sha256
        if expected and start.prime_sha256 and start.prime_sha256 != expected:
            message = f"the prime {prime_original} has changed since the take was made; the take will differ"
            self.board.publish(JobWarning(record.id, spec.origin, message))
        elif expected and spec.clip_as_named:
            self._compare_clip(record, spec.clip_as_named, expected)
        self.board.publish(JobPlanned(record.id, spec.origin, tuple(chosen), str(codes_path)))
        assert self.info is not None
        plan = plan_takes(
            spec,
            request,
            start,
            tuple(chosen),
            self.info,
            opening=opening_for(spec, request, start, self.info.sr, self._recorded_opening(request, start)),
            prime_original=prime_original,
            codes_path=str(codes_path),
            generator=_generator(),
            parent=lambda take: self._parent_level(spec, take),
        )
        return Work(request, codes, plan, kept=kept)

    def _run_stage(self, record: JobRecord, priority: int) -> None:
        if record.cancel.is_set():
            self.board.finish(record, JobState.CANCELLED)
            return
        origin = record.spec.origin
        second = priority == UPSAMPLE
        self.board.publish(JobStarted(record.id, origin, Stage.UPSAMPLE if second else Stage.PREVIEW))
        work = self._work.get(record.id)
        if work is None:
            work = self._work[record.id] = self._begin(record)
        levels = record.status().remaining_levels
        # preview-first: a job's top level runs alone; the rest waits behind queued previews
        for level in levels if second else levels[:1]:
            if not self._sample_and_render(record, work, level, preemptible=second):
                if self._preempt.is_set() and not record.cancel.is_set() and not self._stopping:
                    # a new preview waits: this stage goes back to the queue behind it, its codes kept in
                    # memory (and saved, for a restart); it goes on from the token it reached
                    self.board.publish(JobInterrupted(record.id, origin))
                    self.board.requeue(record)
                    log.info("job %s yields its upsampling to a new preview; it goes on afterwards", record.id)
                    return
                self._work.pop(record.id, None)
                if self._stopping:  # the bridge is stopping: keep the job for the next start, codes saved
                    self.board.publish(JobInterrupted(record.id, origin))
                    log.info("job %s interrupted by the shutdown; it resumes at the next start", record.id)
                    return
                self.engine.release_buffers()  # a cancelled job's step buffers are not kept for the next
                self.board.finish(record, JobState.CANCELLED)
                return
        if record.status().remaining_levels:
            self.board.requeue(record)
        else:
            self._work.pop(record.id, None)
            self.board.finish(record, JobState.DONE)

    def _compare_clip(self, record: JobRecord, clip: str, expected: str) -> None:
        """A regenerate from the kept copy: say so when the clip the take names was re-exported since (or is
        gone), so the producer knows the take is not made from the file now on disk."""
        digest = self.primes.clip_sha256(clip)
        if digest == expected:
            return
        now = "is gone" if digest is None else "has changed since the take was made"
        message = f"the clip {clip} {now}; the take is made again from the copy kept when it was made"
        self.board.publish(JobWarning(record.id, record.spec.origin, message))

    def _sample_and_render(self, record: JobRecord, work: Work, level: int, *, preemptible: bool = False) -> bool:
        """Sample one level, save the codes, deliver each take; False when cancelled (or, `preemptible`,
        when a new preview asked for the model)."""
        assert self.info is not None
        origin, hops, span = record.spec.origin, self.info.hop_lengths, work.plan.span
        started = time.perf_counter()
        later = self._later_levels_seconds(record, work, level)

        def on_progress(p: Progress) -> None:
            eta = None if p.eta_s is None or later is None else p.eta_s + later
            self.board.publish(
                JobProgress(
                    record.id,
                    origin,
                    level,
                    round(p.tokens_done / max(1, p.tokens_total), 4),
                    eta,
                    p.window,
                    p.n_windows,
                    final=p.tokens_done == p.tokens_total,
                )
            )

        before = self.engine.codes_lengths(work.codes)[level]
        result = self.engine.sample_level(
            work.request,
            work.codes,
            level,
            span.end_samples,
            on_progress=on_progress,
            cancel=_Either(record.cancel, self._preempt) if preemptible else record.cancel,
        )
        work.codes = result.codes
        elapsed = time.perf_counter() - started
        sampled = self.engine.codes_lengths(work.codes)[level] - before
        self.board.throughput.record(
            level,
            level_positions(
                sampled * hops[level], hops[level], work.request.n_takes, work.request.params.max_batch_size
            ),
            elapsed,
        )
        self._save_codes(record, work, cancelled=result.cancelled)
        if result.cancelled:
            return False
        self._deliver_level(record, work, level, result.row_seeds)
        self.board.publish(LevelDone(record.id, origin, level))
        return True

    def _later_levels_seconds(self, record: JobRecord, work: Work, level: int) -> float | None:
        """Time the job's levels after `level` will take, from rates measured earlier; None if any is unmeasured."""
        assert self.info is not None
        return levels_seconds(
            self.board.throughput,
            [lower for lower in record.status().remaining_levels if lower != level],
            work.plan.span.end_samples,
            self.info.hop_lengths,
            work.request.n_takes,
            work.request.params.max_batch_size,
        )

    def _codes_path(self, record: JobRecord) -> Path:
        return self.state_dir / "codes" / f"{record.id}.pt"

    def _save_codes(self, record: JobRecord, work: Work, *, cancelled: bool) -> None:
        spec, span, opening = record.spec, work.plan.span, work.plan.opening
        meta = {
            "job": spec.id,
            "mode": spec.mode.value,
            "session": spec.session.as_dict(),
            "start_samples": span.start_samples,
            "end_samples": span.end_samples,
            "opening": None if opening is None else opening.to_meta(),
            "model": self.info.to_dict() if self.info else {},
        }
        self.engine.save_codes(
            self._codes_path(record),
            work.codes,
            work.request,
            cancelled=cancelled,
            take_end_samples=span.take_end_samples,
            meta=meta,
        )

    def _recorded_opening(self, request: TakeRequest, start: StartCodes) -> Opening | None:
        """The opening an earlier take's codes file records (its meta), as untrusted input: its prime must be
        one of this project's kept copies and its numbers must fit the codes."""
        data = start.source_meta.get("opening")
        if data is None:
            return None
        try:
            opening = Opening.from_meta(data, start_samples=start.start_samples)
            self.primes.verified(opening.prime)  # in the store, not a link, still holding its hash
        except (OSError, ValueError) as e:
            log.warning("the opening recorded in %s cannot be used: %s", request.codes_path, e)
            return None
        return opening

    def _parent_level(self, spec: JobSpec, take: int) -> ParentLevel:
        """How take `take` of this job's parent was delivered; nothing when the parent left the board."""
        if spec.lineage is None:
            return ParentLevel(None, None)
        try:
            parent = self.board.get(spec.lineage.job)
        except CommandError:  # the parent is no longer on the board: this take is measured on its own
            return ParentLevel(None, None)
        files = delivered_files(parent.status().files, parent.id, take)
        return ParentLevel(parent.gain_db(take), parent.lufs(take), files)

    def _head(self, work: Work) -> Head | None:
        opening = work.plan.opening
        if opening is None:
            return None
        if work.head is None:
            if work.kept is not None and str(work.kept.copy) == opening.prime:  # read with the job's start
                audio, sr = work.kept.end(opening.head_seconds, context_s=HEAD_CONTEXT_S), work.kept.sr
            else:  # an earlier take's opening: its kept copy, read once for this job
                audio, sr, _ = self.primes.tail(opening.prime, opening.head_seconds, context_s=HEAD_CONTEXT_S)
            work.head = Head(audio, sr, opening.head_seconds)
        return work.head

    def _deliver_level(self, record: JobRecord, work: Work, level: int, seeds: tuple[int, ...]) -> None:
        assert self.info is not None
        spec, plan = record.spec, work.plan
        audio = self.engine.decode(work.codes, level)
        head, end = self._head(work), plan.span.take_end_samples
        for row in range(audio.shape[0]):
            number = plan.takes[row].number
            opening, body_from = head, plan.span.body_from
            parent_file = plan.takes[row].opens_with.get(level)
            delivered = self.renderer.read_delivered(parent_file) if parent_file else None
            take_record = plan.record_for(row, seeds[row], level)
            if delivered is not None:  # a keep-prime continue: its parent's own file, then the new material
                opening, body_from = delivered, plan.span.start_samples
                take_record = dataclasses.replace(take_record, start_sample=body_from)
            finished: list[FinishReport] = []
            path = self.renderer.deliver(
                audio[row, :end],
                run_on=audio[row, end:],
                on_finish=finished.append,
                source_sr=self.info.sr,
                stem=plan.name(row, seeds[row], level),
                record=take_record,
                body_from=body_from,
                head=opening,
                finishing=plan.takes[row].finishing,
            )
            gain = lufs = None
            for done in finished:
                for note in done.notes:
                    self.board.publish(JobWarning(record.id, spec.origin, f"take {number}, level {level}: {note}"))
                if done.loudness_after_lufs is not None:
                    gain, lufs = done.gain_db, done.loudness_after_lufs
            self.board.publish(TakeDelivered(record.id, spec.origin, number, level, str(path), seeds[row], gain, lufs))

    def _fail(self, record: JobRecord, error: BaseException) -> None:
        if is_out_of_memory(error):
            message = "out of memory: try fewer takes, a shorter length or levels 1"
            self._free_memory()
        elif isinstance(error, (CommandError, ValueError, FileNotFoundError)):
            message = str(error)
        elif isinstance(error, OSError):  # a full disk, a vanished folder: the system's own words
            message = error.strerror or str(error) or type(error).__name__
            if error.filename:
                message += f": {error.filename}"
        else:
            message = f"{type(error).__name__}: {error}"
            log.error("job %s failed", record.id, exc_info=error)
        self._work.pop(record.id, None)  # free the codes in memory; the codes file keeps what was saved
        self.board.finish(record, JobState.FAILED, message)

    def _free_memory(self) -> None:
        import gc

        release = getattr(self.engine, "release_buffers", None)
        if release is not None:  # the engine's kept step buffers (KV caches, CUDA graphs)
            release()
        gc.collect()
