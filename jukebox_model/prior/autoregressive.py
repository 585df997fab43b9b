"""ConditionalAutoregressive2D: token embedding + positions + conditioning -> transformer -> logits (spec §3.4).

Teacher forcing: the input at position i is the embedding of token i − 1 (position 0 gets the
start embedding: the label's artist/genre vector, or a learned start token when unconditioned),
so the logits at position i predict token i.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import TransformerConfig
from ..transformer.transformer import Transformer
from .embeddings import PositionEmbedding


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

    def forward(
        self, x: Tensor, *, x_cond: Tensor | None = None, y_cond: Tensor | None = None, encoder_kv: Tensor | None = None
    ) -> Tensor:
        """x (N, L) tokens -> logits (N, L, bins) (or, when only encoding, activations (N, L, W))."""
        n, length = x.shape
        if length > self.length:
            raise ValueError(f"sequence of {length} tokens exceeds this model's context of {self.length}")
        if int(x.min()) < 0 or int(x.max()) >= self.bins:
            raise ValueError(f"token ids must lie in [0, {self.bins}), got {x.min().item()}..{x.max().item()}")
        h = self.x_emb(x).roll(1, dims=1)  # (N, L, W): position i holds token i − 1
        start = y_cond.view(n, 1, self.width) if self.y_cond else self.start_token.view(1, 1, self.width).expand(n, 1, -1)
        h = torch.cat([start.to(h.dtype), h[:, 1:]], dim=1)
        if x_cond is None:
            x_cond = h.new_zeros(n, 1, self.width)
        x_cond = x_cond[:, :length] if x_cond.shape[1] > 1 else x_cond
        h = h + self.pos_emb()[:length] + x_cond
        h = self.transformer(h, encoder_kv)
        if self.add_cond_after_transformer:
            h = h + x_cond
        if self.only_encode:
            return h
        return self.x_out(h.float() if self.x_out.weight.dtype == torch.float32 else h)
