"""Pre-LayerNorm residual attention blocks stacked with the layer pattern of an `attn_order` (spec §3.5)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..config import AttnType, TransformerConfig
from .attention import BLOCKWISE, CacheAccess, FactoredAttention, KVCache
from .ops import MLP, LayerNorm
from .patterns import attention_pattern


@dataclass
class AttentionRecord:
    """Asks one forward pass to keep the attention probabilities of some layers (lyric alignment)."""

    layers: frozenset[int]
    probs: dict[int, Tensor] = field(default_factory=dict)  # layer -> (N, H, T, keys), filled by the pass


class ResAttnBlock(nn.Module):
    """a = attn(ln_0(x)); m = mlp(ln_1(x + a)); out = x + res_scale·(a + m)."""

    def __init__(
        self,
        width: int,
        n_ctx: int,
        attn_type: AttnType,
        config: TransformerConfig,
        *,
        res_scale: float,
        prime_len: int | None = None,
    ):
        super().__init__()
        self.ln_0 = LayerNorm(width)
        self.attn = FactoredAttention(
            width,
            n_ctx,
            config.n_state,
            config.heads,
            attn_type,
            blocks=config.blocks,
            prime_len=prime_len,
            zero_out=config.zero_out,
            init_scale=config.init_scale,
        )
        self.ln_1 = LayerNorm(width)
        self.mlp = MLP(width, config.n_mlp, zero_out=config.zero_out, init_scale=config.init_scale)
        self.res_scale = res_scale

    def forward(
        self,
        x: Tensor,
        *,
        encoder_kv: Tensor | None = None,
        cache: KVCache | None = None,
        start: int = 0,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        a, w = self.attn(self.ln_0(x), encoder_kv=encoder_kv, cache=cache, start=start, need_weights=need_weights)
        m = self.mlp(self.ln_1(x + a))
        return x + self.res_scale * (a + m), w

    def step(self, x: Tensor, cache: KVCache, position: Tensor, access: CacheAccess | None = None) -> Tensor:
        """One sampling step at a device-side position (FactoredAttention.step)."""
        a = self.attn.step(self.ln_0(x), cache, position, access)
        m = self.mlp(self.ln_1(x + a))
        return x + self.res_scale * (a + m)


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig, n_ctx: int, *, prime_len: int | None = None):
        super().__init__()
        if config.pos_init:
            raise ValueError("pos_init (a fixed position buffer) is used by no official model and not implemented")
        self.n_ctx = n_ctx
        self.pattern = attention_pattern(config.attn_order, config.depth)
        res_scale = 1.0 / config.depth if config.res_scale else 1.0
        self._attn_mods = nn.ModuleList(
            ResAttnBlock(config.width, n_ctx, t, config, res_scale=res_scale, prime_len=prime_len) for t in self.pattern
        )

    @property
    def layers(self) -> nn.ModuleList:
        """The residual attention blocks in order (the state-dict name `_attn_mods` is the reference's)."""
        return self._attn_mods

    def empty_cache(
        self,
        batch: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        encoder_len: int | None = None,
    ) -> list[KVCache]:
        """One preallocated cache per layer, sized by its attention type; CROSS layers need encoder_len."""
        return [
            block.attn.empty_cache(batch, dtype=dtype, device=device, encoder_len=encoder_len)
            for block in self._attn_mods
        ]

    @property
    def prefill_alignment(self) -> int:
        """A pass from position 0 over a multiple of this many positions takes every layer's cache-free
        path (the block patterns' whole blocks); a partial last block goes through the cache. A sampler
        ends its first prefill chunk on such a boundary (sampling/decoder.py `prefill_chunks`)."""
        sizes = {block.attn.block_ctx for block in self._attn_mods if block.attn.attn_type in BLOCKWISE}
        return math.lcm(*sizes) if sizes else 1

    def project_encoder(self, cache: Sequence[KVCache], encoder_kv: Tensor) -> None:
        """Fill the CROSS layers' caches from the lyrics encoder's states, before stepping from position 0."""
        for block, layer_cache in zip(self._attn_mods, cache):
            if block.attn.attn_type is AttnType.CROSS:
                block.attn.project_encoder(layer_cache, encoder_kv)

    def step(self, x: Tensor, cache: Sequence[KVCache], position: Tensor) -> Tensor:
        """x (N, 1, W) at a device-side position -> (N, 1, W), with the same shapes at every position.
        Layers of one cache layout read the same slots under the same mask: computed once per layout."""
        accesses: dict[tuple, CacheAccess] = {}
        for block, layer_cache in zip(self._attn_mods, cache):
            attn, access = block.attn, None
            if attn.attn_type is not AttnType.CROSS:
                access = accesses.get(attn.layout)
                if access is None:
                    access = accesses[attn.layout] = attn.cache_access(position)
            x = block.step(x, layer_cache, position, access)
        return x

    def forward(
        self,
        x: Tensor,
        *,
        encoder_kv: Tensor | None = None,
        cache: Sequence[KVCache] | None = None,
        start: int = 0,
        record: AttentionRecord | None = None,
    ) -> Tensor:
        """x (N, T, W) at positions [start, start + T) -> (N, T, W). Without a cache, a whole sequence."""
        if cache is not None and len(cache) != len(self._attn_mods):
            raise ValueError(f"cache has {len(cache)} layers, the transformer {len(self._attn_mods)}")
        if record is not None and not all(0 <= i < len(self._attn_mods) for i in record.layers):
            raise ValueError(f"recorded layers {sorted(record.layers)} outside 0..{len(self._attn_mods) - 1}")
        for i, block in enumerate(self._attn_mods):
            keep = record is not None and i in record.layers
            layer_cache = None if cache is None else cache[i]
            x, w = block(x, encoder_kv=encoder_kv, cache=layer_cache, start=start, need_weights=keep)
            if keep:
                record.probs[i] = w
        return x
