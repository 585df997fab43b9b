"""Build the official models (or any config) as modules; the only place names meet classes."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from . import official
from .config import PriorConfig, VQVAEConfig
from .prior.prior import Prior
from .vqvae import VQVAE


def build_vqvae(config: VQVAEConfig) -> VQVAE:
    return VQVAE(config)


def build_prior(config: PriorConfig, vqvae: VQVAEConfig) -> Prior:
    return Prior(config, vqvae)


def build_official(name: str, *, device: str | torch.device | None = None) -> nn.Module:
    """An official model by its hparams-set name, e.g. `build_official('prior_5b', device='meta')`."""
    if name not in official.OFFICIAL_MODELS:
        raise ValueError(f"unknown official model {name!r}; choose from {', '.join(official.OFFICIAL_MODELS)}")
    with torch.device(device) if device is not None else contextlib.nullcontext():
        if name in official.VQVAES:
            return build_vqvae(official.VQVAES[name])
        return build_prior(official.PRIORS[name], official.VQVAE)
