"""Pre-LayerNorm residual attention blocks stacked with the layer pattern of an `attn_order` (spec §3.5)."""

from __future__ import annotations

from torch import Tensor, nn

from ..config import AttnType, TransformerConfig
from .attention import FactoredAttention
from .ops import MLP, LayerNorm
from .patterns import attention_pattern


class ResAttnBlock(nn.Module):
    """a = attn(ln_0(x)); m = mlp(ln_1(x + a)); out = x + res_scale·(a + m)."""

    def __init__(self, width: int, n_ctx: int, attn_type: AttnType, config: TransformerConfig, *, res_scale: float, **attn_kwargs):
        super().__init__()
        self.ln_0 = LayerNorm(width)
        self.attn = FactoredAttention(
            width,
            n_ctx,
            config.n_state,
            config.heads,
            attn_type,
            blocks=config.blocks,
            zero_out=config.zero_out,
            init_scale=config.init_scale,
            **attn_kwargs,
        )
        self.ln_1 = LayerNorm(width)
        self.mlp = MLP(width, config.n_mlp, zero_out=config.zero_out, init_scale=config.init_scale)
        self.res_scale = res_scale

    def forward(self, x: Tensor, encoder_kv: Tensor | None = None) -> Tensor:
        a = self.attn(self.ln_0(x), encoder_kv)
        m = self.mlp(self.ln_1(x + a))
        return x + self.res_scale * (a + m)


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig, n_ctx: int, *, prime_len: int | None = None, causal: bool = True):
        super().__init__()
        self.pattern = attention_pattern(config.attn_order, config.depth)
        res_scale = 1.0 / config.depth if config.res_scale else 1.0
        self._attn_mods = nn.ModuleList(
            ResAttnBlock(config.width, n_ctx, t, config, res_scale=res_scale, prime_len=prime_len, causal=causal) for t in self.pattern
        )

    def record_attention(self, layers: set[int]) -> None:
        """Keep the attention probabilities of these layers from the next forward (for lyric alignment)."""
        for i, block in enumerate(self._attn_mods):
            block.attn.record_attn = i in layers
            block.attn.attn_weights = None

    def forward(self, x: Tensor, encoder_kv: Tensor | None = None) -> Tensor:  # (N, L, W) -> (N, L, W)
        for block in self._attn_mods:
            x = block(x, encoder_kv)
        return x
