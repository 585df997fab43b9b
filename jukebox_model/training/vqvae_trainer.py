"""Train the hierarchical VQ-VAE on a folder of audio, on one device or many (torchrun DDP).

Checkpoints are reference-format files whose `model` holds the EMA weights (what the reference
saves); the full training state, codebook statistics included, rides along (run_state.py) so
that a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..checkpoints import load_state_strict, model_state, read_checkpoint, vqvae_config_from_checkpoint
from ..config import VQVAEConfig
from ..hparams import vqvae_config_to_hparams
from ..vqvae import VQVAE
from ..vqvae.losses import SPEC_N_FFT, calculate_bandwidth
from .audio_dataset import AudioCrops, scan_audio_folder
from .distributed import distributed_session
from .ema import ParameterEMA, default_ema_decay
from .loop import MetricsLog, OptimSettings, Precision, batches_per_epoch, epoch_loader, make_optimizer, optimizer_step
from .run_state import RunParts, restore_run, save_run

DEFAULT_SAMPLE_LENGTH = 262144  # samples per crop (~5.9 s at 44.1 kHz), as the reference trains the VQ-VAE


@dataclass(frozen=True, kw_only=True)
class VQVAETrainSettings:
    audio_dir: Path
    out_dir: Path
    sample_length: int = DEFAULT_SAMPLE_LENGTH
    batch_size: int = 4  # per process
    steps: int = 10000
    optim: OptimSettings = field(default_factory=OptimSettings)
    precision: str = "fp32"
    ema: bool = True
    ema_decay: float | None = None  # default: the reference's rule from batch size and world size
    save_every: int = 1000
    log_every: int = 10
    bandwidth_seconds: float = 600.0  # audio used for the loss normalisers
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True
    # fine-tune the decoders alone: encoders and codebooks stay frozen, so codes (and any prior
    # trained on them) stay valid while the sound of their decoding improves
    decoders_only: bool = False
    # train these levels alone (None: every level); the others stay frozen and are not run, so a level
    # added on top of a trained VQ-VAE (init_from a VQ-VAE with fewer levels) leaves their codes valid
    train_levels: tuple[int, ...] | None = None


@dataclass(frozen=True)
class TrainResult:
    step: int
    losses: list[float]  # per step, this process
    usage: list[float]  # mean codebook usage fraction per step
    checkpoint: Path | None  # last checkpoint written (main process only)
    model: VQVAE  # the trained model (raw weights, not the EMA)


def _hps(config: VQVAEConfig, settings: VQVAETrainSettings, bandwidth: dict[str, float]) -> dict[str, Any]:
    """Reference-style hparams for the checkpoint: the VQ-VAE keys plus what training used."""
    return {
        **vqvae_config_to_hparams(config),
        "sample_length": settings.sample_length,
        "bandwidth": dict(bandwidth),
        "bs": settings.batch_size,
        **{k: v for k, v in asdict(settings.optim).items()},
    }


def _bandwidth(dataset: AudioCrops, settings: VQVAETrainSettings) -> dict[str, float]:
    """Identical on every rank: `bandwidth_seconds` of epoch-0 crops spread evenly over the whole folder."""
    n_crops = min(len(dataset), max(1, math.ceil(settings.bandwidth_seconds * dataset.sr / settings.sample_length)))
    indices = sorted({int(i) for i in np.linspace(0, len(dataset) - 1, n_crops)})
    clips = (dataset[i][:, 0] for i in indices)
    bandwidth = calculate_bandwidth(clips)
    floor = 1e-8  # a silent dataset would otherwise divide by zero
    return {k: max(v, floor) for k, v in bandwidth.items()}


def train_vqvae(
    config: VQVAEConfig,
    settings: VQVAETrainSettings,
    *,
    resume: Path | None = None,
    init_from: Path | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train until `settings.steps`; resume from `resume` (ours: exact; any other VQ-VAE file: fine-tune).

    `init_from` starts a new run (step 0, new optimiser) from a trained VQ-VAE of the same config,
    keeping its codebooks and loss normalisers: how a decoders-only fine-tune begins.
    """
    if resume is not None and init_from is not None:
        raise ValueError("give either resume (continue a run) or init_from (start a new one from its weights)")
    with distributed_session(settings.device) as info:
        return _train(config, settings, info, resume, init_from, on_step)


def _check_sample_length(config: VQVAEConfig, sample_length: int) -> None:
    """The spectral losses reflect-pad by n_fft / 2, so a crop must be longer than that."""
    shortest = max(SPEC_N_FFT, *config.multispec_loss_n_fft) // 2 + 1
    top_hop = config.hop_lengths[-1]
    if sample_length < shortest or sample_length % top_hop:
        raise ValueError(
            f"sample_length must be a multiple of {top_hop} and at least {shortest} samples, got {sample_length}"
        )


def _train(config, settings, info, resume, init_from, on_step) -> TrainResult:
    _check_sample_length(config, settings.sample_length)
    dataset = AudioCrops(
        scan_audio_folder(settings.audio_dir), sample_length=settings.sample_length, sr=config.sr, seed=settings.seed
    )
    torch.manual_seed(settings.seed)  # the same initial weights, hence the same EMA start, on every rank
    model = VQVAE(config).to(info.device)
    levels = _trained_levels(config, settings)
    frozen = _frozen_parts(model, levels, settings.decoders_only)
    for part in frozen:
        part.requires_grad_(False)
    opt, schedule = make_optimizer(model, settings.optim)
    ema = (
        ParameterEMA(model, settings.ema_decay or default_ema_decay(settings.batch_size, info.world_size))
        if settings.ema
        else None
    )
    parts = RunParts(model, opt, schedule, ema, Precision(settings.precision, info.device))
    precision = parts.precision
    step, bandwidth = 0, None
    torch.manual_seed(settings.seed + info.rank)  # restart vectors come from rank 0 (broadcast) in any case

    if resume is not None:
        step, bandwidth = _resume(resume, parts, config, settings, info)
    elif init_from is not None:
        bandwidth = _init_from(init_from, parts, config, settings, info)
    if bandwidth is None:
        bandwidth = _bandwidth(dataset, settings)
    wrapped = DistributedDataParallel(model) if info.world_size > 1 else model

    log = MetricsLog(settings.out_dir / "metrics.jsonl") if info.is_main else None
    bar = tqdm(total=settings.steps, initial=step, disable=not (settings.progress and info.is_main), desc="vqvae")
    losses, usage = [], []
    per_epoch = batches_per_epoch(len(dataset), info.world_size, settings.batch_size)
    checkpoint = None
    model.train()
    for part in frozen:
        part.eval()  # a frozen codebook takes no EMA updates and no restarts
    while step < settings.steps:
        epoch, done = divmod(step, per_epoch)
        for x in epoch_loader(
            dataset,
            info,
            epoch,
            batch_size=settings.batch_size,
            skip=done,
            seed=settings.seed,
            num_workers=settings.num_workers,
        ):
            if step >= settings.steps:
                break
            with precision.autocast():
                out = wrapped(x.to(info.device), bandwidth=bandwidth, levels=levels)
            grad_norm = optimizer_step(out.loss, model, opt, precision, settings.optim.clip)
            schedule.step()
            if ema is not None:
                ema.update()
            step += 1
            metrics = {k: float(v.detach()) for k, v in out.metrics.items()}
            metrics.update(loss=float(out.loss.detach()), grad_norm=grad_norm, lr=schedule.get_last_lr()[0])
            used = [metrics.get(f"usage_l{lv + 1}", math.nan) / config.l_bins for lv in levels]
            losses.append(metrics["loss"])
            usage.append(sum(used) / len(used))
            if on_step is not None:
                on_step(step, metrics)
            if log is not None and (step % settings.log_every == 0 or step == settings.steps):
                log.write(step, metrics)
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", usage=f"{usage[-1]:.2f}")
            if step % settings.save_every == 0 or step == settings.steps:
                checkpoint = _save(parts, config, settings, bandwidth, step, info)
    bar.close()
    return TrainResult(step=step, losses=losses, usage=usage, checkpoint=checkpoint, model=model)


def _trained_levels(config: VQVAEConfig, settings: VQVAETrainSettings) -> list[int]:
    levels = sorted(set(range(config.levels) if settings.train_levels is None else settings.train_levels))
    if not levels or not all(0 <= level < config.levels for level in levels):
        raise ValueError(f"train_levels must be among 0..{config.levels - 1}, got {settings.train_levels}")
    return levels


def _frozen_parts(model: VQVAE, levels: list[int], decoders_only: bool) -> list[torch.nn.Module]:
    """The modules that take no gradient: untrained levels whole; with decoders_only, encoders and codebooks."""
    frozen: list[torch.nn.Module] = []
    for level in range(model.config.levels):
        codebook, encoder, decoder = model.bottleneck.level_blocks[level], model.encoders[level], model.decoders[level]
        if level not in levels:
            frozen += [encoder, codebook, decoder]
        elif decoders_only:
            frozen += [encoder, codebook]
    return frozen


def _save(parts: RunParts, config, settings, bandwidth, step, info) -> Path | None:
    if not info.is_main:
        return None
    blocks = parts.model.bottleneck.level_blocks
    codebooks = {
        "k_sum": [b.k_sum.cpu() for b in blocks],
        "k_elem": [b.k_elem.cpu() for b in blocks],
        "threshold": [b.threshold for b in blocks],
    }
    return save_run(settings.out_dir, step, parts, hps=_hps(config, settings, bandwidth), extra=codebooks)


def _check_same_config(path: Path, checkpoint: dict[str, Any], config: VQVAEConfig) -> None:
    """Shapes alone would not catch e.g. another l_mu or loss weight; a resumed run must be the same model."""
    saved = vqvae_config_from_checkpoint(checkpoint)
    changed = [
        f"{f.name} {getattr(saved, f.name)!r} -> {getattr(config, f.name)!r}"
        for f in fields(config)
        if getattr(saved, f.name) != getattr(config, f.name)
    ]
    if changed:
        raise ValueError(
            f"{path} was trained with another VQ-VAE config ({'; '.join(changed)}); resume with the same --config"
        )


def _restore_codebook_stats(model: VQVAE, state: dict[str, Any], device: torch.device) -> None:
    """The codebooks' EMA statistics and restart thresholds a checkpoint's training state saved."""
    for block, k_sum, k_elem, threshold in zip(
        model.bottleneck.level_blocks, state["k_sum"], state["k_elem"], state["threshold"]
    ):
        block.k_sum, block.k_elem, block.initialised = k_sum.to(device), k_elem.to(device), True
        block.threshold = threshold


def _lower_levels(path: Path, checkpoint: dict[str, Any], config: VQVAEConfig) -> int:
    """How many levels a checkpoint gives `config`: all of them, or its own when it is `config` less top levels."""
    saved = vqvae_config_from_checkpoint(checkpoint)
    if saved.levels < config.levels:
        per_level = ("downs_t", "strides_t", "hvqvae_multipliers")
        prefix = {name: getattr(config, name)[: saved.levels] for name in per_level}
        # the restart threshold is a training setting (a new top level sees far fewer tokens per step than
        # the levels below did, so it needs a lower one); the frozen levels take no codebook updates
        grown = replace(
            saved,
            levels=config.levels,
            revival_threshold=config.revival_threshold,
            **{n: getattr(config, n) for n in per_level},
        )
        if grown == config and all(getattr(saved, name) == value for name, value in prefix.items()):
            return saved.levels
    _check_same_config(path, checkpoint, config)
    return config.levels


def _init_from(path, parts: RunParts, config, settings, info) -> dict[str, float] | None:
    """Weights, codebook statistics and loss normalisers of a trained VQ-VAE of the same config.

    A VQ-VAE that is this config less its top level(s) gives its levels; the new ones start fresh.
    """
    checkpoint = read_checkpoint(path)
    given = _lower_levels(path, checkpoint, config)
    model = parts.model
    state_dict = model_state(checkpoint, source=str(path))
    if given < config.levels:
        _load_lower_levels(model, state_dict, given, source=str(path))
        for level in range(given, config.levels):
            _start_from_level_below(model, level)
            model.bottleneck.level_blocks[level].threshold = config.revival_threshold  # its own token count
    else:
        load_state_strict(model, state_dict, source=str(path))
    state = checkpoint.get("train_state") or {}
    if "k_sum" in state:
        _restore_codebook_stats(model, state, info.device)
    else:  # a shipped (weights-only) VQ-VAE: its codebooks' EMA statistics are rebuilt as a fine-tune does
        _assume_even_usage(model, config, settings, info, levels=range(given))
    for block in model.bottleneck.level_blocks[:given]:
        block.initialised = True
    if parts.ema is not None:
        parts.ema.shadow = {name: p.detach().clone() for name, p in parts.ema.params.items()}
    hps = checkpoint.get("hps") or {}
    return {k: float(v) for k, v in hps["bandwidth"].items()} if "bandwidth" in hps else None


def _start_from_level_below(model: VQVAE, level: int) -> None:
    """A new level's encoder and decoder share all but their last block's geometry with the level below:
    start those blocks (and the decoder's output conv) from its trained weights, so the new level only has
    to learn its extra down- and upsampling instead of hearing audio from scratch (where a new codebook
    collapses to a few codes before the encoder has learnt anything)."""
    below, here = level - 1, level
    pairs = [(model.encoders[below].level_blocks[j], model.encoders[here].level_blocks[j]) for j in range(level)]
    pairs += [(model.decoders[below].level_blocks[j], model.decoders[here].level_blocks[j]) for j in range(level)]
    pairs.append((model.decoders[below].out, model.decoders[here].out))
    for source, target in pairs:
        source_state, target_state = source.state_dict(), target.state_dict()
        if {k: v.shape for k, v in source_state.items()} == {k: v.shape for k, v in target_state.items()}:
            target.load_state_dict(source_state)


def _load_lower_levels(model: VQVAE, state: dict[str, torch.Tensor], given: int, source: str) -> None:
    """Strict for the levels given: every key of the file is used and every key of those levels is filled."""
    prefixes = tuple(
        f"{part}.{level}." for part in ("encoders", "decoders", "bottleneck.level_blocks") for level in range(given)
    )
    own = {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{source}: keys do not match levels 0..{given - 1}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model.load_state_dict(state, strict=False)


def _assume_even_usage(model: VQVAE, config, settings, info, levels: range) -> None:
    """EMA statistics for loaded codebooks that came without theirs: every code used equally."""
    for level in levels:
        # expected tokens per code and update; the reference leaves out the batch size (spec §2.3),
        # which starts every code at 1/bs of its steady-state count, nearer the restart threshold
        tokens = settings.sample_length // config.hop_lengths[level] * info.world_size * settings.batch_size
        model.bottleneck.level_blocks[level].restore_k(num_tokens=tokens, threshold=config.revival_threshold)


def _resume(path, parts: RunParts, config, settings, info) -> tuple[int, dict[str, float] | None]:
    checkpoint = read_checkpoint(path)
    model = parts.model
    if checkpoint.get("train_state") is None:  # an official or foreign VQ-VAE: fine-tune, restart the EMA statistics
        load_state_strict(model, model_state(checkpoint, source=str(path)), source=str(path))
        _assume_even_usage(model, config, settings, info, levels=range(config.levels))
        if parts.ema is not None:
            parts.ema.shadow = {name: p.detach().clone() for name, p in parts.ema.params.items()}
        return 0, None
    _check_same_config(path, checkpoint, config)
    step, hps, state = restore_run(path, parts)
    _restore_codebook_stats(model, state, info.device)
    bandwidth = {k: float(v) for k, v in hps["bandwidth"].items()} if "bandwidth" in hps else None
    return step, bandwidth
