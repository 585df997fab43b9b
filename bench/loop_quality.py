"""Does the embedded model make loops a producer keeps? Takes of every shipped preset, measured.

    .venv/bin/python bench/loop_quality.py --corpus ~/jukebox-runs/data/loops [--bundle DIR] [--json out.json]

For each preset in presets/*.toml: ancestral takes (all levels, one thread) and takes primed with a
held-out corpus loop of the preset's genre (2 bars of clip, 2 new bars). Measured
(jukebox_model/music_measures.py): comb lines at every VQ-VAE frame rate, the beat (onset
autocorrelation at the strongest period, and at the clip's beat for primed takes), whether a primed
take keeps the clip's key, the click at the loop point; beside the same numbers for held-out corpus
loops. Also: the VQ-VAE's spectral convergence on held-out loops, the time to the first and the last
level of the demo preset's take, and the bundle's size. Targets: issue #19 and docs/model-card.md.
The figures are printed as markdown; --json keeps them; --images writes spectrograms of takes
beside corpus loops. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path
from statistics import median

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.session.params import PARAMS, Session, session_from_values  # noqa: E402
from bridge.takes.finishing import finish, finish_options, loop_run_on_samples  # noqa: E402
from jukebox_model.api import SamplingParams  # noqa: E402
from jukebox_model.audio import read_audio, write_wav  # noqa: E402
from jukebox_model.bundle_dir import DEFAULT_BUNDLE_DIR, load_bundle_dir  # noqa: E402
from jukebox_model.music_measures import (  # noqa: E402
    beat_strength,
    comb_lines_db,
    key_match,
    loop_click,
    spectral_convergence,
)


def presets(folder: Path) -> list[tuple[str, dict]]:
    out = []
    for path in sorted(folder.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        if "artist" in data and "genre" in data:
            out.append((path.stem, data))
    return out


def bars_samples(bars: float, bpm: float, sr: int, hop: int) -> int:
    return round(bars * 4 * 60 / bpm * sr) // hop * hop


def take_measures(audio: np.ndarray, sr: int, hops: tuple[int, ...], bpm: float | None) -> dict:
    comb = comb_lines_db(audio, sr, hops)
    return {
        "comb_db": max(comb.values()),
        "comb_by_hop": {str(k): round(v, 2) for k, v in comb.items()},
        "beat": beat_strength(audio, sr),
        "beat_at_bpm": beat_strength(audio, sr, bpm) if bpm else None,
        "loop_click": loop_click(audio),
    }


def preset_session(name: str, preset: dict) -> Session:
    """The session a preset makes, as the bridge loads it (its description is not a parameter)."""
    return session_from_values({k: v for k, v in preset.items() if k in PARAMS}, source=name)


def finished(take: np.ndarray, run_on: np.ndarray, session: Session, sr: int) -> np.ndarray:
    """The take as the bridge delivers it with the session's finishing (its loop join uses the run-on)."""
    options = finish_options(session)
    return finish(take, sr, options, bpm=session.bpm, beats_per_bar=session.beats_per_bar, after=run_on)[0]


def sample(sampler, zs, n, preset, sr, seed):
    t = preset.get("temperature", [0.99, 0.99, 0.98])
    params = SamplingParams(seed=seed, temperature=(t[0], t[1], t[2]))
    total = int(preset.get("total_s", 60) * sr)
    offset = int(preset.get("offset_s", 0) * sr)
    marks = {}
    t0 = time.perf_counter()

    def done(level, _codes):
        marks[level] = time.perf_counter() - t0

    with torch.no_grad():
        result = sampler.sample(
            zs,
            n_samples=n,
            songs=[(preset["artist"], preset["genre"], "")] * zs[0].shape[0],
            total_length=total,
            offset=offset,
            params=params,
            on_level_done=done,
            bpm=float(preset["bpm"]) if preset.get("bpm") else None,  # used by a bundle trained with tempo words
            beats_per_bar=int(preset.get("beats_per_bar", 4)),
        )
        audio = sampler.vqvae.decode([result.zs[0]], start_level=0)[:, :, 0].numpy()
    return audio, marks


def corpus_loops(corpus: Path, genre: str) -> list[dict]:
    """Held-out loops of the preset's genre; for a genre the corpus lacks (another bundle's presets), its
    held-out loops with drums, the fastest first, so every bundle is primed with the same kind of clip."""
    held = [t for t in json.loads((corpus / "tracks.json").read_text()) if t["split"] == "eval"]
    same = [t for t in held if t["style"] == genre]
    return same or sorted((t for t in held if "drums" in t.get("parts", [])), key=lambda t: -t["bpm"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE_DIR)
    p.add_argument("--presets", type=Path, default=ROOT / "presets")
    p.add_argument(
        "--corpus", type=Path, required=True, help="the loop corpus (python -m jukebox_model.training.loop_corpus)"
    )
    p.add_argument("--takes", type=int, default=3, help="ancestral takes per preset")
    p.add_argument("--bars", type=float, default=4.0, help="length of an ancestral take")
    p.add_argument("--primed", type=int, default=2, help="primed takes per preset")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--images", type=Path, default=None, help="folder for spectrogram PNGs and the takes' WAVs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compare", type=Path, default=None, help="another run's --json (e.g. the previous bundle)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    sampler, manifest = load_bundle_dir(args.bundle)
    vq = sampler.vqvae.eval()
    sr, hops = vq.config.sr, tuple(vq.hop_lengths)
    top = hops[-1]
    rows, images = {}, []

    # --- the VQ-VAE on held-out loops -----------------------------------------------------------
    tracks = json.loads((args.corpus / "tracks.json").read_text())
    held = [t for t in tracks if t["split"] == "eval"]
    sc = {lv: [] for lv in range(vq.config.levels)}
    corpus_rows = []
    for t in held:
        audio = read_audio(args.corpus / "eval" / t["file"], sr=sr)[: 20 * sr]
        audio = audio[: audio.shape[0] // top * top]
        with torch.no_grad():
            zs = vq.encode(audio[None, :, None])
            for lv in range(vq.config.levels):
                recon = vq.decode(zs[lv:], start_level=lv)[0, :, 0].numpy()
                sc[lv].append(spectral_convergence(audio.numpy(), recon))
        clip = audio.numpy()[: bars_samples(args.bars, t["bpm"], sr, top)]
        corpus_rows.append({"style": t["style"], **take_measures(clip, sr, hops, t["bpm"])})
    vq_row = {f"sc_level{lv}": float(np.mean(v)) for lv, v in sc.items()}

    # --- takes of every preset --------------------------------------------------------------------
    for name, preset in presets(args.presets):
        bpm = float(preset.get("bpm", 120))
        n = bars_samples(args.bars, bpm, sr, top)
        empty = [torch.zeros(args.takes, 0, dtype=torch.long) for _ in range(vq.config.levels)]
        session = preset_session(name, preset)
        run_on = loop_run_on_samples(session, sr)  # as the bridge asks
        audio, marks = sample(sampler, empty, n + run_on, preset, sr, seed=1)
        anc = []
        for a in audio:
            m = take_measures(a[:n], sr, hops, bpm)
            m["loop_click_finished"] = loop_click(finished(a[:n], a[n:], session, sr))
            anc.append(m)
        audio = audio[:, :n]
        primed = []
        loops = corpus_loops(args.corpus, preset["genre"])
        for i, loop in enumerate(loops[: args.primed]):
            clip_full = read_audio(args.corpus / "eval" / loop["file"], sr=sr).numpy()
            prime_n = bars_samples(2, loop["bpm"], sr, top)
            new_n = bars_samples(2, loop["bpm"], sr, top)
            start = bars_samples(4, loop["bpm"], sr, 1)  # past the loop's intro phrase
            clip = clip_full[start : start + prime_n]
            with torch.no_grad():
                zs = vq.encode(torch.from_numpy(clip)[None, :, None])
            out, _ = sample(sampler, zs, prime_n + new_n, {**preset, "bpm": loop["bpm"]}, sr, seed=10 + i)
            new = out[0, prime_n:]
            real_next = clip_full[start + prime_n : start + prime_n + new_n]
            m = take_measures(new, sr, hops, loop["bpm"])
            key = key_match(new, clip, sr)
            m.update(
                key_kept=key.kept,
                key_same=key.same,
                key_best_other=key.best_other,
                clip_beat_at_bpm=beat_strength(clip, sr, loop["bpm"]),
                real_next_beat_at_bpm=beat_strength(real_next, sr, loop["bpm"]),
                clip=loop["file"],
                clip_key=loop["key_name"],
            )
            primed.append(m)
            if args.images is not None and i == 0:
                images.append((name, np.concatenate([clip, new]), np.concatenate([clip, real_next]), prime_n))
        rows[name] = {
            "genre": preset["genre"],
            "artist": preset["artist"],
            "bpm": bpm,
            "ancestral": anc,
            "primed": primed,
            "seconds_to_level": {str(k): v for k, v in marks.items()},
            "takes_in_batch": args.takes,
        }
        if args.images is not None:
            args.images.mkdir(parents=True, exist_ok=True)
            for j, a in enumerate(audio):
                write_wav(args.images / f"{name}_ancestral_{j}.wav", torch.from_numpy(a), sr=sr)

    # --- the demo preset's take, one take as the demo makes it ------------------------------------
    demo = json.loads((Path(manifest.folder) / "bundle.json").read_text()).get("demo") or {}
    demo_name = demo.get("preset") or next(iter(rows), None)
    speed = None
    if demo_name is not None:
        preset = dict(presets(args.presets))[demo_name]
        n = bars_samples(float(preset.get("length", 4)), float(preset.get("bpm", 120)), sr, top)
        empty = [torch.zeros(1, 0, dtype=torch.long) for _ in range(vq.config.levels)]
        t0 = time.perf_counter()
        _, marks = sample(sampler, empty, n, preset, sr, seed=7)
        speed = {
            "preset": demo_name,
            "seconds": n / sr,
            "first_level_s": marks[max(marks)],
            "final_level_s": time.perf_counter() - t0,
        }
    size = sum(f.stat().st_size for f in Path(manifest.folder).rglob("*") if f.is_file())

    result = {
        "bundle": str(manifest.folder),
        "sr": sr,
        "hops": hops,
        "threads": torch.get_num_threads(),
        "vqvae": vq_row,
        "corpus": corpus_rows,
        "presets": rows,
        "demo_speed": speed,
        "bundle_mb": size / 1e6,
    }
    print_report(result)
    print()
    print_targets(result, json.loads(args.compare.read_text()) if args.compare else None)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")
    if images:
        spectrogram_pngs(args.images, images, sr)
    return 0


def _med(values):
    values = [v for v in values if v is not None]
    return median(values) if values else float("nan")


def _fmt_beat(m: dict) -> str:
    return f"{m['beat_at_bpm']:.2f}"


def _fmt_key(m: dict) -> str:
    return f"{'yes' if m['key_kept'] else 'no'} ({m['key_same']:.2f}/{m['key_best_other']:.2f})"


def _fmt_comb(m: dict) -> str:
    return f"{m['comb_db']:+.1f}"


def _joined(rows: list[dict], fmt) -> str:
    return ", ".join(fmt(m) for m in rows) or "—"


def print_report(r: dict) -> None:
    print(f"bundle {r['bundle']}: sr {r['sr']}, hops {r['hops']}, {r['bundle_mb']:.1f} MB, threads {r['threads']}")
    print(f"VQ-VAE spectral convergence on held-out loops: {r['vqvae']}")
    print()
    print(
        "| preset | comb dB (worst hop, max over takes) | beat (median) | beat at bpm (median) | loop click (median) | loop click, finished as delivered (median) | primed: beat at clip bpm | primed: key kept | primed comb dB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in r["presets"].items():
        a, pr = row["ancestral"], row["primed"]
        print(
            f"| {name} ({row['genre']}, {row['bpm']:.0f} BPM) | {max(m['comb_db'] for m in a):+.1f} | {_med(m['beat'] for m in a):.2f}"
            f" | {_med(m['beat_at_bpm'] for m in a):.2f} | {_med(m['loop_click'] for m in a):.1f}"
            f" | {_med(m.get('loop_click_finished') for m in a):.1f}"
            f" | {_joined(pr, _fmt_beat)} | {_joined(pr, _fmt_key)} | {_joined(pr, _fmt_comb)} |"
        )
    c = r["corpus"]
    print(
        f"| corpus loops (held out, {len(c)}) | {max(m['comb_db'] for m in c):+.1f} | {_med(m['beat'] for m in c):.2f}"
        f" | {_med(m['beat_at_bpm'] for m in c):.2f} | {_med(m['loop_click'] for m in c):.1f} | | | | |"
    )
    if r["demo_speed"]:
        s = r["demo_speed"]
        print(
            f"\ndemo preset {s['preset']}: {s['seconds']:.1f} s take, first level {s['first_level_s']:.1f} s, final level {s['final_level_s']:.1f} s"
        )


RHYTHMIC = ("techno", "house", "funk", "hiphop", "synthwave")  # genres whose presets promise a beat


def target_figures(r: dict) -> dict[str, float]:
    """Issue #19's figures for one run: worst comb line, median beat over the rhythmic presets' ancestral
    takes, median beat at the clip's tempo in primed takes, share of primed takes keeping the key."""
    takes = [m for row in r["presets"].values() for m in row["ancestral"]]
    primed = [m for row in r["presets"].values() for m in row["primed"]]
    rhythmic = [m for row in r["presets"].values() if row["genre"] in RHYTHMIC for m in row["ancestral"]]
    beat_takes = rhythmic or takes  # another bundle's presets may name no rhythmic genre
    speed = r.get("demo_speed") or {}
    return {
        "comb_db": max((m["comb_db"] for m in takes + primed), default=float("nan")),
        "beat": _med(m["beat"] for m in beat_takes),
        "primed_beat": _med(m["beat_at_bpm"] for m in primed),
        "key_kept": sum(bool(m["key_kept"]) for m in primed) / len(primed) if primed else float("nan"),
        "sc_level0": r["vqvae"]["sc_level0"],
        "first_level_s": speed.get("first_level_s", float("nan")),
        "final_level_s": speed.get("final_level_s", float("nan")),
        "bundle_mb": r["bundle_mb"],
    }


def print_targets(new: dict, old: dict | None) -> None:
    """The targets table: this bundle beside held-out corpus loops and (--compare) another bundle's run."""
    n, o = target_figures(new), target_figures(old) if old else None
    c = new["corpus"]
    corpus = {
        "comb_db": max(m["comb_db"] for m in c),
        "beat": _med(m["beat"] for m in c if m["style"] in RHYTHMIC),
        "primed_beat": _med(m["beat_at_bpm"] for m in c),
    }
    rows = [
        ("comb lines, worst over all takes (dB)", "≤ 3", "comb_db", "{:+.1f}"),
        ("beat: median onset autocorrelation, rhythmic presets", "≥ 0.35", "beat", "{:.2f}"),
        ("primed: beat at the clip's tempo, new part (median)", "≥ 0.3", "primed_beat", "{:.2f}"),
        ("primed: key kept (share of takes)", "all", "key_kept", "{:.0%}"),
        ("VQ-VAE level-0 spectral convergence, held out", "≤ 0.15", "sc_level0", "{:.3f}"),
        ("demo take: first level (s, one thread)", "≤ 15", "first_level_s", "{:.1f}"),
        ("demo take: final level (s, one thread)", "≤ 45", "final_level_s", "{:.1f}"),
        ("bundle size (MB)", "≤ 60", "bundle_mb", "{:.1f}"),
    ]
    print("| figure | target | this bundle | corpus loops (held out) | compared bundle |")
    print("|---|---|---|---|---|")
    for label, target, key, fmt in rows:
        cells = [fmt.format(n[key])]
        cells.append(fmt.format(corpus[key]) if key in corpus else "")
        cells.append(fmt.format(o[key]) if o is not None else "")
        print(f"| {label} | {target} | " + " | ".join(cells) + " |")


def spectrogram_pngs(folder: Path, images: list, sr: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(images), 2, figsize=(12, 2.6 * len(images)), squeeze=False, constrained_layout=True)
    for row, (name, take, real, seam) in zip(axes, images):
        for ax, audio, title in (
            (row[0], take, f"{name}: clip then take"),
            (row[1], real, f"{name}: clip then the real loop"),
        ):
            spec = torch.stft(
                torch.from_numpy(audio).float(), 1024, 256, window=torch.hann_window(1024), return_complex=True
            ).abs()
            db = 20 * torch.log10(spec + 1e-5)
            ax.imshow(
                db.numpy(),
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=float(db.max()) - 80,
                extent=(0, audio.shape[0] / sr, 0, sr / 2000),
            )
            ax.axvline(seam / sr, color="cyan", lw=0.8)
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("kHz")
    fig.savefig(folder / "primed_takes.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
