"""The job API between a host (the DAW bridge, `jukebox-sample`, a script) and a loaded model.

Torch-free on purpose: a host builds and checks a `TakeRequest` on any thread, before the model is
touched, and a fake engine (tests) can stand in for the real one. A take runs in stages — `start`
(encode the prime, load earlier codes, or nothing), `sample_level` once per level, top first,
`decode` for each level's audio — so a host can deliver a preview before the upsampling. Each level
is seeded afresh with the request's seed (take i: seed + i), so a take regenerates alike whether
its levels ran in one go or were split into a preview and a later pass.

Lengths are in samples at the model rate. For primed and continue requests `new_samples` is what
is added after what exists. A prime is cut from its end: the last `prime_samples` of the clip are
kept, because the new material continues from where the clip stops.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from . import fields

UNKNOWN = "unknown"  # the artist and genre of a take conditioned on no particular one


class Mode(str, Enum):
    ANCESTRAL = "ancestral"  # from nothing
    PRIMED = "primed"  # continue an audio clip
    CONTINUE = "continue"  # extend an earlier take's codes
    UPSAMPLE = "upsample"  # render the lower levels of an earlier take's top-level codes

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown mode {value!r}; use {', '.join(m.value for m in cls)}") from None

    @property
    def extends_codes(self) -> bool:
        """Starts from the codes file of an earlier take."""
        return self in (Mode.CONTINUE, Mode.UPSAMPLE)


@dataclass(frozen=True, kw_only=True, slots=True)
class SamplingParams:
    """Per-request sampling settings; they travel with the job and are written into every take's record."""

    temperature: tuple[float, float, float] = (0.99, 0.99, 0.99)  # per level, 0 finest (sample.py's defaults)
    top_k: int = 0
    top_p: float = 0.0
    hop_fraction: tuple[float, float, float] = (0.5, 0.5, 0.125)  # per level, as the README/Colab
    chunk_size: int = 8192  # most positions per prefill pass (the reference's 16/32 cost a weight read per chunk)
    max_batch_size: int = 16
    seed: int | None = None  # None: draw one and record it

    def __post_init__(self) -> None:
        if len(self.temperature) != 3 or any(not t > 0 for t in self.temperature):
            raise ValueError(f"temperature needs 3 positive values (levels 0, 1, 2), got {self.temperature}")
        if len(self.hop_fraction) != 3 or any(not 0 < h <= 1 for h in self.hop_fraction):
            raise ValueError(f"hop_fraction needs 3 values in (0, 1], got {self.hop_fraction}")
        if self.top_k < 0 or not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"top_k must be ≥ 0 and top_p in [0, 1], got {self.top_k}, {self.top_p}")
        if self.chunk_size <= 0 or self.max_batch_size <= 0:
            raise ValueError("chunk_size and max_batch_size must be positive")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative 64-bit integer, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamplingParams:
        """From `to_dict`'s output (or an untrusted file's copy of it): wrong shapes are ValueErrors."""
        if not isinstance(data, Mapping):
            raise ValueError(f"sampling params must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown sampling params {unknown}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("temperature", "hop_fraction"):
                values[name] = fields.numbers(value, name, finite=False)  # __post_init__ says what is wrong
            elif name in ("top_k", "chunk_size", "max_batch_size"):
                values[name] = fields.integer(value, name)
            elif name == "top_p":
                values[name] = fields.number(value, name, finite=False)
            elif name == "seed":
                values[name] = None if value is None else fields.integer(value, name)
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class TakeRequest:
    """One take (or `n_takes` of them) to make: plain numbers and strings, no tensors."""

    mode: Mode
    artist: str = UNKNOWN
    genre: str = UNKNOWN
    lyrics: str = ""
    new_samples: int  # samples of new material at the model rate (ignored by upsample)
    run_on_samples: int = 0  # also sample this much past the take's end: what a loop crossfade joins to its start
    total_samples: int  # song length for the timing label
    offset_samples: int = 0  # where the take starts in the song
    n_takes: int = 1
    params: SamplingParams = field(default_factory=SamplingParams)
    prime_path: str | None = None  # primed: an audio file
    prime_samples: int = (
        0  # primed: keep the last this-many samples of the clip; continue: the first of the take (0: all)
    )
    codes_path: str | None = None  # continue / upsample: a codes file written by the engine's `save_codes`
    codes_takes: tuple[int, ...] | None = None  # which of its takes (default: all)
    bpm: float | None = None  # the take's tempo: a model trained with tempo words (bundle.json) is given it
    beats_per_bar: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode.parse(self.mode))
        for name in ("artist", "genre", "lyrics"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be text")
        if self.n_takes <= 0 or self.total_samples <= 0 or self.offset_samples < 0 or self.new_samples < 0:
            raise ValueError("n_takes and total_samples must be positive, new_samples and offset_samples not negative")
        if self.bpm is not None and not 20.0 <= self.bpm <= 999.0:
            raise ValueError(f"bpm must be from 20 to 999, got {self.bpm}")
        if not 1 <= self.beats_per_bar <= 99:
            raise ValueError(f"beats_per_bar must be from 1 to 99, got {self.beats_per_bar}")
        if self.prime_samples < 0 or self.run_on_samples < 0:
            raise ValueError("prime_samples and run_on_samples must not be negative")
        if self.mode is Mode.PRIMED and not self.prime_path:
            raise ValueError("a primed take needs a prime clip")
        if self.mode.extends_codes and not self.codes_path:
            raise ValueError(f"a {self.mode.value} take needs the codes of an earlier take")
        if self.mode is not Mode.UPSAMPLE and self.new_samples <= 0:
            raise ValueError("a take needs a positive length")
        if self.codes_takes is not None:
            if not self.codes_takes or any(t < 0 for t in self.codes_takes):
                raise ValueError(f"codes_takes must be take indices from 0, got {list(self.codes_takes)}")
            if len(self.codes_takes) != self.n_takes:
                raise ValueError(f"{len(self.codes_takes)} takes of codes for a request of {self.n_takes} takes")

    @property
    def seed(self) -> int | None:
        return self.params.seed

    def replace(self, **changes: Any) -> TakeRequest:
        return dataclasses.replace(self, **changes)

    def one_take(self, index: int, seed: int) -> TakeRequest:
        """Take `index` of this request alone (its own seed): what regenerates exactly that take."""
        takes = (self.codes_takes[index],) if self.codes_takes else ((index,) if self.codes_path else None)
        return self.replace(n_takes=1, params=dataclasses.replace(self.params, seed=seed), codes_takes=takes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "artist": self.artist,
            "genre": self.genre,
            "lyrics": self.lyrics,
            "new_samples": self.new_samples,
            "run_on_samples": self.run_on_samples,
            "total_samples": self.total_samples,
            "offset_samples": self.offset_samples,
            "n_takes": self.n_takes,
            "params": self.params.to_dict(),
            "prime_path": self.prime_path,
            "prime_samples": self.prime_samples,
            "codes_path": self.codes_path,
            "codes_takes": list(self.codes_takes) if self.codes_takes is not None else None,
            "bpm": self.bpm,
            "beats_per_bar": self.beats_per_bar,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TakeRequest:
        """From `to_dict`'s output, possibly read back from an untrusted file: every field is type-checked."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a take request must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown take request fields {unknown}")
        takes = data.get("codes_takes")
        return cls(
            mode=Mode.parse(fields.text(data.get("mode"), "mode", max_chars=None)),
            artist=fields.text(data.get("artist", UNKNOWN), "artist", max_chars=None),
            genre=fields.text(data.get("genre", UNKNOWN), "genre", max_chars=None),
            lyrics=fields.text(data.get("lyrics", ""), "lyrics", max_chars=None),
            new_samples=fields.integer(data.get("new_samples"), "new_samples"),
            run_on_samples=fields.integer(data.get("run_on_samples", 0), "run_on_samples"),
            total_samples=fields.integer(data.get("total_samples"), "total_samples"),
            offset_samples=fields.integer(data.get("offset_samples", 0), "offset_samples"),
            n_takes=fields.integer(data.get("n_takes", 1), "n_takes"),
            params=SamplingParams.from_dict(data.get("params") or {}),
            prime_path=fields.optional_text(data.get("prime_path"), "prime_path", max_chars=None),
            prime_samples=fields.integer(data.get("prime_samples", 0), "prime_samples"),
            codes_path=fields.optional_text(data.get("codes_path"), "codes_path", max_chars=None),
            codes_takes=None if takes is None else fields.integers(takes, "codes_takes"),
            bpm=None if data.get("bpm") is None else fields.number(data.get("bpm"), "bpm"),
            beats_per_bar=fields.integer(data.get("beats_per_bar", 4), "beats_per_bar"),
        )


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What a host needs to know of a loaded model: its rate and levels, what it is conditioned on, what it refuses."""

    bundle: str  # a name for people and sidecars
    sr: int
    levels: tuple[int, ...]  # levels with a prior, top first
    hop_lengths: tuple[int, ...]  # per level, 0 finest
    labels: bool  # conditioned on artist/genre/timing
    lyrics: bool  # conditioned on lyrics
    upsample_min_seconds: float  # an upsampler samples whole windows: shorter takes stay at the top level
    device: str = "cpu"
    precision: str = "float32"
    compile_steps: bool = False
    source: Mapping[str, Any] = field(default_factory=dict)  # where the weights came from (folder, checkpoint names)
    artists: tuple[str, ...] = ()  # the names the top prior's id tables know, as the tables write them
    genres: tuple[str, ...] = ()

    @property
    def top_hop(self) -> int:
        return self.hop_lengths[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            **dict(self.source),
            "bundle": self.bundle,
            "sr": self.sr,
            "levels": list(self.levels),
            "hop_lengths": list(self.hop_lengths),
            "labels": self.labels,
            "lyrics": self.lyrics,
            "upsample_min_seconds": self.upsample_min_seconds,
            "device": self.device,
            "precision": self.precision,
            "compile_steps": self.compile_steps,
        }


@dataclass(frozen=True)
class BundleSource:
    """A bundle folder (bundle.json + checkpoints), e.g. the embedded default."""

    folder: Path


@dataclass(frozen=True)
class OfficialSource:
    """The official release, laid out as its download paths under `root`."""

    root: Path
    name: str  # 5b, 5b_lyrics, 1b_lyrics
    ids_dir: Path | None = None


@dataclass(frozen=True)
class CheckpointSource:
    """A VQ-VAE and one prior per level from files that carry their hparams (trained here)."""

    vqvae: Path
    priors: tuple[Path, ...]
    ids_dir: Path | None = None


ModelSource = BundleSource | OfficialSource | CheckpointSource


@dataclass(frozen=True)
class Progress:
    level: int
    window: int  # 1-based
    n_windows: int
    tokens_done: int  # of this level, all windows
    tokens_total: int
    eta_s: float | None  # None until a rate has been measured


@dataclass(frozen=True)
class StartCodes:
    """What a take starts from. `codes` stays opaque to hosts (per-level tensors in the real engine)."""

    codes: Any
    start_samples: int  # where the new material begins: the end of the kept prime, or of the earlier take as delivered
    end_samples: int  # samples the codes will cover once sampled (a whole number of top-level tokens)
    take_end_samples: int  # where the delivered takes end: the new material as long as asked (an upsample: as before)
    prime_sha256: str | None  # of the prime's (or codes file's) bytes, for the take record
    levels_to_sample: tuple[int, ...]  # top first
    source_meta: Mapping[str, Any] = field(default_factory=dict)  # what the host saved with the codes it started from


@dataclass(frozen=True)
class LevelResult:
    codes: Any  # every level's codes, this one brought to the end
    cancelled: bool
    row_seeds: tuple[int, ...]  # the seed each take was sampled with


PRIME_MARGIN_S = 0.1  # a prime's audio reaches this far before its kept part, so a resampler's edge falls outside it


@dataclass(frozen=True)
class PrimeAudio:
    """A prime the host has already read: the end of the clip at its own rate (its kept part and at least
    `PRIME_MARGIN_S` before it, or the whole clip), with the hash of the file's bytes. Given to `start`,
    the engine opens no file, and names the clip in its errors as the producer knows it."""

    samples: Any  # (T,) float32 mono, numpy
    sr: int
    sha256: str
    name: str


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


@runtime_checkable
class TakeEngine(Protocol):
    """What a host drives; one worker thread owns an engine (it is not thread-safe), except that `info`
    and `check` may be called from any thread."""

    def info(self) -> ModelInfo: ...

    def check(self, request: TakeRequest) -> list[str]:
        """Names the id tables lack (they are conditioned as 'unknown'); ValueError for a request this
        model refuses (lyrics on a lyrics-free prior are fine; an offset past the song's end is not)."""
        ...

    def start(self, request: TakeRequest, prime: PrimeAudio | None = None) -> StartCodes:
        """`prime`: a primed request's clip as the host read it (else the engine reads `request.prime_path`)."""
        ...

    def sample_level(
        self,
        request: TakeRequest,
        codes: Any,
        level: int,
        end_samples: int,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> LevelResult: ...

    def measure_rates(self, seconds_per_level: float = 1.0, cancel: CancelToken | None = None) -> Mapping[int, Any]:
        """Per level, (tokens, seconds) of a short sampling run of one take: what a host's first time
        estimates start from on a machine that never ran the model."""
        ...

    def decode(self, codes: Any, level: int) -> Any:
        """(n_takes, T) float32 numpy audio at the model rate of one level's codes."""
        ...

    def save_codes(
        self,
        path: str | Path,
        codes: Any,
        request: TakeRequest,
        *,
        cancelled: bool,
        take_end_samples: int,
        meta: Mapping[str, Any],
    ) -> Path:
        """The codes, the request and the take's end (`StartCodes.take_end_samples`: where a continue of
        these codes carries on), in the engine's own versioned fields; `meta` is the host's, kept as it
        is and never read by the engine."""
        ...

    def load_codes(self, path: str | Path) -> Any: ...

    def codes_lengths(self, codes: Any) -> tuple[int, ...]:
        """Tokens per level, 0 finest (what a host reports and measures rates with)."""
        ...

    def release_buffers(self) -> None:
        """Free what the engine keeps between jobs, e.g. after running out of memory."""
        ...


def is_out_of_memory(error: BaseException) -> bool:
    """An allocator failure on any device (CUDA's OutOfMemoryError, MemoryError, the CPU allocator's
    RuntimeError), told apart without importing torch."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error).lower()
    return any(sign in text for sign in ("out of memory", "can't allocate memory", "cannot allocate memory"))
