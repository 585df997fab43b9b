"""A take's record: the JSON sidecar beside every delivered WAV, versioned.

It says how the take was made (model, conditioning, session, seed, prime or source codes, span)
and holds the request that makes exactly this take again (`regenerate`). `from_dict` reads a file
from the project folder, which anyone may have edited, so every field is checked (by
`bridge.untrusted.record_codec`, from the rules beside each field); version 1 sidecars (written before
the version field) are read too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from bridge.jobs.spec import MAX_TAKE_NUMBER, ONE_TAKE_LINEAGE, REQUEST_ON_DISK, SESSION_ON_DISK, Lineage
from bridge.session.params import Session
from bridge.untrusted import record_codec
from bridge.untrusted import typed_reads as checked
from bridge.untrusted.record_codec import RecordShape, on_disk
from jukebox_model.api import Mode, TakeRequest

VERSION = 2


@dataclass(frozen=True)
class PrimeUsed:
    path: str  # the clip as it was named
    sha256: str | None = field(metadata=on_disk(max_chars=64))
    # at the model rate, from the clip's end: what the model was conditioned on
    kept_samples: int = field(metadata=on_disk(lo=0, absent=0))
    copy: str | None = None  # the content-addressed copy under <project>/.jukebox/primes (what regenerate reads)


@dataclass(frozen=True)
class SourceUsed:
    """The earlier take whose codes a continue/upsample started from."""

    job: str | None = field(metadata=on_disk(read=checked.job_id))
    codes: str | None
    sha256: str | None = field(metadata=on_disk(max_chars=64))
    takes: tuple[int, ...] | None = field(metadata=on_disk(lo=0))  # 0-based take indices in those codes


@dataclass(frozen=True)
class AudioWritten:
    """The delivered WAV; its keys sit at the top of the sidecar (`seconds` is written for readers)."""

    ON_DISK: ClassVar[RecordShape] = RecordShape(derived=lambda audio: {"seconds": audio.seconds})

    sample_rate: int = field(metadata=on_disk(lo=1))
    frames: int = field(metadata=on_disk(lo=0))
    format: str = field(metadata=on_disk(max_chars=16))
    prime_frames: int = field(default=0, metadata=on_disk(lo=0))  # frames at the start that are the prime's own audio
    bars: float | None = None  # the take's length in bars at the session's tempo, when in bars
    finish: Mapping[str, Any] | None = None  # what finishing did (bridge.takes.finishing.FinishReport)

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def _derived(record: TakeRecord) -> dict[str, Any]:
    """Written for people and other tools; only `mode` is read back (it must agree with the request)."""
    s, sr = record.session, record.model_sr
    return {
        "mode": record.mode,
        "conditioning": {k: getattr(s, k) for k in ("artist", "genre", "lyrics", "total_s", "offset_s")},
        "span.start_s": record.start_sample / sr,
        "span.end_s": record.end_sample / sr,
    }


def _one_take(record: TakeRecord) -> None:
    if record.request.n_takes != 1:  # a sidecar describes its one take: the bridge never writes another count
        raise ValueError(f"regenerate.request n_takes {record.request.n_takes}; a take's record describes 1")


@dataclass(frozen=True, kw_only=True)
class TakeRecord:
    ON_DISK: ClassVar[RecordShape] = RecordShape(
        version=VERSION, reads_versions=(1, VERSION), unversioned=1, derived=_derived, agree=("mode",), check=_one_take
    )

    job: str = field(metadata=on_disk(read=checked.job_id))
    take: int = field(metadata=on_disk(lo=1, hi=MAX_TAKE_NUMBER))  # 1-based, as in the file name
    level: int = field(metadata=on_disk(lo=0, hi=2))
    seed: int = field(metadata=on_disk(lo=0))
    job_seed: int = field(metadata=on_disk(lo=0, fallback_key="seed"))
    created: str = field(metadata=on_disk(max_chars=64, absent=""))  # local time the job was asked for, ISO 8601
    preset: str | None = field(metadata=on_disk(max_chars=200))
    session: Session = field(metadata=on_disk(stored_as=SESSION_ON_DISK))
    # this take alone: n_takes 1 and its own seed
    request: TakeRequest = field(metadata=on_disk(key="regenerate.request", stored_as=REQUEST_ON_DISK))
    # the levels the job sampled, top first
    levels: tuple[int, ...] = field(metadata=on_disk(key="regenerate.levels", lo=0, hi=2, max_items=3))
    model: Mapping[str, Any] = field(metadata=on_disk(absent={}, null_is_absent=True))
    prime: PrimeUsed | None
    source: SourceUsed | None
    # the span of the model's output this take holds, at the model rate
    start_sample: int = field(metadata=on_disk(key="span.start_sample", lo=0))
    end_sample: int = field(metadata=on_disk(key="span.end_sample", lo=0))
    model_sr: int = field(metadata=on_disk(key="span.model_sr", lo=1))
    codes_path: str | None = field(metadata=on_disk(key="codes.path"))
    take_index: int = field(metadata=on_disk(key="codes.take_index", lo=0, absent=0))  # 0-based row in the codes file
    generator: Mapping[str, Any] = field(default_factory=dict, metadata=on_disk(null_is_absent=True))
    # one parent take (`Lineage.take`), or a whole job (retry)
    lineage: Lineage | None = field(default=None, metadata=on_disk(stored_as=ONE_TAKE_LINEAGE))
    audio: AudioWritten | None = field(default=None, metadata=on_disk(flatten=True))  # filled in by the renderer

    @property
    def mode(self) -> Mode:
        return self.request.mode

    def with_audio(self, audio: AudioWritten) -> TakeRecord:
        return replace(self, audio=audio)

    def to_dict(self) -> dict[str, Any]:
        return record_codec.encode(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "sidecar") -> TakeRecord:
        """ValueError naming `source` and the field for anything this bridge would not have written."""
        return record_codec.decode(cls, data, what=source)
