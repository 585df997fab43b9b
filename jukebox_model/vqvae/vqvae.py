"""The hierarchical VQ-VAE: three independent auto-encoders sharing one input (spec §2).

encode: audio (N, T, 1) -> codes [(N, T/8), (N, T/32), (N, T/128)]
decode: codes of level l -> audio (N, T, 1) through decoders[l] alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import VQVAEConfig
from . import losses
from .bottleneck import Bottleneck
from .encdec import Decoder, Encoder


@dataclass(frozen=True)
class VQVAEOutput:
    x_out: Tensor  # (N, T, 1) reconstruction of the lowest level trained (level 0 unless `levels` said otherwise)
    loss: Tensor  # scalar training objective
    metrics: dict[str, Tensor]  # reference metric names, plus bottleneck metrics per level


def _check_audio(x: Tensor) -> None:
    if x.dim() != 3 or x.shape[-1] != 1:
        raise ValueError(f"VQ-VAE input must be mono audio shaped (N, T, 1), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"VQ-VAE input must be floating point audio, got {x.dtype}")


class VQVAE(nn.Module):
    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(config.levels):
            kwargs = dict(
                width=config.level_width(level),
                depth=config.level_depth(level),
                m_conv=config.m_conv,
                dilation_growth_rate=config.dilation_growth_rate,
                dilation_cycle=config.dilation_cycle,
            )
            geometry = (1, config.emb_width, level + 1, config.downs_t[: level + 1], config.strides_t[: level + 1])
            self.encoders.append(Encoder(*geometry, **kwargs))
            self.decoders.append(
                Decoder(*geometry, reverse_decoder_dilation=config.vqvae_reverse_decoder_dilation, **kwargs)
            )
        if not config.use_bottleneck:
            raise ValueError("use_bottleneck=False (a plain auto-encoder) is not supported: Jukebox needs codes")
        self.bottleneck = Bottleneck(config.l_bins, config.emb_width, config.l_mu, config.levels)

    @property
    def hop_lengths(self) -> tuple[int, ...]:
        return self.config.hop_lengths

    def _levels(self, start_level: int, end_level: int | None) -> range:
        end = self.config.levels if end_level is None else end_level
        if not 0 <= start_level < end <= self.config.levels:
            raise ValueError(f"levels [{start_level}, {end}) outside 0..{self.config.levels}")
        return range(start_level, end)

    def encode(self, x: Tensor, start_level: int = 0, end_level: int | None = None) -> list[Tensor]:
        """Audio (N, T, 1) -> int64 codes per level, (N, T // hop_l)."""
        _check_audio(x)
        x_in = x.permute(0, 2, 1).to(self.bottleneck.level_blocks[0].k.dtype)  # (N, 1, T)
        levels = self._levels(start_level, end_level)
        return self.bottleneck.encode([self.encoders[level](x_in) for level in levels], start_level=levels.start)

    def decode(self, zs: list[Tensor], start_level: int = 0, end_level: int | None = None) -> Tensor:
        """Codes of levels start_level.. (zs[0] belongs to start_level) -> audio (N, T, 1) from that level alone."""
        self._levels(start_level, end_level)
        if not zs:
            raise ValueError("decode needs the codes of at least one level")
        latents = self.bottleneck.level_blocks[start_level].decode(zs[0])  # (N, W, T_l)
        return self.decoders[start_level](latents).permute(0, 2, 1)

    def _reconstruction_loss(self, loss_fn: str, x: Tensor, x_hat: Tensor, bandwidth: Mapping[str, float]) -> Tensor:
        cfg = self.config
        weights = dict(lmix_l1=cfg.lmix_l1, lmix_l2=cfg.lmix_l2, lmix_linf=cfg.lmix_linf)
        return losses.reconstruction_loss(loss_fn, x, x_hat, bandwidth, linf_k=cfg.linf_k, **weights)

    def _multispectral_loss(self, x: Tensor, x_hat: Tensor) -> Tensor:  # (N,)
        cfg = self.config
        resolutions = (cfg.multispec_loss_n_fft, cfg.multispec_loss_hop_length, cfg.multispec_loss_window_size)
        return losses.multispectral_loss(x, x_hat, *resolutions)

    def forward(
        self,
        x: Tensor,
        *,
        bandwidth: Mapping[str, float],
        loss_fn: str | None = None,
        levels: Sequence[int] | None = None,
    ) -> VQVAEOutput:
        """Training pass: reconstruct at every level; sum reconstruction, spectral and commit losses.

        `levels` trains some levels alone (the levels are independent auto-encoders): a level added on
        top of a trained VQ-VAE learns without running, or moving, the levels whose codes priors use.
        """
        _check_audio(x)
        cfg = self.config
        loss_fn = loss_fn or cfg.loss_fn
        levels = sorted(set(range(cfg.levels) if levels is None else levels))
        if not levels or not all(0 <= level < cfg.levels for level in levels):
            raise ValueError(f"levels to train must be among 0..{cfg.levels - 1}, got {levels}")
        x_in = x.permute(0, 2, 1).float()
        quantised = dict(
            zip(levels, self.bottleneck([self.encoders[level](x_in) for level in levels], levels), strict=True)
        )
        x_outs = {level: self.decoders[level](q.vectors).permute(0, 2, 1) for level, q in quantised.items()}

        metrics: dict[str, Tensor] = {}
        recons_loss = spec_loss = multispec_loss = x.new_zeros(())
        x_target = x.float()
        for level in reversed(levels):
            x_out = x_outs[level]
            this_recons = self._reconstruction_loss(loss_fn, x_target, x_out, bandwidth)
            this_spec = losses.spectral_loss(x_target, x_out).mean() / bandwidth["spec"]
            this_multispec = self._multispectral_loss(x_target, x_out).mean() / bandwidth["spec"]
            metrics[f"recons_loss_l{level + 1}"] = this_recons
            metrics[f"spectral_loss_l{level + 1}"] = this_spec
            metrics[f"multispectral_loss_l{level + 1}"] = this_multispec
            recons_loss = recons_loss + this_recons
            spec_loss = spec_loss + this_spec
            multispec_loss = multispec_loss + this_multispec

        commit_loss = sum(q.commit_loss for q in quantised.values())
        loss = recons_loss + cfg.spectral * spec_loss + cfg.multispectral * multispec_loss + cfg.commit * commit_loss

        x_out = x_outs[levels[0]]
        with torch.no_grad():
            metrics.update(
                recons_loss=recons_loss,
                spectral_loss=spec_loss,
                multispectral_loss=multispec_loss,
                spectral_convergence=losses.spectral_convergence(x_target, x_out).mean(),
                l2_loss=self._reconstruction_loss("l2", x_target, x_out, bandwidth),
                l1_loss=self._reconstruction_loss("l1", x_target, x_out, bandwidth),
                linf_loss=self._reconstruction_loss("linf", x_target, x_out, bandwidth),
                commit_loss=commit_loss,
            )
            for level, q in quantised.items():
                for name, value in q.metrics.items():
                    metrics[f"{name}_l{level + 1}"] = value
        # Metrics are for logging: detached, so holding them keeps no autograd graph alive.
        return VQVAEOutput(x_out=x_out, loss=loss, metrics={name: value.detach() for name, value in metrics.items()})
