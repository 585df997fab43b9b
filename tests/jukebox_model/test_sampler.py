"""Three-level sampling on the tiny reference bundle: lengths per level, upsampling order, determinism,
continue/resume from a codes file, cancellation, progress and previews."""

from __future__ import annotations

import threading

import pytest
import torch

from jukebox_model.api import SamplingParams
from jukebox_model.checkpoints import load_state_strict, load_vqvae, model_state, read_checkpoint
from jukebox_model.hparams import prior_config_from_hparams, vqvae_config_from_hparams
from jukebox_model.labels import Labeller
from jukebox_model.prior.prior import Prior
from jukebox_model.sampling.sampler import LevelModel, Sampler, load_codes, save_codes
from tests.reference import discover, reference_dir

SONGS = [("Alan Jackson", "Country", "Hello world, a short song " * 8), ("Céline Dion", "Pop", "la la la")]
GREEDY = SamplingParams(top_k=1, temperature=(1.0, 1.0, 1.0), hop_fraction=(0.5, 0.5, 0.5), chunk_size=16, seed=0)


def _bundle(top_base: str) -> Sampler | None:
    vq_fx, priors = discover("vqvae"), discover("prior")
    tops = [f for f in priors if f.base_set == top_base]
    ups = {f.base_set: f for f in priors if f.base_set.startswith("upsampler_level_")}
    if not vq_fx or not tops or len(ups) < 2:
        return None
    vqvae = load_vqvae(vq_fx[0].checkpoint, config=vqvae_config_from_hparams(vq_fx[0].hparams()["hparams"]))
    levels = {}
    for fx in [tops[0], *ups.values()]:
        config = prior_config_from_hparams(fx.hparams()["hparams"], vqvae_levels=vqvae.config.levels)
        prior = Prior(config, vqvae.config).eval()
        load_state_strict(prior, model_state(read_checkpoint(fx.checkpoint)))
        labeller = Labeller.for_prior(
            config.labels, reference_dir() / "ids", n_ctx=config.n_ctx, hop_length=vqvae.hop_lengths[config.level]
        )
        levels[config.level] = LevelModel(prior, labeller)
    return Sampler(vqvae, levels)


@pytest.fixture(scope="module", params=["prior_1b_lyrics", "prior_5b_lyrics"])
def sampler(request):
    built = _bundle(request.param)
    if built is None:
        pytest.skip(f"the fixture folder lacks a {request.param} top prior, both upsamplers or the VQ-VAE")
    return built


def _empty(sampler):
    return [torch.zeros(len(SONGS), 0, dtype=torch.long) for _ in range(3)]


def _length(sampler) -> int:
    """Enough samples for one full upsampler window at every level, plus some."""
    need = max(m.prior.n_ctx * sampler.vqvae.hop_lengths[lv] for lv, m in sampler.levels.items() if lv < 2)
    top = sampler.vqvae.hop_lengths[-1]
    return (need * 3 // 2) // top * top


def test_ancestral_sampling_fills_every_level_top_first(sampler):
    n_samples = _length(sampler)
    order = []
    result = sampler.sample(
        _empty(sampler),
        n_samples=n_samples,
        songs=SONGS,
        total_length=60 * 44100,
        params=GREEDY,
        on_level_done=lambda lv, z: order.append(lv),
    )
    assert order == [2, 1, 0] and not result.cancelled
    for level, z in enumerate(result.zs):
        assert z.shape == (2, n_samples // sampler.vqvae.hop_lengths[level])
        assert int(z.min()) >= 0 and int(z.max()) < sampler.vqvae.config.l_bins
    assert sampler.decode(result.zs, 0).shape == (2, n_samples, 1)


def test_same_seed_gives_the_same_codes_and_continuing_equals_one_run(sampler, tmp_path):
    n_samples = _length(sampler)
    params = SamplingParams(hop_fraction=(0.5, 0.5, 0.5), chunk_size=16, seed=5)
    whole = sampler.sample(_empty(sampler), n_samples=n_samples, songs=SONGS, total_length=60 * 44100, params=GREEDY)
    again = sampler.sample(_empty(sampler), n_samples=n_samples, songs=SONGS, total_length=60 * 44100, params=GREEDY)
    assert all(torch.equal(a, b) for a, b in zip(whole.zs, again.zs))
    seeded = [
        sampler.sample(_empty(sampler), n_samples=n_samples, songs=SONGS, total_length=60 * 44100, params=params).zs[2]
        for _ in range(2)
    ]
    assert torch.equal(*seeded)

    stop = threading.Event()
    count = {"n": 0}

    def progress(p):
        count["n"] += 1
        if p.level == 1 and p.tokens_done >= 5:
            stop.set()

    partial = sampler.sample(
        _empty(sampler),
        n_samples=n_samples,
        songs=SONGS,
        total_length=60 * 44100,
        params=GREEDY,
        on_progress=progress,
        cancel=stop,
    )
    assert partial.cancelled and partial.zs[0].shape[1] == 0 and 0 < partial.zs[1].shape[1] < whole.zs[1].shape[1]
    path = save_codes(tmp_path / "codes.pt", partial, params=GREEDY, meta={"songs": [list(s) for s in SONGS]})
    saved = load_codes(path)
    assert saved["params"] == GREEDY
    resumed = sampler.sample(
        saved["zs"], n_samples=n_samples, songs=SONGS, total_length=60 * 44100, params=saved["params"]
    )
    assert all(torch.equal(a, b) for a, b in zip(resumed.zs, whole.zs))  # greedy: continuing = one run
    assert count["n"] > 0


def test_progress_reports_windows_tokens_and_eta(sampler):
    seen = []
    one = [z[:1] for z in _empty(sampler)]
    sampler.sample(
        one,
        n_samples=_length(sampler),
        songs=SONGS[:1],
        total_length=60 * 44100,
        levels=[2],
        params=GREEDY,
        on_progress=seen.append,
    )
    assert {p.level for p in seen} == {2}
    last = seen[-1]
    assert (
        last.tokens_done == last.tokens_total
        and last.window == last.n_windows
        and last.eta_s == pytest.approx(0.0, abs=1e-6)
    )


def test_upsampling_needs_the_level_above(sampler):
    with pytest.raises(ValueError, match="complete"):
        sampler.sample(
            _empty(sampler)[:2] + [torch.zeros(2, 0, dtype=torch.long)],
            n_samples=_length(sampler),
            songs=SONGS,
            total_length=60 * 44100,
            levels=[1],
            params=GREEDY,
        )


def test_each_take_has_its_own_seed_so_one_take_regenerates_alone(sampler):
    """Take i of a batch seeded s is the single take seeded s + i, whatever the batch or chunk size."""
    n_samples = _length(sampler)
    params = SamplingParams(hop_fraction=(0.5, 0.5, 0.5), chunk_size=16, seed=11)
    song = [SONGS[0], SONGS[0]]
    empty = [torch.zeros(2, 0, dtype=torch.long) for _ in range(3)]
    batch = sampler.sample(empty, n_samples=n_samples, songs=song, total_length=60 * 44100, levels=[2], params=params)
    assert batch.row_seeds == [11, 12]
    one_chunk_each = sampler.sample(
        empty,
        n_samples=n_samples,
        songs=song,
        total_length=60 * 44100,
        levels=[2],
        params=SamplingParams(hop_fraction=(0.5, 0.5, 0.5), chunk_size=16, seed=11, max_batch_size=1),
    )
    alone = sampler.sample(
        [z[:1] for z in empty],
        n_samples=n_samples,
        songs=song[:1],
        total_length=60 * 44100,
        levels=[2],
        params=SamplingParams(hop_fraction=(0.5, 0.5, 0.5), chunk_size=16, seed=12),
    )
    assert torch.equal(batch.zs[2], one_chunk_each.zs[2])
    assert torch.equal(batch.zs[2][1:], alone.zs[2])
    assert not torch.equal(batch.zs[2][0], batch.zs[2][1])


def test_step_buffers_are_kept_from_run_to_run_until_released(sampler):
    n = _length(sampler)
    params = SamplingParams(seed=5, hop_fraction=(0.5, 0.5, 0.5))
    sampler.release()  # what earlier tests of this module left
    first = sampler.sample(_empty(sampler), n_samples=n, songs=SONGS, total_length=60 * 44100, params=params)
    kept = dict(sampler._decoders._decoders)
    assert len(kept) == 3  # one per level at this batch size and draw shape
    again = sampler.sample(_empty(sampler), n_samples=n, songs=SONGS, total_length=60 * 44100, params=params)
    assert all(a is b for a, b in zip(kept.values(), sampler._decoders._decoders.values()))
    assert all(torch.equal(a, b) for a, b in zip(first.zs, again.zs))  # reused buffers carry nothing over
    sampler.release()
    assert sampler._decoders is None
