"""Windowed sampling across the levels, top to bottom (spec §4.3–4.4).

Each level is brought to its length window by window (`schedule.plan_level`); a window primes on
the tokens it already holds, the upsamplers condition on the finished level above, and every
window gets its own label row (offset and lyrics moved to where the window lies). The modes of
the reference are one loop with different starting codes:
  ancestral — nothing yet;  primed — the prompt's codes at every level;
  continue — codes from an earlier run;  upsample — a finished top level, lower levels empty.
A run can be cancelled between tokens; it returns the codes so far, which `save_codes` writes and
a later run continues from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..api import CancelToken, Progress, SamplingParams
from ..atomic import atomic_write
from ..config import LyricsMode
from ..labels import Labeller, LabelRow
from ..labels.tempo import bar_tokens, with_tempo
from ..prior import lyrics as lyr
from ..prior.prior import Prior
from ..vqvae import VQVAE
from .decoder import DecoderPool
from .precision import cast_for_inference
from .schedule import bar_hop, level_hop, plan_level
from .window import sample_window


@dataclass(frozen=True)
class SampleResult:
    zs: list[Tensor]  # codes per level (0 finest), (N, T_l)
    cancelled: bool
    seed: int  # row i drew from a generator seeded `seed + i` (see `row_seeds`)

    @property
    def row_seeds(self) -> list[int]:
        return row_seeds(self.seed, self.zs[0].shape[0])


def row_seeds(seed: int, n: int) -> list[int]:
    """Each row (take) has a generator of its own, so take i with seed s + i regenerates alone."""
    return [seed + i for i in range(n)]


@dataclass(frozen=True)
class _Run:
    """What every level of one `Sampler.sample` call shares."""

    songs: Sequence[tuple[str, str, str]]
    total_length: int
    offset: int
    params: SamplingParams
    generators: list[torch.Generator]
    on_progress: Callable[[Progress], None] | None
    cancel: CancelToken | None
    decoders: DecoderPool
    meter: tuple[float, int] | None = None  # the take's (bpm, beats per bar), for a prior trained with them


@dataclass
class LevelModel:
    """A level's prior and the labeller that makes its rows (None for a prior without labels)."""

    prior: Prior
    labeller: Labeller | None
    # trained on windows that start on bar lines with the tempo as a genre word (jukebox_model.labels.tempo):
    # given the take's tempo, its label gets the tempo word and its windows start on bar lines too
    bar_tempo: bool = False

    def genre(self, genre: str, bpm: float | None) -> str:
        """The genre this level's label is made with: with the take's tempo word if it was trained so."""
        return with_tempo(genre, bpm) if self.bar_tempo else genre


class Sampler:
    def __init__(
        self,
        vqvae: VQVAE,
        levels: dict[int, LevelModel],
        *,
        cuda_graphs: bool | None = None,
        compile_steps: bool = False,
    ):
        """cuda_graphs: replay each token step from a CUDA graph (None: whenever the model is on a GPU);
        compile_steps: fuse the step with torch.compile first (a compilation per level and run)."""
        self.vqvae, self.levels = vqvae, levels
        self.cuda_graphs, self.compile_steps = cuda_graphs, compile_steps
        self._decoders: DecoderPool | None = None  # kept from run to run: later jobs replay, not capture
        for level, m in levels.items():
            if m.prior.config.level != level:
                raise ValueError(f"the prior given for level {level} models level {m.prior.config.level}")

    def set_precision(self, dtype: torch.dtype) -> None:
        """Cast every prior's weights to the activations' dtype, once (precision.py); the VQ-VAE stays float32."""
        for model in self.levels.values():
            cast_for_inference(model.prior, dtype)

    def tokens_for(self, n_samples: int, level: int) -> int:
        return n_samples // self.vqvae.hop_lengths[level]

    @torch.no_grad()
    def sample(
        self,
        zs: Sequence[Tensor],
        *,
        n_samples: int,
        songs: Sequence[tuple[str, str, str]],
        total_length: int,
        offset: int = 0,
        levels: Sequence[int] | None = None,
        params: SamplingParams | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_level_done: Callable[[int, Tensor], None] | None = None,
        cancel: CancelToken | None = None,
        bpm: float | None = None,
        beats_per_bar: int = 4,
    ) -> SampleResult:
        """Bring each level in `levels` (default: all, top first) to `n_samples` worth of tokens.

        zs: current codes per level, (N, ≤ T_l) each (empty for ancestral). songs: (artist, genre,
        lyrics) per item; total_length/offset: the song's length and where this span starts, in samples.
        on_level_done(level, codes) fires as soon as a level is complete (e.g. to render a preview).
        bpm/beats_per_bar: the take's tempo, for priors trained with it (`LevelModel.bar_tempo`); others
        ignore it.
        """
        zs = [z.clone() for z in zs]
        n = len(songs)
        if any(z.shape[0] != n for z in zs):
            raise ValueError(f"codes of every level must have {n} rows, one per song")
        params = params or SamplingParams()
        seed = params.seed if params.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        generators = [torch.Generator(device=self._device()).manual_seed(s) for s in row_seeds(seed, n)]
        order = sorted(levels if levels is not None else self.levels, reverse=True)
        if unknown := [lv for lv in order if lv not in self.levels]:
            raise ValueError(f"no prior loaded for level {unknown[0]}")
        run = _Run(
            songs,
            total_length,
            offset,
            params,
            generators,
            on_progress,
            cancel,
            self._pool(),
            meter=(bpm, beats_per_bar) if bpm else None,
        )
        for level in order:
            cancelled = self._sample_level(zs, level, n_samples, run)
            if cancelled:
                return SampleResult(zs=zs, cancelled=True, seed=seed)
            if on_level_done is not None:
                on_level_done(level, zs[level])
        return SampleResult(zs=zs, cancelled=False, seed=seed)

    def _pool(self) -> DecoderPool:
        pool = self._decoders
        if pool is None or (pool.graph, pool.compile) != (self.cuda_graphs, self.compile_steps):
            pool = self._decoders = DecoderPool(graph=self.cuda_graphs, compile=self.compile_steps)
        return pool

    def release(self) -> None:
        """Free the kept step buffers (KV caches, graphs, compiled steps); the next run makes them again."""
        self._decoders = None

    def _device(self) -> torch.device:
        return next(self.vqvae.parameters()).device

    def _sample_level(self, zs: list[Tensor], level: int, n_samples: int, run: _Run) -> bool:
        params = run.params
        model = self.levels[level]
        prior = model.prior
        total = self.tokens_for(n_samples, level)
        if prior.config.conditioner is not None:
            if total < prior.n_ctx:
                raise ValueError(
                    f"level {level} needs at least {prior.n_ctx} tokens ({prior.n_ctx * self.vqvae.hop_lengths[level]} samples) to upsample"
                )
            if zs[level + 1].shape[1] < self.tokens_for(n_samples, level + 1):
                raise ValueError(f"level {level + 1} must be complete before level {level} is upsampled")
        rows = self._rows(model, run)
        hop = level_hop(params.hop_fraction[level], prior.n_ctx)
        if model.bar_tempo and run.meter is not None:  # whole bars between window starts, as it was trained
            bar = bar_tokens(*run.meter, self.vqvae.config.sr, self.vqvae.hop_lengths[level])
            hop = bar_hop(hop, bar, prior.n_ctx)
        windows = plan_level(total, zs[level].shape[1], prior.n_ctx, hop)
        todo = sum(w.n_new for w in windows)
        done, started = 0, time.perf_counter()
        for index, w in enumerate(windows, start=1):
            existing = zs[level][:, w.start : w.start + w.n_existing]
            new_parts = []
            for lo in range(0, existing.shape[0], params.max_batch_size):
                hi = lo + params.max_batch_size
                z_conds = []
                if prior.config.conditioner is not None:
                    ds = prior.cond_downsample
                    z_conds = [zs[level + 1][lo:hi, w.start // ds : (w.start + prior.n_ctx) // ds]]
                y = None
                if model.labeller is not None:
                    y = torch.tensor([model.labeller.window(r, w.start).y for r in rows[lo:hi]], device=existing.device)
                cond = prior.get_cond(z_conds, y)
                prefix, length = existing[lo:hi], w.end - w.start
                if prior.mode is LyricsMode.MERGED:
                    prefix, length = lyr.merge_tokens(cond.lyrics, prefix, prior.n_vocab), length + prior.n_tokens

                def tick(k: int, _total: int, base: int = done) -> None:
                    if run.on_progress is not None:
                        rate = (base + k) / max(time.perf_counter() - started, 1e-9)
                        eta = (todo - base - k) / rate if rate > 0 else None
                        run.on_progress(Progress(level, index, len(windows), base + k, todo, eta))

                out = sample_window(
                    prior,
                    prior.decoder_inputs(cond),
                    prefix=prefix,
                    length=length,
                    temperature=params.temperature[level],
                    top_k=params.top_k,
                    top_p=params.top_p,
                    generator=run.generators[lo:hi],
                    chunk_size=params.chunk_size,
                    on_token=tick,
                    cancel=run.cancel,
                    decoders=run.decoders,
                )
                tokens = (
                    lyr.music_codes(out.tokens, prior.n_tokens, prior.n_vocab)
                    if prior.mode is LyricsMode.MERGED
                    else out.tokens
                )
                new_parts.append(tokens[:, w.n_existing :])
                if out.cancelled:  # keep what every row reached; rows of batch chunks never started reached nothing
                    every_row = sum(p.shape[0] for p in new_parts) == existing.shape[0]
                    keep = min(p.shape[1] for p in new_parts) if every_row else 0
                    kept = torch.cat([p[:, :keep] for p in new_parts]) if keep else existing[:, :0]
                    zs[level] = torch.cat([zs[level][:, : w.start + w.n_existing], kept], dim=1)
                    return True
            zs[level] = torch.cat([zs[level][:, : w.start + w.n_existing], torch.cat(new_parts, dim=0)], dim=1)
            done += w.n_new
        return False

    @staticmethod
    def _rows(model: LevelModel, run: _Run) -> list[LabelRow]:
        if model.labeller is None:
            return []
        bpm = run.meter[0] if run.meter else None
        return [
            model.labeller.label(artist, model.genre(genre, bpm), lyrics, run.total_length, run.offset)
            for artist, genre, lyrics in run.songs
        ]

    @torch.no_grad()
    def decode(self, zs: Sequence[Tensor], level: int) -> Tensor:
        """Audio (N, T, 1) of one level's codes through that level's decoder."""
        return self.vqvae.decode([zs[level]], start_level=level)


CODES_VERSION = 2  # 2: the take's end is a field of its own (version 1 kept it in the host's meta)


def save_codes(
    path: Path, result: SampleResult, *, params: SamplingParams, meta: dict, take_end_samples: int | None = None
) -> Path:
    """Codes and settings, atomically; `load_codes` + `Sampler.sample(zs=...)` continues the run.
    `take_end_samples`: where the delivered take ends (its codes run on to a whole top-level token)."""
    data = {
        "version": CODES_VERSION,
        "zs": [z.cpu() for z in result.zs],
        "seed": result.seed,
        "params": params.to_dict(),
        "take_end_samples": take_end_samples,
        "meta": dict(meta),
    }
    with atomic_write(path) as f:
        torch.save(data, f)
    return path


MAX_CODES_BYTES = 2**30  # 16 takes of 10 minutes at every level is under 200 MiB


def load_codes(path: Path) -> dict:
    """A codes file, read as untrusted: a regular file within MAX_CODES_BYTES, tensors only (no pickled
    code), every level a 2-D integer tensor with the same number of takes. Anything else is a ValueError."""
    import os
    import stat

    st = os.stat(path)  # FileNotFoundError names the file
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: not a regular file")
    if st.st_size > MAX_CODES_BYTES:
        raise ValueError(f"{path}: {st.st_size} bytes, over the {MAX_CODES_BYTES}-byte limit for a codes file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a damaged or foreign file
        raise ValueError(f"{path}: not a readable codes file ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("zs"), list) or not data["zs"]:
        raise ValueError(f"{path}: not a codes file written by save_codes")
    zs = data["zs"]
    if any(not isinstance(z, Tensor) or z.dim() != 2 or z.dtype != torch.long for z in zs):
        raise ValueError(f"{path}: every level's codes must be a 2-D int64 tensor")
    if len({z.shape[0] for z in zs}) != 1 or zs[0].shape[0] == 0:
        raise ValueError(f"{path}: the levels hold different numbers of takes")
    try:
        data["params"] = SamplingParams.from_dict(data.get("params") or {})
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if not isinstance(data.get("meta", {}), dict):
        raise ValueError(f"{path}: its meta is not a mapping")
    version = data.get("version", 1)
    if type(version) is not int or not 1 <= version <= CODES_VERSION:
        raise ValueError(f"{path}: codes file version {version!r}; this engine reads versions 1 to {CODES_VERSION}")
    end = data.get("take_end_samples") if version >= 2 else data["meta"].get("take_end_samples")
    data["take_end_samples"] = end if isinstance(end, int) and not isinstance(end, bool) and end > 0 else None
    return data
