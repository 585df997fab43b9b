"""A cached decode step does the same work wherever it is in the window (issue #7, docs/perf-anchors.md §6.3).

Counted with a TorchDispatchMode (exact, load-independent) on tiny priors of each official attention
pattern family: attn_order 2 (upsamplers, 5b), 10 (5b_lyrics: cross-attention to the lyrics) and 12
(1b_lyrics: prime and dense layers). At every position, from the first, the step dispatches the same
number of aten ops, allocates the same number of tensors and bytes (its key reads have a fixed size),
and makes no host sync.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from jukebox_model import official
from jukebox_model.op_count import count_ops

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from decode_setup import decode_setup, narrow

N_CTX, BLOCKS, WIDTH, N_TOKENS = 256, 8, 32, 32
DEPTHS = {"upsampler_level_0": 6, "prior_5b_lyrics": 19, "prior_1b_lyrics": 48}  # every layer type appears


def _tiny(name: str):
    c = narrow(official.PRIORS[name], WIDTH)
    prior = dataclasses.replace(c.prior, depth=DEPTHS[name], blocks=BLOCKS)
    enc = dataclasses.replace(c.lyrics_encoder, depth=3, blocks=4) if c.lyrics_encoder else None
    labels = dataclasses.replace(c.labels, n_tokens=N_TOKENS) if c.labels.use_tokens else c.labels
    return dataclasses.replace(c, n_ctx=N_CTX, prior=prior, lyrics_encoder=enc, labels=labels)


@pytest.mark.parametrize("name", sorted(DEPTHS))
def test_decode_step_ops_and_allocations_are_flat_in_position(name):
    setup = decode_setup(_tiny(name))
    length = setup.model.length
    block_ctx = setup.model.prefill_alignment
    positions = [0, 1, block_ctx + 1, length // 2, length // 2 + 1, length - block_ctx, length - 1]
    with torch.no_grad():
        counts = {p: count_ops(setup.step, p) for p in positions}
    ref = counts[0]
    assert {p: c.n_ops for p, c in counts.items()} == {p: ref.n_ops for p in positions}
    assert {p: c.allocations for p, c in counts.items()} == {p: ref.allocations for p in positions}
    assert all(c.syncs == 0 for c in counts.values())
    assert {p: c.bytes for p, c in counts.items()} == {p: ref.bytes for p in positions}  # fixed-size reads
