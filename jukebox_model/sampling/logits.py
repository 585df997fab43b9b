"""Turning logits into a token: temperature, top-k, top-p (nucleus) and a seeded draw (spec §4.1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

Generators = torch.Generator | Sequence[torch.Generator] | None


def filter_logits(logits: Tensor, *, top_k: int = 0, top_p: float = 0.0) -> Tensor:
    """Set to −inf what top-k (keep values ≥ the k-th largest) and top-p (drop tokens whose probability
    mass before them already exceeds p; the most likely token always stays) rule out. 0 disables each."""
    if top_k < 0 or not 0.0 <= top_p <= 1.0:
        raise ValueError(f"top_k must be ≥ 0 and top_p in [0, 1], got {top_k}, {top_p}")
    logits = logits.clone()
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits[logits < kth] = float("-inf")
    if top_p > 0.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits.float(), dim=-1)
        before = probs.cumsum(dim=-1) - probs
        drop_sorted = before > top_p
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits[drop] = float("-inf")
    return logits


def sample_tokens(
    logits: Tensor, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 0.0, generator: Generators = None
) -> Tensor:
    """(N, V) logits -> (N,) token ids drawn from softmax(filter(logits / temperature)).

    `generator` is one generator for the batch, or one per row: with one per row, a row's draws do
    not depend on which other rows share its batch, so a take can be regenerated alone from its seed.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    filtered = filter_logits(logits.float() / temperature, top_k=top_k, top_p=top_p)
    probs = torch.softmax(filtered, dim=-1)
    if generator is None or isinstance(generator, torch.Generator):
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    if len(generator) != probs.shape[0]:
        raise ValueError(f"{len(generator)} generators for {probs.shape[0]} rows")
    return torch.cat([torch.multinomial(p[None], 1, generator=g)[0] for p, g in zip(probs, generator)])
