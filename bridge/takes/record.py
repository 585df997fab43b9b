"""A take's record: the JSON sidecar beside every delivered WAV, versioned.

It says how the take was made (model, conditioning, session, seed, prime or source codes, span)
and holds the request that makes exactly this take again (`regenerate`). `from_dict` reads a file
from the project folder, which anyone may have edited, so every field is checked; version 1
sidecars (written before the version field) are read too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bridge.jobs.spec import MAX_TAKE_NUMBER, Lineage
from bridge.session.params import Session, session_from_values
from bridge.untrusted import typed_reads as checked
from jukebox_model.api import Mode, TakeRequest

VERSION = 2


@dataclass(frozen=True)
class PrimeUsed:
    path: str  # the clip as it was named
    sha256: str | None
    kept_samples: int  # at the model rate, from the clip's end: what the model was conditioned on
    copy: str | None = None  # the content-addressed copy under <project>/.jukebox/primes (what regenerate reads)


@dataclass(frozen=True)
class SourceUsed:
    """The earlier take whose codes a continue/upsample started from."""

    job: str | None
    codes: str | None
    sha256: str | None
    takes: tuple[int, ...] | None  # 0-based take indices in those codes


@dataclass(frozen=True)
class AudioWritten:
    sample_rate: int
    frames: int
    format: str
    prime_frames: int = 0  # frames at the start that are the prime's own audio, unchanged
    bars: float | None = None  # the take's length in bars at the session's tempo, when in bars
    finish: Mapping[str, Any] | None = None  # what finishing did (bridge.takes.finishing.FinishReport)

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True, kw_only=True)
class TakeRecord:
    job: str
    take: int  # 1-based, as in the file name
    level: int
    seed: int
    job_seed: int
    created: str  # local time the job was asked for, ISO 8601
    preset: str | None
    session: Session
    request: TakeRequest  # this take alone: n_takes 1 and its own seed
    levels: tuple[int, ...]  # the levels the job sampled, top first
    model: Mapping[str, Any]
    prime: PrimeUsed | None
    source: SourceUsed | None
    start_sample: int  # the span of the model's output this take holds, at the model rate
    end_sample: int
    model_sr: int
    codes_path: str | None
    take_index: int  # 0-based row in the codes file
    generator: Mapping[str, Any] = field(default_factory=dict)
    lineage: Lineage | None = None  # one parent take (`Lineage.take`), or a whole job (retry)
    audio: AudioWritten | None = None  # filled in by the renderer

    @property
    def mode(self) -> Mode:
        return self.request.mode

    def with_audio(self, audio: AudioWritten) -> TakeRecord:
        return replace(self, audio=audio)

    def to_dict(self) -> dict[str, Any]:
        s, sr = self.session, self.model_sr
        data: dict[str, Any] = {"version": VERSION}
        if self.audio is not None:
            data |= {
                "sample_rate": self.audio.sample_rate,
                "frames": self.audio.frames,
                "seconds": self.audio.seconds,
                "format": self.audio.format,
                "prime_frames": self.audio.prime_frames,
                "bars": self.audio.bars,
                "finish": dict(self.audio.finish) if self.audio.finish is not None else None,
            }
        data |= {
            "generator": dict(self.generator),
            "job": self.job,
            "mode": self.mode.value,
            "take": self.take,
            "level": self.level,
            "seed": self.seed,
            "job_seed": self.job_seed,
            "created": self.created,
            "preset": self.preset,
            "conditioning": {
                "artist": s.artist,
                "genre": s.genre,
                "lyrics": s.lyrics,
                "total_s": s.total_s,
                "offset_s": s.offset_s,
            },
            "session": s.as_dict(),
            "model": dict(self.model),
            "prime": None
            if self.prime is None
            else {
                "path": self.prime.path,
                "sha256": self.prime.sha256,
                "kept_samples": self.prime.kept_samples,
                "copy": self.prime.copy,
            },
            "lineage": None if self.lineage is None else self.lineage.to_dict(one_take=True),
            "source": None
            if self.source is None
            else {
                "job": self.source.job,
                "codes": self.source.codes,
                "sha256": self.source.sha256,
                "takes": list(self.source.takes) if self.source.takes is not None else None,
            },
            "span": {
                "start_sample": self.start_sample,
                "end_sample": self.end_sample,
                "model_sr": sr,
                "start_s": self.start_sample / sr,
                "end_s": self.end_sample / sr,
            },
            "codes": {"path": self.codes_path, "take_index": self.take_index},
            "regenerate": {"request": self.request.to_dict(), "levels": list(self.levels)},
        }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "sidecar") -> TakeRecord:
        """ValueError naming the field for anything this bridge would not have written."""
        checked.mapping(data, source)
        version = data.get("version", 1)
        if type(version) is not int or version not in (1, VERSION):  # true == 1 and 2.0 == 2: not versions
            raise ValueError(f"{source}: version {version!r}; this bridge reads versions 1 and {VERSION}")
        regen = checked.mapping(data.get("regenerate"), "regenerate")
        request = TakeRequest.from_dict(checked.mapping(regen.get("request"), "regenerate.request"))
        if request.n_takes != 1:  # a sidecar describes its one take: the bridge never writes another count
            raise ValueError(f"{source}: regenerate.request n_takes {request.n_takes}; a take's record describes 1")
        mode = data.get("mode")
        if mode != request.mode.value:
            raise ValueError(f"{source}: mode {mode!r} disagrees with its request's {request.mode.value!r}")
        span = checked.mapping(data.get("span"), "span")
        codes = checked.mapping(data.get("codes") or {}, "codes")
        prime, src = data.get("prime"), data.get("source")
        audio = None
        if "sample_rate" in data:
            audio = AudioWritten(
                sample_rate=checked.integer(data["sample_rate"], "sample_rate", lo=1),
                frames=checked.integer(data.get("frames"), "frames", lo=0),
                format=checked.text(data.get("format"), "format", max_chars=16),
                prime_frames=checked.integer(data.get("prime_frames", 0), "prime_frames", lo=0),
                bars=None if data.get("bars") is None else checked.number(data["bars"], "bars"),
                finish=None if data.get("finish") is None else dict(checked.mapping(data["finish"], "finish")),
            )
        lineage = data.get("lineage")
        return cls(
            job=checked.job_id(data.get("job"), "job"),
            take=checked.integer(data.get("take"), "take", lo=1, hi=MAX_TAKE_NUMBER),
            level=checked.integer(data.get("level"), "level", lo=0, hi=2),
            seed=checked.integer(data.get("seed"), "seed", lo=0),
            job_seed=checked.integer(data.get("job_seed", data.get("seed")), "job_seed", lo=0),
            created=checked.text(data.get("created", ""), "created", max_chars=64),
            preset=checked.optional_text(data.get("preset"), "preset", max_chars=200),
            session=session_from_values(_session_values(data.get("session")), source=f"{source} session"),
            request=request,
            levels=checked.integers(regen.get("levels"), "regenerate.levels", lo=0, hi=2, max_items=3),
            model=dict(checked.mapping(data.get("model") or {}, "model")),
            prime=None if prime is None else _prime(prime),
            source=None if src is None else _source(src),
            start_sample=checked.integer(span.get("start_sample"), "span.start_sample", lo=0),
            end_sample=checked.integer(span.get("end_sample"), "span.end_sample", lo=0),
            model_sr=checked.integer(span.get("model_sr"), "span.model_sr", lo=1),
            codes_path=checked.optional_text(codes.get("path"), "codes.path"),
            take_index=checked.integer(codes.get("take_index", 0), "codes.take_index", lo=0),
            generator=dict(checked.mapping(data.get("generator") or {}, "generator")),
            lineage=None if lineage is None else Lineage.from_dict(lineage, one_take=True),
            audio=audio,
        )


def _session_values(value: Any) -> dict[str, Any]:
    session = checked.mapping(value, "session")
    return {k: v for k, v in session.items() if v is not None or k == "seed"}


def _prime(value: Any) -> PrimeUsed:
    data = checked.mapping(value, "prime")
    sha = checked.optional_text(data.get("sha256"), "prime.sha256", max_chars=64)
    return PrimeUsed(
        path=checked.text(data.get("path"), "prime.path"),
        sha256=sha,
        kept_samples=checked.integer(data.get("kept_samples", 0), "prime.kept_samples", lo=0),
        copy=checked.optional_text(data.get("copy"), "prime.copy"),
    )


def _source(value: Any) -> SourceUsed:
    data = checked.mapping(value, "source")
    job, takes = data.get("job"), data.get("takes")
    return SourceUsed(
        job=None if job is None else checked.job_id(job, "source.job"),
        codes=checked.optional_text(data.get("codes"), "source.codes"),
        sha256=checked.optional_text(data.get("sha256"), "source.sha256", max_chars=64),
        takes=None if takes is None else checked.integers(takes, "source.takes", lo=0),
    )
