"""One level's prior: conditioners + (optional) lyrics + the autoregressive transformer (spec §3.1).

Submodules are registered in the reference's order and under its names (`conditioner_blocks`,
`y_emb`, `prime_prior`, `prime_state_proj`, `prime_state_ln`, `prime_x_out`, `prior`), so
`state_dict()` keys are those of the released checkpoints. Lyric layouts: see lyrics.py.

A pass is: label row + upper codes -> `get_cond` (`Conditioning`, per music position) ->
`decoder_inputs` (`DecoderInputs`, per position of the sequence the transformer sees, plus the
lyrics encoder's states) -> `prior` (teacher forced here, cached in the sampler). Modules compute
only: sampling lives in the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import AttnType, LyricsMode, PriorConfig, VQVAEConfig
from ..transformer.attention import KVCache
from ..transformer.ops import Conv1D
from ..transformer.transformer import AttentionRecord
from . import lyrics as lyr
from .autoregressive import ConditionalAutoregressive2D, bits_per_token
from .conditioners import Conditioner, LabelConditioner


@dataclass(frozen=True)
class Conditioning:
    """What a window conditions on, per music position (the reference's `get_cond`)."""

    x_cond: Tensor | None  # (N, n_ctx, W): timing (top priors) or the upper level (upsamplers)
    y_cond: Tensor | None  # (N, 1, W) artist + genre start embedding
    lyrics: Tensor | None  # (N, n_tokens) the window's lyric tokens


@dataclass(frozen=True)
class DecoderInputs:
    """The conditioning arguments of `Prior.prior`, for teacher forcing and cached passes alike."""

    x_cond: Tensor | None  # (N, L, W) over the transformer's sequence (merged: zeros at lyric positions)
    y_cond: Tensor | None  # (N, 1, W)
    encoder_kv: Tensor | None  # (N, n_tokens, W) lyrics encoder states (CROSS_ATTENTION)


@dataclass(frozen=True)
class PriorOutput:
    logits: Tensor  # (N, L, bins) over the whole sequence the transformer saw
    music_logits: Tensor  # (N, n_ctx, bins) at the music positions
    lyric_logits: Tensor | None  # next-character logits: (N, n_tokens, n_vocab), merged (N, n_tokens, bins)
    gen_loss: Tensor  # (N,) bits per music token
    prime_loss: Tensor  # (N,) bits per lyric token (zeros without lyrics)
    loss: Tensor  # (N,) prime_loss_fraction·prime·P/(P+G) + gen·G/(P+G)
    x_cond: Tensor  # (N, n_ctx, W) per-position conditioning ((N, 1, W) zeros when there is none)
    y_cond: Tensor | None  # (N, 1, W)
    encoder_kv: Tensor | None  # (N, n_tokens, W)
    alignment: Tensor | None  # (N, H, n_ctx, n_tokens) alignment-layer attention, when asked for

    @property
    def bpd(self) -> Tensor:
        """Bits per music token, the reference's reported metric (= gen_loss)."""
        return self.gen_loss


class Prior(nn.Module):
    def __init__(self, config: PriorConfig, vqvae: VQVAEConfig):
        super().__init__()
        if not 0 <= config.level < vqvae.levels:
            raise ValueError(f"prior level {config.level} outside the VQ-VAE's {vqvae.levels} levels")
        if config.is_top != (config.level == vqvae.levels - 1):
            raise ValueError("exactly the top level's prior has no upper-level conditioner")
        self.config, self.vqvae_config = config, vqvae
        t = config.prior
        self.mode = config.lyrics_mode
        self.n_tokens, self.n_ctx = config.n_tokens, config.n_ctx
        self.n_vocab = config.labels.n_vocab if config.labels is not None else 0
        self.music_bins = vqvae.l_bins
        if config.conditioner is not None:
            upper = config.level + 1
            down_t, stride_t = vqvae.downs_t[upper], vqvae.strides_t[upper]
            self.cond_downsample = stride_t**down_t
            if config.n_ctx % self.cond_downsample:
                raise ValueError(f"n_ctx {config.n_ctx} is not a multiple of the upper level's {self.cond_downsample}")
            block = Conditioner(vqvae.l_bins, down_t, stride_t, t.width, config.conditioner, init_scale=t.init_scale)
            self.conditioner_blocks = nn.ModuleList([block])
        if config.labels is not None:
            self.y_emb = LabelConditioner(
                config.labels,
                n_time=config.n_ctx,
                out_width=t.width,
                sr=vqvae.sr,
                include_time_signal=config.is_top,
                init_scale=t.init_scale,
            )
        prime_len = None
        if self.mode is LyricsMode.CROSS_ATTENTION:
            modules = lyr.lyrics_encoder_modules(
                config.lyrics_encoder,
                n_tokens=self.n_tokens,
                n_vocab=self.n_vocab,
                width=t.width,
                init_scale=t.init_scale,
            )
            for name, module in modules.items():
                self.add_module(name, module)
        elif self.mode is LyricsMode.MERGED:
            if not t.blocks:
                raise ValueError("a merged lyrics prior needs `blocks` to place its prime attention")
            prime_len = lyr.prime_attention_length(self.n_tokens, t.blocks)
        self.prior = ConditionalAutoregressive2D(
            t,
            length=config.sequence_length,
            bins=self.music_bins + (self.n_vocab if self.mode is LyricsMode.MERGED else 0),
            y_cond=config.labels is not None,
            merged_decoder=config.merged_decoder,
            prime_len=prime_len,
        )
        if config.fp16_params:
            self.projections_to_half()

    def projections_to_half(self) -> None:
        """Keep every transformer projection weight (Conv1D.w) in float16, as the 5b priors were
        trained (spec §7): main transformer, lyrics encoder and prime_state_proj; biases, norms,
        embeddings and output heads stay float32."""
        for module in self.modules():
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

    def get_cond(self, z_conds: list[Tensor] | tuple[Tensor, ...], y: Tensor | None) -> Conditioning:
        """Label rows y (N, label_length) and, for upsamplers, the upper level's codes (N, n_ctx / 4)."""
        y_cond = timing = lyrics = None
        if self.config.labels is not None:
            if y is None:
                raise ValueError("this prior is label-conditioned: pass the label rows y")
            meta, lyrics = self.split_label(y)
            y_cond, timing = self.y_emb(meta)
        if self.config.conditioner is None:
            return Conditioning(x_cond=timing, y_cond=y_cond, lyrics=lyrics if self.n_tokens else None)
        if len(z_conds) != 1:
            raise ValueError(f"an upsampler conditions on the codes of one upper level, got {len(z_conds)} tensors")
        upper = z_conds[0]
        expected = self.n_ctx // self.cond_downsample
        if upper.dim() != 2 or upper.shape[1] != expected:
            raise ValueError(f"upper-level codes must be (N, {expected}), got {tuple(upper.shape)}")
        return Conditioning(x_cond=self.conditioner_blocks[0](upper), y_cond=y_cond, lyrics=None)

    def encoder_kv(self, lyrics: Tensor) -> Tensor:
        """Lyric tokens (N, n_tokens) -> the CROSS layers' encoder states (N, n_tokens, W), float32."""
        if self.mode is not LyricsMode.CROSS_ATTENTION:
            raise ValueError("only a cross-attention lyrics prior has a lyrics encoder")
        return lyr.encoder_states(self.prime_prior, self.prime_state_proj, self.prime_state_ln, lyrics)

    def decoder_inputs(self, cond: Conditioning) -> DecoderInputs:
        if self.mode is LyricsMode.MERGED:
            return DecoderInputs(lyr.merge_x_cond(cond.x_cond, self.n_tokens), cond.y_cond, None)
        encoder_kv = self.encoder_kv(cond.lyrics) if self.mode is LyricsMode.CROSS_ATTENTION else None
        return DecoderInputs(cond.x_cond, cond.y_cond, encoder_kv)

    def empty_cache(
        self, batch: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> list[KVCache]:
        """Per-layer caches for cached passes of `self.prior`."""
        encoder_len = self.n_tokens if self.mode is LyricsMode.CROSS_ATTENTION else None
        return self.prior.empty_cache(batch, dtype=dtype, device=device, encoder_len=encoder_len)

    # -- teacher-forced pass ------------------------------------------------------------------

    def forward(
        self,
        z: Tensor,
        z_conds: list[Tensor] | tuple[Tensor, ...] = (),
        y: Tensor | None = None,
        *,
        with_alignment: bool = False,
    ) -> PriorOutput:
        """z (N, ≤ n_ctx) codes of this level from the window start; z_conds the upper level's codes
        (upsamplers); y the label rows. with_alignment also returns the alignment layer's attention."""
        if z.dim() != 2 or not 0 < z.shape[1] <= self.n_ctx:
            raise ValueError(f"codes must be (N, ≤{self.n_ctx}), got {tuple(z.shape)}")
        if int(z.min()) < 0 or int(z.max()) >= self.music_bins:
            raise ValueError(f"codes must lie in [0, {self.music_bins}), got {z.min().item()}..{z.max().item()}")
        n = z.shape[0]
        cond = self.get_cond(z_conds, y)
        dec = self.decoder_inputs(cond)
        record = AttentionRecord(frozenset({self._alignment_layer()})) if with_alignment else None
        tokens = lyr.merge_tokens(cond.lyrics, z, self.n_vocab) if self.mode is LyricsMode.MERGED else z
        logits = self.prior(tokens, x_cond=dec.x_cond, y_cond=dec.y_cond, encoder_kv=dec.encoder_kv, record=record)
        lyric_logits = None
        if self.mode is LyricsMode.MERGED:
            lyric_logits, music_logits = logits[:, : self.n_tokens], logits[:, self.n_tokens :]
            prime_loss = bits_per_token(lyric_logits, cond.lyrics)
            gen_loss = bits_per_token(music_logits, z + self.n_vocab)
        else:
            music_logits = logits
            gen_loss = bits_per_token(music_logits, z)
            if self.mode is LyricsMode.CROSS_ATTENTION:
                lyric_logits = self.prime_x_out(dec.encoder_kv.float())
                prime_loss = bits_per_token(lyric_logits, cond.lyrics)
            else:
                prime_loss = torch.zeros_like(gen_loss)
        p, g = self.n_tokens, self.n_ctx
        loss = self.config.prime_loss_fraction * prime_loss * p / (p + g) + gen_loss * g / (p + g)
        alignment = None
        if record is not None:
            alignment = record.probs[self._alignment_layer()]
            if self.mode is LyricsMode.MERGED:  # music queries × lyric keys, as the reference cuts it
                alignment = alignment[:, :, self.n_tokens :, : self.n_tokens]
        x_cond = cond.x_cond if cond.x_cond is not None else logits.new_zeros(n, 1, self.config.prior.width)
        return PriorOutput(
            logits=logits,
            music_logits=music_logits,
            lyric_logits=lyric_logits,
            gen_loss=gen_loss,
            prime_loss=prime_loss,
            loss=loss,
            x_cond=x_cond,
            y_cond=cond.y_cond,
            encoder_kv=dec.encoder_kv,
            alignment=alignment,
        )

    def _alignment_layer(self) -> int:
        layer = self.config.alignment_layer
        if layer is None or self.mode is LyricsMode.NONE:
            raise ValueError("this prior has no lyrics alignment layer")
        pattern = self.prior.transformer.pattern
        if not 0 <= layer < len(pattern) or pattern[layer] not in (AttnType.CROSS, AttnType.PRIME):
            kind = pattern[layer].name if 0 <= layer < len(pattern) else "missing"
            raise ValueError(f"alignment layer {layer} ({kind}) is not a lyrics attention layer")
        return layer
