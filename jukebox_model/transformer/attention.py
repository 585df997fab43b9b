"""Factored attention: each layer attends along one sparse pattern (spec §3.5, patterns.py).

Two ways through a self-attention layer (plus CROSS, which reads encoder states), numerically the
same function:

* **Through the cache** — the general case, used for every sampling step and every later prefill
  chunk. Positions [first, first + T) write their keys and values into the layer's `KVCache`, then
  each query reads a part of the cache (`CacheAccess`) masked by `patterns.visible` on the absolute
  positions the cache's slots hold. That is the one rule for which keys a query sees; a step is
  this rule at T = 1 with the position a 0-d tensor on the device, so every op has the same shapes
  at every position and nothing reaches the host — what a CUDA graph needs to capture the step once
  and replay it. A chunk is the same rule at several positions (cut where it would overwrite a slot
  one of its own queries still reads: at block boundaries for BLOCK and PREV_BLOCK, at prime_len
  for PRIME).
* **No cache, from position 0** (teacher forcing, training; and the first prefill chunk, whose keys
  are then written to the cache): the block patterns reshape the sequence into blocks and run dense
  attention inside them — the reference's arithmetic, and far cheaper than masking an L × L score
  matrix. It is kept as the cache-free special case for training speed. A partial last block goes
  through the cache (a scratch one when there is none), so `sampling/decoder.py` makes its first
  prefill chunk whole blocks (`Transformer.prefill_alignment`).

The cache layout, one per attention type (spec §4.1), preallocated and holding only what a later
query can still need. Position p lives in slot p % capacity (PRIME: slot p, for p < prime_len), so
shapes never change while sampling:
  DENSE, TRANSPOSE_BLOCK  every position            (n_ctx slots)
  BLOCK                   the current block         (block_ctx slots)
  PREV_BLOCK              previous + current block  (2 · block_ctx slots)
  PRIME                   the first prime_len positions
  CROSS                   the encoder's keys/values, projected once (`project_encoder`, or start = 0)
What a query reads of it (a fixed-size superset of what it sees; the mask decides):
  TRANSPOSE_BLOCK, one position  the column of its block index: n_ctx / block_ctx slots
  PREV_BLOCK                     the half holding the previous block (zero output in block 0)
  every other case               the whole cache

Shapes: N batch, L length, T chunk, S = n_state (attention width), H heads, D = S / H, W width,
K keys read.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

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


@dataclass(frozen=True, slots=True)
class CacheAccess:
    """What queries at positions [first, first + T) read of a layer's cache once their own keys are in it.

    It depends only on the layer's layout (`FactoredAttention.layout`) and the positions, so layers
    with the same layout share one (a sampling step computes it once per layout, not per layer)."""

    slots: Tensor | None  # (K,) cache slots read, in this order; None: the whole cache
    mask: Tensor  # (T, K) bool: query i sees the key read from slot j (`patterns.visible`)
    seen: Tensor | None  # (T, 1) PREV_BLOCK: whether the query sees any key (zero output when not)


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

    # -- the cache layout ---------------------------------------------------------------------

    @property
    def layout(self) -> tuple:
        """Equal for layers whose caches hold the same positions in the same slots (they can share a `CacheAccess`)."""
        return self.attn_type, self.n_ctx, self.block_ctx, self.prime_len

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

    def _slots_of(self, positions: Tensor) -> Tensor:
        """Where positions are kept: p % capacity (PRIME: p, clamped; positions from prime_len on are not kept)."""
        cap = self.cache_capacity()
        return positions.clamp(max=cap - 1) if self.attn_type is AttnType.PRIME else positions % cap

    def _held(self, slots: Tensor, last: Tensor) -> Tensor:
        """The position each slot holds once positions ≤ last have been written (the inverse of `_slots_of`);
        negative where none has been."""
        cap = self.cache_capacity()
        if self.attn_type is AttnType.PRIME:
            last = last.clamp(max=cap - 1)
        return last - (last - slots) % cap

    def _write(self, cache: KVCache, k: Tensor, v: Tensor, positions: Tensor) -> None:
        """k, v (N, T, S) at positions (T,) into their slots. No two positions may share a slot unless
        none of them is kept (PRIME past prime_len: the slot's own value is written back)."""
        slots = self._slots_of(positions)
        k, v = k.to(cache.k.dtype), v.to(cache.v.dtype)
        if self.attn_type is AttnType.PRIME:
            kept = (positions < self.prime_len)[:, None]
            k = torch.where(kept, k, cache.k.index_select(1, slots))
            v = torch.where(kept, v, cache.v.index_select(1, slots))
        cache.k.index_copy_(1, slots, k)
        cache.v.index_copy_(1, slots, v)

    def _store(self, cache: KVCache, k: Tensor, v: Tensor, start: int) -> None:
        """Write a whole prefill's keys/values from host position `start`: only the last `capacity`
        positions can still be read (PRIME: only those before prime_len)."""
        stop = start + k.shape[1]
        hi = min(stop, self.prime_len) if self.attn_type is AttnType.PRIME else stop
        lo = max(start, hi - cache.capacity)
        if lo < hi:
            positions = torch.arange(lo, hi, device=k.device)
            self._write(cache, k[:, lo - start : hi - start], v[:, lo - start : hi - start], positions)

    # -- which keys a query sees: one rule for steps and chunks --------------------------------

    def cache_access(self, first: Tensor, length: int = 1) -> CacheAccess:
        """What queries at positions [first, first + length) read once their keys are written; `first`
        a 0-d long tensor. Shapes depend on `length` only. PREV_BLOCK queries must share a block."""
        t, bc, dev = self.attn_type, self.block_ctx, first.device
        if t is AttnType.CROSS:
            raise ValueError("a cross-attention layer reads every encoder state: it has no cache access")
        cap = self.cache_capacity()
        if t is AttnType.TRANSPOSE_BLOCK and length == 1:  # the column of the position's index in its block
            slots = first % bc + bc * torch.arange(cap // bc, device=dev)
        elif t is AttnType.PREV_BLOCK:  # block b lives in half b % 2: the previous one is in the other half
            slots = bc * ((first // bc + 1) % 2) + torch.arange(bc, device=dev)
        else:
            slots = None
        read = torch.arange(cap, device=dev) if slots is None else slots
        q_pos = first.view(1) if length == 1 else first + torch.arange(length, device=dev)
        k_pos = self._held(read, first + (length - 1))
        mask = (k_pos >= 0) & visible(t, q_pos, k_pos, block_ctx=bc, prime_len=self.prime_len)
        seen = mask.any(dim=-1, keepdim=True) if t is AttnType.PREV_BLOCK else None
        return CacheAccess(slots, mask, seen)

    def _pieces(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Cut a chunk where writing all of it first would overwrite a slot one of its queries reads."""
        t, bc = self.attn_type, self.block_ctx
        if t in (AttnType.BLOCK, AttnType.PREV_BLOCK):
            cuts = range(start - start % bc + bc, stop, bc)
        elif t is AttnType.PRIME and start < self.prime_len < stop:
            cuts = [self.prime_len]
        else:
            cuts = []
        bounds = [start, *cuts, stop]
        return list(pairwise(bounds))

    def _through_cache(
        self, q: Tensor, k: Tensor, v: Tensor, cache: KVCache, first: Tensor, access: CacheAccess | None = None
    ) -> tuple[Tensor, Tensor]:
        """q, k, v (N, T, S) at positions [first, first + T): write k, v, then attend to what `access`
        reads -> (N, T, S) and the probabilities (N, H, T, K)."""
        self._write(cache, k, v, first + torch.arange(k.shape[1], device=k.device) if k.shape[1] > 1 else first.view(1))
        access = access or self.cache_access(first, q.shape[1])
        if access.slots is None:
            keys, values = cache.k, cache.v
            if torch.is_grad_enabled():  # autograd keeps what it read: a later write in place would change it
                keys, values = keys.clone(), values.clone()
        else:
            keys, values = cache.k.index_select(1, access.slots), cache.v.index_select(1, access.slots)
        a, w = self._attend(q, keys.to(q.dtype), values.to(q.dtype), access.mask, True)
        if access.seen is not None:  # a query that sees no key (PREV_BLOCK in block 0) outputs zeros
            a = a * access.seen.to(a.dtype)
        return a, w

    def _chunk(
        self, q: Tensor, k: Tensor, v: Tensor, cache: KVCache, start: int, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Positions [start, start + T) through the cache, in `_pieces`."""
        outs, weights = [], []
        for lo, hi in self._pieces(start, start + q.shape[1]):
            i, j = lo - start, hi - start
            first = torch.full((), lo, dtype=torch.long, device=q.device)  # a fill, no host-to-device copy
            a, w = self._through_cache(q[:, i:j], k[:, i:j], v[:, i:j], cache, first)
            outs.append(a)
            weights.append(w)
        a = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
        w = None if not need_weights else weights[0] if len(weights) == 1 else torch.cat(weights, dim=2)
        return a, w

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

    # -- no cache, whole blocks from position 0 -----------------------------------------------

    def _whole_blocks(self, length: int) -> int:
        """How much of a sequence from position 0 the cache-free path takes: block patterns, whole blocks."""
        return length - length % self.block_ctx if self.attn_type in BLOCKWISE else length

    def _full(self, q: Tensor, k: Tensor, v: Tensor, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        """Positions [0, L) without a cache (L whole blocks for the block patterns): the teacher-forced
        special case, kept apart from `_through_cache` because it needs no L × L mask."""
        n, l, s = q.shape
        bc, t, dev = self.block_ctx, self.attn_type, q.device
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

    # -- cross-attention: encoder states, not positions ----------------------------------------

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

    # -- entry points ---------------------------------------------------------------------------

    def step(self, x: Tensor, cache: KVCache, position: Tensor, access: CacheAccess | None = None) -> Tensor:
        """x (N, 1, W) at `position` (0-d long tensor, same device) -> (N, 1, W): `_through_cache` at
        one position, with shapes that do not depend on it. `access` (`cache_access(position)`) may be
        shared by the layers of one layout. Equal to `forward(x, cache=cache, start=int(position))`."""
        if self.attn_type is AttnType.CROSS:
            a, _ = self._attend(self.c_attn(x), cache.k, cache.v, None, False)
            return self.c_proj(a)
        q, k, v = self.c_attn(x).chunk(3, dim=-1)
        a, _ = self._through_cache(q, k, v, cache, position, access)
        return self.c_proj(a)

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
        when need_weights: (N, H, T, keys) for DENSE, PRIME and CROSS; the block patterns' as computed
        (per block without a cache; None when a pass mixes the two ways).

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
            return self.c_proj(a), w
        q, k, v = self.c_attn(x).chunk(3, dim=-1)
        head = self._whole_blocks(t_len) if start == 0 and (cache is None or t_len > 1) else 0
        a = w = None
        if head:
            a, w = self._full(q[:, :head], k[:, :head], v[:, :head], need_weights)
        if head < t_len:  # through the cache from position start + head: a scratch one for a partial block
            if cache is None:
                cache = self.empty_cache(x.shape[0], dtype=k.dtype, device=k.device)
            if head:
                self._store(cache, k[:, :head], v[:, :head], 0)
            tail, w_tail = self._chunk(q[:, head:], k[:, head:], v[:, head:], cache, start + head, need_weights)
            a, w = (tail, w_tail) if a is None else (torch.cat([a, tail], dim=1), None)
        elif cache is not None:
            self._store(cache, k, v, 0)
        return self.c_proj(a), w
