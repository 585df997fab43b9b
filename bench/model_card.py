"""Measure a bundle on held-out tracks and write its model card.

    .venv/bin/python bench/model_card.py --bundle jukebox_model/default_bundle \\
        --corpus data/debian_music --runs runs/default --out docs/model-card.md

Needs the corpus (python -m jukebox_model.training.debian_corpus --out data/debian_music) and,
for the training rows, the run folders the bundle came from. matplotlib (not a runtime dependency
of the package) draws docs/images/default_model_spectrograms.png.

Every number in the card comes from this script's run: VQ-VAE reconstruction per level on the
held-out tracks (spectral convergence, multi-resolution STFT distance), codebook usage per level
(held-out and training codes), each prior's bits per token on held-out windows (with training
windows and a context-free unigram model for scale), the time to generate a take on this CPU,
and the training runs' steps and wall time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jukebox_model.api import SamplingParams  # noqa: E402
from jukebox_model.audio import read_audio, write_wav  # noqa: E402
from jukebox_model.audio_metrics import multi_resolution_stft_distance, rms, spectral_flatness  # noqa: E402
from jukebox_model.bundle_dir import DEFAULT_BUNDLE_DIR, load_bundle_dir  # noqa: E402
from jukebox_model.checkpoints import read_checkpoint  # noqa: E402
from jukebox_model.vqvae.losses import spectral_convergence  # noqa: E402

CHUNK_SECONDS = 23.0


def track_entry(t: dict) -> dict:
    """One corpus track with the keys the card uses, from either corpus's tracks.json: the game-music
    corpus (package/name, artist, genre) or the loop corpus (file, instruments = artist, style = genre)."""
    if "file" in t:
        return {**t, "path": t["file"], "name": Path(t["file"]).stem, "artist": t["instruments"], "genre": t["style"]}
    return {**t, "path": f"{t['package']}/{t['name']}.wav"}


def _chunks(n: int, chunk: int):
    return [(s, min(n, s + chunk)) for s in range(0, n, chunk)]


@torch.no_grad()
def encode_track(vqvae, audio: torch.Tensor) -> list[torch.Tensor]:
    top = vqvae.hop_lengths[-1]
    audio = audio[: audio.shape[0] // top * top]
    chunk = int(CHUNK_SECONDS * vqvae.config.sr) // top * top
    parts = [vqvae.encode(audio[s:e][None, :, None]) for s, e in _chunks(audio.shape[0], chunk)]
    return [torch.cat([p[lv][0] for p in parts]) for lv in range(vqvae.config.levels)]


@torch.no_grad()
def reconstruction(vqvae, audio: torch.Tensor, max_seconds: float) -> dict[int, dict[str, float]]:
    """Per level: the clip through that level alone, compared with the input over 23 s chunks."""
    sr, top = vqvae.config.sr, vqvae.hop_lengths[-1]
    n = min(audio.shape[0], int(max_seconds * sr)) // top * top
    chunk = int(CHUNK_SECONDS * sr) // top * top
    out = {lv: {"sc": [], "mrstft": [], "w": []} for lv in range(vqvae.config.levels)}
    for s, e in _chunks(n, chunk):
        x = audio[s:e][None, :, None]
        zs = vqvae.encode(x)
        for lv in range(vqvae.config.levels):
            x_hat = vqvae.decode(zs[lv : lv + 1], start_level=lv)
            out[lv]["sc"].append(float(spectral_convergence(x, x_hat)[0]))
            out[lv]["mrstft"].append(float(multi_resolution_stft_distance(x, x_hat)[0]))
            out[lv]["w"].append(e - s)
    return {
        lv: {k: sum(v * w for v, w in zip(d[k], d["w"])) / sum(d["w"]) for k in ("sc", "mrstft")}
        for lv, d in out.items()
    }


def usage(codes: list[torch.Tensor], l_bins: int) -> dict[str, float]:
    z = torch.cat(codes)
    counts = torch.bincount(z, minlength=l_bins).double()
    p = counts / counts.sum()
    entropy = float(-(p[p > 0] * p[p > 0].log2()).sum())
    return {
        "used": int((counts > 0).sum()),
        "fraction": float((counts > 0).float().mean()),
        "perplexity": 2**entropy,
        "entropy_bits": entropy,
        "tokens": int(counts.sum()),
    }


@torch.no_grad()
def bits_per_token(level_model, songs, level: int, cond_ds: int | None, max_windows: int) -> float:
    """Mean bits per token over non-overlapping n_ctx windows of (artist, genre, n_samples, codes) songs."""
    prior, labeller = level_model.prior, level_model.labeller
    n_ctx = prior.config.n_ctx
    total, count = 0.0, 0
    labels = prior.config.labels
    for artist, genre, n_samples, codes in songs:
        if labels is not None and prior.config.is_top and n_samples >= labels.max_duration * prior.vqvae_config.sr:
            continue  # outside the timing labels it was trained on (the trainer skips such songs too)
        z_all = codes[level]
        row = labeller.label(artist, genre, "", n_samples, 0) if labeller is not None else None
        starts = list(range(0, z_all.shape[0] - n_ctx + 1, n_ctx))
        if len(starts) > max_windows:  # spread evenly over the song
            starts = [starts[round(i * (len(starts) - 1) / (max_windows - 1))] for i in range(max_windows)]
        for start in starts:
            z = z_all[start : start + n_ctx][None]
            z_conds = [codes[level + 1][start // cond_ds : (start + n_ctx) // cond_ds][None]] if cond_ds else []
            y = torch.tensor([labeller.window(row, start).y]) if labeller is not None else None
            out = prior(z, z_conds, y)
            total += float(out.bpd.sum())
            count += 1
    return total / max(count, 1)


def unigram_bits(train_codes: list[torch.Tensor], eval_codes: list[torch.Tensor], l_bins: int) -> float:
    """Cross-entropy of held-out codes under the training codes' frequencies (add-one smoothed)."""
    counts = torch.bincount(torch.cat(train_codes), minlength=l_bins).double() + 1
    logp = (counts / counts.sum()).log2()
    z = torch.cat(eval_codes)
    return float(-logp[z].mean())


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a)


def run_summary(runs: Path, name: str, shipped: Path | None = None) -> dict | None:
    folder = runs / name
    latest = folder / "checkpoint_latest.pth.tar"
    start = runs / f"{name}.start"
    if not latest.is_file():
        return None
    ckpt = read_checkpoint(latest)
    hps = ckpt.get("hps") or {}
    info = {"step": int(ckpt.get("step", 0)), "batch_size": hps.get("bs"), "lr": hps.get("lr")}
    if start.is_file():
        began = float(start.read_text().split()[0])
        info["wall_s"] = latest.stat().st_mtime - began
        info["started"] = dt.datetime.fromtimestamp(began, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    extra = (
        start.read_text().split(maxsplit=1)[1].strip() if start.is_file() and len(start.read_text().split()) > 1 else ""
    )
    info["how"] = extra
    if shipped is not None and shipped.is_file():  # which of the run's weights the bundle ships
        state = read_checkpoint(shipped)["model"]
        raw = (ckpt.get("train_state") or {}).get("model")
        info["weights"] = (
            "EMA"
            if _same_state(state, ckpt["model"]) and raw is not None and not _same_state(state, raw)
            else "raw"
            if raw is not None and _same_state(state, raw)
            else "raw (trained without EMA)"
            if raw is None and _same_state(state, ckpt["model"])
            else "other"
        )
        if info["weights"] == "other" and raw is not None:
            info["weights"] = "other (not this run's latest checkpoint)"
    log = folder / "metrics.jsonl"
    if log.is_file():
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        tail = rows[-10:]
        info["final_loss"] = sum(r["loss"] for r in tail) / len(tail) if tail else None
    return info


def spectrogram_png(path: Path, generated: torch.Tensor, real: torch.Tensor, sr: int, titles: tuple[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def db(x):
        spec = torch.stft(x, 2048, 512, window=torch.hann_window(2048), return_complex=True).abs()
        return 20 * torch.log10(spec + 1e-5)

    g, r = db(generated), db(real)
    vmax = float(max(g.max(), r.max()))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True, constrained_layout=True)
    for ax, s, title in zip(axes, (g, r), titles):
        seconds = s.shape[1] * 512 / sr
        im = ax.imshow(
            s.numpy(),
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=vmax - 80,
            vmax=vmax,
            extent=(0, seconds, 0, sr / 2000),
        )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds")
    axes[0].set_ylabel("kHz")
    fig.colorbar(im, ax=axes, label="dB")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE_DIR)
    p.add_argument("--corpus", type=Path, default=ROOT / "data" / "debian_music")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "default")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "model-card.md")
    p.add_argument("--image", type=Path, default=ROOT / "docs" / "images" / "default_model_spectrograms.png")
    p.add_argument("--recon-seconds", type=float, default=60.0, help="of each held-out track")
    p.add_argument("--max-windows", type=int, default=24, help="prior windows per track")
    p.add_argument("--take-seconds", type=float, default=6.0)
    p.add_argument("--train-tracks", type=int, default=9, help="training tracks measured for usage and bits per token")
    p.add_argument("--train-seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--real-genre", default="orchestral", help="genre of the held-out clip the take is shown beside")
    p.add_argument("--real-offset", type=float, default=20.0, help="where the real clip starts in its track, seconds")
    p.add_argument("--audio-out", type=Path, default=ROOT / "runs" / "model_card")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    threads = torch.get_num_threads()

    sampler, manifest = load_bundle_dir(args.bundle)
    vqvae = sampler.vqvae.eval()
    cfg = vqvae.config
    sr = cfg.sr
    tracks = [track_entry(t) for t in json.loads((args.corpus / "tracks.json").read_text())]
    held = [t for t in tracks if t["split"] == "eval"]
    train = [t for t in tracks if t["split"] == "train"]

    # --- VQ-VAE ---------------------------------------------------------------------------------
    recon_rows, eval_songs = [], []
    t0 = time.perf_counter()
    for t in held:
        audio = read_audio(args.corpus / "eval" / t["path"], sr=sr)
        recon_rows.append((t, reconstruction(vqvae, audio, args.recon_seconds)))
        eval_songs.append((t["artist"], t["genre"], audio.shape[0], encode_track(vqvae, audio)))
    train_songs = []  # a spread subset of the training tracks, their first --train-seconds
    subset = train[:: max(1, math.ceil(len(train) / args.train_tracks))]
    for t in subset:
        audio = read_audio(args.corpus / "train" / t["path"], sr=sr)
        train_songs.append(
            (t["artist"], t["genre"], audio.shape[0], encode_track(vqvae, audio[: int(args.train_seconds * sr)]))
        )
    vq_seconds = time.perf_counter() - t0
    levels = cfg.levels
    mean_recon = {
        lv: {k: sum(r[lv][k] for _, r in recon_rows) / len(recon_rows) for k in ("sc", "mrstft")}
        for lv in range(levels)
    }
    use_eval = {lv: usage([s[3][lv] for s in eval_songs], cfg.l_bins) for lv in range(levels)}
    use_train = {lv: usage([s[3][lv] for s in train_songs], cfg.l_bins) for lv in range(levels)}

    # --- priors ---------------------------------------------------------------------------------
    prior_rows = {}
    for lv, model in sorted(sampler.levels.items(), reverse=True):
        upper = lv + 1
        ds = cfg.strides_t[upper] ** cfg.downs_t[upper] if model.prior.config.conditioner is not None else None
        model.prior.eval()
        prior_rows[lv] = {
            "eval": bits_per_token(model, eval_songs, lv, ds, args.max_windows),
            "train": bits_per_token(model, train_songs, lv, ds, max(2, args.max_windows // 4)),
            "unigram": unigram_bits([s[3][lv] for s in train_songs], [s[3][lv] for s in eval_songs], cfg.l_bins),
            "params": sum(p.numel() for p in model.prior.parameters()),
            "n_ctx": model.prior.config.n_ctx,
        }

    # --- a generated take beside a real held-out clip ------------------------------------------
    real_track = next((t for t in held if t["genre"] == args.real_genre), held[0])
    artist, genre = real_track["artist"], real_track["genre"]
    top_hop = vqvae.hop_lengths[-1]
    n = int(args.take_seconds * sr) // top_hop * top_hop
    empty = [torch.zeros(1, 0, dtype=torch.long) for _ in range(levels)]
    t0 = time.perf_counter()
    result = sampler.sample(
        empty, n_samples=n, songs=[(artist, genre, "")], total_length=60 * sr, params=SamplingParams(seed=args.seed)
    )
    gen_seconds = time.perf_counter() - t0
    with torch.no_grad():
        take = vqvae.decode([result.zs[0]], start_level=0)[0, :, 0]
    full = read_audio(args.corpus / "eval" / real_track["path"], sr=sr)
    real_start = max(0, min(int(args.real_offset * sr), full.shape[0] - n))  # past the track's intro
    real = full[real_start : real_start + n]
    args.audio_out.mkdir(parents=True, exist_ok=True)
    write_wav(args.audio_out / "generated.wav", take, sr=sr)
    write_wav(args.audio_out / "real.wav", real, sr=sr)
    noise = torch.randn(n, generator=torch.Generator().manual_seed(0)) * float(rms(take))
    flat = {
        "generated": float(spectral_flatness(take)),
        "real": float(spectral_flatness(real)),
        "white noise": float(spectral_flatness(noise)),
    }
    image_rel = os.path.relpath(args.image, args.out.parent)
    spectrogram_png(
        args.image,
        take,
        real,
        sr,
        (
            f"generated: {artist} / {genre}, seed {result.seed}, {n / sr:.1f} s",
            f"real, held out: {real_track['name']} ({real_track['artist']}), {real_start / sr:.0f}–{(real_start + n) / sr:.0f} s",
        ),
    )

    # --- training runs --------------------------------------------------------------------------
    top_level = levels - 1
    shipped = {
        "vqvae": manifest.vqvae,
        "top": args.bundle / f"prior_level_{top_level}.pth.tar",
        "up0": args.bundle / "prior_level_0.pth.tar",
    }
    runs = {name: run_summary(args.runs, name, shipped[name]) for name in ("vqvae", "top", "up0")}
    # the VQ-VAE run's EMA weights, for comparison with what is shipped
    ema_recon = None
    ema_path = args.runs / "vqvae" / "checkpoint_latest.pth.tar"
    if runs["vqvae"] is not None and runs["vqvae"].get("weights") == "raw":
        from jukebox_model.checkpoints import load_vqvae

        ema = load_vqvae(ema_path).eval()
        rows = []
        for t in held:
            audio = read_audio(args.corpus / "eval" / t["path"], sr=sr)
            rows.append((reconstruction(ema, audio, 20.0), reconstruction(vqvae, audio, 20.0)))
        ema_recon = {
            kind: {lv: sum(r[i][lv]["sc"] for r in rows) / len(rows) for lv in range(levels)}
            for i, kind in enumerate(("ema", "raw"))
        }
    size = sum(f.stat().st_size for f in args.bundle.rglob("*") if f.is_file())

    # --- the card -------------------------------------------------------------------------------
    L = []
    w = L.append
    w("# Model card: the embedded default bundle")
    w("")
    w(
        f"`{manifest.folder.relative_to(ROOT) if manifest.folder.is_relative_to(ROOT) else manifest.folder}` — bundle "
        f"**{manifest.name}**, {size / 1e6:.1f} MB. {manifest.description}"
    )
    w("")
    w(
        "A deliberately small Jukebox-architecture model (VQ-VAE + top prior with artist/genre/timing labels + one "
        "upsampler) trained on a CPU, so that `make demo` and first-time users have something that makes music without "
        "downloading anything. It is not comparable with OpenAI's models: expect rough, lo-fi textures in the style of the "
        "training soundtracks, not songs. Corpus, licences and attribution: the bundle's README.md."
    )
    w("")
    w(
        f"Measured by `bench/model_card.py` on {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, torch threads: {threads}."
    )
    w("")
    w("## Architecture")
    w("")
    w(
        f"- VQ-VAE: {levels} levels, hops {', '.join(map(str, cfg.hop_lengths))} samples "
        f"({', '.join(f'{sr / h:.0f}' for h in cfg.hop_lengths)} tokens/s), {cfg.l_bins}-code books of width {cfg.emb_width}, "
        f"width {cfg.width}, depth {cfg.depth}, {sum(p.numel() for p in vqvae.parameters()) / 1e6:.2f} M parameters."
    )
    for lv, row in sorted(prior_rows.items(), reverse=True):
        pc = sampler.levels[lv].prior.config
        kind = "top prior (artist, genre, timing)" if pc.is_top else "upsampler (upper-level codes, artist, genre)"
        w(
            f"- level {lv} {kind}: n_ctx {pc.n_ctx} ({pc.n_ctx * cfg.hop_lengths[lv] / sr:.2f} s), width {pc.prior.width}, "
            f"depth {pc.prior.depth}, {pc.prior.heads} heads, {row['params'] / 1e6:.2f} M parameters."
        )
    w("")
    w("## Training")
    w("")
    w("| run | steps | batch | lr | wall time | started | final loss (mean of last 10 logs) | shipped weights | how |")
    w("|---|---|---|---|---|---|---|---|---|")
    for name, info in runs.items():
        if info is None:
            w(f"| {name} | (run folder not found) | | | | | | | |")
            continue
        wall = f"{info['wall_s'] / 60:.0f} min" if "wall_s" in info else "?"
        loss = f"{info['final_loss']:.3f}" if info.get("final_loss") is not None else "?"
        w(
            f"| {name} | {info['step']} | {info['batch_size']} | {info['lr']} | {wall} | {info.get('started', '?')} | {loss} | "
            f"{info.get('weights', '?')} | {info['how']} |"
        )
    w("")
    w(
        "Device: CPU only (no GPU was available to this task), one thread per training process, on a 2-core machine "
        "shared with other work. Commands and configs: the bundle's README.md and `training/`."
    )
    w("")
    if ema_recon is not None:
        w(
            "The VQ-VAE ships its raw weights, not the parameter EMA its checkpoints carry as `model`: with the "
            "reference's decay rule (μ = 1 − batch·processes/8/1000 = 0.999 here) a 1,200-step run's average still leans on "
            "the early weights. Spectral convergence on the first 20 s of each held-out track (mean):"
        )
        w("")
        w("| weights | " + " | ".join(f"level {lv} SC" for lv in range(levels)) + " |")
        w("|---|" + "---|" * levels)
        for kind in ("ema", "raw"):
            w(
                f"| {'EMA (checkpoint `model`)' if kind == 'ema' else 'raw (shipped)'} | "
                + " | ".join(f"{ema_recon[kind][lv]:.3f}" for lv in range(levels))
                + " |"
            )
        w("")
        w("The priors were therefore trained with `--no-ema` on the raw VQ-VAE's codes.")
        w("")
    w("## VQ-VAE reconstruction on held-out tracks")
    w("")
    w(
        f"First {args.recon_seconds:.0f} s of each held-out track, encoded and decoded through one level at a time. "
        "SC = spectral convergence ‖|S|−|Ŝ|‖/‖|S|‖ (the training code's STFT: n_fft 2048, hop 256); MR-STFT = "
        "multi-resolution STFT distance (`jukebox_model/audio_metrics.py`: SC + mean log-magnitude L1, averaged over "
        "n_fft 512/1024/2048). Lower is better; 0 is perfect."
    )
    w("")
    w("| track | " + " | ".join(f"level {lv} SC | level {lv} MR-STFT" for lv in range(levels)) + " |")
    w("|---|" + "---|---|" * levels)
    for t, r in recon_rows:
        w(f"| {t['path']} | " + " | ".join(f"{r[lv]['sc']:.3f} | {r[lv]['mrstft']:.3f}" for lv in range(levels)) + " |")
    w(
        "| **mean** | "
        + " | ".join(f"**{mean_recon[lv]['sc']:.3f}** | **{mean_recon[lv]['mrstft']:.3f}**" for lv in range(levels))
        + " |"
    )
    w("")
    w("## Codebook usage")
    w("")
    w(
        f"Distinct codes and perplexity (2^entropy of the code histogram) over the held-out tracks' codes and over "
        f"the first {args.train_seconds:.0f} s of {len(train_songs)} training tracks."
    )
    w("")
    w(
        "| level | codes used (held out) | perplexity (held out) | codes used (training subset) | perplexity (training subset) |"
    )
    w("|---|---|---|---|---|")
    for lv in range(levels):
        e, t = use_eval[lv], use_train[lv]
        w(
            f"| {lv} | {e['used']} / {cfg.l_bins} ({e['fraction']:.0%}) | {e['perplexity']:.0f} | "
            f"{t['used']} / {cfg.l_bins} ({t['fraction']:.0%}) | {t['perplexity']:.0f} |"
        )
    w("")
    w("## Prior bits per token")
    w("")
    w(
        f"Teacher-forced `bpd` (bits per music token) over non-overlapping n_ctx windows of the held-out tracks' codes "
        f"(up to {args.max_windows} per track), with their own labels. For scale: training windows, a context-free "
        f"unigram model of the training codes, and the uniform {math.log2(cfg.l_bins):.0f} bits."
    )
    w("")
    w("| level | held out | training windows | unigram baseline (held out) |")
    w("|---|---|---|---|")
    for lv, row in sorted(prior_rows.items(), reverse=True):
        w(f"| {lv} | **{row['eval']:.3f}** | {row['train']:.3f} | {row['unigram']:.3f} |")
    w("")
    w("## A generated take")
    w("")
    w(
        f"Ancestral sample of {n / sr:.1f} s through every level (artist `{artist}`, genre `{genre}`, song length 60 s, "
        f"seed {result.seed}, default sampling settings: temperature 0.99, hop fractions 0.5/0.5/0.125), beside the "
        f"{n / sr:.1f} s of a held-out track of that genre (from {real_start / sr:.0f} s). Generating it took **{gen_seconds:.1f} s** on this CPU "
        f"(torch threads: {threads})."
    )
    w("")
    w(f"![generated vs real spectrograms]({image_rel})")
    w("")
    w("| clip | spectral flatness (0 tonal … ≈0.56 white noise) | RMS |")
    w("|---|---|---|")
    w(f"| generated | {flat['generated']:.3f} | {float(rms(take)):.3f} |")
    w(f"| real (held out) | {flat['real']:.3f} | {float(rms(real)):.3f} |")
    w(f"| white noise at the generated RMS | {flat['white noise']:.3f} | {float(rms(noise)):.3f} |")
    w("")
    w("## Limits")
    w("")
    w(
        "- Trained for well under an hour of CPU time per model on ~1.5 h of music: the priors have learnt local "
        "texture, not melody or form, and whether takes follow their artist/genre labels was not measured. The VQ-VAE's level 0 (hop 32) is coarse next to the "
        "reference's hop 8, so reconstructions are muffled and noisy."
    )
    w(
        f"- The top prior sees {sampler.levels[levels - 1].prior.config.n_ctx * cfg.hop_lengths[-1] / sr:.1f} s at a time; "
        "a longer take is sampled in overlapping windows, and its character can change at a window start (in the "
        "spectrogram above, about 3 s in)."
    )
    w(
        "- Artist/genre labels are the corpus's composers and one style word per package (see the bundle README); other "
        "names fall back to `unknown`."
    )
    w(f"- Held-out set: {len(held)} tracks, one per package; numbers from so few tracks are indicative only.")
    w(f"- Measurement took {vq_seconds:.0f} s for the VQ-VAE passes.")
    w("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(L))
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    sys.exit(main())
