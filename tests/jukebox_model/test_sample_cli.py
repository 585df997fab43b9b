"""`jukebox-sample` on the tiny reference bundle: every mode writes per-level takes and a codes file
it can continue from; bad input gets a one-line error and exit code 2."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from jukebox_model.cli.sample import main
from jukebox_model.sampling.schedule import seconds_to_samples
from tests.reference import discover, reference_dir

VQ = discover("vqvae")
PRIORS = discover("prior")
TOP = [f for f in PRIORS if f.base_set == "prior_1b_lyrics"]
UPS = sorted((f for f in PRIORS if f.base_set.startswith("upsampler_level_")), key=lambda f: f.base_set)
pytestmark = pytest.mark.skipif(
    not (VQ and TOP and len(UPS) >= 2), reason="needs the tiny VQ-VAE, 1b top prior and both upsamplers"
)


def _models() -> list[str]:
    args = ["--vqvae", str(VQ[0].checkpoint), "--ids", str(reference_dir() / "ids")]
    for fx in [TOP[0], *UPS]:
        args += ["--prior", str(fx.checkpoint)]
    return args


def _common(out, seconds: float) -> list[str]:
    return _models() + [
        "--sample-length",
        str(seconds),
        "--total-length",
        "60",
        "--n-samples",
        "2",
        "--top-k",
        "1",
        "--hop-fraction",
        "0.5,0.5,0.5",
        "--chunk-size",
        "16",
        "--seed",
        "1",
        "--out",
        str(out),
        "--artist",
        "Alan Jackson",
        "--genre",
        "Country",
        "--lyrics",
        "a short song about the sea",
    ]


SECONDS = 0.08  # 3456 samples: more than one window at every tiny level


def test_ancestral_writes_every_level_and_codes(tmp_path, capsys):
    assert main(_common(tmp_path, SECONDS)) == 0
    for level in (2, 1, 0):
        data, sr = sf.read(tmp_path / f"level_{level}/item_1.wav")
        assert sr == 44100 and len(data) == 3456
    codes = torch.load(tmp_path / "codes.pt", weights_only=True)
    assert [z.shape for z in codes["zs"]] == [(2, 3456 // h) for h in (8, 32, 128)]
    assert "level 0: wrote 2 take(s)" in capsys.readouterr().out


def test_continue_extends_an_earlier_run_and_upsample_redoes_the_lower_levels(tmp_path):
    assert main(_common(tmp_path / "a", SECONDS)) == 0
    longer = _common(tmp_path / "b", 2 * SECONDS) + ["--mode", "continue", "--codes-file", str(tmp_path / "a/codes.pt")]
    assert main(longer) == 0
    first = torch.load(tmp_path / "a/codes.pt", weights_only=True)["zs"]
    second = torch.load(tmp_path / "b/codes.pt", weights_only=True)["zs"]
    for hop, a, b in zip((8, 32, 128), first, second):
        assert b.shape[1] == seconds_to_samples(2 * SECONDS) // hop and torch.equal(b[:, : a.shape[1]], a)
    up = _common(tmp_path / "c", 2 * SECONDS) + ["--mode", "upsample", "--codes-file", str(tmp_path / "b/codes.pt")]
    assert main(up) == 0
    third = torch.load(tmp_path / "c/codes.pt", weights_only=True)["zs"]
    assert torch.equal(third[2], second[2]) and not (tmp_path / "c/level_2").exists()


def test_primed_keeps_the_prompt_codes(tmp_path):
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "prompt.wav", (0.3 * np.sin(2 * math.pi * 330 * t)).astype(np.float32), 44100)
    args = _common(tmp_path / "p", SECONDS) + [
        "--mode",
        "primed",
        "--audio-file",
        str(tmp_path / "prompt.wav"),
        "--prompt-length",
        "0.03",
    ]
    assert main(args) == 0
    zs = torch.load(tmp_path / "p/codes.pt", weights_only=True)["zs"]
    assert zs[2].shape == (2, 27) and torch.equal(zs[2][0, :10], zs[2][1, :10])  # same prompt, same 10 top codes


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--mode", "primed"], "--audio-file"),
        (["--mode", "continue"], "--codes-file"),
        (["--mode", "primed", "--audio-file", "nope.wav", "--prompt-length", "0.03"], "nope.wav"),
    ],
)
def test_bad_requests_are_one_line_errors(tmp_path, capsys, extra, message):
    assert main(_common(tmp_path, SECONDS) + extra) == 2
    assert message in capsys.readouterr().err
