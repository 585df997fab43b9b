"""The sampling step with a device-side position (what a CUDA graph captures) computes the same logits and
caches as the cached forward pass at every position, with the same op shapes everywhere (issue #7).

Tiny priors of each official attention family: attn_order 2 (upsamplers, 5b: block, column, previous
block), 10 (5b_lyrics: cross-attention to the lyrics encoder) and 12 (1b_lyrics: prime and dense layers,
merged lyrics), with random weights and random conditioning.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jukebox_model import official
from jukebox_model.config import LyricsMode
from jukebox_model.prior.prior import Prior

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from decode_setup import narrow

N_CTX, BLOCKS, WIDTH, N_TOKENS = 64, 4, 32, 16
DEPTHS = {"upsampler_level_0": 6, "prior_5b_lyrics": 19, "prior_1b_lyrics": 48}  # every layer type appears


def tiny_prior(name: str, depth: int | None = None) -> Prior:
    c = narrow(official.PRIORS[name], WIDTH)
    prior = dataclasses.replace(c.prior, depth=depth or DEPTHS[name], blocks=BLOCKS)
    enc = dataclasses.replace(c.lyrics_encoder, depth=3, blocks=4) if c.lyrics_encoder else None
    labels = dataclasses.replace(c.labels, n_tokens=N_TOKENS) if c.labels.use_tokens else c.labels
    config = dataclasses.replace(c, n_ctx=N_CTX, prior=prior, lyrics_encoder=enc, labels=labels)
    torch.manual_seed(0)
    p = Prior(config, official.VQVAE).eval()
    with torch.no_grad():
        for param in p.parameters():  # zero-initialised projections would hide a wrong read
            param.normal_(std=0.05)
    return p


def conditioning(prior: Prior, batch: int) -> dict:
    model, width = prior.prior, prior.config.prior.width
    g = torch.Generator().manual_seed(1)
    run = {"x_cond": torch.randn(batch, model.length, width, generator=g), "y_cond": None}
    if model.y_cond:
        run["y_cond"] = torch.randn(batch, 1, width, generator=g)
    encoder_kv = None
    if prior.mode is LyricsMode.CROSS_ATTENTION:
        encoder_kv = torch.randn(batch, prior.n_tokens, width, generator=g)
    return run, encoder_kv


@pytest.mark.parametrize("name", sorted(DEPTHS))
def test_static_step_equals_the_cached_forward_at_every_position(name):
    prior = tiny_prior(name)
    model, batch = prior.prior, 2
    run, encoder_kv = conditioning(prior, batch)
    fed = torch.randint(0, model.bins, (batch, model.length), generator=torch.Generator().manual_seed(2))
    dynamic, static = prior.empty_cache(batch), prior.empty_cache(batch)
    with torch.no_grad():
        if encoder_kv is not None:
            model.transformer.project_encoder(static, encoder_kv)
        for p in range(model.length):
            expected = model.forward_cached(fed[:, p : p + 1], start=p, cache=dynamic, encoder_kv=encoder_kv, **run)[
                :, 0
            ]
            got = model.step(fed[:, p : p + 1], torch.tensor(p), cache=static, **run)
            torch.testing.assert_close(got, expected, atol=2e-5, rtol=2e-5, msg=lambda m, p=p: f"position {p}: {m}")
    for a, b in zip(dynamic, static):
        torch.testing.assert_close(b.k, a.k, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(b.v, a.v, atol=1e-6, rtol=1e-6)


class ShapeRecorder(TorchDispatchMode):
    """Every aten op with the shapes of its tensor arguments: a graph replays exactly such a list."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        shapes = tuple(tuple(a.shape) if isinstance(a, torch.Tensor) else None for a in args)
        self.calls.append((func.overloadpacket.__name__, shapes))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", sorted(DEPTHS))
def test_static_step_dispatches_the_same_ops_on_the_same_shapes_at_every_position(name):
    prior = tiny_prior(name)
    model = prior.prior
    run, encoder_kv = conditioning(prior, 1)
    cache = prior.empty_cache(1)
    token = torch.zeros(1, 1, dtype=torch.long)
    traces = {}
    with torch.no_grad():
        if encoder_kv is not None:
            model.transformer.project_encoder(cache, encoder_kv)
        for p in (0, 1, BLOCKS, model.length // 2, model.length - 1):
            with ShapeRecorder() as rec:
                model.step(token, torch.tensor(p), cache=cache, **run)
            traces[p] = rec.calls
    first = traces[0]
    assert all(t == first for t in traces.values())
    assert not {"_local_scalar_dense", "nonzero", "item", "is_nonzero"} & {c[0] for c in first}
