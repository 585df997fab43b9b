"""Turning logits into a token: temperature, top-k, top-p (nucleus) and a seeded draw (spec §4.1).

The draw is the Gumbel-max form of sampling from softmax(l): argmax(l + g) with g = −log(−log u),
u uniform, picks token i with probability softmax(l)_i. Unlike `torch.multinomial` it needs no
normalisation and no host round trip, and its noise can be drawn ahead for many steps: each row
(take) draws from its own generator, so a take regenerates alone from its seed, and a sampling step
on the GPU is a fixed sequence of kernels (window.py captures it as a CUDA graph).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

Generators = torch.Generator | Sequence[torch.Generator] | None


def filter_logits(logits: Tensor, *, top_k: int = 0, top_p: float = 0.0) -> Tensor:
    """Set to −inf what top-k (keep values ≥ the k-th largest) and top-p (drop tokens whose probability
    mass before them already exceeds p; the most likely token always stays) rule out. 0 disables each."""
    _check_filters(top_k, top_p)
    return _filtered(logits, top_k, top_p if top_p > 0 else None)


def _check_filters(top_k: int, top_p: float) -> None:
    if top_k < 0 or not 0.0 <= top_p <= 1.0:
        raise ValueError(f"top_k must be ≥ 0 and top_p in [0, 1], got {top_k}, {top_p}")


def _filtered(logits: Tensor, top_k: int, top_p: float | Tensor | None) -> Tensor:
    if top_k > 0:
        logits = keep_top_k(logits, top_k)
    if top_p is not None:
        logits = keep_top_p(logits, top_p)
    return logits


def keep_top_k(logits: Tensor, k: int) -> Tensor:
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def keep_top_p(logits: Tensor, p: float | Tensor) -> Tensor:
    """p may be a 0-d tensor on the device, so that one captured step serves any p."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    before = probs.cumsum(dim=-1) - probs
    drop_sorted = before > p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def gumbel_noise(
    rows: int,
    steps: int,
    vocab: int,
    *,
    generator: Generators = None,
    device: torch.device | str | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """(rows, steps, vocab) float32 Gumbel noise; with one generator per row, row i comes from generator i alone."""
    if out is None:
        out = torch.empty(rows, steps, vocab, device=device)
    if generator is None or isinstance(generator, torch.Generator):
        out.uniform_(generator=generator)
    else:
        if len(generator) != rows:
            raise ValueError(f"{len(generator)} generators for {rows} rows")
        for row, g in zip(out, generator):
            row.uniform_(generator=g)
    tiny = torch.finfo(out.dtype).tiny  # u = 0 would give −inf noise: that token is then never drawn
    return out.clamp_(min=tiny).log_().neg_().log_().neg_()


def draw(
    logits: Tensor, noise: Tensor, *, scale: float | Tensor = 1.0, top_k: int = 0, top_p: float | Tensor | None = None
) -> Tensor:
    """(N, V) logits and (N, V) Gumbel noise -> (N,) token ids distributed as softmax(filter(logits · scale)).

    scale is 1 / temperature; top_p None disables the nucleus. Either may be a 0-d device tensor, so one
    captured step serves any temperature and p (top_k is a shape)."""
    return (_filtered(logits.float() * scale, top_k, top_p) + noise).argmax(dim=-1)


def sample_tokens(
    logits: Tensor, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 0.0, generator: Generators = None
) -> Tensor:
    """(N, V) logits -> (N,) token ids drawn from softmax(filter(logits / temperature)): one step of `draw`.

    `generator` is one generator for the batch, or one per row: with one per row, a row's draws do
    not depend on which other rows share its batch, so a take can be regenerated alone from its seed.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    _check_filters(top_k, top_p)
    noise = gumbel_noise(logits.shape[0], 1, logits.shape[-1], generator=generator, device=logits.device)[:, 0]
    return draw(logits, noise, scale=1.0 / temperature, top_k=top_k, top_p=top_p if top_p > 0 else None)
