"""ConditionalAutoregressive2D: token embedding + positions + conditioning -> transformer -> logits (spec §3.4).

The input at position p is the embedding of the token at p − 1; position 0 gets the start
embedding instead (the label's artist/genre vector, or a learned start token when there is no
label conditioning). So the logits at position p predict the token at p.

Three entry points, one computation:
* `forward(x)` scores a whole token sequence by teacher forcing (training, evaluation);
* `forward_cached(inputs, start=…, cache=…)` runs positions [start, start + T) given the tokens
  *fed* there (the previous ones), reading and extending a per-layer cache — what a sampler calls
  to prefill a primed context in chunks;
* `step(...)` runs one position whose index is a 0-d device tensor against the static cache, with
  the same shapes at every position — the token step the window decoder captures as a CUDA graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import TransformerConfig
from ..transformer.attention import KVCache
from ..transformer.transformer import AttentionRecord, Transformer


def bits_per_token(logits: Tensor, targets: Tensor) -> Tensor:
    """The training loss: mean cross-entropy per item in bits. logits (N, L, V), targets (N, L) -> (N,)."""
    ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return ce.view(targets.shape).mean(dim=1) / math.log(2.0)


class PositionEmbedding(nn.Module):
    """A learned absolute position table, the parameter `pos_emb` of shape (L, W)."""

    def __init__(self, length: int, width: int, init_scale: float = 1.0):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.empty(length, width))
        nn.init.normal_(self.pos_emb, std=0.01 * init_scale)

    def forward(self) -> Tensor:
        return self.pos_emb


class ConditionalAutoregressive2D(nn.Module):
    def __init__(
        self,
        config: TransformerConfig,
        *,
        length: int,
        bins: int,
        y_cond: bool,
        merged_decoder: bool,
        only_encode: bool = False,
        prime_len: int | None = None,
    ):
        super().__init__()
        self.length, self.bins, self.width = length, bins, config.width
        self.y_cond = y_cond
        self.x_emb = nn.Embedding(bins, config.width)
        nn.init.normal_(self.x_emb.weight, std=0.02 * config.init_scale)
        if not y_cond:
            self.start_token = nn.Parameter(torch.empty(1, config.width))
            nn.init.normal_(self.start_token, std=0.01 * config.init_scale)
        self.pos_emb = PositionEmbedding(length, config.width, config.init_scale)
        self.transformer = Transformer(config, length, prime_len=prime_len)
        self.only_encode = only_encode
        self.add_cond_after_transformer = not merged_decoder  # merged decoders add x_cond at the input only
        if not only_encode:
            self.x_out = nn.Linear(config.width, bins, bias=False)
            if not merged_decoder:
                self.x_out.weight = self.x_emb.weight  # tied: both keys in the state dict, one tensor

    def empty_cache(
        self,
        batch: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        encoder_len: int | None = None,
    ) -> list[KVCache]:
        return self.transformer.empty_cache(batch, dtype=dtype, device=device, encoder_len=encoder_len)

    @property
    def prefill_alignment(self) -> int:
        """A first prefill chunk (from position 0) should cover a multiple of this many positions: see
        `Transformer.prefill_alignment`."""
        return self.transformer.prefill_alignment

    def project_encoder(self, cache: Sequence[KVCache], encoder_kv: Tensor) -> None:
        """Fill the CROSS layers' caches from the lyrics encoder's states (N, n_tokens, W) before `step`
        from position 0 (a `forward_cached` pass from position 0 does it itself)."""
        self.transformer.project_encoder(cache, encoder_kv)

    def forward(
        self,
        x: Tensor,
        *,
        x_cond: Tensor | None = None,
        y_cond: Tensor | None = None,
        encoder_kv: Tensor | None = None,
        record: AttentionRecord | None = None,
    ) -> Tensor:
        """Teacher forcing: x (N, L) tokens from position 0 -> logits (N, L, bins) where position p
        predicts x[:, p] (only encoding: activations (N, L, W)). x_cond (N, ≥L or 1, W), y_cond (N, 1, W)."""
        if x.dim() != 2 or x.shape[1] > self.length:
            raise ValueError(f"tokens must be (N, ≤{self.length}), got {tuple(x.shape)}")
        if int(x.min()) < 0 or int(x.max()) >= self.bins:
            raise ValueError(f"token ids must lie in [0, {self.bins}), got {x.min().item()}..{x.max().item()}")
        fed = x.roll(1, dims=1)  # position p is fed token p − 1; position 0's is replaced by the start embedding
        return self._run(fed, 0, x_cond=x_cond, y_cond=y_cond, encoder_kv=encoder_kv, cache=None, record=record)

    def forward_cached(
        self,
        inputs: Tensor,
        *,
        start: int,
        cache: Sequence[KVCache],
        x_cond: Tensor | None = None,
        y_cond: Tensor | None = None,
        encoder_kv: Tensor | None = None,
        record: AttentionRecord | None = None,
    ) -> Tensor:
        """inputs (N, T): the tokens fed at positions [start, start + T), i.e. those at positions
        start − 1 … start + T − 2 (at position 0 it is ignored: the start embedding is fed) ->
        logits (N, T, bins). x_cond covers the whole sequence (sliced here) or is one row; CROSS
        layers need encoder_kv when start is 0. Token ids are not range-checked on this hot path."""
        return self._run(inputs, start, x_cond=x_cond, y_cond=y_cond, encoder_kv=encoder_kv, cache=cache, record=record)

    def _start_embedding(self, n: int, y_cond: Tensor | None) -> Tensor:
        """(N, 1, W) fed at position 0: the label's artist/genre vector, or the learned start token."""
        return y_cond.view(n, 1, self.width) if self.y_cond else self.start_token.view(1, 1, -1).expand(n, 1, -1)

    @property
    def compute_dtype(self) -> torch.dtype:
        """The activations' dtype: that of the weights (`sampling.precision` casts them once)."""
        return self.x_emb.weight.dtype

    def step(
        self,
        fed: Tensor,
        position: Tensor,
        *,
        cache: Sequence[KVCache],
        x_cond: Tensor | None = None,
        y_cond: Tensor | None = None,
    ) -> Tensor:
        """One sampling step: fed (N, 1) the token at position − 1, position a 0-d long tensor on the
        device -> logits (N, bins). Same result as `forward_cached(fed, start=int(position))`, but no
        shape depends on the position and nothing is read back to the host, so a CUDA graph can
        capture it once. CROSS layers read their caches: `project_encoder` first."""
        n = fed.shape[0]
        at = position.view(1)
        h = self.x_emb(fed)  # (N, 1, W)
        h = torch.where(position == 0, self._start_embedding(n, y_cond).to(h.dtype), h)
        if x_cond is None:
            x_cond = h.new_zeros(n, 1, self.width)
        elif x_cond.shape[1] > 1:
            x_cond = x_cond.index_select(1, at)
        h = h + self.pos_emb().index_select(0, at) + x_cond
        h = self.transformer.step(h, cache, position)
        if self.add_cond_after_transformer:
            h = h + x_cond
        return self.x_out(h.to(self.x_out.weight.dtype))[:, 0]

    def _run(
        self,
        fed: Tensor,
        start: int,
        *,
        x_cond: Tensor | None,
        y_cond: Tensor | None,
        encoder_kv: Tensor | None,
        cache: Sequence[KVCache] | None,
        record: AttentionRecord | None,
    ) -> Tensor:
        n, t_len = fed.shape
        stop = start + t_len
        if stop > self.length:
            raise ValueError(f"positions up to {stop} exceed this model's context of {self.length}")
        if self.y_cond and y_cond is None:
            raise ValueError("this model is label-conditioned: pass y_cond")
        h = self.x_emb(fed)  # (N, T, W)
        if start == 0:
            h = torch.cat([self._start_embedding(n, y_cond).to(h.dtype), h[:, 1:]], dim=1)
        if x_cond is None:
            x_cond = h.new_zeros(n, 1, self.width)
        elif x_cond.shape[1] > 1:
            if x_cond.shape[1] < stop:
                raise ValueError(f"x_cond covers {x_cond.shape[1]} positions, positions up to {stop} are needed")
            x_cond = x_cond[:, start:stop]
        h = h + self.pos_emb()[start:stop] + x_cond
        h = self.transformer(h, encoder_kv=encoder_kv, cache=cache, start=start, record=record)
        if self.add_cond_after_transformer:
            h = h + x_cond
        if self.only_encode:
            return h
        return self.x_out(h.to(self.x_out.weight.dtype))
