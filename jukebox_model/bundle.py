"""Load a VQ-VAE and its priors into a ready `Sampler`: the official release or checkpoints of our own.

Priors and the VQ-VAE are built on the meta device and assigned the checkpoint's tensors one at a
time (checkpoints.assign_state_strict), each going to the target device in its target precision, so a
model is never initialised, and never held twice: loading peaks at the loaded model's size (issue #23).
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import official
from .checkpoints import CheckpointError, assign_state_strict, load_vqvae, model_state, read_checkpoint
from .config import PriorConfig
from .hparams import prior_config_from_hparams
from .labels import Labeller
from .prior.prior import Prior
from .sampling.precision import inference_dtype_rule
from .sampling.sampler import LevelModel, Sampler
from .vqvae import VQVAE


def materialise_prior(
    config: PriorConfig,
    vqvae: VQVAE,
    state: dict[str, torch.Tensor],
    *,
    device: torch.device | str,
    source: str,
    dtype: torch.dtype | None = None,
) -> Prior:
    """Build on meta and assign the weights strictly, each in its inference dtype (`dtype`, the
    norms excepted; None: the module's own) on `device`. Consumes `state`: pass its only reference."""
    with torch.device("meta"):
        prior = Prior(config, vqvae.config)  # the output head is tied here; assigning keeps it one tensor
    rule = inference_dtype_rule(dtype) if dtype is not None else None
    assign_state_strict(prior, state, source=source, device=device, dtype_for=rule)
    return prior.eval()


def _labeller(config: PriorConfig, vqvae: VQVAE, ids_dir: Path | None) -> Labeller | None:
    if config.labels is None:
        return None
    if ids_dir is None:
        raise ValueError("these priors are label-conditioned: give the folder of artist/genre id tables (--ids)")
    return Labeller.for_prior(
        config.labels,
        ids_dir,
        n_ctx=config.n_ctx,
        hop_length=vqvae.hop_lengths[config.level],
        check_timing=config.is_top,
    )


def load_checkpoint_bundle(
    vqvae_path: Path,
    prior_paths: list[Path],
    *,
    ids_dir: Path | None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> Sampler:
    """A VQ-VAE and priors from files that carry their hparams (trained here, or the reference fixtures);
    `dtype`: the priors' inference precision, applied per tensor as it loads (None: as built)."""
    vqvae = load_vqvae(vqvae_path, device=device)
    levels = {}
    for path in prior_paths:
        checkpoint = read_checkpoint(path)
        try:
            config = prior_config_from_hparams(checkpoint.get("hps") or {}, vqvae_levels=vqvae.config.levels)
        except KeyError as e:
            raise CheckpointError(
                f"{path}: its hps do not describe a prior ({e}); load official files with load_official_bundle"
            ) from None
        if config.level in levels:
            raise ValueError(f"two priors for level {config.level} (second: {path})")
        state = model_state(checkpoint, source=str(path))
        del checkpoint  # the state holds the only references: each tensor is dropped as it is assigned
        prior = materialise_prior(config, vqvae, state, device=device, source=str(path), dtype=dtype)
        levels[config.level] = LevelModel(prior, _labeller(config, vqvae, ids_dir))
    return Sampler(vqvae, levels)


def load_official_bundle(
    root: Path,
    name: str,
    *,
    ids_dir: Path | None,
    device: torch.device | str = "cpu",
    levels: tuple[int, ...] = (0, 1, 2),
    dtype: torch.dtype | None = None,
) -> Sampler:
    """An official bundle ('5b', '5b_lyrics', '1b_lyrics') from a folder laid out as the download paths
    (root/jukebox/models/5b/vqvae.pth.tar, …); configs are the official ones, not the files' hps.
    `dtype`: the priors' inference precision, applied per tensor as it loads (None: as built)."""
    if name not in official.BUNDLES:
        raise ValueError(f"unknown bundle {name!r}; choose from {', '.join(official.BUNDLES)}")
    spec = official.BUNDLES[name]
    vqvae = load_vqvae(root / official.CHECKPOINT_PATHS[spec.vqvae], device=device, config=official.VQVAES[spec.vqvae])
    loaded = {}
    for level in levels:
        model_name = spec.priors[level]
        path = root / official.CHECKPOINT_PATHS[model_name]
        config = official.PRIORS[model_name]
        state = model_state(read_checkpoint(path), source=str(path))
        loaded[level] = LevelModel(
            materialise_prior(config, vqvae, state, device=device, source=str(path), dtype=dtype),
            _labeller(config, vqvae, ids_dir),
        )
    return Sampler(vqvae, loaded)
