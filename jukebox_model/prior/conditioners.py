"""What a prior conditions on (spec §3.2–3.3).

* `Conditioner`: an upsampler's view of the level above — its codes embedded, upsampled by
  transposed convs to this level's rate and layer-normed; added at every position.
* `LabelConditioner`: artist + genre as a start embedding at position 0, and for top priors the
  timing signal (total length, absolute and relative position of the window) at every position.
The embedding tables keep the reference's inner module name `emb` (state-dict keys).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ConditionerConfig, LabelConfig
from ..transformer.ops import LayerNorm
from ..vqvae.encdec import DecoderConvBlock


class SimpleEmbedding(nn.Module):
    """An id table (artist, genre word); ids outside it are an error, not a silent clamp."""

    def __init__(self, bins: int, width: int, init_scale: float = 1.0):
        super().__init__()
        self.bins = bins
        self.emb = nn.Embedding(bins, width)
        nn.init.normal_(self.emb.weight, std=0.01 * init_scale)

    def forward(self, y: Tensor) -> Tensor:  # (N, K) int -> (N, K, W)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.bins):
            raise ValueError(f"label id outside [0, {self.bins}): {y.min().item()}..{y.max().item()}")
        return self.emb(y)


class RangeEmbedding(nn.Module):
    """Embeds a value in [lo, hi) by `bins` uniform bins. With n_time > 1 the window [start, end)
    is sampled at n_time points p_i = start + (end − start)·i/n_time. float32 throughout, as the
    reference, so the bin edges fall where its do (26,460,000 is not exact in float32)."""

    def __init__(
        self,
        n_time: int,
        bins: int,
        value_range: tuple[float, float],
        width: int,
        init_scale: float = 1.0,
        *,
        clamp: bool = False,
    ):
        super().__init__()
        self.n_time, self.bins = n_time, bins
        self.lo, self.hi = value_range
        self.clamp = clamp  # clamp the window end into range instead of rejecting it
        self.emb = nn.Embedding(bins, width)
        nn.init.normal_(self.emb.weight, std=0.01 * init_scale)

    def forward(self, start: Tensor, end: Tensor | None = None) -> Tensor:  # (N, 1) -> (N, n_time, W)
        start = start.float()
        if not bool(((self.lo <= start) & (start < self.hi)).all()):
            raise ValueError(f"position {start.flatten().tolist()} outside [{self.lo}, {self.hi})")
        if self.n_time == 1:
            position = start
        else:
            if end is None:
                raise ValueError("a window embedding needs the window end")
            end = end.float()
            if self.clamp:
                end = end.clamp(self.lo, self.hi)
            elif not bool((end <= self.hi).all()):
                raise ValueError(f"window end {end.flatten().tolist()} beyond {self.hi}")
            steps = torch.arange(self.n_time, dtype=torch.float32, device=start.device) / self.n_time
            position = start + (end - start) * steps.view(1, self.n_time)  # (N, n_time)
        normalised = (position - self.lo) / (self.hi - self.lo)
        return self.emb((self.bins * normalised).floor().long())


class Conditioner(nn.Module):
    """Upper-level codes (N, T_up) -> (N, T_up · stride^down, W), added at every position of an upsampler."""

    def __init__(
        self, bins: int, down_t: int, stride_t: int, out_width: int, config: ConditionerConfig, *, init_scale: float
    ):
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
            reverse_decoder_dilation=False,  # unlike the VQ-VAE decoders (spec §8.1)
            checkpoint_res=config.c_res,
        )
        self.ln = LayerNorm(out_width)

    def forward(self, z_upper: Tensor) -> Tensor:
        x = self.x_emb(z_upper).permute(0, 2, 1)  # (N, W, T_up)
        return self.ln(self.cond(x).permute(0, 2, 1))  # (N, T, W)


class LabelConditioner(nn.Module):
    def __init__(
        self, config: LabelConfig, *, n_time: int, out_width: int, sr: int, include_time_signal: bool, init_scale: float
    ):
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
        if y.dim() != 2 or y.shape[1] != 4 + self.max_bow_genre_size:
            raise ValueError(f"label metadata must be (N, {4 + self.max_bow_genre_size}), got {tuple(y.shape)}")
        total_length, offset, length, artist, genre = y[:, 0:1], y[:, 1:2], y[:, 2:3], y[:, 3:4], y[:, 4:]
        present = (genre >= 0).unsqueeze(-1)  # −1 pads the genre slots; id 0 ("unknown") counts
        genre_emb = (self.bow_genre_emb(genre.clamp(min=0)) * present).sum(dim=1, keepdim=True)
        start_emb = self.artist_emb(artist) + genre_emb
        if not self.include_time_signal:
            return start_emb, None
        total, start = total_length.float(), offset.float()
        end = start + length.float()
        timing = (
            self.total_length_emb(total)
            + self.absolute_pos_emb(start, end)
            + self.relative_pos_emb(start / total, end / total)
        )
        return start_emb, timing
