"""Conversion between reference-style hparams dicts and our frozen configs.

The reference stores a flat `hps` dict in every checkpoint (spec §1.2, §7). We read it to build
configs and write it back so our checkpoints stay in the reference format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from .config import ConditionerConfig, LabelConfig, PriorConfig, TransformerConfig, VQVAEConfig

_VQVAE_TUPLES = (
    "downs_t",
    "strides_t",
    "hvqvae_multipliers",
    "multispec_loss_n_fft",
    "multispec_loss_hop_length",
    "multispec_loss_window_size",
)


def _get(hps: Mapping[str, Any], key: str) -> Any:
    try:
        return hps[key]
    except KeyError:
        raise KeyError(f"hparams dict has no {key!r}; expected a complete reference-style hparams dict") from None


def _tuple(value: Any) -> tuple | None:
    return None if value is None else tuple(value)


def vqvae_config_from_hparams(hps: Mapping[str, Any]) -> VQVAEConfig:
    """Build a VQVAEConfig from a reference hparams dict (e.g. a checkpoint's `hps`)."""
    kwargs: dict[str, Any] = {}
    for f in fields(VQVAEConfig):
        value = _get(hps, f.name)
        kwargs[f.name] = _tuple(value) if f.name in _VQVAE_TUPLES else value
    return VQVAEConfig(**kwargs)


def _transformer(hps: Mapping[str, Any], prefix: str) -> TransformerConfig:
    """`prefix` is 'prior_' or 'prime_'; the main transformer's heads/blocks/... carry no prefix."""
    p = "" if prefix == "prior_" else prefix
    return TransformerConfig(
        width=_get(hps, f"{prefix}width"),
        depth=_get(hps, f"{prefix}depth"),
        heads=_get(hps, f"{p}heads"),
        attn_order=_get(hps, f"{p}attn_order"),
        blocks=_get(hps, f"{p}blocks"),
        spread=_get(hps, f"{p}spread"),
        m_attn=_get(hps, f"{p}m_attn"),
        m_mlp=_get(hps, f"{p}m_mlp"),
        init_scale=_get(hps, f"{p}init_scale"),
        zero_out=bool(_get(hps, f"{p}zero_out")),
        res_scale=bool(_get(hps, f"{p}res_scale")),
        pos_init=bool(_get(hps, f"{p}pos_init")),
    )


def prior_config_from_hparams(hps: Mapping[str, Any], *, vqvae_levels: int = 3) -> PriorConfig:
    """Build a PriorConfig. `vqvae_levels` decides whether the prior is the top one (no conditioner),
    as the reference takes that from the VQ-VAE, not from the prior's own (default) `levels` key."""
    level = _get(hps, "level")
    if not 0 <= level < vqvae_levels:
        raise ValueError(f"prior level {level} outside the VQ-VAE's {vqvae_levels} levels")
    use_tokens = bool(_get(hps, "use_tokens"))
    single_enc_dec = bool(_get(hps, "single_enc_dec"))
    conditioner = None
    if level != vqvae_levels - 1:
        conditioner = ConditionerConfig(
            width=_get(hps, "cond_width"),
            depth=_get(hps, "cond_depth"),
            m_conv=_get(hps, "cond_m_conv"),
            dilation_growth_rate=_get(hps, "cond_dilation_growth_rate"),
            dilation_cycle=_get(hps, "cond_dilation_cycle"),
            zero_out=bool(_get(hps, "cond_zero_out")),
            res_scale=bool(_get(hps, "cond_res_scale")),
            c_res=int(_get(hps, "cond_c_res")),
        )
    labels = None
    if _get(hps, "labels"):
        labels = LabelConfig(
            y_bins=tuple(_get(hps, "y_bins")),
            t_bins=_get(hps, "t_bins"),
            max_bow_genre_size=_get(hps, "max_bow_genre_size"),
            min_duration=_get(hps, "min_duration"),
            max_duration=_get(hps, "max_duration"),
            labels_v3=bool(_get(hps, "labels_v3")),
            use_tokens=use_tokens,
            n_tokens=_get(hps, "n_tokens"),
            n_vocab=_get(hps, "n_vocab"),
        )
    return PriorConfig(
        level=level,
        n_ctx=_get(hps, "n_ctx"),
        prior=_transformer(hps, "prior_"),
        lyrics_encoder=_transformer(hps, "prime_") if use_tokens and not single_enc_dec else None,
        conditioner=conditioner,
        labels=labels,
        merged_decoder=bool(_get(hps, "merged_decoder")),
        single_enc_dec=single_enc_dec,
        prime_loss_fraction=_get(hps, "prime_loss_fraction"),
        fp16_params=bool(_get(hps, "fp16_params")),
        alignment_layer=_get(hps, "alignment_layer"),
        alignment_head=_get(hps, "alignment_head"),
    )


def vqvae_config_to_hparams(config: VQVAEConfig) -> dict[str, Any]:
    """The reference-style keys of a VQ-VAE config (tuples as lists, like JSON)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def prior_config_to_hparams(config: PriorConfig) -> dict[str, Any]:
    """Flatten a PriorConfig back to reference-style keys, so our checkpoints carry a usable `hps`."""
    t = config.prior
    hps: dict[str, Any] = {
        "level": config.level,
        "n_ctx": config.n_ctx,
        "prior_width": t.width,
        "prior_depth": t.depth,
        "heads": t.heads,
        "attn_order": t.attn_order,
        "blocks": t.blocks,
        "spread": t.spread,
        "m_attn": t.m_attn,
        "m_mlp": t.m_mlp,
        "init_scale": t.init_scale,
        "zero_out": t.zero_out,
        "res_scale": t.res_scale,
        "pos_init": t.pos_init,
        "merged_decoder": config.merged_decoder,
        "single_enc_dec": config.single_enc_dec,
        "prime_loss_fraction": config.prime_loss_fraction,
        "fp16_params": config.fp16_params,
        "alignment_layer": config.alignment_layer,
        "alignment_head": config.alignment_head,
        "labels": config.labels is not None,
        "use_tokens": config.labels.use_tokens if config.labels else False,
    }
    if config.lyrics_encoder is not None:
        e = config.lyrics_encoder
        hps.update(
            prime_width=e.width,
            prime_depth=e.depth,
            prime_heads=e.heads,
            prime_attn_order=e.attn_order,
            prime_blocks=e.blocks,
            prime_spread=e.spread,
            prime_m_attn=e.m_attn,
            prime_m_mlp=e.m_mlp,
            prime_init_scale=e.init_scale,
            prime_zero_out=e.zero_out,
            prime_res_scale=e.res_scale,
            prime_pos_init=e.pos_init,
        )
    if config.conditioner is not None:
        c = config.conditioner
        hps.update(
            cond_width=c.width,
            cond_depth=c.depth,
            cond_m_conv=c.m_conv,
            cond_dilation_growth_rate=c.dilation_growth_rate,
            cond_dilation_cycle=c.dilation_cycle,
            cond_zero_out=c.zero_out,
            cond_res_scale=c.res_scale,
            cond_c_res=c.c_res,
        )
    if config.labels is not None:
        lab = config.labels
        hps.update(
            y_bins=list(lab.y_bins),
            t_bins=lab.t_bins,
            max_bow_genre_size=lab.max_bow_genre_size,
            min_duration=lab.min_duration,
            max_duration=lab.max_duration,
            labels_v3=lab.labels_v3,
            n_tokens=lab.n_tokens,
            n_vocab=lab.n_vocab,
        )
    return hps
