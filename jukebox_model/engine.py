"""The engine: one loaded model bundle behind the job API of `jukebox_model.api`.

Hosts describe takes with `api.TakeRequest` and drive the stages (`start`, `sample_level` per
level, `decode`); `load_engine` is the one way every entry point (the bridge, `jukebox-sample`,
scripts) gets an engine, whatever the weights' source, device, precision and compile setting.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from . import official
from .api import (
    PRIME_MARGIN_S,
    BundleSource,
    CancelToken,
    CheckpointSource,
    LevelResult,
    Mode,
    ModelInfo,
    ModelSource,
    OfficialSource,
    PrimeAudio,
    Progress,
    SamplingParams,
    StartCodes,
    TakeRequest,
)
from .audio import read_audio, resample
from .bundle import load_checkpoint_bundle, load_official_bundle
from .bundle_dir import DEFAULT_BUNDLE_DIR, BundleError, load_bundle_dir, read_manifest
from .labels import LabelError
from .memory_check import check_memory, need_for_files
from .sampling.precision import default_dtype, parse_dtype
from .sampling.sampler import Sampler, SampleResult, load_codes, save_codes


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _take_end(recorded: Any, covered: int, top_hop: int) -> int:
    """Where an earlier take ended as delivered (its codes run on to a whole top-level token); a value
    that does not fit the codes (a hand-edited or older file) falls back to what the codes cover."""
    if isinstance(recorded, int) and not isinstance(recorded, bool) and covered - top_hop < recorded <= covered:
        return recorded
    return covered


def _names(ids: Mapping[str, int]) -> tuple[str, ...]:
    """A table's names, sorted, without the catch-all 'unknown' (id 0)."""
    return tuple(sorted(name for name, value in ids.items() if value != 0))


def resolve_device(device: str) -> str:
    """'auto': the first GPU when there is one, else the CPU."""
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_engine(
    source: ModelSource | None = None, *, device: str = "auto", precision: str = "auto", compile_steps: bool = False
) -> Engine:
    """The engine for `source` (None: the embedded default bundle), with the priors cast once ('auto':
    bfloat16 on a GPU, float32 elsewhere) and the token step optionally compiled."""
    device = resolve_device(device)
    source = source if source is not None else BundleSource(DEFAULT_BUNDLE_DIR)
    dtype = default_dtype(device) if precision == "auto" else parse_dtype(precision)
    files, what = _weight_files(source)
    # before any file is read: a clear MemoryShortError instead of the kernel killing the process part-way
    need = need_for_files(files, device=str(device), bytes_per_param=torch.finfo(dtype).bits // 8)
    check_memory(need, device=str(device), what=what)
    if isinstance(source, BundleSource):
        sampler, manifest = load_bundle_dir(source.folder, device=device, dtype=dtype)
        described: dict[str, Any] = manifest.describe()
    elif isinstance(source, OfficialSource):
        sampler = load_official_bundle(
            Path(source.root).expanduser(), source.name, ids_dir=source.ids_dir, device=device, dtype=dtype
        )
        described = {
            "bundle": source.name,
            "folder": str(source.root),
            "priors": [official.CHECKPOINT_PATHS[p] for p in official.BUNDLES[source.name].priors],
        }
    elif isinstance(source, CheckpointSource):
        sampler = load_checkpoint_bundle(
            Path(source.vqvae), [Path(p) for p in source.priors], ids_dir=source.ids_dir, device=device, dtype=dtype
        )
        described = {
            "bundle": Path(source.vqvae).stem,
            "vqvae": str(source.vqvae),
            "priors": [str(p) for p in source.priors],
        }
    else:
        raise TypeError(f"not a model source: {source!r}")
    sampler.set_precision(dtype)  # weights loaded in `dtype` already are left as they are
    sampler.compile_steps = compile_steps
    return Engine(
        sampler, described, device=device, precision=str(dtype).removeprefix("torch."), compile_steps=compile_steps
    )


def _weight_files(source: ModelSource) -> tuple[list[Path], str]:
    """The checkpoint files a source loads (those that exist: a missing one is the loader's error), and its name."""
    if isinstance(source, BundleSource):
        try:
            manifest = read_manifest(source.folder)
        except BundleError:
            return [], f"bundle {source.folder}"  # the loader says what is wrong with it
        files, what = [manifest.vqvae, *manifest.priors], f"bundle {manifest.name!r}"
    elif isinstance(source, OfficialSource):
        spec = official.BUNDLES.get(source.name)
        names = [spec.vqvae, *spec.priors] if spec is not None else []
        files = [Path(source.root).expanduser() / official.CHECKPOINT_PATHS[n] for n in names]
        what = f"the official {source.name} bundle"
    elif isinstance(source, CheckpointSource):
        files, what = [Path(source.vqvae), *map(Path, source.priors)], "the model"
    else:
        return [], "the model"
    return [f for f in files if f.is_file()], what


class _Budget:
    """Stops a measuring run once it has sampled for `seconds` past its first token (or when `cancel` is set)."""

    def __init__(self, marks: list[tuple[float, int]], seconds: float, cancel: CancelToken | None):
        self.marks, self.seconds, self.cancel = marks, seconds, cancel

    def is_set(self) -> bool:
        if self.cancel is not None and self.cancel.is_set():
            return True
        return len(self.marks) >= 2 and self.marks[-1][0] - self.marks[0][0] >= self.seconds


class Engine:
    """One loaded model bundle (an `api.TakeEngine`). Not thread-safe: one worker thread owns it;
    `info` and `check` only read and may be called from any thread."""

    def __init__(
        self,
        sampler: Sampler,
        source: Mapping[str, Any],
        *,
        device: str = "cpu",
        precision: str = "float32",
        compile_steps: bool = False,
    ):
        self.sampler = sampler
        top = sampler.levels[max(sampler.levels)]
        upsamplers = [m.prior for lv, m in sampler.levels.items() if lv != max(sampler.levels)]
        hops = tuple(sampler.vqvae.hop_lengths)
        sr = sampler.vqvae.config.sr
        self._info = ModelInfo(
            bundle=str(source.get("bundle", "")),
            sr=sr,
            levels=tuple(sorted(sampler.levels, reverse=True)),
            hop_lengths=hops,
            labels=top.labeller is not None,
            lyrics=bool(top.prior.config.labels and top.prior.config.labels.n_tokens),
            # an upsampler samples whole windows of its context: shorter takes cannot go below the top level
            upsample_min_seconds=max((p.n_ctx * hops[p.config.level] for p in upsamplers), default=0) / sr,
            device=device,
            precision=precision,
            compile_steps=compile_steps,
            source={k: v for k, v in source.items() if k != "bundle"},
            artists=_names(top.labeller.tables.artists.ids) if top.labeller is not None else (),
            genres=_names(top.labeller.tables.genres.ids) if top.labeller is not None else (),
        )

    def release_buffers(self) -> None:
        """Free what the sampler keeps between jobs (step buffers, CUDA graphs), e.g. after running out of memory."""
        self.sampler.release()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # --- facts ------------------------------------------------------------------------------------

    def info(self) -> ModelInfo:
        return self._info

    @property
    def sr(self) -> int:
        return self._info.sr

    @property
    def device(self) -> torch.device:
        return next(self.sampler.vqvae.parameters()).device

    def check(self, request: TakeRequest) -> list[str]:
        """Names the id tables lack (they are conditioned as 'unknown'); LabelError (a ValueError) for
        rows the priors refuse, so a bad request fails before it is queued."""
        if request.mode is not Mode.UPSAMPLE and self.sampler.vqvae.config.levels - 1 not in self.sampler.levels:
            raise ValueError("this bundle has no top-level prior: it can only upsample")
        found: list[str] = []
        total = max(request.total_samples, request.offset_samples + request.new_samples)
        for model in self.sampler.levels.values():
            if model.labeller is None:
                continue
            genre = model.genre(request.genre, request.bpm)
            row = model.labeller.label(request.artist, genre, request.lyrics, total, request.offset_samples, warn=False)
            found += [name for name in row.unknown if name not in found]
        return found

    # --- stages -----------------------------------------------------------------------------------

    def start(self, request: TakeRequest, prime: PrimeAudio | None = None) -> StartCodes:
        """What the take starts from; every file problem (missing, undecodable prime; foreign
        codes file) surfaces here, before the slow part. A host that has read the prime already gives
        it as `prime`: then no file is opened here."""
        n, levels = request.n_takes, self.sampler.vqvae.config.levels
        empty = [torch.zeros(n, 0, dtype=torch.long, device=self.device) for _ in range(levels)]
        top = self._info.top_hop
        prime_hash = None
        meta: Mapping[str, Any] = {}
        if request.mode is Mode.ANCESTRAL:
            zs, start = empty, 0
        elif request.mode is Mode.PRIMED:
            assert request.prime_path is not None  # TakeRequest checks it
            if prime is None:
                name, clip = request.prime_path, self._read_prime(request.prime_path, request.prime_samples)
            else:
                name, clip = (
                    prime.name,
                    resample(torch.from_numpy(np.asarray(prime.samples, np.float32)), prime.sr, self.sr),
                )
            keep = clip.shape[0] if request.prime_samples <= 0 else min(request.prime_samples, clip.shape[0])
            keep = keep // top * top
            if keep == 0:
                raise ValueError(f"{name}: the prime is shorter than one top-level token ({top} samples)")
            clip = clip[clip.shape[0] - keep :]
            with torch.no_grad():
                zs = self.sampler.vqvae.encode(clip.to(self.device)[None, :, None].expand(n, -1, -1).contiguous())
            start = keep
            prime_hash = file_sha256(request.prime_path) if prime is None else prime.sha256
        else:
            assert request.codes_path is not None
            data = load_codes(Path(request.codes_path))
            zs, meta = [z.to(self.device) for z in data["zs"]], data.get("meta") or {}  # load_codes checks it is a dict
            if len(zs) != levels:
                raise ValueError(f"{request.codes_path}: codes of {len(zs)} levels, this model has {levels}")
            takes = request.codes_takes if request.codes_takes is not None else tuple(range(zs[0].shape[0]))
            if not takes or any(not 0 <= t < zs[0].shape[0] for t in takes):
                raise ValueError(f"{request.codes_path}: has takes 0–{zs[0].shape[0] - 1}, asked for {list(takes)}")
            zs = [z[list(takes)] for z in zs]
            if len(takes) != n:
                raise ValueError(f"{len(takes)} takes of codes for a request of {n} takes")
            covered = zs[-1].shape[1] * top
            start = _take_end(data["take_end_samples"], covered, top)
            if request.mode is Mode.CONTINUE and request.prime_samples > 0:  # branch from that point of the take
                start = min(start, request.prime_samples)
                hops = self._info.hop_lengths
                zs = [z[:, : -(-start // hops[lv])] for lv, z in enumerate(zs)]  # codes that cover `start`
            if request.mode is Mode.UPSAMPLE:
                zs = [z if lv == levels - 1 else z[:, :0] for lv, z in enumerate(zs)]
            prime_hash = file_sha256(request.codes_path)
        if request.mode is Mode.UPSAMPLE:
            end = zs[-1].shape[1] * top  # the lower levels under every top-level token; the take ends at `start`
            to_sample = tuple(lv for lv in self._info.levels if lv < levels - 1)
            take_end = start
        else:
            take_end = start + request.new_samples
            # whole top-level tokens, rounded up, that also hold the run-on a loop crossfade asks for
            end = -(-(start + request.new_samples + request.run_on_samples) // top) * top
            to_sample = self._info.levels
        if levels - 1 not in self.sampler.levels and request.mode is not Mode.UPSAMPLE:
            raise ValueError("this bundle has no top-level prior: it can only upsample")
        return StartCodes(
            codes=zs,
            start_samples=start,
            end_samples=end,
            take_end_samples=take_end,
            prime_sha256=prime_hash,
            levels_to_sample=to_sample,
            source_meta=meta,
        )

    def _read_prime(self, path: str, keep_samples: int) -> Tensor:
        """The end of the clip, at the model's rate: only the last `keep_samples` (plus a margin for
        the resampler) are decoded, so a long export primes as fast as a short one."""
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise ValueError(f"{path}: the prime was not found (moved or deleted)") from None
        if not stat.S_ISREG(mode):  # a FIFO would block the read forever
            raise ValueError(f"{path}: the prime is not a regular file")
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
        codes: list[Tensor],
        level: int,
        end_samples: int,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> LevelResult:
        """Bring one level to `end_samples`; seeded with the request's seed (take i: seed + i)."""
        if request.params.seed is None:
            raise ValueError("resolve the seed before sampling (the host records it)")
        with warnings.catch_warnings():  # unknown names were reported by `check`
            warnings.filterwarnings("ignore", message="not in the .* id tables")
            result = self.sampler.sample(
                codes,
                n_samples=end_samples,
                songs=[(request.artist, request.genre, request.lyrics)] * request.n_takes,
                total_length=max(request.total_samples, request.offset_samples + end_samples),
                offset=request.offset_samples,
                levels=[level],
                params=request.params,
                on_progress=on_progress,
                cancel=cancel,
                bpm=request.bpm,
                beats_per_bar=request.beats_per_bar,
            )
        return LevelResult(codes=result.zs, cancelled=result.cancelled, row_seeds=tuple(result.row_seeds))

    def measure_rates(
        self, seconds_per_level: float = 1.0, cancel: CancelToken | None = None
    ) -> dict[int, tuple[int, float]]:
        """How fast each level samples one take on this machine: (tokens, seconds) of a short run per level,
        counted from its first token (so loading and the window's first pass are not in it). Lower levels run
        on random codes of the level above: a rate does not depend on what the codes say."""
        sr, hops, levels = self.sr, self._info.hop_lengths, self.sampler.vqvae.config.levels
        top = hops[-1]
        length = -(-max(round(self._info.upsample_min_seconds * sr), round(2.0 * sr)) // top) * top
        request = TakeRequest(
            mode=Mode.ANCESTRAL, new_samples=length, total_samples=max(length, 60 * sr), params=SamplingParams(seed=0)
        )
        generator = torch.Generator().manual_seed(0)
        bins = self.sampler.vqvae.config.l_bins
        measured: dict[int, tuple[int, float]] = {}
        for level in self._info.levels:
            if cancel is not None and cancel.is_set():
                break
            codes = [
                torch.randint(0, bins, (1, length // hops[lv]), generator=generator).to(self.device)
                if lv > level
                else torch.zeros(1, 0, dtype=torch.long, device=self.device)
                for lv in range(levels)
            ]
            marks: list[tuple[float, int]] = []
            budget = _Budget(marks, seconds_per_level, cancel)
            self.sample_level(
                request,
                codes,
                level,
                length,
                on_progress=lambda p: marks.append((time.perf_counter(), p.tokens_done)),
                cancel=budget,
            )
            if len(marks) >= 2 and marks[-1][1] > marks[0][1] and marks[-1][0] > marks[0][0]:
                measured[level] = (marks[-1][1] - marks[0][1], marks[-1][0] - marks[0][0])
        return measured

    def decode(self, codes: list[Tensor], level: int) -> np.ndarray:
        """(n_takes, T) float32 audio at the model rate of one level's codes."""
        with torch.no_grad():
            audio = self.sampler.vqvae.decode([codes[level]], start_level=level)
        return audio[..., 0].float().cpu().numpy()

    def codes_lengths(self, codes: list[Tensor]) -> tuple[int, ...]:
        return tuple(int(z.shape[1]) for z in codes)

    # --- codes files ------------------------------------------------------------------------------

    @staticmethod
    def save_codes(
        path: str | Path,
        codes: list[Tensor],
        request: TakeRequest,
        *,
        cancelled: bool,
        take_end_samples: int,
        meta: Mapping[str, Any],
    ) -> Path:
        """Codes and the request, atomically: `jukebox-sample --mode continue` and the bridge both read it."""
        result = SampleResult(zs=[z.cpu() for z in codes], cancelled=cancelled, seed=int(request.params.seed or 0))
        return save_codes(
            Path(path),
            result,
            params=request.params,
            meta={**meta, "request": request.to_dict()},
            take_end_samples=take_end_samples,
        )

    def load_codes(self, path: str | Path) -> list[Tensor]:
        """The codes of every level, read as untrusted input, on this engine's device."""
        return [z.to(self.device) for z in load_codes(Path(path))["zs"]]


__all__ = ["Engine", "LabelError", "file_sha256", "load_engine", "resolve_device"]
