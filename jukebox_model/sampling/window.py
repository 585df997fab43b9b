"""Sampling one window of a prior with a preallocated key/value cache (spec §4.1–4.2).

Position p of the transformer is fed the token at p − 1 (position 0: the start embedding) and its
logits predict the token at p. A window with `prefix` tokens already known is first run over
those positions in chunks (prefill, filling the caches), then advanced one position per new
token by a `WindowDecoder` (decoder.py: fixed buffers, a CUDA graph on the GPU). Tokens live in
the transformer's own vocabulary: for the merged (1b-style) prior that is [lyrics, music + n_vocab],
converted by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..api import CancelToken
from ..prior.prior import DecoderInputs, Prior
from .decoder import DecoderPool, DrawSettings, WindowDecoder
from .logits import Generators

__all__ = ["WindowSample", "sample_window"]


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
    chunk_size: int = 8192,
    keep_logits: bool = False,
    on_token: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
    decoders: DecoderPool | None = None,
) -> WindowSample:
    """Extend `prefix` (N, k) to `length` tokens. `on_token(done, total)` is called after each new
    token; `cancel` is checked before each one, and a cancelled window returns what it has.
    `decoders` keeps the step's buffers (and CUDA graph) from one window to the next."""
    model = prior.prior
    n, k = prefix.shape
    if not 0 <= k <= length <= model.length:
        raise ValueError(f"cannot extend {k} tokens to {length} in a context of {model.length}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    settings = DrawSettings(float(temperature), int(top_k), float(top_p))
    if decoders is not None:
        decoder = decoders.get(prior, inputs, n, settings, prefix.device)
    else:
        decoder = WindowDecoder(prior, inputs, n, settings, device=prefix.device)
    tokens, logits = decoder.run(
        inputs,
        prefix,
        length,
        settings,
        generator=generator,
        chunk_size=chunk_size,
        keep_logits=keep_logits,
        on_token=on_token,
        cancel=cancel,
    )
    return WindowSample(tokens=tokens, cancelled=tokens.shape[1] < length, logits=logits)
