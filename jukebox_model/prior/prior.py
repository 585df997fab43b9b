"""One level's prior: conditioners + (optional) lyrics + the autoregressive transformer (spec §3.1).

Three lyric layouts (`LyricsMode`):
* NONE (upsamplers, 5b): music tokens only.
* CROSS_ATTENTION (5b_lyrics): a causal lyrics encoder (`prime_prior`) whose states, projected and
  normed, are the keys/values of the music transformer's cross-attention layers.
* MERGED (1b_lyrics): one sequence [lyric tokens, music tokens + n_vocab] over a joint vocabulary;
  lyrics are the "prime" that music attends to through the PRIME layers.

Submodules are registered in the reference's order and under its names, so `state_dict()` keys
are those of the released checkpoints. Modules compute only: sampling lives in the sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import AttnType, LyricsMode, PriorConfig, VQVAEConfig
from ..transformer.ops import Conv1D, LayerNorm
from .autoregressive import ConditionalAutoregressive2D
from .conditioners import Conditioner, LabelConditioner

LN2 = math.log(2.0)


@dataclass(frozen=True)
class PriorOutput:
    logits: Tensor  # (N, L, bins) over the whole sequence the transformer saw
    music_logits: Tensor  # (N, n_ctx, bins) at the music positions
    lyric_logits: Tensor | None  # next-character logits: (N, n_tokens, n_vocab) or, merged, (N, n_tokens, bins)
    gen_loss: Tensor  # (N,) bits per music token
    prime_loss: Tensor  # (N,) bits per lyric token (zeros without lyrics)
    loss: Tensor  # (N,) prime_loss_fraction·prime·P/(P+G) + gen·G/(P+G)
    x_cond: Tensor  # (N, n_ctx, W) per-position conditioning (or (N, 1, W) zeros without labels/upper level)
    y_cond: Tensor | None  # (N, 1, W) artist + genre start embedding
    encoder_kv: Tensor | None  # (N, n_tokens, W) lyrics encoder states (cross-attention priors)

    @property
    def bpd(self) -> Tensor:
        return self.gen_loss


class Prior(nn.Module):
    def __init__(self, config: PriorConfig, vqvae: VQVAEConfig):
        super().__init__()
        if not 0 <= config.level < vqvae.levels:
            raise ValueError(f"prior level {config.level} outside the VQ-VAE's {vqvae.levels} levels")
        if config.is_top != (config.level == vqvae.levels - 1):
            raise ValueError("only the top level's prior has no upper-level conditioner")
        self.config, self.vqvae_config = config, vqvae
        t = config.prior
        self.mode = config.lyrics_mode
        self.n_tokens, self.n_ctx = config.n_tokens, config.n_ctx
        self.n_vocab = config.labels.n_vocab if config.labels is not None else 0
        self.music_bins = vqvae.l_bins
        if config.conditioner is not None:
            upper = config.level + 1
            self.conditioner_blocks = nn.ModuleList(
                [Conditioner(vqvae.l_bins, vqvae.downs_t[upper], vqvae.strides_t[upper], t.width, config.conditioner, init_scale=t.init_scale)]
            )
            self.cond_downsample = vqvae.strides_t[upper] ** vqvae.downs_t[upper]
        if config.labels is not None:
            self.y_emb = LabelConditioner(
                config.labels, n_time=config.n_ctx, out_width=t.width, sr=vqvae.sr, include_time_signal=config.is_top, init_scale=t.init_scale
            )
        prime_len = None
        if self.mode is LyricsMode.CROSS_ATTENTION:
            enc = config.lyrics_encoder
            self.prime_prior = ConditionalAutoregressive2D(
                enc, length=self.n_tokens, bins=self.n_vocab, y_cond=False, merged_decoder=False, only_encode=True
            )
            self.prime_state_proj = Conv1D(enc.width, t.width, init_scale=enc.init_scale)
            self.prime_state_ln = LayerNorm(t.width)
            self.prime_x_out = nn.Linear(t.width, self.n_vocab, bias=False)
            nn.init.normal_(self.prime_x_out.weight, std=0.02 * t.init_scale)
        elif self.mode is LyricsMode.MERGED:
            prime_len = (self.n_tokens // t.blocks + 1) * t.blocks  # keys the PRIME layers see (448 officially)
        self.prior = ConditionalAutoregressive2D(
            t,
            length=config.sequence_length,
            bins=self.music_bins + (self.n_vocab if self.mode is LyricsMode.MERGED else 0),
            y_cond=config.labels is not None,
            merged_decoder=config.merged_decoder,
            prime_len=prime_len,
        )
        if config.fp16_params:
            self._projections_to_half()

    def _projections_to_half(self) -> None:
        """The 5b priors keep every transformer projection weight (Conv1D.w) in float16, as trained."""
        owners = [self.prior.transformer]
        if self.mode is LyricsMode.CROSS_ATTENTION:
            owners += [self.prime_prior.transformer, self.prime_state_proj]
        for owner in owners:
            for module in owner.modules():
                if isinstance(module, Conv1D):
                    module.w.data = module.w.data.half()

    # -- conditioning -------------------------------------------------------------------------

    def split_label(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Label row -> (metadata [total_length, offset, length, artist, genres...], lyric tokens)."""
        expected = self.config.labels.label_length
        if y.dim() != 2 or y.shape[1] != expected:
            raise ValueError(f"label rows must be (N, {expected}), got {tuple(y.shape)}")
        n_meta = expected - self.n_tokens
        return y[:, :n_meta], y[:, n_meta:]

    def get_cond(self, z_conds: list[Tensor], y: Tensor | None) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """-> x_cond (N, n_ctx, W) or None, y_cond (N, 1, W) or None, lyric tokens (N, n_tokens) or None."""
        y_cond = timing = lyrics = None
        if self.config.labels is not None:
            if y is None:
                raise ValueError("this prior is label-conditioned: pass the label row y")
            meta, lyrics = self.split_label(y)
            y_cond, timing = self.y_emb(meta)
        if self.config.conditioner is not None:
            if not z_conds:
                raise ValueError("an upsampler needs the codes of the level above (z_conds)")
            x_cond = self.conditioner_blocks[0](z_conds[0])
        else:
            x_cond = timing
        return x_cond, y_cond, lyrics if self.n_tokens else None

    def encoder_kv(self, lyrics: Tensor) -> Tensor:
        """Lyrics encoder states for the cross-attention layers: ln(proj(encoder(lyrics)))."""
        states = self.prime_prior(lyrics)
        return self.prime_state_ln(self.prime_state_proj(states).float())

    # -- teacher-forced pass ------------------------------------------------------------------

    def forward(self, z: Tensor, z_conds: list[Tensor] | None = None, y: Tensor | None = None) -> PriorOutput:
        """z (N, n_ctx) music codes of this level; z_conds the upper level's codes (upsamplers); y label rows."""
        if z.dim() != 2 or z.shape[1] > self.n_ctx:
            raise ValueError(f"codes must be (N, ≤{self.n_ctx}), got {tuple(z.shape)}")
        n = z.shape[0]
        x_cond, y_cond, lyrics = self.get_cond(z_conds or [], y)
        encoder_kv = lyric_logits = None
        if self.mode is LyricsMode.MERGED:
            tokens = torch.cat([lyrics, z + self.n_vocab], dim=1)
            lyric_cond = x_cond.new_zeros(n, self.n_tokens, x_cond.shape[-1])
            logits = self.prior(tokens, x_cond=torch.cat([lyric_cond, x_cond], dim=1), y_cond=y_cond)
            lyric_logits, music_logits = logits[:, : self.n_tokens], logits[:, self.n_tokens :]
            prime_loss = _bits_per_item(lyric_logits, lyrics)
            gen_loss = _bits_per_item(music_logits, z + self.n_vocab)
        else:
            if self.mode is LyricsMode.CROSS_ATTENTION:
                encoder_kv = self.encoder_kv(lyrics)
                lyric_logits = self.prime_x_out(encoder_kv.float())
                prime_loss = _bits_per_item(lyric_logits, lyrics)
            else:
                prime_loss = z.new_zeros(n, dtype=torch.float32)
            logits = music_logits = self.prior(z, x_cond=x_cond, y_cond=y_cond, encoder_kv=encoder_kv)
            gen_loss = _bits_per_item(music_logits, z)
        p, g = self.n_tokens, z.shape[1]
        loss = self.config.prime_loss_fraction * prime_loss * p / (p + g) + gen_loss * g / (p + g)
        if x_cond is None:
            x_cond = logits.new_zeros(n, 1, self.config.prior.width)
        return PriorOutput(logits, music_logits, lyric_logits, gen_loss, prime_loss, loss, x_cond, y_cond, encoder_kv)

    @torch.no_grad()
    def alignment(self, z: Tensor, z_conds: list[Tensor] | None = None, y: Tensor | None = None) -> Tensor:
        """Attention probabilities of the alignment layer over (music positions × lyric tokens): (N, H, n_ctx, n_tokens)."""
        layer = self.config.alignment_layer
        if layer is None or self.mode is LyricsMode.NONE:
            raise ValueError("this prior has no lyrics alignment layer")
        kind = self.prior.transformer.pattern[layer]
        if kind not in (AttnType.CROSS, AttnType.PRIME):
            raise ValueError(f"alignment layer {layer} is {kind.name}, not a lyrics attention layer")
        self.prior.transformer.record_attention({layer})
        try:
            self(z, z_conds, y)
            weights = self.prior.transformer._attn_mods[layer].attn.attn_weights
        finally:
            self.prior.transformer.record_attention(set())
        if self.mode is LyricsMode.MERGED:  # queries: whole sequence; keys: the prime window
            weights = weights[:, :, self.n_tokens :, : self.n_tokens]
        return weights


def _bits_per_item(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy per item, in bits. logits (N, L, V), targets (N, L) -> (N,)."""
    ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return ce.view(targets.shape).mean(dim=1) / LN2
