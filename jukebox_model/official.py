"""The official Jukebox models as data: hyper-parameters, bundles and checkpoint paths (spec §1).

Values are the reference's `setup_hparams(name, {})` results restricted to what shapes the
model; tests/jukebox_model/test_official.py pins every one against `official_manifest.json`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SAMPLE_RATE, ConditionerConfig, LabelConfig, PriorConfig, TransformerConfig, VQVAEConfig

VQVAE = VQVAEConfig(
    sr=SAMPLE_RATE,
    levels=3,
    downs_t=(3, 2, 2),
    strides_t=(2, 2, 2),
    emb_width=64,
    l_bins=2048,
    l_mu=0.99,
    commit=0.02,
    spectral=0.0,
    multispectral=1.0,
    hvqvae_multipliers=(2, 1, 1),
    width=32,
    depth=4,
    m_conv=1.0,
    dilation_growth_rate=3,
    dilation_cycle=None,
    vqvae_reverse_decoder_dilation=True,
    revival_threshold=1.0,
    use_bottleneck=True,
    loss_fn="lmix",
    linf_k=2048,
    lmix_l1=0.0,
    lmix_l2=1.0,
    lmix_linf=0.02,
    multispec_loss_n_fft=(2048, 1024, 512),
    multispec_loss_hop_length=(240, 120, 50),
    multispec_loss_window_size=(1200, 600, 240),
)

_V2_LABELS = LabelConfig(
    y_bins=(120, 4111),
    t_bins=128,
    max_bow_genre_size=5,
    min_duration=None,
    max_duration=None,
    labels_v3=False,
    use_tokens=False,
    n_tokens=0,
    n_vocab=80,
)


def _transformer(
    width: int, depth: int, heads: int, attn_order: int, blocks: int, init_scale: float
) -> TransformerConfig:
    return TransformerConfig(
        width=width,
        depth=depth,
        heads=heads,
        attn_order=attn_order,
        blocks=blocks,
        spread=None,
        m_attn=0.25,
        m_mlp=1.0,
        init_scale=init_scale,
        zero_out=False,
        res_scale=False,
        pos_init=False,
    )


def _upsampler(level: int, cond_res_scale: bool) -> PriorConfig:
    return PriorConfig(
        level=level,
        n_ctx=8192,
        prior=_transformer(1920, 72, 1, 2, 128, 0.4),
        lyrics_encoder=None,
        conditioner=ConditionerConfig(
            width=1024,
            depth=16,
            m_conv=1.0,
            dilation_growth_rate=3,
            dilation_cycle=8,
            zero_out=False,
            res_scale=cond_res_scale,
            c_res=1,
        ),
        labels=_V2_LABELS,
        merged_decoder=False,
        single_enc_dec=False,
        prime_loss_fraction=0.0,
        fp16_params=False,
        alignment_layer=None,
        alignment_head=None,
    )


UPSAMPLER_LEVEL_0 = _upsampler(0, cond_res_scale=False)
UPSAMPLER_LEVEL_1 = _upsampler(1, cond_res_scale=True)

PRIOR_5B = PriorConfig(
    level=2,
    n_ctx=8192,
    prior=_transformer(4800, 72, 8, 2, 128, 0.1),
    lyrics_encoder=None,
    conditioner=None,
    labels=LabelConfig(
        y_bins=(120, 4111),
        t_bins=128,
        max_bow_genre_size=5,
        min_duration=60.0,
        max_duration=600.0,
        labels_v3=False,
        use_tokens=False,
        n_tokens=0,
        n_vocab=80,
    ),
    merged_decoder=True,
    single_enc_dec=False,
    prime_loss_fraction=0.0,
    fp16_params=True,
    alignment_layer=None,
    alignment_head=None,
)

PRIOR_5B_LYRICS = PriorConfig(
    level=2,
    n_ctx=8192,
    prior=_transformer(4800, 79, 8, 10, 128, 0.1),
    lyrics_encoder=_transformer(1280, 18, 4, 2, 32, 0.7),
    conditioner=None,
    labels=LabelConfig(
        y_bins=(120, 4111),
        t_bins=128,
        max_bow_genre_size=5,
        min_duration=23.8,
        max_duration=600.0,
        labels_v3=False,
        use_tokens=True,
        n_tokens=512,
        n_vocab=80,
    ),
    merged_decoder=True,
    single_enc_dec=False,
    prime_loss_fraction=0.4,
    fp16_params=True,
    alignment_layer=68,
    alignment_head=2,
)

PRIOR_1B_LYRICS = PriorConfig(
    level=2,
    n_ctx=6144,
    prior=_transformer(2048, 72, 2, 12, 64, 0.2),
    lyrics_encoder=None,
    conditioner=None,
    labels=LabelConfig(
        y_bins=(604, 7898),
        t_bins=64,
        max_bow_genre_size=1,
        min_duration=17.84,
        max_duration=600.0,
        labels_v3=True,
        use_tokens=True,
        n_tokens=384,
        n_vocab=79,
    ),
    merged_decoder=False,
    single_enc_dec=True,
    prime_loss_fraction=0.4,
    fp16_params=False,
    alignment_layer=63,
    alignment_head=0,
)

VQVAES: dict[str, VQVAEConfig] = {"vqvae": VQVAE}

PRIORS: dict[str, PriorConfig] = {
    "upsampler_level_0": UPSAMPLER_LEVEL_0,
    "upsampler_level_1": UPSAMPLER_LEVEL_1,
    "prior_5b": PRIOR_5B,
    "prior_5b_lyrics": PRIOR_5B_LYRICS,
    "prior_1b_lyrics": PRIOR_1B_LYRICS,
}

# Released file of each model, relative to the download prefix. Three different files share the
# name prior_level_2.pth.tar: a cache must keep the directory.
CHECKPOINT_PATHS: dict[str, str] = {
    "vqvae": "jukebox/models/5b/vqvae.pth.tar",
    "upsampler_level_0": "jukebox/models/5b/prior_level_0.pth.tar",
    "upsampler_level_1": "jukebox/models/5b/prior_level_1.pth.tar",
    "prior_5b": "jukebox/models/5b/prior_level_2.pth.tar",
    "prior_5b_lyrics": "jukebox/models/5b_lyrics/prior_level_2.pth.tar",
    "prior_1b_lyrics": "jukebox/models/1b_lyrics/prior_level_2.pth.tar",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class BundleSpec:
    """Which official models make up a sampling bundle; priors ordered by level (0 finest)."""

    vqvae: str
    priors: tuple[str, str, str]


BUNDLES: dict[str, BundleSpec] = {
    "5b": BundleSpec(vqvae="vqvae", priors=("upsampler_level_0", "upsampler_level_1", "prior_5b")),
    "5b_lyrics": BundleSpec(vqvae="vqvae", priors=("upsampler_level_0", "upsampler_level_1", "prior_5b_lyrics")),
    "1b_lyrics": BundleSpec(vqvae="vqvae", priors=("upsampler_level_0", "upsampler_level_1", "prior_1b_lyrics")),
}

OFFICIAL_MODELS: tuple[str, ...] = ("vqvae", *PRIORS)
