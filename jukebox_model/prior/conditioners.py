"""What a prior conditions on (spec §3.2–3.3).

* `Conditioner`: an upsampler's view of the level above — its codes embedded, upsampled by
  transposed convs to this level's rate and layer-normed; added at every position.
* `LabelConditioner`: artist + genre as a start embedding at position 0, and for top priors the
  timing signal (total length, absolute and relative position of the window) at every position.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import ConditionerConfig, LabelConfig
from ..transformer.ops import LayerNorm
from ..vqvae.encdec import DecoderConvBlock
from .embeddings import RangeEmbedding, SimpleEmbedding


class Conditioner(nn.Module):
    def __init__(self, bins: int, down_t: int, stride_t: int, out_width: int, config: ConditionerConfig, *, init_scale: float):
        super().__init__()
        self.x_emb = nn.Embedding(bins, out_width)
        nn.init.normal_(self.x_emb.weight, std=0.02 * init_scale)
        self.cond = DecoderConvBlock(
            out_width,
            out_width,
            down_t,
            stride_t,
            width=config.width,
            depth=config.depth,
            m_conv=config.m_conv,
            dilation_growth_rate=config.dilation_growth_rate,
            dilation_cycle=config.dilation_cycle,
            zero_out=config.zero_out,
            res_scale=config.res_scale,
            checkpoint_res=config.c_res,
        )
        self.ln = LayerNorm(out_width)

    def forward(self, z_upper: Tensor) -> Tensor:  # (N, T_upper) codes -> (N, T_upper · stride^down, W)
        x = self.x_emb(z_upper).permute(0, 2, 1)  # (N, W, T_upper)
        return self.ln(self.cond(x).permute(0, 2, 1))


class LabelConditioner(nn.Module):
    def __init__(self, config: LabelConfig, *, n_time: int, out_width: int, sr: int, include_time_signal: bool, init_scale: float):
        super().__init__()
        self.max_bow_genre_size = config.max_bow_genre_size
        self.bow_genre_emb = SimpleEmbedding(config.genre_bins, out_width, init_scale)
        self.artist_emb = SimpleEmbedding(config.artist_bins, out_width, init_scale)
        self.include_time_signal = include_time_signal
        if include_time_signal:
            if config.min_duration is None or config.max_duration is None:
                raise ValueError("a top prior's timing signal needs min_duration and max_duration")
            lo, hi = config.min_duration * sr, config.max_duration * sr
            self.total_length_emb = RangeEmbedding(1, config.t_bins, (lo, hi), out_width, init_scale)
            self.absolute_pos_emb = RangeEmbedding(n_time, config.t_bins, (0.0, hi), out_width, init_scale)
            self.relative_pos_emb = RangeEmbedding(n_time, config.t_bins, (0.0, 1.0), out_width, init_scale, clamp=True)

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor | None]:
        """y (N, 4 + G): [total_length, offset, length, artist, genre ids (−1 = none)] ->
        start embedding (N, 1, W) and timing (N, n_time, W) or None."""
        total_length, offset, length, artist, genre = y[:, 0:1], y[:, 1:2], y[:, 2:3], y[:, 3:4], y[:, 4:]
        present = (genre >= 0).float().unsqueeze(-1)
        start_emb = self.artist_emb(artist) + (self.bow_genre_emb(genre.clamp(min=0)) * present).sum(dim=1, keepdim=True)
        if not self.include_time_signal:
            return start_emb, None
        total, start = total_length.float(), offset.float()
        end = start + length.float()
        timing = self.total_length_emb(total) + self.absolute_pos_emb(start, end) + self.relative_pos_emb(start / total, end / total)
        return start_emb, timing
