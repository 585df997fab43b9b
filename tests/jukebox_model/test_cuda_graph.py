"""On a GPU: a token step replayed from a CUDA graph draws what the eager step draws, reuses its graph
across windows, and the step itself never waits for the device (issue #7). Skipped without CUDA; the
device check (bench/device_check.sh) runs these on the lent GPU."""

from __future__ import annotations

import pytest
import torch

from jukebox_model.prior.prior import DecoderInputs
from jukebox_model.sampling.decoder import DecoderPool, DrawSettings, WindowDecoder
from jukebox_model.sampling.precision import cast_for_inference
from jukebox_model.sampling.window import sample_window
from tests.jukebox_model.test_static_step import conditioning, tiny_prior

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")

NAMES = ["upsampler_level_0", "prior_5b_lyrics", "prior_1b_lyrics"]


def _on_gpu(name: str, dtype: torch.dtype):
    prior = cast_for_inference(tiny_prior(name).cuda(), dtype)
    run, encoder_kv = conditioning(prior, 2)
    cuda = {k: None if v is None else v.cuda().to(dtype) for k, v in run.items()}
    return prior, DecoderInputs(cuda["x_cond"], cuda["y_cond"], None if encoder_kv is None else encoder_kv.cuda())


def _sample(prior, inputs, pool, seed, prefix_len=9):
    prefix = torch.randint(0, prior.music_bins, (2, prefix_len), generator=torch.Generator().manual_seed(seed)).cuda()
    gens = [torch.Generator(device="cuda").manual_seed(seed + i) for i in range(2)]
    return sample_window(prior, inputs, prefix=prefix, length=prior.prior.length, generator=gens, decoders=pool)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", NAMES)
def test_graph_replay_draws_the_eager_tokens_window_after_window(name, dtype):
    prior, inputs = _on_gpu(name, dtype)
    graphs, eager = DecoderPool(graph=True), DecoderPool(graph=False)
    with torch.no_grad():
        for seed in (1, 2):  # the second window reuses the captured graph
            assert torch.equal(_sample(prior, inputs, graphs, seed).tokens, _sample(prior, inputs, eager, seed).tokens)
    assert len(graphs._decoders) == 1 and next(iter(graphs._decoders.values())).graph is not None


@pytest.mark.parametrize("name", NAMES)
def test_a_token_step_makes_no_host_sync(name):
    prior, inputs = _on_gpu(name, torch.bfloat16)
    decoder = WindowDecoder(
        prior, inputs, 2, DrawSettings(top_k=8, top_p=0.9), device=torch.device("cuda"), graph=False
    )
    decoder.position.fill_(3)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.no_grad():
            for _ in range(4):
                decoder._advance()
    finally:
        torch.cuda.set_sync_debug_mode("default")
