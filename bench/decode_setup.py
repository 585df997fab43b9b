"""Official prior architectures with random weights, ready for single-token cached steps (gpu_sampling.py, decode_ops.py).

Speed and overhead benchmarks need the real depth, context, heads and attention pattern, not real
weights (docs/perf-anchors.md §6.1); `narrow` keeps all of those and shrinks only the widths, so a CPU
measures the per-layer overhead of a step rather than its matmuls.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from jukebox_model import official
from jukebox_model.config import LyricsMode, PriorConfig
from jukebox_model.prior.autoregressive import ConditionalAutoregressive2D
from jukebox_model.prior.prior import DecoderInputs, Prior
from jukebox_model.sampling.precision import cast_for_inference


def narrow(config: PriorConfig, width: int) -> PriorConfig:
    """Same depth, context, heads and patterns; widths scaled so heads still divide the attention width."""

    def scale(t):
        return dataclasses.replace(t, width=width)

    cond = dataclasses.replace(config.conditioner, width=max(8, width // 2)) if config.conditioner else None
    enc = scale(config.lyrics_encoder) if config.lyrics_encoder else None
    return dataclasses.replace(
        config, prior=scale(config.prior), lyrics_encoder=enc, conditioner=cond, fp16_params=False
    )


@dataclass
class DecodeSetup:
    """A prior's decoder with preallocated caches and zero conditioning; `step(p)` is one sampling step at p."""

    prior: Prior
    model: ConditionalAutoregressive2D
    token: Tensor  # (N, 1) the token fed at every step
    run: dict[str, Any]  # cache, x_cond, y_cond, encoder_kv: what sample_window passes to forward_cached

    def step(self, position: int) -> Tensor:
        """The sampler's per-token step (`ConditionalAutoregressive2D.step`), position on the device."""
        at = torch.tensor(position, device=self.token.device)
        return self.model.step(
            self.token, at, cache=self.run["cache"], x_cond=self.run["x_cond"], y_cond=self.run["y_cond"]
        )


@torch.no_grad()
def random_prior(
    config: PriorConfig, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> Prior:
    """Random N(0, 0.02) weights under seed 0, built on `meta` first (the 5b never holds fp32 init twice),
    the output head tied as loading ties it, cast once to `dtype` as the engine does."""
    device = torch.device(device)
    torch.manual_seed(0)
    with torch.device("meta"):
        prior = Prior(config, official.VQVAE)
    prior = prior.to_empty(device=device)
    if not config.merged_decoder:
        prior.prior.x_out.weight = prior.prior.x_emb.weight
    for p in prior.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return cast_for_inference(prior, dtype)


@torch.no_grad()
def random_inputs(prior: Prior, batch: int) -> DecoderInputs:
    """Small random conditioning of the right shapes (timing or upper level, label start, lyrics states)."""
    model, width = prior.prior, prior.config.prior.width
    device, dtype = model.x_emb.weight.device, model.compute_dtype
    x_cond = 0.02 * torch.randn(batch, model.length, width, device=device, dtype=dtype)
    y_cond = 0.02 * torch.randn(batch, 1, width, device=device, dtype=dtype) if model.y_cond else None
    cross = prior.mode is LyricsMode.CROSS_ATTENTION
    encoder_kv = 0.02 * torch.randn(batch, prior.n_tokens, width, device=device, dtype=dtype) if cross else None
    return DecoderInputs(x_cond, y_cond, encoder_kv)


@torch.no_grad()
def decode_setup(
    config: PriorConfig, *, batch: int = 1, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> DecodeSetup:
    prior = random_prior(config, device=device, dtype=dtype)
    model = prior.prior
    inputs = random_inputs(prior, batch)
    cache = prior.empty_cache(batch, dtype=dtype, device=device)
    token = torch.zeros(batch, 1, dtype=torch.long, device=device)
    run = {"cache": cache, "x_cond": inputs.x_cond, "y_cond": inputs.y_cond, "encoder_kv": inputs.encoder_kv}
    setup = DecodeSetup(prior, model, token, run)
    if inputs.encoder_kv is not None:
        model.transformer.project_encoder(cache, inputs.encoder_kv)  # once per window, as sampling does
    return setup
