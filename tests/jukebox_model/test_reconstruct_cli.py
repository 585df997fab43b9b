"""`jukebox-reconstruct` writes per-level audio and codes, and reports bad inputs without losing the rest."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from jukebox_model.audio import read_audio
from jukebox_model.checkpoints import load_vqvae
from jukebox_model.cli.reconstruct import main, reconstruct
from tests.reference import discover

FIXTURES = discover("vqvae")
pytestmark = pytest.mark.skipif(not FIXTURES, reason="no VQ-VAE fixture checkpoint")


def _clip(path, seconds=0.3, sr=44100):
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
    for level in range(model.config.levels):
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
    code = main([str(bad), str(good), "--checkpoint", str(FIXTURES[0].checkpoint), "--out", str(tmp_path / "o"), "--levels", "2"])
    assert code == 2
    assert "bad.wav" in capsys.readouterr().err
    assert (tmp_path / "o/good_level2.wav").exists() and not (tmp_path / "o/good_level0.wav").exists()


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main([str(_clip(tmp_path / "a.wav")), "--checkpoint", str(tmp_path / "none.pth.tar"), "--out", str(tmp_path)]) == 2
    assert "none.pth.tar" in capsys.readouterr().err


def test_chunked_processing_keeps_length_and_codes_per_chunk():
    model = load_vqvae(FIXTURES[0].checkpoint)
    top = model.hop_lengths[-1]
    audio = torch.sin(torch.arange(5 * top + 17) / 7.0) * 0.3
    result = reconstruct(model, audio, [0, 2], chunk_samples=2 * top)
    assert result.audio[0].shape[0] == audio.shape[0]
    assert result.codes[1].shape[0] == 6 * top // model.hop_lengths[2]
