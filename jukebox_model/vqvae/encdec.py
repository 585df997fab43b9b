"""Per-level encoder and decoder conv stacks of the VQ-VAE (spec §2.2).

Each level owns an independent encoder (audio -> level latents) and decoder (latents -> audio).
Strided convs use kernel 2·stride and padding stride // 2, so each stride-s stage divides (or, for
the transposed conv, multiplies) the length exactly by s.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .resnet import Resnet1D


class EncoderConvBlock(nn.Module):
    """down_t × [strided conv, dilated resnet], then a kernel-3 conv to the embedding width."""

    def __init__(
        self,
        input_emb_width: int,
        output_emb_width: int,
        down_t: int,
        stride_t: int,
        width: int,
        depth: int,
        m_conv: float,
        dilation_growth_rate: int = 1,
        dilation_cycle: int | None = None,
        zero_out: bool = False,
        res_scale: bool = False,
    ):
        super().__init__()
        kernel, pad = stride_t * 2, stride_t // 2
        stages: list[nn.Module] = []
        for i in range(down_t):
            stages.append(
                nn.Sequential(
                    nn.Conv1d(input_emb_width if i == 0 else width, width, kernel, stride_t, pad),
                    Resnet1D(
                        width,
                        depth,
                        m_conv=m_conv,
                        dilation_growth_rate=dilation_growth_rate,
                        dilation_cycle=dilation_cycle,
                        zero_out=zero_out,
                        res_scale=res_scale,
                    ),
                )
            )
        stages.append(nn.Conv1d(width, output_emb_width, 3, 1, 1))
        self.model = nn.Sequential(*stages)

    def forward(self, x: Tensor) -> Tensor:  # (N, C_in, T) -> (N, C_out, T / stride^down)
        return self.model(x)


class DecoderConvBlock(nn.Module):
    """Kernel-3 conv in, then down_t × [dilated resnet, transposed strided conv].

    Also the upper-level conditioner of the upsamplers (spec §3.2), hence `checkpoint_res` and the
    choice of reversed dilations.
    """

    def __init__(
        self,
        input_emb_width: int,
        output_emb_width: int,
        down_t: int,
        stride_t: int,
        width: int,
        depth: int,
        m_conv: float,
        dilation_growth_rate: int = 1,
        dilation_cycle: int | None = None,
        zero_out: bool = False,
        res_scale: bool = False,
        reverse_decoder_dilation: bool = False,
        checkpoint_res: int = 0,
    ):
        super().__init__()
        kernel, pad = stride_t * 2, stride_t // 2
        stages: list[nn.Module] = [nn.Conv1d(output_emb_width, width, 3, 1, 1)]
        for i in range(down_t):
            stages.append(
                nn.Sequential(
                    Resnet1D(
                        width,
                        depth,
                        m_conv=m_conv,
                        dilation_growth_rate=dilation_growth_rate,
                        dilation_cycle=dilation_cycle,
                        reverse_dilation=reverse_decoder_dilation,
                        zero_out=zero_out,
                        res_scale=res_scale,
                        checkpoint_res=checkpoint_res,
                    ),
                    nn.ConvTranspose1d(width, input_emb_width if i == down_t - 1 else width, kernel, stride_t, pad),
                )
            )
        self.model = nn.Sequential(*stages)

    def forward(self, x: Tensor) -> Tensor:  # (N, C_emb, T) -> (N, C_in, T · stride^down)
        return self.model(x)


class Encoder(nn.Module):
    """Blocks 0..L applied in order: raw audio down to the level-L latent rate."""

    def __init__(
        self,
        input_emb_width: int,
        output_emb_width: int,
        levels: int,
        downs_t: Sequence[int],
        strides_t: Sequence[int],
        **block_kwargs,
    ):
        super().__init__()
        self.level_blocks = nn.ModuleList(
            EncoderConvBlock(
                input_emb_width if j == 0 else output_emb_width,
                output_emb_width,
                downs_t[j],
                strides_t[j],
                **block_kwargs,
            )
            for j in range(levels)
        )

    def forward(self, x: Tensor) -> Tensor:  # (N, 1, T) -> (N, emb_width, T / hop_L)
        for block in self.level_blocks:
            x = block(x)
        return x


class Decoder(nn.Module):
    """Blocks built for j = 0..L but applied L..0, then a kernel-3 conv to one audio channel."""

    def __init__(
        self,
        input_emb_width: int,
        output_emb_width: int,
        levels: int,
        downs_t: Sequence[int],
        strides_t: Sequence[int],
        **block_kwargs,
    ):
        super().__init__()
        self.level_blocks = nn.ModuleList(
            DecoderConvBlock(output_emb_width, output_emb_width, downs_t[j], strides_t[j], **block_kwargs)
            for j in range(levels)
        )
        self.out = nn.Conv1d(output_emb_width, input_emb_width, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:  # (N, emb_width, T / hop_L) -> (N, 1, T)
        for block in reversed(self.level_blocks):
            x = block(x)
        return self.out(x)
