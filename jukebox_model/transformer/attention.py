"""Factored attention: each layer attends along one sparse pattern (spec §3.5, patterns.py).

Four ways through a layer, numerically the same function:
* Full sequence from position 0 (teacher forcing): the block patterns reshape the sequence into
  blocks and run dense attention inside them — the reference's arithmetic, and far cheaper than
  an L × L mask. Lengths that are not whole blocks fall back to the chunk path.
* A prefill chunk from position 0 takes the full-sequence path and then writes its keys and values
  to the cache: one pass over a window's context costs no L × L mask (sampling/decoder.py makes its
  first chunk whole blocks).
* A chunk of T positions [start, start + T) against a `KVCache` (later prefill chunks): the
  chunk's queries attend to keys gathered from the cache (earlier positions) and to its own keys,
  masked by `patterns.visible` on absolute positions. Any chunking equals one full pass.
* One sampling step (`step`): a single query whose position is a 0-d tensor on the device. It
  writes its key and value into the cache and reads a fixed-size part of it, masked where the
  pattern says, so every op has the same shapes at every position and no value reaches the host:
  what a CUDA graph needs to capture the step once and replay it for every token.
    DENSE, PRIME     the whole cache, masked to slots ≤ position
    BLOCK            the whole cache (= the current block), masked to slots ≤ position in it
    TRANSPOSE_BLOCK  the column of the position's block index: n_ctx / block_ctx keys, masked
    PREV_BLOCK       the half of the cache holding the previous block (zero output in block 0)
    CROSS            the encoder's keys and values (`project_encoder` fills them first)

The cache is preallocated per layer and holds only what a later query can still need (spec §4.1):
  DENSE, TRANSPOSE_BLOCK  every position            (n_ctx slots)
  BLOCK                   the current block         (block_ctx slots)
  PREV_BLOCK              previous + current block  (2 · block_ctx slots)
  PRIME                   the first prime_len positions
  CROSS                   the encoder's keys/values, projected once at start = 0
Position p lives in slot p % capacity, so shapes never change while sampling.

Shapes: N batch, L length, T chunk, S = n_state (attention width), H heads, D = S / H, W width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import AttnType
from .ops import Conv1D
from .patterns import SUPPORTED, visible

BLOCKWISE = (AttnType.BLOCK, AttnType.TRANSPOSE_BLOCK, AttnType.PREV_BLOCK)


@dataclass(frozen=True, slots=True)
class KVCache:
    """One layer's keys and values, written in place: position p in slot p % capacity (CROSS: encoder order)."""

    k: Tensor  # (N, capacity, S)
    v: Tensor  # (N, capacity, S)

    @property
    def capacity(self) -> int:
        return self.k.shape[1]


def causal_mask(q_len: int, kv_len: int, device: torch.device) -> Tensor:
    """(q_len, kv_len) bool: query i sees keys j ≤ i (the full-sequence mask of every causal pattern)."""
    return torch.ones(q_len, kv_len, dtype=torch.bool, device=device).tril()


class FactoredAttention(nn.Module):
    def __init__(
        self,
        width: int,
        n_ctx: int,
        n_state: int,
        heads: int,
        attn_type: AttnType,
        *,
        blocks: int | None,
        prime_len: int | None = None,
        zero_out: bool = False,
        init_scale: float = 1.0,
    ):
        super().__init__()
        if n_state % heads:
            raise ValueError(f"attention width {n_state} is not divisible by {heads} heads")
        self.attn_type = AttnType(attn_type)
        if self.attn_type not in SUPPORTED:
            raise ValueError(f"attention type {self.attn_type.name} is used by no official model and not implemented")
        if self.attn_type is AttnType.PRIME and not prime_len:
            raise ValueError("prime attention needs prime_len")
        self.n_ctx, self.n_state, self.heads, self.d_head = n_ctx, n_state, heads, n_state // heads
        self.block_ctx = n_ctx // blocks if blocks else n_ctx
        if self.attn_type in BLOCKWISE and n_ctx % self.block_ctx:
            raise ValueError(f"sequence length {n_ctx} is not a whole number of blocks of {self.block_ctx}")
        self.prime_len = prime_len
        if self.attn_type is AttnType.CROSS:
            self.c_attn = Conv1D(width, n_state, init_scale=init_scale)  # queries only
            self.c_enc_kv = Conv1D(width, 2 * n_state, init_scale=init_scale)  # keys | values of the encoder
        else:
            self.c_attn = Conv1D(width, 3 * n_state, init_scale=init_scale)  # queries | keys | values
        zero_proj = zero_out or self.attn_type is AttnType.CROSS
        self.c_proj = Conv1D(n_state, width, zero_out=zero_proj, init_scale=init_scale)

    # -- cache --------------------------------------------------------------------------------

    def cache_capacity(self, encoder_len: int | None = None) -> int:
        t = self.attn_type
        if t is AttnType.CROSS:
            if encoder_len is None:
                raise ValueError("a cross-attention layer's cache needs the encoder length")
            return encoder_len
        if t is AttnType.BLOCK:
            return self.block_ctx
        if t is AttnType.PREV_BLOCK:
            return 2 * self.block_ctx
        if t is AttnType.PRIME:
            return min(self.prime_len, self.n_ctx)
        return self.n_ctx

    def empty_cache(
        self,
        batch: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        encoder_len: int | None = None,
    ) -> KVCache:
        shape = (batch, self.cache_capacity(encoder_len), self.n_state)
        return KVCache(torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))

    # -- dense attention, the core every pattern reduces to ------------------------------------

    def _attend(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """q (B, Lq, S), k/v (B, Lk, S), mask (Lq, Lk) bool -> (B, Lq, S) and probabilities (B, H, Lq, Lk)."""
        b, lq, _ = q.shape
        lk = k.shape[1]
        h, d = self.heads, self.d_head
        q = q.reshape(b, lq, h, d).transpose(1, 2)  # (B, H, Lq, D)
        k = k.reshape(b, lk, h, d).transpose(1, 2)
        v = v.reshape(b, lk, h, d).transpose(1, 2)
        scale = d**-0.25  # 1/√D split over q and k: q·k cannot overflow in half precision
        w = torch.matmul(q * scale, (k * scale).transpose(-1, -2)).float()  # (B, H, Lq, Lk)
        if mask is not None:
            w = w.masked_fill(~mask, -1e9)
        w = torch.softmax(w, dim=-1).to(v.dtype)
        a = torch.matmul(w, v).transpose(1, 2).reshape(b, lq, self.n_state)
        return a, (w if need_weights else None)

    # -- full sequence from position 0 --------------------------------------------------------

    def _full(self, q: Tensor, k: Tensor, v: Tensor, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        n, l, s = q.shape
        bc, t, dev = self.block_ctx, self.attn_type, q.device
        if t in BLOCKWISE and l % bc:
            return self._chunk(q, k, v, None, 0, need_weights)
        if t is AttnType.DENSE:
            return self._attend(q, k, v, causal_mask(l, l, dev), need_weights)
        if t is AttnType.PRIME:
            p = min(self.prime_len, l)
            return self._attend(q, k[:, :p], v[:, :p], causal_mask(l, p, dev), need_weights)
        nb = l // bc
        if t is AttnType.BLOCK:  # each block attends within itself

            def by_block(x: Tensor) -> Tensor:
                return x.reshape(n * nb, bc, s)

            a, w = self._attend(by_block(q), by_block(k), by_block(v), causal_mask(bc, bc, dev), need_weights)
            return a.reshape(n, l, s), w
        if t is AttnType.TRANSPOSE_BLOCK:  # index i of every block together: (N·bc, nb, S)

            def by_index(x: Tensor) -> Tensor:
                return x.reshape(n, nb, bc, s).transpose(1, 2).reshape(n * bc, nb, s)

            a, w = self._attend(by_index(q), by_index(k), by_index(v), causal_mask(nb, nb, dev), need_weights)
            return a.reshape(n, bc, nb, s).transpose(1, 2).reshape(n, l, s), w

        def previous(x: Tensor) -> Tensor:  # PREV_BLOCK: block b sees block b − 1, block 0 sees zeros
            shifted = nn.functional.pad(x.reshape(n, nb, bc, s)[:, :-1], (0, 0, 0, 0, 1, 0))
            return shifted.reshape(n * nb, bc, s)

        a, w = self._attend(q.reshape(n * nb, bc, s), previous(k), previous(v), None, need_weights)
        return a.reshape(n, l, s), w

    # -- a chunk of positions against the cache -----------------------------------------------

    def _key_window(self, start: int, stop: int) -> range:
        """Absolute positions of the keys that queries [start, stop) may see (a superset; the mask decides)."""
        t, bc = self.attn_type, self.block_ctx
        if t is AttnType.BLOCK:
            return range(start - start % bc, stop)
        if t is AttnType.TRANSPOSE_BLOCK and stop - start == 1:
            return range(start % bc, stop, bc)
        if t is AttnType.PREV_BLOCK:
            return range(max(start - start % bc - bc, 0), (stop - 1) - (stop - 1) % bc)
        if t is AttnType.PRIME:
            return range(min(stop, self.prime_len))
        return range(stop)

    def _chunk(
        self, q: Tensor, k: Tensor, v: Tensor, cache: KVCache | None, start: int, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        n, t_len, s = q.shape
        stop = start + t_len
        window = self._key_window(start, stop)
        n_past = len(range(window.start, min(start, window.stop), window.step))  # keys before the chunk: from the cache
        n_new = len(window) - n_past  # keys from the chunk itself: positions start, start + 1, …
        weights = None
        if not len(window):  # PREV_BLOCK queries in the first block: zero keys and values -> zero output
            a = q.new_zeros(n, t_len, s)
        else:
            k_pos = torch.arange(window.start, window.stop, window.step, device=q.device)
            keys, values = k[:, :n_new], v[:, :n_new]
            if n_past:
                slots = k_pos[:n_past] % cache.capacity
                keys = torch.cat([cache.k.index_select(1, slots).to(k.dtype), keys], dim=1)
                values = torch.cat([cache.v.index_select(1, slots).to(v.dtype), values], dim=1)
            q_pos = torch.arange(start, stop, device=q.device)
            mask = visible(self.attn_type, q_pos, k_pos, block_ctx=self.block_ctx, prime_len=self.prime_len)
            a, weights = self._attend(q, keys, values, mask, need_weights)
            if self.attn_type is AttnType.PREV_BLOCK:  # first-block queries see zeros, not their masked row
                a = a * mask.any(dim=-1, keepdim=True).to(a.dtype)
        if cache is not None:
            self._store(cache, k, v, start, stop)
        return a, weights

    def _store(self, cache: KVCache, k: Tensor, v: Tensor, start: int, stop: int) -> None:
        """Write the chunk's keys/values; only the last `capacity` positions matter (and PRIME's first ones)."""
        hi = min(stop, self.prime_len) if self.attn_type is AttnType.PRIME else stop
        lo = max(start, hi - cache.capacity)
        if hi <= lo:
            return
        slots = torch.arange(lo, hi, device=k.device) % cache.capacity
        cache.k.index_copy_(1, slots, k[:, lo - start : hi - start].to(cache.k.dtype))
        cache.v.index_copy_(1, slots, v[:, lo - start : hi - start].to(cache.v.dtype))

    # -- one sampling step, position-independent shapes ----------------------------------------

    def step(self, x: Tensor, cache: KVCache, position: Tensor) -> Tensor:
        """x (N, 1, W) at `position` (0-d long tensor, same device) -> (N, 1, W); see the module docstring.

        Equal to `forward(x, cache=cache, start=int(position))` for every position of the pattern."""
        if self.attn_type is AttnType.CROSS:
            a, _ = self._attend(self.c_attn(x), cache.k, cache.v, None, False)
            return self.c_proj(a)
        q, k, v = self.c_attn(x).chunk(3, dim=-1)
        self._store_at(cache, k, v, position)
        keys, values, mask = self._static_keys(cache, position)
        a, _ = self._attend(q, keys.to(q.dtype), values.to(q.dtype), mask, False)
        if self.attn_type is AttnType.PREV_BLOCK:  # block 0 has no previous block: zero output
            a = a * (position >= self.block_ctx).to(a.dtype)
        return self.c_proj(a)

    def _store_at(self, cache: KVCache, k: Tensor, v: Tensor, position: Tensor) -> None:
        cap = cache.capacity
        if self.attn_type is AttnType.PRIME:  # only the first prime_len positions are kept
            slot = position.clamp(max=cap - 1).view(1)
            inside = position < self.prime_len
            k = torch.where(inside, k.to(cache.k.dtype), cache.k.index_select(1, slot))
            v = torch.where(inside, v.to(cache.v.dtype), cache.v.index_select(1, slot))
        else:
            slot = (position % cap).view(1)
        cache.k.index_copy_(1, slot, k.to(cache.k.dtype))
        cache.v.index_copy_(1, slot, v.to(cache.v.dtype))

    def _static_keys(self, cache: KVCache, position: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(keys, values, mask (1, K) or None): the same K at every position."""
        t, bc, dev = self.attn_type, self.block_ctx, position.device
        n, cap, s = cache.k.shape
        if t is AttnType.TRANSPOSE_BLOCK:
            nb = cap // bc
            column = (position % bc).view(1)

            def pick(c: Tensor) -> Tensor:
                return c.view(n, nb, bc, s).index_select(2, column).view(n, nb, s)

            return pick(cache.k), pick(cache.v), (torch.arange(nb, device=dev) <= position // bc)[None]
        if t is AttnType.PREV_BLOCK:  # positions of block b live in half b % 2; the previous one is (b + 1) % 2
            half = ((position // bc + 1) % 2).view(1)

            def pick(c: Tensor) -> Tensor:
                return c.view(n, 2, bc, s).index_select(1, half).view(n, bc, s)

            return pick(cache.k), pick(cache.v), None
        last = position % bc if t is AttnType.BLOCK else position  # DENSE, PRIME: slot = position
        return cache.k, cache.v, (torch.arange(cap, device=dev) <= last)[None]

    def project_encoder(self, cache: KVCache, encoder_kv: Tensor) -> None:
        """CROSS layers: the encoder's keys and values, projected once into the cache before stepping."""
        k, v = self.c_enc_kv(encoder_kv.to(cache.k.dtype)).chunk(2, dim=-1)
        if cache.capacity != k.shape[1]:
            raise ValueError(f"cache holds {cache.capacity} encoder states, encoder_kv has {k.shape[1]}")
        cache.k.copy_(k)
        cache.v.copy_(v)

    def _cross(
        self, x: Tensor, encoder_kv: Tensor | None, cache: KVCache | None, start: int, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        q = self.c_attn(x)
        if cache is None or start == 0:
            if encoder_kv is None:
                raise ValueError("cross-attention layer called without encoder states (encoder_kv)")
            if cache is not None:
                self.project_encoder(cache, encoder_kv)
                k, v = cache.k.to(q.dtype), cache.v.to(q.dtype)
            else:
                k, v = self.c_enc_kv(encoder_kv.to(x.dtype)).chunk(2, dim=-1)
        else:  # projected once at start 0
            k, v = cache.k.to(q.dtype), cache.v.to(q.dtype)
        return self._attend(q, k, v, None, need_weights)

    def forward(
        self,
        x: Tensor,
        *,
        encoder_kv: Tensor | None = None,
        cache: KVCache | None = None,
        start: int = 0,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """x (N, T, W) at positions [start, start + T) -> (N, T, W), plus the attention probabilities
        (B, H, T', keys) when need_weights (block patterns: per block, as computed).

        Without a cache x is a whole sequence from position 0. With one, earlier positions come from
        it and this chunk is written to it. CROSS layers project `encoder_kv` (N, L_enc, W) at start 0
        and read the cache afterwards."""
        t_len = x.shape[1]
        if start < 0 or start + t_len > self.n_ctx:
            raise ValueError(f"positions {start}..{start + t_len} outside this layer's context of {self.n_ctx}")
        if cache is None and start:
            raise ValueError(f"positions from {start} need a cache holding the earlier ones")
        if cache is not None and cache.k.shape[0] != x.shape[0]:
            raise ValueError(f"cache was made for a batch of {cache.k.shape[0]}, got {x.shape[0]}")
        if self.attn_type is AttnType.CROSS:
            a, w = self._cross(x, encoder_kv, cache, start, need_weights)
        else:
            q, k, v = self.c_attn(x).chunk(3, dim=-1)
            if cache is None:
                a, w = self._full(q, k, v, need_weights)
            elif start == 0 and t_len > 1:  # a prefill from the window start: block-reshaped, then cached
                a, w = self._full(q, k, v, need_weights)
                self._store(cache, k, v, 0, t_len)
            else:
                a, w = self._chunk(q, k, v, cache, start, need_weights)
        return self.c_proj(a), w
