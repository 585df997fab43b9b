"""A stand-in for the model behind `jukebox_model.api.TakeEngine`: numpy codes, a tone per take, no torch.

It keeps the real engine's contract — whole top-level tokens, levels top first, codes saved and
loaded through a file, progress per token, cooperative cancel, seeds per take (seed + i) — so the
worker, the job board and the OSC transport can be tested in milliseconds. Each code is the take's
seed mod the codebook size, and a take decodes to a sine whose pitch follows its seed: tests can
tell takes apart by ear (by frequency) without a model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jukebox_model.api import (
    CancelToken,
    LevelResult,
    Mode,
    ModelInfo,
    PrimeAudio,
    Progress,
    StartCodes,
    TakeRequest,
)

INFO = ModelInfo(
    bundle="fake",
    sr=44100,
    levels=(2, 1, 0),
    hop_lengths=(8, 32, 128),
    labels=True,
    lyrics=False,
    upsample_min_seconds=0.0,
    source={"folder": "(fake)"},
)
KNOWN_ARTISTS = ("Alan Jackson", "unknown")


class FakeEngine:
    def __init__(self, info: ModelInfo = INFO, *, token_delay_s: float = 0.0, fail: Callable[[], None] | None = None):
        self._info = info
        self.token_delay_s = token_delay_s  # slows sampling, so tests can cancel or stop mid-level
        self.fail = fail  # raised from sample_level once, then cleared
        self.started = threading.Event()  # set once a level has begun sampling
        self.released = 0
        self.measured = 0  # how often measure_rates ran
        self.primes_given: list[PrimeAudio | None] = []  # what each start was handed of its prime

    def info(self) -> ModelInfo:
        return self._info

    def measure_rates(self, seconds_per_level: float = 1.0, cancel: CancelToken | None = None) -> dict:
        """As slow as sampling is: `token_delay_s` a token (nothing to measure when sampling is instant)."""
        self.measured += 1
        if self.token_delay_s <= 0:
            return {}
        return {level: (20, 20 * self.token_delay_s) for level in self._info.levels}

    def check(self, request: TakeRequest) -> list[str]:
        if request.offset_samples >= request.total_samples:
            raise ValueError("the offset is past the end of the song")
        return [] if request.artist in KNOWN_ARTISTS else [f"artist {request.artist!r}"]

    def start(self, request: TakeRequest, prime: PrimeAudio | None = None) -> StartCodes:
        top = self._info.top_hop
        self.primes_given.append(prime)
        n = request.n_takes
        codes = [np.zeros((n, 0), dtype=np.int64) for _ in self._info.hop_lengths]
        start, digest, meta = 0, None, {}
        if request.mode is Mode.PRIMED:
            assert request.prime_path is not None
            if prime is None and not Path(request.prime_path).is_file():  # the real engine reads it then
                raise FileNotFoundError(request.prime_path)
            start = max(top, request.prime_samples // top * top)
            codes = [np.ones((n, start // hop), dtype=np.int64) for hop in self._info.hop_lengths]
            digest = "0" * 64
        elif request.mode.extends_codes:
            assert request.codes_path is not None
            saved = self.load_codes(request.codes_path)
            takes = list(request.codes_takes) if request.codes_takes is not None else list(range(saved[0].shape[0]))
            codes = [z[takes] for z in saved]
            if request.mode is Mode.UPSAMPLE:
                codes = [z if lv == len(codes) - 1 else z[:, :0] for lv, z in enumerate(codes)]
            covered = codes[-1].shape[1] * top
            data = json.loads(Path(request.codes_path).read_text())
            meta, recorded = data["meta"], data.get("take_end_samples")
            start = recorded if isinstance(recorded, int) and covered - top < recorded <= covered else covered
            digest = "1" * 64
        covered = codes[-1].shape[1] * top
        end = (
            covered
            if request.mode is Mode.UPSAMPLE
            else -(-(start + request.new_samples + request.run_on_samples) // top) * top
        )
        levels = tuple(lv for lv in self._info.levels if lv < 2) if request.mode is Mode.UPSAMPLE else self._info.levels
        return StartCodes(
            codes=codes,
            start_samples=start,
            end_samples=end,
            take_end_samples=start if request.mode is Mode.UPSAMPLE else start + request.new_samples,
            prime_sha256=digest,
            levels_to_sample=levels,
            source_meta=meta,
        )

    def sample_level(
        self,
        request: TakeRequest,
        codes: Any,
        level: int,
        end_samples: int,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> LevelResult:
        if self.fail is not None:
            fail, self.fail = self.fail, None
            fail()
        assert request.seed is not None
        self.started.set()
        seeds = tuple(request.seed + i for i in range(request.n_takes))
        have, want = codes[level].shape[1], end_samples // self._info.hop_lengths[level]
        row = np.array([s % 2048 for s in seeds], dtype=np.int64)[:, None]
        out = [z.copy() for z in codes]
        done = 0
        for _ in range(have, want):
            if cancel is not None and cancel.is_set():
                return LevelResult(codes=out, cancelled=True, row_seeds=seeds)
            out[level] = np.concatenate([out[level], row], axis=1)
            done += 1
            if self.token_delay_s:
                threading.Event().wait(self.token_delay_s)
            if on_progress is not None and (done % 32 == 0 or done == want - have):  # a host's rate, not each token
                on_progress(Progress(level, 1, 1, done, want - have, None))
        return LevelResult(codes=out, cancelled=False, row_seeds=seeds)

    def decode(self, codes: Any, level: int) -> np.ndarray:
        hop = self._info.hop_lengths[level]
        z = codes[level]
        t = np.arange(z.shape[1] * hop) / self._info.sr
        pitches = 110.0 + (z[:, :1] if z.shape[1] else np.zeros((z.shape[0], 1)))
        return (0.25 * np.sin(2 * np.pi * pitches * t[None, :])).astype(np.float32)

    def codes_lengths(self, codes: Any) -> tuple[int, ...]:
        return tuple(int(z.shape[1]) for z in codes)

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
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "zs": [z.tolist() for z in codes],
                    "shapes": [list(z.shape) for z in codes],
                    "cancelled": cancelled,
                    "request": request.to_dict(),
                    "take_end_samples": take_end_samples,
                    "meta": dict(meta),
                }
            )
        )
        return path

    def load_codes(self, path: str | Path) -> Any:
        data = json.loads(Path(path).read_text())
        return [np.array(z, dtype=np.int64).reshape(shape) for z, shape in zip(data["zs"], data["shapes"], strict=True)]

    def release_buffers(self) -> None:
        self.released += 1
