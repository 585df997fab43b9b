"""The embedded default bundle: it ships with the package, loads, and makes music on a CPU.

"Music" is checked loosely but so that it can fail: the take is finite, not silent, not a single
repeated code, and its spectral flatness is well below that of white noise of the same length and
level (a model that had learnt nothing, or a broken decoder, gives noise or silence).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import torch

from jukebox_model.api import SamplingParams
from jukebox_model.audio_metrics import rms, spectral_flatness
from jukebox_model.bundle_dir import DEFAULT_BUNDLE_DIR, load_bundle_dir, read_manifest

ROOT = Path(__file__).resolve().parents[2]
TAKE_SECONDS = 2.5  # how long it takes is measured in bench/loop_quality.py, never asserted here


def demo_names() -> tuple[str, str]:
    """The artist and genre the bundle names for its demo: labels it was trained on."""
    demo = json.loads((DEFAULT_BUNDLE_DIR / "bundle.json").read_text()).get("demo") or {}
    return demo.get("artist", "unknown"), demo.get("genre", "unknown")


@pytest.fixture(scope="module")
def bundle():
    return load_bundle_dir(DEFAULT_BUNDLE_DIR)


def test_bundle_folder_is_complete_small_and_packaged():
    manifest = read_manifest(DEFAULT_BUNDLE_DIR)
    assert manifest.ids is not None and (manifest.ids / "v2_artist_ids.txt").is_file()
    size = sum(f.stat().st_size for f in DEFAULT_BUNDLE_DIR.rglob("*") if f.is_file())
    assert size < 30e6, f"the default bundle is {size / 1e6:.1f} MB"
    readme = (DEFAULT_BUNDLE_DIR / "README.md").read_text()
    # the training data's licence and attribution: the FluidR3 GM sound font (MIT) the loop corpus is rendered with
    for word in ("MIT licence", "Fluid (R3) General MIDI SoundFont", "Frank Wen", "fluid-soundfont-gm", "loop_corpus"):
        assert word in readme
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["jukebox_model"]
    assert any(p.startswith("default_bundle/") and p.endswith(".pth.tar") for p in patterns)
    assert any("ids" in p for p in patterns) and any(p.endswith(".json") for p in patterns)


def test_bundle_loads_with_a_prior_for_every_level(bundle):
    sampler, manifest = bundle
    levels = sampler.vqvae.config.levels
    assert sorted(sampler.levels) == list(range(levels))
    top = sampler.levels[levels - 1]
    assert top.prior.config.is_top and top.labeller is not None  # artist/genre/timing conditioned
    assert top.prior.config.labels.use_tokens is False  # instrumental corpus: no lyrics
    assert manifest.describe()["bundle"] == manifest.name


def test_generates_a_short_take_on_cpu_that_is_not_silence_or_noise(bundle):
    sampler, _ = bundle
    vqvae = sampler.vqvae
    sr, top_hop = vqvae.config.sr, vqvae.hop_lengths[-1]
    n = int(TAKE_SECONDS * sr) // top_hop * top_hop
    empty = [torch.zeros(1, 0, dtype=torch.long) for _ in range(vqvae.config.levels)]
    result = sampler.sample(
        empty,
        n_samples=n,
        songs=[(*demo_names(), "")],
        total_length=60 * sr,
        params=SamplingParams(seed=3),
    )
    with torch.no_grad():
        audio = vqvae.decode([result.zs[0]], start_level=0)[0, :, 0]
    assert not result.cancelled
    for level, z in enumerate(result.zs):
        assert z.shape == (1, sampler.tokens_for(n, level))
        assert len(torch.unique(z)) > 8, f"level {level} is stuck on a few codes"
    assert audio.shape[0] == n
    assert torch.isfinite(audio).all()
    level = float(rms(audio))
    assert level > 3e-3, f"silent take (RMS {level:.2e})"
    noise = torch.randn(n, generator=torch.Generator().manual_seed(0)) * level
    flat, noise_flat = float(spectral_flatness(audio)), float(spectral_flatness(noise))
    assert flat < 0.5 * noise_flat, f"noise-like take: flatness {flat:.3f} vs white noise {noise_flat:.3f}"


def test_unknown_names_still_sample(bundle):
    """Names outside the corpus fall back to 'unknown' (with a warning) instead of failing."""
    sampler, _ = bundle
    top = sampler.vqvae.config.levels - 1
    n = sampler.levels[top].prior.config.n_ctx // 8 * sampler.vqvae.hop_lengths[top]
    empty = [torch.zeros(1, 0, dtype=torch.long) for _ in range(sampler.vqvae.config.levels)]
    with pytest.warns(UserWarning):
        result = sampler.sample(
            empty,
            n_samples=n,
            songs=[("Nobody In Particular", "Polka", "")],
            total_length=60 * sampler.vqvae.config.sr,
            levels=[top],
            params=SamplingParams(seed=0),
        )
    assert result.zs[top].shape[1] == sampler.tokens_for(n, top)


def test_jukebox_sample_uses_the_default_bundle_without_model_flags(tmp_path, capsys):
    from jukebox_model.audio import read_audio
    from jukebox_model.cli.sample import main

    rc = main(
        [
            "--sample-length",
            "1.5",
            "--total-length",
            "60",
            "--levels",
            "1",
            "--genre",
            "techno",
            "--seed",
            "0",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    assert "embedded default bundle" in capsys.readouterr().out
    top = read_manifest(DEFAULT_BUNDLE_DIR).priors[0].name.removeprefix("prior_level_").split(".")[0]
    takes = list((tmp_path / f"level_{top}").glob("*.wav"))
    assert len(takes) == 1 and read_audio(takes[0]).shape[0] > 0
    assert (tmp_path / "codes.pt").is_file()
