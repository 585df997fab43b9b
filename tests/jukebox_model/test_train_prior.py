"""Prior training on the codes of real audio files: loss falls, labels and lyrics flow in, runs resume
exactly, DDP keeps ranks identical, and a lyrics prior can start from a non-lyrics prior."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.multiprocessing as mp

from jukebox_model import official
from jukebox_model.checkpoints import read_checkpoint
from jukebox_model.hparams import prior_config_from_hparams, prior_config_to_hparams
from jukebox_model.prior.prior import Prior
from jukebox_model.training.cli import main as train_main
from jukebox_model.training.loop import OptimSettings
from jukebox_model.training.prior_data import read_metadata
from jukebox_model.training.prior_trainer import PriorTrainSettings, init_from_prior, train_prior
from tests.reference import discover

FIXTURES = discover("vqvae")
pytestmark = pytest.mark.skipif(not FIXTURES, reason="needs the reference VQ-VAE fixture checkpoint")
SR = 44100

UPSAMPLER = dict(
    base="upsampler_level_1", n_ctx=32, prior_width=16, prior_depth=3, heads=1, blocks=4, cond_width=8, cond_depth=2
)
LYRICS_TOP = dict(
    base="prior_1b_lyrics", n_ctx=32, prior_width=16, prior_depth=16, heads=1, blocks=4, n_tokens=8, min_duration=0.5
)


def _config(spec: dict):
    spec = dict(spec)
    hps = prior_config_to_hparams(official.PRIORS[spec.pop("base")])
    hps.update(spec)
    return prior_config_from_hparams(hps)


def _songs(folder, n=2, seconds=3.0):
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    meta = {}
    for i in range(n):
        f = 220.0 * (i + 1)
        x = 0.4 * np.sin(2 * math.pi * f * t) * (0.5 + 0.5 * np.sign(np.sin(2 * math.pi * 2 * t)))
        sf.write(folder / f"song{i}.wav", x.astype(np.float32), SR)
        meta[f"song{i}.wav"] = {"artist": f"Band {i}", "genre": "Synth Pop", "lyrics": "la la la, sing along\n" * 4}
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def _settings(tmp_path, **kw):
    base = dict(
        audio_dir=_songs(tmp_path / "audio"),
        out_dir=tmp_path / "run",
        vqvae_checkpoint=FIXTURES[0].checkpoint,
        batch_size=4,
        steps=100,
        optim=OptimSettings(lr=3e-3, lr_warmup=5),
        save_every=1000,
        device="cpu",
        progress=False,
    )
    base.update(kw)
    return PriorTrainSettings(**base)


@pytest.mark.slow
def test_upsampler_loss_falls_on_real_codes(tmp_path):
    torch.set_num_threads(1)
    result = train_prior(_config(UPSAMPLER), _settings(tmp_path))
    assert np.mean(result.losses[-10:]) < 0.8 * np.mean(result.losses[:10])
    ckpt = read_checkpoint(result.checkpoint)
    assert {"hps", "model", "opt", "step"} <= set(ckpt) and ckpt["step"] == 100
    assert prior_config_from_hparams(ckpt["hps"]) == _config(UPSAMPLER)


@pytest.mark.slow
def test_lyrics_top_prior_trains_with_labels_from_metadata(tmp_path):
    torch.set_num_threads(1)
    result = train_prior(_config(LYRICS_TOP), _settings(tmp_path, steps=40))
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    tables = (tmp_path / "run/ids/v3_artist_ids.txt").read_text().splitlines()
    assert tables == ["unknown;0", "band 0;1", "band 1;2"]


def test_resumed_run_continues_exactly(tmp_path):
    config = _config(UPSAMPLER)
    straight = train_prior(config, _settings(tmp_path / "a", steps=4))
    stopped = _settings(tmp_path / "b", steps=2, save_every=2)
    train_prior(config, stopped)
    resumed = train_prior(
        config, dataclasses.replace(stopped, steps=4), resume=stopped.out_dir / "checkpoint_step2.pth.tar"
    )
    np.testing.assert_allclose(resumed.losses, straight.losses[2:], rtol=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, port, settings, out):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    result = train_prior(_config(UPSAMPLER), settings)
    torch.save({k: v.clone() for k, v in result.model.state_dict().items()}, out / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_process_gloo_ddp_keeps_ranks_identical(tmp_path):
    settings = _settings(tmp_path, steps=4, batch_size=2, save_every=4)
    mp.spawn(_ddp_worker, args=(_free_port(), settings, tmp_path), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=1e-6, msg=name)
    assert (settings.out_dir / "checkpoint_step4.pth.tar").exists()


def test_lyrics_prior_starts_from_a_non_lyrics_prior():
    torch.manual_seed(0)
    plain_spec = dict(LYRICS_TOP, base="prior_5b", max_bow_genre_size=1, t_bins=64, y_bins=[604, 7898])
    plain_spec.pop("n_tokens")
    plain = Prior(_config(plain_spec), official.VQVAE)
    lyrics = Prior(_config(LYRICS_TOP), official.VQVAE)
    done, _new = init_from_prior(lyrics, plain.state_dict())
    assert "prior.transformer._attn_mods.0.attn.c_attn.w" in done and "y_emb.artist_emb.emb.weight" in done
    shift = lyrics.n_vocab
    torch.testing.assert_close(lyrics.prior.x_emb.weight[shift:], plain.prior.x_emb.weight)
    torch.testing.assert_close(lyrics.prior.pos_emb.pos_emb[lyrics.n_tokens :], plain.prior.pos_emb.pos_emb)
    assert "prior.x_emb.weight" in done and "prior.pos_emb.pos_emb" in done


def test_metadata_errors_name_the_file(tmp_path):
    (tmp_path / "metadata.json").write_text("{oops")
    with pytest.raises(ValueError, match="metadata.json"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.json").write_text('{"a.wav": {"artist": "x", "tempo": "fast"}}')
    with pytest.raises(ValueError, match="a.wav"):
        read_metadata(tmp_path)


def test_cli_trains_a_prior_from_a_config_file(tmp_path, capsys):
    audio = _songs(tmp_path / "audio", n=1)
    config = tmp_path / "up.json"
    config.write_text(json.dumps(UPSAMPLER))
    args = ["prior", "--audio-dir", str(audio), "--out", str(tmp_path / "run"), "--vqvae", str(FIXTURES[0].checkpoint)]
    assert train_main(args + ["--config", str(config), "--steps", "2", "--batch-size", "2", "--no-progress"]) == 0
    assert read_checkpoint(tmp_path / "run/checkpoint_latest.pth.tar")["step"] == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"base": "prior_9b"}))
    assert train_main(args + ["--config", str(bad)]) == 2
    assert "prior_9b" in capsys.readouterr().err
