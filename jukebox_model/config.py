"""Frozen hyper-parameter dataclasses for the Jukebox VQ-VAE and priors.

Field names are the reference's hparam names (spec §1) so the spec tables map one to one.
Nothing here mutates after construction; variants come from `dataclasses.replace`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum, IntEnum

SAMPLE_RATE = 44100  # Hz, the only rate the official models know

LOSS_FNS = ("l1", "l2", "linf", "lmix")


class AttnType(IntEnum):
    """Factored attention patterns, valued as the reference numbers them (spec §3.5)."""

    DENSE = 0
    BLOCK = 1
    TRANSPOSE_BLOCK = 2
    PREV_BLOCK = 3
    SUMMARY = 4
    SUMMARY_SPREAD = 5
    CROSS = 6  # encoder-decoder: queries from music, keys/values from the lyrics encoder
    PRIME = 7  # single enc-dec: attend to the leading (lyrics) positions only


class LyricsMode(Enum):
    NONE = "none"
    CROSS_ATTENTION = "cross_attention"  # 5b_lyrics: separate lyrics encoder + type-6 layers
    MERGED = "merged"  # 1b_lyrics: lyrics and music in one sequence


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


@dataclass(frozen=True, kw_only=True, slots=True)
class VQVAEConfig:
    sr: int  # samples per second
    levels: int
    downs_t: tuple[int, ...]  # number of stride-s downsamplings per level
    strides_t: tuple[int, ...]
    emb_width: int  # codebook vector width
    l_bins: int  # codebook size per level
    l_mu: float  # EMA decay of the codebook
    commit: float  # commit-loss weight
    spectral: float  # spectral-loss weight
    multispectral: float  # multi-resolution spectral-loss weight
    hvqvae_multipliers: tuple[int, ...]  # per-level width/depth multiplier
    width: int
    depth: int
    m_conv: float  # res-block inner width multiplier
    dilation_growth_rate: int
    dilation_cycle: int | None
    vqvae_reverse_decoder_dilation: bool
    revival_threshold: float  # codes with EMA usage below this are restarted
    use_bottleneck: bool
    loss_fn: str  # one of LOSS_FNS
    linf_k: int  # top-k squared errors averaged by the linf term
    lmix_l1: float
    lmix_l2: float
    lmix_linf: float
    multispec_loss_n_fft: tuple[int, ...]
    multispec_loss_hop_length: tuple[int, ...]
    multispec_loss_window_size: tuple[int, ...]

    def __post_init__(self) -> None:
        _require(self.levels >= 1, f"levels must be >= 1, got {self.levels}")
        for name in ("downs_t", "strides_t", "hvqvae_multipliers"):
            value = getattr(self, name)
            _require(len(value) == self.levels, f"{name} needs {self.levels} entries, got {value!r}")
        _require(self.loss_fn in LOSS_FNS, f"loss_fn must be one of {LOSS_FNS}, got {self.loss_fn!r}")
        _require(
            len(self.multispec_loss_n_fft)
            == len(self.multispec_loss_hop_length)
            == len(self.multispec_loss_window_size),
            "multispec_loss_n_fft/hop_length/window_size must have equal lengths",
        )
        for name in ("width", "depth", "emb_width", "l_bins", "sr"):
            _require(getattr(self, name) > 0, f"{name} must be positive, got {getattr(self, name)}")

    @property
    def downsamples(self) -> tuple[int, ...]:
        """Per-level downsampling factor relative to the level below (8, 4, 4 for the official model)."""
        return tuple(s**d for s, d in zip(self.strides_t, self.downs_t))

    @property
    def hop_lengths(self) -> tuple[int, ...]:
        """Samples per token at each level (8, 32, 128 for the official model)."""
        return tuple(math.prod(self.downsamples[: level + 1]) for level in range(self.levels))

    def level_width(self, level: int) -> int:
        return self.width * self.hvqvae_multipliers[level]

    def level_depth(self, level: int) -> int:
        return self.depth * self.hvqvae_multipliers[level]


@dataclass(frozen=True, kw_only=True, slots=True)
class TransformerConfig:
    width: int
    depth: int
    heads: int
    attn_order: int  # index of the reference's layer -> AttnType pattern
    blocks: int | None  # block count over the sequence; block_ctx = n_ctx // blocks
    spread: int | None
    m_attn: float  # attention state width = m_attn * width
    m_mlp: float  # MLP hidden width = m_mlp * width
    init_scale: float
    zero_out: bool
    res_scale: bool  # scale residuals by 1/depth
    pos_init: bool

    def __post_init__(self) -> None:
        _require(self.width > 0 and self.depth > 0 and self.heads > 0, "transformer width/depth/heads must be positive")
        _require(self.n_state % self.heads == 0, f"attention width {self.n_state} not divisible by {self.heads} heads")

    @property
    def n_state(self) -> int:
        return int(self.m_attn * self.width)

    @property
    def n_mlp(self) -> int:
        return int(self.m_mlp * self.width)


@dataclass(frozen=True, kw_only=True, slots=True)
class ConditionerConfig:
    """Upper-level conditioner of an upsampler (spec §3.2)."""

    width: int  # inner conv width (cond_width)
    depth: int  # res blocks per stage (cond_depth)
    m_conv: float
    dilation_growth_rate: int
    dilation_cycle: int | None
    zero_out: bool
    res_scale: bool  # True -> residual scale 1/sqrt(depth)
    c_res: int  # 1 stores res blocks in a ModuleList named `blocks` (changes state-dict keys)


@dataclass(frozen=True, kw_only=True, slots=True)
class LabelConfig:
    y_bins: tuple[int, int]  # (genre bins, artist bins)
    t_bins: int  # timing embedding bins
    max_bow_genre_size: int
    min_duration: float | None  # seconds
    max_duration: float | None
    labels_v3: bool  # v3 id tables (1b_lyrics) instead of v2
    use_tokens: bool
    n_tokens: int  # lyric characters per window
    n_vocab: int  # lyric vocabulary size

    @property
    def genre_bins(self) -> int:
        return self.y_bins[0]

    @property
    def artist_bins(self) -> int:
        return self.y_bins[1]

    @property
    def label_length(self) -> int:
        """Length of a label row: [total_length, offset, length, artist, genres..., lyrics...]."""
        return 4 + self.max_bow_genre_size + (self.n_tokens if self.use_tokens else 0)


@dataclass(frozen=True, kw_only=True, slots=True)
class PriorConfig:
    level: int  # VQ-VAE level this prior models (0 finest)
    n_ctx: int  # music tokens per window
    prior: TransformerConfig
    lyrics_encoder: TransformerConfig | None  # the 5b_lyrics `prime_prior`
    conditioner: ConditionerConfig | None  # upper-level conditioner; None for the top prior
    labels: LabelConfig | None
    merged_decoder: bool
    single_enc_dec: bool
    prime_loss_fraction: float
    fp16_params: bool  # the reference keeps transformer projection weights in float16
    alignment_layer: int | None
    alignment_head: int | None

    def __post_init__(self) -> None:
        _require(self.n_ctx > 0, f"n_ctx must be positive, got {self.n_ctx}")
        mode = self.lyrics_mode
        _require(
            (mode is LyricsMode.CROSS_ATTENTION) == (self.lyrics_encoder is not None),
            "a lyrics encoder exists exactly for cross-attention lyrics priors",
        )
        _require(
            not (self.single_enc_dec and self.merged_decoder), "single_enc_dec and merged_decoder exclude each other"
        )

    @property
    def lyrics_mode(self) -> LyricsMode:
        if self.labels is None or not self.labels.use_tokens:
            return LyricsMode.NONE
        return LyricsMode.MERGED if self.single_enc_dec else LyricsMode.CROSS_ATTENTION

    @property
    def is_top(self) -> bool:
        return self.conditioner is None

    @property
    def n_tokens(self) -> int:
        return self.labels.n_tokens if self.labels is not None and self.labels.use_tokens else 0

    @property
    def sequence_length(self) -> int:
        """Length the main transformer sees: lyrics + music when merged, else music only."""
        return self.n_ctx + (self.n_tokens if self.lyrics_mode is LyricsMode.MERGED else 0)
