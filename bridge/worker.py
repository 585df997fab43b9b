"""The model worker: the one thread that owns the model (and the only bridge code that touches torch).

It loads the bundle once (clients see `warming`, then `ready`), then runs job stages from the
queue: the top level first, delivered as a preview the moment it is done, then — queued behind
any waiting previews — the levels below. After every level the job's codes are saved, so a
cancelled or failed job keeps what it sampled and a later `continue` picks up from there. A job
that fails (a bad prime, out of memory) is reported and the worker takes the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import __version__
from .controller import Controller
from .errors import CommandError
from .eta import level_positions
from .jobs import UPSAMPLE, Job, JobQueue, JobSpec, JobState
from .notify import Notifier
from .renderer import Renderer

log = logging.getLogger(__name__)


@dataclass
class Work:
    """What a job carries between its stages."""

    request: Any  # jukebox_model.engine.TakeRequest
    zs: list[Any]  # codes per level
    start_samples: int
    end_samples: int
    prime_sha256: str | None
    levels: tuple[int, ...]  # the levels this job samples, top first


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    text = str(error).lower()
    return (isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError))
            or any(sign in text for sign in ("out of memory", "can't allocate memory", "cannot allocate memory")))


class ModelWorker:
    def __init__(self, controller: Controller, queue: JobQueue, notifier: Notifier, renderer: Renderer,
                 engine_factory: Callable[[], Any], *, state_dir: Path):
        self.controller, self.queue, self.notifier, self.renderer = controller, queue, notifier, renderer
        self.engine_factory = engine_factory
        self.state_dir = Path(state_dir)
        self.engine: Any = None
        self.ready = threading.Event()  # set once loading ended, either way
        self.load_error: str | None = None
        self._current: Job | None = None
        self._thread = threading.Thread(target=self._run, name="jb-model-worker", daemon=True)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work, cancel the running stage (its codes are kept), join."""
        self.queue.close()  # what is still queued stays 'queued' in the journal and resumes at the next start
        current = self._current
        if current is not None:
            current.interrupted = True
            current.cancel.set()
        self._thread.join(timeout=timeout)

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
            job, priority = item
            self._current = job
            self.controller.set_running(job.id)
            try:
                self._run_stage(job, priority)
            except Exception as e:  # noqa: BLE001 - the worker outlives every job
                self._fail(job, e)
            finally:
                self._current = None
                self.controller.set_running(None)

    def _load(self) -> bool:
        self.controller.set_model_state("warming")
        started = time.perf_counter()
        try:
            self.engine = self.engine_factory()
        except Exception as e:  # noqa: BLE001 - any load failure is reported, with its message
            self.load_error = f"{type(e).__name__}: {e}"
            log.error("model failed to load: %s", self.load_error)
            self.controller.set_model_state("failed", {"error": self.load_error})
            self.ready.set()
            return False
        info = self.engine.info()
        info["load_seconds"] = time.perf_counter() - started
        self.controller.set_model_state("ready", info)
        log.info("model ready in %.1f s: %s", info["load_seconds"], info.get("bundle"))
        self.ready.set()
        return True

    # --- one stage of a job -----------------------------------------------------------------------

    def _request(self, spec: JobSpec) -> Any:
        from jukebox_model.engine import TakeRequest
        from jukebox_model.sampling.params import SamplingParams

        s, sr = spec.session, self.engine.sr
        params = SamplingParams(temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, hop_fraction=s.hop_fraction,
                                seed=spec.seed)
        return TakeRequest(
            mode=spec.mode, artist=s.artist, genre=s.genre, lyrics=s.lyrics,
            new_samples=max(1, round(s.length_s * sr)) if spec.mode != "upsample" else 0,
            total_samples=round(s.total_s * sr), offset_samples=round(s.offset_s * sr), n_takes=s.n_takes,
            params=params, prime_path=spec.prime_path, prime_samples=round(s.prime_s * sr),
            codes_path=spec.source_codes, codes_takes=spec.source_takes,
        )

    def _begin(self, job: Job) -> None:
        """First stage: build the request, check labels and the prime, plan the levels."""
        request = self._request(job.spec)
        for warning in self.engine.label_warnings(request):
            self.notifier.send(job.spec.origin.client, "/jb/job/warning", job.id,
                               f"{warning} is not in the model's id tables; conditioned as 'unknown'")
        start = self.engine.start_codes(request)
        chosen = start.levels_to_sample if job.spec.mode == "upsample" else start.levels_to_sample[: job.spec.session.levels]
        zs = start.zs
        codes_path = self.state_dir / "codes" / f"{job.id}.pt"
        if job.resumed and codes_path.is_file():  # a restart: pick up what the earlier run had sampled
            saved = self.engine.load_take_codes(codes_path)
            if len(saved) == len(zs) and all(z.shape[0] == request.n_takes for z in saved):
                zs = saved
                done = [lv for lv in chosen if lv in job.delivered_levels]
                self.notifier.send(job.spec.origin.client, "/jb/job/resumed", job.id, len(done), len(chosen))
        job.work = Work(request, zs, start.start_samples, start.end_samples, start.prime_sha256, tuple(chosen))
        with job.lock:
            job.remaining_levels = tuple(lv for lv in chosen if lv not in job.delivered_levels)
            job.codes_path = str(codes_path)

    def _run_stage(self, job: Job, priority: int) -> None:
        if job.cancel.is_set():
            self.controller.finish(job, JobState.CANCELLED)
            return
        client = job.spec.origin.client
        first = job.work is None
        with job.lock:
            job.state = JobState.RUNNING
        self.notifier.send(client, "/jb/job/started", job.id, "upsample" if priority == UPSAMPLE else "preview")
        if first:
            self._begin(job)
        self.controller.record(job)
        work: Work = job.work
        levels = job.remaining_levels
        # preview-first: a job's top level runs alone; the rest waits behind queued previews
        now = levels if priority == UPSAMPLE else levels[:1]
        for level in now:
            if not self._sample_and_render(job, work, level):
                if job.interrupted:  # the bridge is stopping: keep the job for the next start, codes saved
                    with job.lock:
                        job.state = JobState.QUEUED
                    self.controller.record(job)
                    log.info("job %s interrupted by the shutdown; it resumes at the next start", job.id)
                    return
                self.controller.finish(job, JobState.CANCELLED)
                return
            with job.lock:
                job.remaining_levels = job.remaining_levels[1:]
        if job.remaining_levels:
            with job.lock:
                job.stage, job.state = "upsample", JobState.QUEUED
            self.queue.put(job, job.priority, force=True,
                           announce=lambda position: self.controller.announce_queued(job, position, "upsample"))
            self.controller.record(job)
        else:
            self.controller.finish(job, JobState.DONE)

    def _sample_and_render(self, job: Job, work: Work, level: int) -> bool:
        """Sample one level, save the codes, deliver each take; False when cancelled."""
        client = job.spec.origin.client
        started = time.perf_counter()
        with job.lock:
            job.level, job.fraction = level, 0.0

        later = self._later_levels_seconds(job, work, level)

        def on_progress(p: Any) -> None:
            fraction = p.tokens_done / max(1, p.tokens_total)
            eta_job = None if p.eta_s is None or later is None else p.eta_s + later
            with job.lock:
                job.fraction, job.eta_s = fraction, eta_job
            eta = eta_job if eta_job is not None else -1.0
            self.notifier.progress(client, job.id, "/jb/job/progress", level, round(fraction, 4), round(eta, 2),
                                   p.window, p.n_windows, final=p.tokens_done == p.tokens_total)

        before = work.zs[level].shape[1]
        result = self.engine.sample_level(work.request, work.zs, level, work.end_samples, on_progress=on_progress,
                                          cancel=job.cancel)
        work.zs = result.zs
        elapsed = time.perf_counter() - started
        hop = self.engine.sampler.vqvae.hop_lengths[level]
        self.controller.throughput.record(level, level_positions((work.zs[level].shape[1] - before) * hop, hop,
                                                                 work.request.n_takes), elapsed)
        self._save_codes(job, work, cancelled=result.cancelled)
        if result.cancelled:
            return False
        self._deliver_level(job, work, level, result.row_seeds)
        with job.lock:
            job.delivered_levels.add(level)
        self.controller.record(job)
        return True

    def _later_levels_seconds(self, job: Job, work: Work, level: int) -> float | None:
        """Time the job's levels after `level` will take, from rates measured earlier; None if any is unmeasured."""
        total = 0.0
        for lower in job.remaining_levels:
            if lower == level:
                continue
            positions = level_positions(work.end_samples, self.engine.sampler.vqvae.hop_lengths[lower], work.request.n_takes)
            seconds = self.controller.throughput.seconds(lower, positions)
            if seconds is None:
                return None
            total += seconds
        return total

    def _save_codes(self, job: Job, work: Work, *, cancelled: bool) -> None:
        meta = {"job": job.id, "mode": job.spec.mode, "session": job.spec.session.as_dict(),
                "start_samples": work.start_samples, "end_samples": work.end_samples, "model": self.engine.description}
        self.engine.save_take_codes(job.codes_path, work.zs, work.request, cancelled=cancelled, meta=meta)

    def _deliver_level(self, job: Job, work: Work, level: int, seeds: list[int]) -> None:
        spec, s = job.spec, job.spec.session
        audio = self.engine.decode(work.zs, level)
        sr = self.engine.sr
        keep_from = 0 if (s.keep_prime or spec.mode == "upsample") else work.start_samples
        end = work.end_samples if spec.mode == "upsample" else work.start_samples + work.request.new_samples
        label = spec.preset or spec.mode
        extra = f"{s.bpm:g}bpm-{s.length:g}bars" if s.length_unit == "bars" else ""
        for take in range(audio.shape[0]):
            sidecar = self._sidecar(job, work, level, take, seeds[take], keep_from, end)
            stem = self.renderer.take_stem(label=label, job_id=job.id, take=take, seed=seeds[take], level=level, extra=extra)
            path = self.renderer.deliver(audio[take, keep_from:end], source_sr=sr, stem=stem, sidecar=sidecar)
            with job.lock:
                job.files.append(str(path))
            self.notifier.send(spec.origin.client, "/jb/job/take", job.id, take + 1, level, str(path), seeds[take])

    def _sidecar(self, job: Job, work: Work, level: int, take: int, seed: int, start: int, end: int) -> dict[str, Any]:
        import torch

        spec, s = job.spec, job.spec.session
        sr = self.engine.sr
        request = replace(work.request, n_takes=1, params=replace(work.request.params, seed=seed),
                          codes_takes=(spec.source_takes[take],) if spec.source_takes else
                          ((take,) if work.request.codes_path else None))
        return {
            "generator": {"software": "jukebox-bridge", "version": __version__, "torch": torch.__version__},
            "job": spec.id, "mode": spec.mode, "take": take + 1, "level": level, "seed": seed, "job_seed": spec.seed,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(spec.created)),
            "preset": spec.preset,
            "conditioning": {"artist": s.artist, "genre": s.genre, "lyrics": s.lyrics,
                             "total_s": s.total_s, "offset_s": s.offset_s},
            "session": s.as_dict(),
            "model": self.engine.info(),
            "prime": ({"path": spec.prime_path, "sha256": work.prime_sha256, "kept_samples": work.start_samples}
                      if spec.mode == "primed" else None),
            "source": ({"job": spec.source_job, "codes": spec.source_codes, "sha256": work.prime_sha256,
                        "takes": list(spec.source_takes) if spec.source_takes else None}
                       if spec.source_job else None),
            "span": {"start_sample": start, "end_sample": end, "model_sr": sr, "start_s": start / sr, "end_s": end / sr},
            "codes": {"path": job.codes_path, "take_index": take},
            # this take alone: its own seed, one take, the same levels (each level is seeded afresh)
            "regenerate": {"request": request.as_dict(), "levels": list(work.levels)},
        }

    def _fail(self, job: Job, error: BaseException) -> None:
        if isinstance(error, (CommandError, ValueError, FileNotFoundError)):
            message = str(error)
        elif is_out_of_memory(error):
            message = "out of memory: try fewer takes, a shorter length or levels 1"
            self._free_memory()
        else:
            message = f"{type(error).__name__}: {error}"
            log.error("job %s failed", job.id, exc_info=error)
        job.work = None  # free the codes in memory; the codes file keeps what was saved
        self.controller.finish(job, JobState.FAILED, message)

    def _free_memory(self) -> None:
        import gc

        import torch

        release = getattr(self.engine, "release_buffers", None)
        if release is not None:  # the sampler's kept step buffers (KV caches, CUDA graphs)
            release()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
