"""`jukebox-reconstruct` writes per-level audio and codes, and reports bad inputs without losing the rest."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from jukebox_model.audio import read_audio
from jukebox_model.checkpoints import load_vqvae
from jukebox_model.cli.reconstruct import context_samples, main, reconstruct
from tests.reference import discover

FIXTURES = discover("vqvae")
pytestmark = pytest.mark.skipif(not FIXTURES, reason="no VQ-VAE fixture checkpoint")


def _clip(path, seconds=0.3, sr=44100):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.4 * np.sin(2 * math.pi * 220 * t) * np.exp(-t)).astype(np.float32), sr, subtype="FLOAT")
    return path


def test_writes_each_level_and_codes_equal_to_encode(tmp_path):
    ckpt = FIXTURES[0].checkpoint
    src = _clip(tmp_path / "song.wav")
    assert main([str(src), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--format", "float"]) == 0
    model = load_vqvae(ckpt)
    audio = read_audio(src)
    n = audio.shape[0]
    top = model.hop_lengths[-1]
    x = torch.nn.functional.pad(audio, (0, -n % top))[None, :, None]
    with torch.no_grad():
        zs = model.encode(x)
    saved = torch.load(tmp_path / "out/song_codes.pt", weights_only=True)
    assert saved["checkpoint"] == str(ckpt) and saved["hop_lengths"] == list(model.hop_lengths)
    for level in range(model.config.levels):
        assert saved["zs"][level].dtype == torch.int64
        assert torch.equal(saved["zs"][level], zs[level][0])
        data, sr = sf.read(tmp_path / f"out/song_level{level}.wav")
        assert sr == 44100 and len(data) == n
        with torch.no_grad():
            expected = model.decode(zs[level:], start_level=level)[0, :n, 0]
        np.testing.assert_allclose(data, expected.numpy(), atol=1e-6)


def test_bad_input_is_reported_with_exit_code_2_and_good_inputs_still_written(tmp_path, capsys):
    good = _clip(tmp_path / "good.wav")
    bad = tmp_path / "bad.wav"
    bad.write_text("garbage")
    missing = tmp_path / "missing.flac"
    code = main(
        [
            str(bad),
            str(good),
            str(missing),
            "--checkpoint",
            str(FIXTURES[0].checkpoint),
            "--out",
            str(tmp_path / "o"),
            "--levels",
            "2",
        ]
    )
    assert code == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "bad.wav" in errors[0] and "missing.flac" in errors[1]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good_codes.pt", "good_level2.wav"]


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert (
        main([str(_clip(tmp_path / "a.wav")), "--checkpoint", str(tmp_path / "none.pth.tar"), "--out", str(tmp_path)])
        == 2
    )
    assert "none.pth.tar" in capsys.readouterr().err


@pytest.fixture(scope="module")
def model():
    return load_vqvae(FIXTURES[0].checkpoint)


def test_chunked_processing_matches_one_pass_over_the_whole_file(model):
    levels = list(range(model.config.levels))
    top = model.hop_lengths[-1]
    context = context_samples(model.config, levels)
    n = 3 * context + 17  # four chunks, the last one ragged
    audio = torch.randn(n, generator=torch.Generator().manual_seed(0)) * 0.2
    whole = reconstruct(model, audio, levels, chunk_samples=-(-n // top) * top)
    chunked = reconstruct(model, audio, levels, chunk_samples=context)
    blind = reconstruct(model, audio, levels, chunk_samples=context, context=0)
    for level in levels:
        assert whole.codes[level].shape == ((n + top - 1) // top * top // model.hop_lengths[level],)
        assert torch.equal(chunked.codes[level], whole.codes[level])
        torch.testing.assert_close(chunked.audio[level], whole.audio[level], atol=1e-5, rtol=0)
        assert chunked.audio[level].shape == (n,)
    # without context the chunk seams show, which is what the context is for
    assert any(not torch.equal(blind.codes[level], whole.codes[level]) for level in levels)


def test_inputs_sharing_a_name_get_distinct_outputs(tmp_path):
    first = _clip(tmp_path / "a" / "take.wav", seconds=0.1)
    second = _clip(tmp_path / "b" / "take.wav", seconds=0.2)
    out = tmp_path / "out"
    assert (
        main([str(first), str(second), "--checkpoint", str(FIXTURES[0].checkpoint), "--out", str(out), "--levels", "2"])
        == 0
    )
    assert sf.info(out / "take_level2.wav").frames == int(0.1 * 44100)
    assert sf.info(out / "take-2_level2.wav").frames == int(0.2 * 44100)
    assert torch.load(out / "take-2_codes.pt", weights_only=True)["source"] == str(second)


def test_output_rate_and_format_follow_the_options(tmp_path):
    src = _clip(tmp_path / "song.wav", seconds=0.5)
    args = [
        "--checkpoint",
        str(FIXTURES[0].checkpoint),
        "--out",
        str(tmp_path / "o"),
        "--levels",
        "1",
        "--rate",
        "48000",
        "--seconds",
        "0.25",
    ]
    assert main([str(src), *args]) == 0
    info = sf.info(tmp_path / "o/song_level1.wav")
    assert info.samplerate == 48000 and info.subtype == "PCM_24"
    assert abs(info.frames - 0.25 * 48000) <= 1
    saved = torch.load(tmp_path / "o/song_codes.pt", weights_only=True)
    assert list(saved["zs"]) == [1] and saved["zs"][1].dtype == torch.int64 and saved["sr"] == 44100


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for machines without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    args = [
        str(_clip(tmp_path / "a.wav")),
        "--checkpoint",
        str(FIXTURES[0].checkpoint),
        "--out",
        str(tmp_path),
        "--device",
        "cuda",
    ]
    assert main(args) == 2
    assert "CUDA is not available" in capsys.readouterr().err
