"""Train a prior (top level or upsampler) on the VQ-VAE codes of a folder of audio, one device or
many (torchrun DDP), with labels from the folder's metadata.json.

Decoder pretraining (`init_from`): a lyrics prior starts from a non-lyrics prior's weights — every
tensor whose name and shape agree is copied; in the merged (1b-style) layout the music rows of the
token table and the music positions of the position table are copied into their shifted places.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..checkpoints import load_vqvae, model_state, read_checkpoint
from ..config import LyricsMode, PriorConfig
from ..hparams import prior_config_to_hparams, vqvae_config_to_hparams
from ..labels import Labeller
from ..prior.prior import Prior
from .audio_dataset import scan_audio_folder
from .distributed import distributed_session
from .ema import ParameterEMA, default_ema_decay
from .loop import MetricsLog, OptimSettings, Precision, batches_per_epoch, epoch_loader, make_optimizer, optimizer_step
from .prior_data import PriorWindows, encode_songs, read_metadata, write_id_tables
from .run_state import RunParts, restore_run, save_run


@dataclass(frozen=True, kw_only=True)
class PriorTrainSettings:
    audio_dir: Path
    out_dir: Path
    vqvae_checkpoint: Path
    ids_dir: Path | None = None  # id tables to use; default: built from metadata.json into OUT/ids
    init_from: Path | None = None  # decoder pretraining: start from another prior's weights
    align_bars: bool = False  # windows of songs with a bpm in metadata.json start on bar lines
    tempo_words: bool = False  # their genre gets the tempo word (jukebox_model.labels.tempo)
    batch_size: int = 1  # per process
    steps: int = 10000
    optim: OptimSettings = field(default_factory=OptimSettings)
    precision: str = "fp32"
    ema: bool = True
    ema_decay: float | None = None
    save_every: int = 1000
    log_every: int = 10
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True


@dataclass(frozen=True)
class PriorTrainResult:
    step: int
    losses: list[float]
    checkpoint: Path | None
    model: Prior


def init_from_prior(model: Prior, source: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy what fits from another prior's state dict; returns (initialised keys, keys left as new)."""
    own = model.state_dict()
    done, written = [], set()
    with torch.no_grad():
        for key, target in own.items():
            value = source.get(key)
            if value is None:
                continue
            if target.data_ptr() in written:  # a tied tensor (x_out = x_emb) is written once, by its first name
                done.append(key)
                continue
            written.add(target.data_ptr())
            if value.shape == target.shape:
                target.copy_(value)
                done.append(key)
            elif model.mode is LyricsMode.MERGED and key in (
                "prior.x_emb.weight",
                "prior.x_out.weight",
                "prior.pos_emb.pos_emb",
            ):
                shift = model.n_vocab if key != "prior.pos_emb.pos_emb" else model.n_tokens
                if value.shape[0] == target.shape[0] - shift and value.shape[1:] == target.shape[1:]:
                    target[shift:].copy_(value)
                    done.append(key)
    return done, sorted(set(own) - set(done))


def _hps(config: PriorConfig, vqvae_hps: dict[str, Any], settings: PriorTrainSettings) -> dict[str, Any]:
    """Reference-style hparams: the prior's keys, the VQ-VAE geometry it was trained with, the optimiser."""
    geometry = {k: vqvae_hps[k] for k in ("levels", "downs_t", "strides_t", "l_bins", "emb_width", "sr")}
    return {
        **geometry,
        **prior_config_to_hparams(config),
        "bs": settings.batch_size,
        **dataclasses.asdict(settings.optim),
    }


def train_prior(
    config: PriorConfig,
    settings: PriorTrainSettings,
    *,
    resume: Path | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> PriorTrainResult:
    with distributed_session(settings.device) as info:
        return _train(config, settings, info, resume, on_step)


def _train(config, settings, info, resume, on_step) -> PriorTrainResult:
    if config.fp16_params:  # half-precision master weights do not train well; use --precision for speed
        config = dataclasses.replace(config, fp16_params=False)
    torch.manual_seed(settings.seed)  # the same initial weights, hence the same EMA start, on every rank
    vqvae = load_vqvae(settings.vqvae_checkpoint, device=info.device)
    vq = vqvae.config
    metadata = read_metadata(settings.audio_dir)
    labeller = None
    if config.labels is not None:
        ids_dir = settings.ids_dir or write_id_tables(
            metadata, settings.out_dir / "ids", v3=config.labels.labels_v3, tempo_words=settings.tempo_words
        )
        hop = vq.hop_lengths[config.level]
        labeller = Labeller.for_prior(config.labels, ids_dir, n_ctx=config.n_ctx, hop_length=hop)
        _check_label_bins(config, labeller)
    if info.world_size > 1 and not info.is_main:
        torch.distributed.barrier()  # rank 0 encodes and caches first
    songs = encode_songs(
        vqvae,
        scan_audio_folder(settings.audio_dir),
        metadata,
        settings.audio_dir,
        settings.out_dir / "codes",
        vqvae_id=str(settings.vqvae_checkpoint.resolve()),
    )
    if info.world_size > 1 and info.is_main:
        torch.distributed.barrier()
    del vqvae
    upper = config.level + 1
    dataset = PriorWindows(
        songs,
        level=config.level,
        n_ctx=config.n_ctx,
        labeller=labeller,
        cond_downsample=vq.strides_t[upper] ** vq.downs_t[upper] if config.conditioner is not None else None,
        sr=vq.sr,
        min_duration=config.labels.min_duration if config.labels is not None and config.is_top else None,
        max_duration=config.labels.max_duration if config.labels is not None and config.is_top else None,
        seed=settings.seed,
        align_bars=settings.align_bars,
        tempo_words=settings.tempo_words,
    )
    model = Prior(config, vq).to(info.device)
    opt, schedule = make_optimizer(model, settings.optim)
    ema = (
        ParameterEMA(model, settings.ema_decay or default_ema_decay(settings.batch_size, info.world_size))
        if settings.ema
        else None
    )
    parts = RunParts(model, opt, schedule, ema, Precision(settings.precision, info.device))
    step = 0
    if resume is not None:
        step, _, _ = restore_run(resume, parts)
    elif settings.init_from is not None:
        init_from_prior(model, model_state(read_checkpoint(settings.init_from), source=str(settings.init_from)))
        if ema is not None:
            ema.shadow = {name: p.detach().clone() for name, p in ema.params.items()}
    wrapped = DistributedDataParallel(model) if info.world_size > 1 else model
    hps = _hps(config, vqvae_config_to_hparams(vq), settings)

    log = MetricsLog(settings.out_dir / "metrics.jsonl") if info.is_main else None
    bar = tqdm(
        total=settings.steps,
        initial=step,
        disable=not (settings.progress and info.is_main),
        desc=f"prior level {config.level}",
    )
    per_epoch = batches_per_epoch(len(dataset), info.world_size, settings.batch_size)
    losses, checkpoint = [], None
    model.train()
    while step < settings.steps:
        epoch, done = divmod(step, per_epoch)
        loader = epoch_loader(
            dataset,
            info,
            epoch,
            batch_size=settings.batch_size,
            skip=done,
            seed=settings.seed,
            num_workers=settings.num_workers,
        )
        for z, z_upper, y in loader:
            if step >= settings.steps:
                break
            z_conds = [z_upper.to(info.device)] if config.conditioner is not None else []
            with parts.precision.autocast():
                out = wrapped(z.to(info.device), z_conds, y.to(info.device) if labeller is not None else None)
            loss = out.loss.mean()
            grad_norm = optimizer_step(loss, model, opt, parts.precision, settings.optim.clip)
            schedule.step()
            if ema is not None:
                ema.update()
            step += 1
            metrics = dict(
                loss=float(loss.detach()),
                gen_loss=float(out.gen_loss.mean().detach()),
                prime_loss=float(out.prime_loss.mean().detach()),
                grad_norm=grad_norm,
                lr=schedule.get_last_lr()[0],
            )
            losses.append(metrics["loss"])
            if on_step is not None:
                on_step(step, metrics)
            if log is not None and (step % settings.log_every == 0 or step == settings.steps):
                log.write(step, metrics)
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}")
            if info.is_main and (step % settings.save_every == 0 or step == settings.steps):
                checkpoint = save_run(settings.out_dir, step, parts, hps=hps)
    bar.close()
    return PriorTrainResult(step=step, losses=losses, checkpoint=checkpoint, model=model)


def _check_label_bins(config: PriorConfig, labeller: Labeller) -> None:
    """The embedding tables must have a row for every id the tables can produce."""
    max_artist = max(labeller.tables.artists.ids.values(), default=0)
    max_genre = max(labeller.tables.genres.ids.values(), default=0)
    genre_bins, artist_bins = config.labels.y_bins
    if max_artist >= artist_bins or max_genre >= genre_bins:
        raise ValueError(
            f"the id tables need y_bins of at least ({max_genre + 1}, {max_artist + 1}) but the prior has {tuple(config.labels.y_bins)}"
        )
