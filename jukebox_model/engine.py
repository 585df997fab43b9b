"""The small job API between a host (the DAW bridge, a script) and the model.

A host describes a take with a `TakeRequest` (plain numbers and strings, no tensors) and drives
the `Engine` stage by stage: `start_codes` (encode the prime, load earlier codes, or nothing),
`sample_level` once per level, top first, and `decode` for each level's audio. Each level is
seeded afresh with the request's seed (take i: seed + i), so a take regenerates the same whether
its levels ran in one go or were split into a preview and a later upsampling pass.

Lengths: for primed and continue requests `new_samples` is what is added after what exists; the
take is the prime (or the earlier take) followed by the new material.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from . import official
from .audio import read_audio
from .bundle import load_official_bundle
from .bundle_dir import load_bundle_dir
from .sampling.params import SamplingParams
from .sampling.precision import default_dtype, parse_dtype
from .sampling.sampler import Progress, Sampler, SampleResult, load_codes, save_codes
from .sampling.window import CancelToken

MODES = ("ancestral", "primed", "continue", "upsample")
PRIME_MARGIN_S = 0.1  # decoded before the kept part of a prime, so the resampler's edge falls outside it


@dataclass(frozen=True, kw_only=True)
class TakeRequest:
    mode: str  # one of MODES
    artist: str = "unknown"
    genre: str = "unknown"
    lyrics: str = ""
    new_samples: int  # samples of new material at the model rate (ignored by upsample)
    total_samples: int  # song length for the timing label
    offset_samples: int = 0  # where the take starts in the song
    n_takes: int = 1
    params: SamplingParams = dataclasses.field(default_factory=SamplingParams)
    prime_path: str | None = None  # primed: an audio file
    prime_samples: int = 0  # primed: keep the last this-many samples of it (0: all of it)
    codes_path: str | None = None  # continue / upsample: a codes file written by `save_take_codes`
    codes_takes: tuple[int, ...] | None = None  # which of its takes (default: all)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.n_takes <= 0 or self.total_samples <= 0 or self.offset_samples < 0 or self.new_samples < 0:
            raise ValueError("n_takes and total_samples must be positive, new_samples and offset_samples not negative")
        if self.mode == "primed" and not self.prime_path:
            raise ValueError("a primed take needs a prime clip")
        if self.mode in ("continue", "upsample") and not self.codes_path:
            raise ValueError(f"a {self.mode} take needs the codes of an earlier take")
        if self.mode != "upsample" and self.new_samples <= 0:
            raise ValueError("a take needs a positive length")

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["params"] = dataclasses.asdict(self.params)
        return data


@dataclass(frozen=True)
class StartCodes:
    zs: list[Tensor]  # per level (0 finest), (n_takes, T_l); what the take starts from
    start_samples: int  # samples those codes already cover at the top level (the prime or earlier take)
    end_samples: int  # samples the take will have once sampled (a whole number of top-level tokens)
    prime_sha256: str | None  # of the prime file's bytes, for the sidecar
    levels_to_sample: tuple[int, ...]  # top first


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _prepare(sampler: Sampler, device: str, precision: str, compile_steps: bool) -> dict[str, Any]:
    """Cast the priors once, at load ('auto': bfloat16 on a GPU, float32 elsewhere), and set how steps run;
    returns what Engine.info reports of it."""
    dtype = default_dtype(device) if precision == "auto" else parse_dtype(precision)
    sampler.set_precision(dtype)
    sampler.compile_steps = compile_steps
    return {"device": device, "precision": str(dtype).removeprefix("torch."), "compile_steps": compile_steps}


class Engine:
    """One loaded model bundle. Not thread-safe: one worker thread owns it."""

    def __init__(self, sampler: Sampler, description: dict[str, Any]):
        self.sampler = sampler
        self.description = dict(description)

    # --- loading --------------------------------------------------------------------------------

    @classmethod
    def from_bundle_dir(
        cls, folder: str | Path, *, device: str = "cpu", precision: str = "auto", compile_steps: bool = False
    ) -> Engine:
        sampler, manifest = load_bundle_dir(folder, device=device)
        return cls(sampler, {**manifest.describe(), **_prepare(sampler, device, precision, compile_steps)})

    @classmethod
    def from_official(
        cls,
        root: str | Path,
        name: str,
        *,
        ids_dir: str | Path | None,
        device: str = "cpu",
        precision: str = "auto",
        compile_steps: bool = False,
    ) -> Engine:
        sampler = load_official_bundle(Path(root).expanduser(), name, ids_dir=Path(ids_dir) if ids_dir else None, device=device)
        priors = [official.CHECKPOINT_PATHS[p] for p in official.BUNDLES[name].priors]
        described = {"bundle": name, "folder": str(root), "priors": priors}
        return cls(sampler, {**described, **_prepare(sampler, device, precision, compile_steps)})

    def release_buffers(self) -> None:
        """Free what the sampler keeps between jobs (step buffers, CUDA graphs), e.g. after running out of memory."""
        self.sampler.release()

    # --- facts ------------------------------------------------------------------------------------

    @property
    def sr(self) -> int:
        return self.sampler.vqvae.config.sr

    @property
    def levels(self) -> tuple[int, ...]:
        """Levels with a prior, top first."""
        return tuple(sorted(self.sampler.levels, reverse=True))

    @property
    def top_hop(self) -> int:
        return self.sampler.vqvae.hop_lengths[-1]

    @property
    def device(self) -> torch.device:
        return next(self.sampler.vqvae.parameters()).device

    def info(self) -> dict[str, Any]:
        top = self.sampler.levels[max(self.sampler.levels)]
        upsamplers = [m.prior for lv, m in self.sampler.levels.items() if lv != max(self.sampler.levels)]
        hops = self.sampler.vqvae.hop_lengths
        return {
            **self.description,
            "sr": self.sr,
            "levels": list(self.levels),
            "hop_lengths": list(self.sampler.vqvae.hop_lengths),
            "labels": top.labeller is not None,
            "lyrics": bool(top.prior.config.labels and top.prior.config.labels.n_tokens),
            # an upsampler samples whole windows of its context: shorter takes cannot go below the top level
            "upsample_min_seconds": max((p.n_ctx * hops[p.config.level] for p in upsamplers), default=0) / self.sr,
        }

    def label_warnings(self, request: TakeRequest) -> list[str]:
        """Names the id tables lack (they are conditioned as 'unknown'); raises LabelError for rows
        the priors refuse, so a bad request fails before any sampling."""
        found: list[str] = []
        for model in self.sampler.levels.values():
            if model.labeller is None:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row = model.labeller.label(request.artist, request.genre, request.lyrics,
                                           request.total_samples, request.offset_samples)
            found += [name for name in row.unknown if name not in found]
        return found

    # --- stages -----------------------------------------------------------------------------------

    def start_codes(self, request: TakeRequest) -> StartCodes:
        """What the take starts from; every file problem (missing, undecodable prime; foreign
        codes file) surfaces here, before the slow part."""
        n, levels = request.n_takes, self.sampler.vqvae.config.levels
        empty = [torch.zeros(n, 0, dtype=torch.long, device=self.device) for _ in range(levels)]
        top = self.top_hop
        prime_hash = None
        if request.mode == "ancestral":
            zs, start = empty, 0
        elif request.mode == "primed":
            clip = self._read_prime(request.prime_path, request.prime_samples)
            keep = clip.shape[0] if request.prime_samples <= 0 else min(request.prime_samples, clip.shape[0])
            keep = keep // top * top
            if keep == 0:
                raise ValueError(f"{request.prime_path}: the prime is shorter than one top-level token ({top} samples)")
            clip = clip[clip.shape[0] - keep :]
            with torch.no_grad():
                zs = self.sampler.vqvae.encode(clip.to(self.device)[None, :, None].expand(n, -1, -1).contiguous())
            start, prime_hash = keep, file_sha256(request.prime_path)
        else:
            data = load_codes(Path(request.codes_path))
            zs = [z.to(self.device) for z in data["zs"]]
            if len(zs) != levels:
                raise ValueError(f"{request.codes_path}: codes of {len(zs)} levels, this model has {levels}")
            takes = request.codes_takes if request.codes_takes is not None else tuple(range(zs[0].shape[0]))
            if not takes or any(not 0 <= t < zs[0].shape[0] for t in takes):
                raise ValueError(f"{request.codes_path}: has takes 0–{zs[0].shape[0] - 1}, asked for {list(takes)}")
            zs = [z[list(takes)] for z in zs]
            if len(takes) != n:
                raise ValueError(f"{len(takes)} takes of codes for a request of {n} takes")
            if request.mode == "upsample":
                zs = [z if lv == levels - 1 else z[:, :0] for lv, z in enumerate(zs)]
            start = zs[-1].shape[1] * top
            prime_hash = file_sha256(request.codes_path)
        if request.mode == "upsample":
            end = start
            to_sample = tuple(lv for lv in self.levels if lv < levels - 1)
        else:
            end = -(-(start + request.new_samples) // top) * top  # whole top-level tokens, rounded up
            to_sample = self.levels
        if levels - 1 not in self.sampler.levels and request.mode != "upsample":
            raise ValueError("this bundle has no top-level prior: it can only upsample")
        return StartCodes(zs=zs, start_samples=start, end_samples=end, prime_sha256=prime_hash, levels_to_sample=to_sample)

    def _read_prime(self, path: str, keep_samples: int) -> Tensor:
        """The end of the clip, at the model's rate: only the last `keep_samples` (plus a margin for
        the resampler) are decoded, so a long export primes as fast as a short one."""
        if keep_samples <= 0:
            return read_audio(path, sr=self.sr)
        try:
            info = sf.info(str(path))
            duration = info.frames / info.samplerate
        except (sf.LibsndfileError, RuntimeError, TypeError):
            return read_audio(path, sr=self.sr)  # read_audio gives the clear error
        offset = max(0.0, duration - keep_samples / self.sr - PRIME_MARGIN_S)
        return read_audio(path, sr=self.sr, offset_s=offset)

    def sample_level(
        self,
        request: TakeRequest,
        zs: list[Tensor],
        level: int,
        end_samples: int,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> SampleResult:
        """Bring one level to `end_samples`; seeded with the request's seed (take i: seed + i)."""
        if request.params.seed is None:
            raise ValueError("resolve the seed before sampling (the host records it)")
        return self.sampler.sample(
            zs,
            n_samples=end_samples,
            songs=[(request.artist, request.genre, request.lyrics)] * request.n_takes,
            total_length=max(request.total_samples, request.offset_samples + end_samples),
            offset=request.offset_samples,
            levels=[level],
            params=request.params,
            on_progress=on_progress,
            cancel=cancel,
        )

    def decode(self, zs: list[Tensor], level: int) -> np.ndarray:
        """(n_takes, T) float32 audio at the model rate of one level's codes."""
        with torch.no_grad():
            audio = self.sampler.vqvae.decode([zs[level]], start_level=level)
        return audio[..., 0].float().cpu().numpy()

    # --- codes files ------------------------------------------------------------------------------

    @staticmethod
    def save_take_codes(path: str | Path, zs: list[Tensor], request: TakeRequest, *, cancelled: bool, meta: dict[str, Any]) -> Path:
        """Codes and the request, atomically: `jukebox-sample --mode continue` and the bridge both read it."""
        result = SampleResult(zs=[z.cpu() for z in zs], cancelled=cancelled, seed=int(request.params.seed or 0))
        return save_codes(Path(path), result, params=request.params, meta={**meta, "request": request.as_dict()})

    def load_take_codes(self, path: str | Path) -> list[Tensor]:
        """The codes of every level saved by `save_take_codes`, on this engine's device."""
        return [z.to(self.device) for z in load_codes(Path(path))["zs"]]

