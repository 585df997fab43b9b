"""Sampling one window of a prior with a preallocated key/value cache (spec §4.1–4.2).

Position p of the transformer is fed the token at p − 1 (position 0: the start embedding) and its
logits predict the token at p. A window with `prefix` tokens already known is first run over
those positions in chunks (prefill, filling the caches), then advanced one position per new
token. Tokens live in the transformer's own vocabulary: for the merged (1b-style) prior that is
[lyrics, music + n_vocab], converted by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from ..prior.prior import DecoderInputs, Prior
from .logits import Generators, sample_tokens


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class WindowSample:
    tokens: Tensor  # (N, L'): prefix followed by the new tokens; shorter than asked when cancelled
    cancelled: bool
    logits: Tensor | None  # (N, L', V) logits at every position (prefill and steps), when asked for


@torch.no_grad()
def sample_window(
    prior: Prior,
    inputs: DecoderInputs,
    *,
    prefix: Tensor,
    length: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.0,
    generator: Generators = None,
    chunk_size: int = 32,
    keep_logits: bool = False,
    on_token: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> WindowSample:
    """Extend `prefix` (N, k) to `length` tokens. `on_token(done, total)` is called after each new
    token; `cancel` is checked before each one, and a cancelled window returns what it has."""
    model = prior.prior
    n, k = prefix.shape
    if not 0 <= k <= length <= model.length:
        raise ValueError(f"cannot extend {k} tokens to {length} in a context of {model.length}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    device = prefix.device
    activations = inputs.x_cond.dtype if inputs.x_cond is not None else torch.float32
    cache = prior.empty_cache(n, dtype=activations, device=device)
    run = dict(cache=cache, x_cond=inputs.x_cond, y_cond=inputs.y_cond, encoder_kv=inputs.encoder_kv)
    tokens = torch.zeros(n, length, dtype=torch.long, device=device)
    tokens[:, :k] = prefix
    all_logits = []

    # prefill: positions [0, k) are fed [start, prefix[0], …, prefix[k − 2]]
    fed = torch.cat([tokens.new_zeros(n, 1), prefix[:, :-1]], dim=1) if k else tokens[:, :0]
    for start in range(0, k, chunk_size):
        logits = model.forward_cached(fed[:, start : start + chunk_size], start=start, **run)
        if keep_logits:
            all_logits.append(logits.float())

    done = k
    for position in range(k, length):
        if cancel is not None and cancel.is_set():
            break
        last = tokens[:, position - 1 : position] if position else tokens[:, :1]
        logits = model.forward_cached(last, start=position, **run)[:, -1]
        if keep_logits:
            all_logits.append(logits[:, None].float())
        tokens[:, position] = sample_tokens(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        done = position + 1
        if on_token is not None:
            on_token(done - k, length - k)
    return WindowSample(
        tokens=tokens[:, :done],
        cancelled=done < length,
        logits=torch.cat(all_logits, dim=1)[:, :done] if keep_logits and all_logits else None,
    )
