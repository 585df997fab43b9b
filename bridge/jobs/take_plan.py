"""A job's takes, decided once: each take's name, span, opening, finishing and record.

The plan is built when the job's first stage begins (the model fixes the span then, from the prime or
the earlier take) and is only read afterwards: the worker samples and decodes levels, the renderer
writes what the plan says. It holds no tensors and imports no torch, so it can be built and tested
without a model.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.jobs.spec import JobSpec
from bridge.takes.finishing import finish_options
from bridge.takes.record import PrimeUsed, SourceUsed, TakeRecord
from bridge.takes.renderer import Finishing, TakeName
from bridge.untrusted import typed_reads as checked
from jukebox_model.api import Mode, ModelInfo, StartCodes, TakeRequest

CHAINED = ("continue", "upsample")  # relations whose takes share their parent's loudness


@dataclass(frozen=True)
class Opening:
    """The prime's own audio that opens each take, as it is."""

    prime: str  # the kept copy of the clip
    head_seconds: float  # how much of its end opens the take
    body_from: int  # model-rate sample of the codes' timeline where the model's output takes over

    def to_meta(self) -> dict[str, Any]:
        return {"prime": self.prime, "head_seconds": self.head_seconds, "body_from": self.body_from}

    @classmethod
    def from_meta(cls, data: Any, *, start_samples: int) -> Opening:
        """The opening an earlier job saved with its codes, read as untrusted input (ValueError if unusable)."""
        data = checked.mapping(data, "opening")
        prime = checked.text(data.get("prime"), "opening prime")
        seconds = checked.number(data.get("head_seconds"), "opening head_seconds")
        body_from = checked.integer(data.get("body_from"), "opening body_from", lo=1, hi=start_samples)
        if not 0 < seconds <= 3600:
            raise ValueError(f"opening head_seconds {seconds} is outside (0, 3600]")
        return cls(prime, seconds, body_from)


@dataclass(frozen=True)
class Span:
    """Where each take lies on the codes' timeline, in model-rate samples."""

    start_samples: int  # where the model's new material begins
    end_samples: int  # how far the codes are sampled (whole top-level tokens)
    take_end_samples: int  # where the delivered takes end; what follows is run-on for loop joins
    body_from: int  # where the model's output takes over in a delivered take (after its opening, if any)


@dataclass(frozen=True)
class PlannedTake:
    number: int  # 1-based, the real number
    parent: str  # `<relation>-<parent job>-t<take>`, or ""
    finishing: Finishing
    # a keep-prime continue: per level, the parent take's file as delivered, which opens this take as it is
    opens_with: Mapping[int, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class TakePlan:
    job_id: str
    label: str
    levels: tuple[int, ...]  # the levels the job samples, top first
    span: Span
    opening: Opening | None
    takes: tuple[PlannedTake, ...]  # one per row of the codes
    record: TakeRecord  # what every take's record shares; `record_for` fills in the take

    def name(self, row: int, seed: int, level: int) -> TakeName:
        take = self.takes[row]
        return TakeName(self.label, self.job_id, take.number, seed, level, parent=take.parent)

    def record_for(self, row: int, seed: int, level: int) -> TakeRecord:
        shared = self.record
        return dataclasses.replace(
            shared,
            take=self.takes[row].number,
            level=level,
            seed=seed,
            request=shared.request.one_take(row, seed),  # this take alone: its own seed, one take
            take_index=row,
            lineage=shared.lineage.for_take(row) if shared.lineage else None,
        )


@dataclass(frozen=True)
class ParentLevel:
    """What an earlier take was delivered with, for a chain to keep its level (and open with its audio)."""

    gain_db: float | None
    lufs: float | None
    files: Mapping[int, str] = dataclasses.field(default_factory=dict)  # level -> the file delivered at it


def opening_for(
    spec: JobSpec, request: TakeRequest, start: StartCodes, sr: int, recorded: Opening | None
) -> Opening | None:
    """How a take opens with the prime's own audio: a primed take with the clip's end (the kept part, or
    whole bars of it when the session counts in bars), and a continue or upsample of such a take with the
    same audio again (`recorded`, from its codes file), so a chain of continues stays the original clip
    plus whole bars of new material."""
    s = spec.session
    if spec.mode is Mode.PRIMED:
        if not s.keep_prime or not request.prime_path:
            return None
        seconds = start.start_samples / sr
        if s.length_unit == "bars":
            whole = int(s.prime_s / s.bar_s + 1e-9)
            seconds = whole * s.bar_s if whole >= 1 else seconds
        return Opening(request.prime_path, seconds, start.start_samples)
    if spec.mode is Mode.UPSAMPLE or (spec.mode is Mode.CONTINUE and s.keep_prime):
        return recorded
    return None


def _body_from(spec: JobSpec, start: StartCodes, opening: Opening | None) -> int:
    """A primed take's new material follows the prime's own audio (or nothing, when it is not kept);
    a continued take starts with the earlier take unless told not to."""
    if opening is not None:
        return opening.body_from
    if spec.mode is Mode.PRIMED or (spec.mode is Mode.CONTINUE and not spec.session.keep_prime):
        return start.start_samples
    return 0


def _chain_finishing(finishing: Finishing, spec: JobSpec, level: ParentLevel | None) -> Finishing:
    """A chain keeps one level: a continue gets the gain its parent was delivered with (the part they
    share is then at the same level), an upsample is brought to its parent's delivered loudness (the
    same music at a finer level decodes brighter, so the same gain would not give the same level)."""
    lineage = spec.lineage
    if finishing.options.loudness_lufs is None or lineage is None or lineage.relation not in CHAINED:
        return finishing
    if level is None:
        return finishing
    if lineage.relation == "upsample":
        changes: dict[str, float] = {} if level.lufs is None else {"loudness_lufs": min(0.0, max(-70.0, level.lufs))}
    else:
        changes = {} if level.gain_db is None else {"gain_db": level.gain_db}
    return dataclasses.replace(finishing, options=dataclasses.replace(finishing.options, **changes))


def _opens_with(spec: JobSpec, level: ParentLevel | None) -> Mapping[int, str]:
    """A keep-prime continue opens with its parent take's own delivered audio, sample for sample, at every
    level the parent was delivered at (a level it was not gets the parent's part decoded again)."""
    if spec.mode is not Mode.CONTINUE or not spec.session.keep_prime or level is None:
        return {}
    return dict(level.files)


def _parent_token(spec: JobSpec, row: int) -> str:
    """`continue-j…-t02` for a take grown from take 2 of job j…; '' for a take with no parent."""
    if spec.lineage is None:
        return ""
    take = spec.lineage.take_for(row)
    return f"{spec.lineage.relation}-{spec.lineage.job}" + (f"-t{take:02d}" if take is not None else "")


def plan_takes(
    spec: JobSpec,
    request: TakeRequest,
    start: StartCodes,
    levels: tuple[int, ...],
    info: ModelInfo,
    *,
    opening: Opening | None,
    prime_original: str | None,
    codes_path: str,
    generator: Mapping[str, Any],
    parent: Callable[[int], ParentLevel] = lambda take: ParentLevel(None, None),
) -> TakePlan:
    """The plan of a job whose model start is `start`; `request` names the kept copy of any prime, and
    `parent(take)` says how an earlier take of the lineage was delivered (for chains)."""
    s = spec.session
    finishing = Finishing(finish_options(s), bpm=s.bpm, beats_per_bar=s.beats_per_bar, in_bars=s.length_unit == "bars")
    span = Span(start.start_samples, start.end_samples, start.take_end_samples, _body_from(spec, start, opening))
    primed = spec.mode is Mode.PRIMED and bool(request.prime_path)
    shared = TakeRecord(
        job=spec.id,
        take=0,
        level=levels[0],
        seed=0,
        job_seed=spec.seed,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(spec.created)),
        preset=spec.preset,
        session=s,
        request=request,
        levels=levels,
        model=info.to_dict(),
        prime=(
            PrimeUsed(
                prime_original or request.prime_path, start.prime_sha256, start.start_samples, copy=request.prime_path
            )
            if primed
            else None
        ),
        source=(
            SourceUsed(spec.source_job, request.codes_path, start.prime_sha256, request.codes_takes)
            if spec.source_job
            else None
        ),
        start_sample=span.body_from,
        end_sample=span.take_end_samples,
        model_sr=info.sr,
        codes_path=codes_path,
        take_index=0,
        generator=dict(generator),
        lineage=spec.lineage,
    )
    takes = []
    for row in range(request.n_takes):
        take = spec.lineage.take_for(row) if spec.lineage is not None and spec.lineage.relation in CHAINED else None
        level = None if take is None else parent(take)  # asked once per take
        takes.append(
            PlannedTake(
                spec.take_number(row),
                _parent_token(spec, row),
                _chain_finishing(finishing, spec, level),
                _opens_with(spec, level),
            )
        )
    return TakePlan(spec.id, spec.preset or spec.mode.value, levels, span, opening, tuple(takes), shared)
