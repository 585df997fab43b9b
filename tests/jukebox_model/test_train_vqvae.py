"""VQ-VAE training on real audio files: it learns, keeps codes alive, resumes exactly, and runs under DDP."""

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
from jukebox_model.checkpoints import load_vqvae, read_checkpoint
from jukebox_model.training.audio_dataset import AudioCrops, scan_audio_folder
from jukebox_model.training.cli import main as train_main
from jukebox_model.training.loop import OptimSettings, Precision, optimizer_step
from jukebox_model.training.vqvae_trainer import VQVAETrainSettings, train_vqvae

TINY = dataclasses.replace(official.VQVAE, width=8, depth=2, emb_width=8, l_bins=16)
SR = 44100


def _write_songs(folder, n=3, seconds=1.5):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        f = 110.0 * (i + 1)
        x = 0.3 * np.sin(2 * math.pi * f * t) * (0.6 + 0.4 * np.sin(2 * math.pi * 0.7 * t))
        x += 0.15 * np.sin(2 * math.pi * 1.5 * f * t) + 0.01 * rng.standard_normal(t.shape)
        sf.write(folder / f"song{i}.wav", x.astype(np.float32), SR)
    return folder


def _settings(tmp_path, **kw):
    base = dict(
        audio_dir=_write_songs(tmp_path / "audio"),
        out_dir=tmp_path / "run",
        sample_length=2048,
        batch_size=2,
        steps=200,
        optim=OptimSettings(lr=3e-3, lr_warmup=10),
        save_every=1000,
        bandwidth_seconds=2.0,
        device="cpu",
        progress=False,
    )
    base.update(kw)
    return VQVAETrainSettings(**base)


@pytest.mark.slow
def test_training_lowers_the_loss_and_keeps_most_codes_in_use(tmp_path):
    torch.set_num_threads(1)
    seen = {}
    result = train_vqvae(TINY, _settings(tmp_path), on_step=lambda step, metrics: seen.update(metrics))
    first, last = np.mean(result.losses[:20]), np.mean(result.losses[-20:])
    assert last < 0.6 * first, (first, last)
    for level in range(1, TINY.levels + 1):
        assert seen[f"usage_l{level}"] >= 0.5 * TINY.l_bins, (level, seen[f"usage_l{level}"])
    log = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 200 and "usage_l1" in log[-1]


def test_checkpoint_has_reference_layout_and_loads_strictly(tmp_path):
    result = train_vqvae(TINY, _settings(tmp_path, steps=4))
    ckpt = read_checkpoint(result.checkpoint)
    assert {"hps", "model", "opt", "step"} <= set(ckpt) and ckpt["step"] == 4
    assert set(ckpt["model"]) == set(result.model.state_dict())
    model = load_vqvae(result.checkpoint)  # config rebuilt from the saved hps
    assert model.config == TINY
    assert set(ckpt["hps"]["bandwidth"]) == {"l1", "l2", "spec"}


def test_decoders_only_fine_tune_keeps_codes_and_improves_the_decoding(tmp_path):
    torch.set_num_threads(1)
    base = train_vqvae(TINY, _settings(tmp_path / "base", steps=30, save_every=30))
    before = read_checkpoint(base.checkpoint)["model"]  # the weights saved (the moving average), not base.model
    tuned = train_vqvae(
        TINY,
        _settings(tmp_path / "tuned", steps=40, save_every=40, decoders_only=True),
        init_from=base.checkpoint,
    )
    after = tuned.model.state_dict()
    frozen = [k for k in before if k.startswith(("encoders.", "bottleneck."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # codebooks took no EMA update either
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoders."))
    assert np.mean(tuned.losses[-10:]) < np.mean(tuned.losses[:10])
    audio = AudioCrops(scan_audio_folder(tmp_path / "tuned" / "audio"), sample_length=2048, sr=SR, seed=0)[0]
    with torch.no_grad():
        codes_before = load_vqvae(base.checkpoint).encode(audio[None])
        codes_after = tuned.model.eval().encode(audio[None])
    assert all(torch.equal(a, b) for a, b in zip(codes_before, codes_after))


def test_a_top_level_added_to_a_trained_vqvae_trains_alone_and_keeps_the_lower_levels_codes(tmp_path):
    torch.set_num_threads(1)
    two = dataclasses.replace(TINY, levels=2, downs_t=(3, 2), strides_t=(2, 2), hvqvae_multipliers=(1, 1))
    three = dataclasses.replace(
        two, levels=3, downs_t=(3, 2, 2), strides_t=(2, 2, 2), hvqvae_multipliers=(1, 1, 1), revival_threshold=0.05
    )  # the new level sees fewer tokens per step: it may restart codes at a lower threshold
    base = train_vqvae(two, _settings(tmp_path / "base", steps=20, save_every=20))
    before = read_checkpoint(base.checkpoint)["model"]
    grown = train_vqvae(
        three,
        _settings(tmp_path / "grown", steps=60, save_every=60, train_levels=(2,)),
        init_from=base.checkpoint,
    )
    after = grown.model.state_dict()
    assert grown.model.bottleneck.level_blocks[2].threshold == 0.05
    started = train_vqvae(three, _settings(tmp_path / "started", steps=0), init_from=base.checkpoint).model
    shared = started.encoders[2].level_blocks[:2].state_dict()  # the new level starts from the level below
    assert all(torch.equal(v, started.encoders[1].level_blocks[:2].state_dict()[k]) for k, v in shared.items())
    assert torch.equal(started.decoders[2].out.weight, started.decoders[1].out.weight)
    assert set(before) < set(after)
    assert all(torch.equal(before[k], after[k]) for k in before)  # levels 0 and 1 untouched, codebooks included
    top = [k for k in after if k.startswith(("encoders.2.", "decoders.2."))]
    fresh = train_vqvae(three, _settings(tmp_path / "fresh", steps=0, save_every=60)).model.state_dict()
    assert top and any(not torch.equal(fresh[k], after[k]) for k in top)
    assert np.mean(grown.losses[-10:]) < np.mean(grown.losses[:10])
    saved = load_vqvae(grown.checkpoint)
    assert saved.config == three and saved.hop_lengths == (8, 32, 128)
    audio = AudioCrops(scan_audio_folder(tmp_path / "grown" / "audio"), sample_length=2048, sr=SR, seed=0)[0]
    with torch.no_grad():
        codes_two = load_vqvae(base.checkpoint).encode(audio[None])
        codes_three = saved.encode(audio[None])
    assert len(codes_three) == 3 and all(torch.equal(a, b) for a, b in zip(codes_two, codes_three[:2]))


def test_init_from_a_vqvae_that_is_not_a_lower_part_of_the_config_is_a_clear_error(tmp_path):
    base = train_vqvae(TINY, _settings(tmp_path / "base", steps=2, save_every=2))
    other = dataclasses.replace(
        TINY, levels=4, downs_t=(2, 2, 2, 2), strides_t=(2, 2, 2, 2), hvqvae_multipliers=(1, 1, 1, 1)
    )
    with pytest.raises(ValueError, match="another VQ-VAE config"):
        train_vqvae(other, _settings(tmp_path / "other", steps=2), init_from=base.checkpoint)


def test_train_levels_outside_the_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="train_levels"):
        train_vqvae(TINY, _settings(tmp_path, steps=1, train_levels=(5,)))


def test_init_from_and_resume_are_not_given_together(tmp_path):
    base = train_vqvae(TINY, _settings(tmp_path / "base", steps=2, save_every=2))
    with pytest.raises(ValueError, match="either resume"):
        train_vqvae(TINY, _settings(tmp_path / "b", steps=4), resume=base.checkpoint, init_from=base.checkpoint)


def test_resume_continues_exactly_where_training_stopped(tmp_path):
    straight = train_vqvae(TINY, _settings(tmp_path / "a", steps=6, save_every=3))
    stopped = _settings(tmp_path / "b", steps=3, save_every=3)
    train_vqvae(TINY, stopped)
    resumed = train_vqvae(
        TINY, dataclasses.replace(stopped, steps=6), resume=stopped.out_dir / "checkpoint_step3.pth.tar"
    )
    assert resumed.step == 6
    np.testing.assert_allclose(resumed.losses, straight.losses[3:], rtol=1e-5)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    a, b = (read_checkpoint(s.out_dir / "checkpoint_step6.pth.tar") for s in (_settings(tmp_path / "a"), stopped))
    torch.testing.assert_close(a["opt"], b["opt"])  # Adam moments and step counts
    torch.testing.assert_close(a["model"], b["model"])  # the EMA weights
    torch.testing.assert_close(a["train_state"]["k_elem"], b["train_state"]["k_elem"])  # codebook statistics


def test_resuming_with_another_config_is_a_clear_error(tmp_path):
    first = train_vqvae(TINY, _settings(tmp_path, steps=2))
    other = dataclasses.replace(TINY, l_mu=0.9)  # same shapes: strict loading alone would accept it
    with pytest.raises(ValueError, match="l_mu 0.99 -> 0.9"):
        train_vqvae(other, _settings(tmp_path, steps=4), resume=first.checkpoint)


def test_fine_tuning_from_a_foreign_checkpoint_restores_codebook_statistics(tmp_path):
    first = train_vqvae(TINY, _settings(tmp_path / "a", steps=2))
    ckpt = read_checkpoint(first.checkpoint)
    from jukebox_model.checkpoints import write_checkpoint

    foreign = write_checkpoint(tmp_path / "foreign.pth.tar", model=ckpt["model"], hps=ckpt["hps"])  # no train_state
    result = train_vqvae(TINY, _settings(tmp_path / "b", steps=2), resume=foreign)
    assert result.step == 2 and all(b.initialised for b in result.model.bottleneck.level_blocks)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world_size, port, settings, out):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    result = train_vqvae(TINY, settings)
    torch.save({k: v.clone() for k, v in result.model.state_dict().items()}, out / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_process_gloo_ddp_keeps_ranks_identical(tmp_path):
    settings = _settings(tmp_path, steps=8, batch_size=2, save_every=8)
    mp.spawn(_ddp_worker, args=(2, _free_port(), settings, tmp_path), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=1e-6, msg=name)
    assert (settings.out_dir / "checkpoint_step8.pth.tar").exists()


def test_dataset_skips_unreadable_files_with_a_warning_and_zero_fills_short_ones(tmp_path):
    folder = _write_songs(tmp_path / "audio", n=1, seconds=0.01)  # 441 samples: shorter than a crop
    (folder / "broken.wav").write_text("not audio")
    sf.write(folder / "empty.wav", np.zeros(0, np.float32), SR)
    sf.write(tmp_path / "whole.wav", np.full(SR, 0.1, np.float32), SR)
    data = (tmp_path / "whole.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[: len(data) // 2])  # a half-copied file
    with pytest.warns(UserWarning) as caught:
        entries = scan_audio_folder(folder)
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.wav" in messages and "empty.wav" in messages and "truncated.wav" in messages
    assert [e.path.name for e in entries] == ["song0.wav"]
    crops = AudioCrops(entries, sample_length=1024)
    crop = crops[0]
    assert crop.shape == (1024, 1) and crop[500:].abs().max() == 0 and crop[:400].abs().max() > 0


def test_crops_are_deterministic_per_epoch_and_index(tmp_path):
    crops = AudioCrops(scan_audio_folder(_write_songs(tmp_path / "audio")), sample_length=512, seed=3)
    a = crops[5]
    assert torch.equal(a, crops[5])
    crops.set_epoch(1)
    assert not torch.equal(a, crops[5])


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no usable audio files"):
        scan_audio_folder(tmp_path / "nothing")


def test_cli_reports_bad_arguments(tmp_path, capsys):
    audio = _write_songs(tmp_path / "audio", n=1)
    assert train_main(["vqvae", "--audio-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "missing" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert train_main(["vqvae", "--audio-dir", str(audio), "--out", str(tmp_path / "o"), "--config", str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"wdith": 8}')
    assert train_main(["vqvae", "--audio-dir", str(audio), "--out", str(tmp_path / "o"), "--config", str(unknown)]) == 2
    assert "wdith" in capsys.readouterr().err
    assert (
        train_main(["vqvae", "--audio-dir", str(audio), "--out", str(tmp_path / "o"), "--sample-length", "1000"]) == 2
    )
    assert "multiple of 128" in capsys.readouterr().err
    assert train_main(["vqvae", "--audio-dir", str(audio), "--out", str(tmp_path / "o"), "--sample-length", "512"]) == 2
    assert "at least 1025" in capsys.readouterr().err


def test_cli_trains_a_small_model_from_a_config_file(tmp_path):
    audio = _write_songs(tmp_path / "audio", n=1)
    config = tmp_path / "tiny.toml"
    config.write_text("width = 8\ndepth = 2\nemb_width = 8\nl_bins = 16\n")
    args = ["vqvae", "--audio-dir", str(audio), "--out", str(tmp_path / "run"), "--config", str(config)]
    args += [
        "--sample-length",
        "2048",
        "--steps",
        "3",
        "--save-every",
        "3",
        "--no-progress",
        "--bandwidth-seconds",
        "1",
    ]
    assert train_main(args) == 0
    # resuming needs neither --config nor --sample-length: both come from the checkpoint
    assert train_main(args[:5] + ["--steps", "5", "--resume", "latest", "--no-progress"]) == 0
    ckpt = read_checkpoint(tmp_path / "run/checkpoint_latest.pth.tar")
    assert ckpt["step"] == 5 and ckpt["hps"]["width"] == 8 and ckpt["hps"]["sample_length"] == 2048


def test_a_step_with_non_finite_gradients_leaves_the_weights_alone():
    layer = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    before = [p.detach().clone() for p in layer.parameters()]
    loss = layer(torch.full((2, 3), float("nan"))).sum()
    grad_norm = optimizer_step(loss, layer, opt, Precision("fp32", torch.device("cpu")), clip=1.0)
    assert not math.isfinite(grad_norm)
    for b, p in zip(before, layer.parameters()):
        assert torch.equal(b, p)
    optimizer_step(layer(torch.ones(2, 3)).sum(), layer, opt, Precision("fp32", torch.device("cpu")), clip=1.0)
    assert not torch.equal(before[0], layer.weight)  # a finite step still moves them


@pytest.mark.parametrize(
    "precision,device",
    [
        ("bf16", "cpu"),
        pytest.param(
            "fp16",
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 autocast is a GPU path"),
        ),
    ],
)
def test_mixed_precision_training_runs_and_keeps_float32_weights(tmp_path, precision, device):
    result = train_vqvae(TINY, _settings(tmp_path, steps=3, precision=precision, device=device))
    assert all(np.isfinite(result.losses))
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
