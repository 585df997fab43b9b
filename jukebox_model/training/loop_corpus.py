"""Build the loop corpus the embedded model is trained on: procedurally written MIDI loops rendered
through FluidSynth with Debian's freely licensed General MIDI sound font.

    apt-get install -y fluidsynth fluid-soundfont-gm
    python -m jukebox_model.training.loop_corpus --out data/loops --hours 3 --seed 0

Why synthetic loops: a model of a few million parameters trained for CPU-hours learns a narrow,
repetitive domain well and a wide one badly. Loops in six styles, in every key, at each style's
tempos, with drums that repeat bar after bar, are what the shipped presets promise and what a
small prior can learn to continue.

Layout (what the trainers read):

    OUT/train/<style>/<name>.wav  + OUT/train/metadata.json   (jukebox-train --audio-dir OUT/train)
    OUT/eval/<style>/<name>.wav   + OUT/eval/metadata.json    (held out: every 20th loop)
    OUT/tracks.json               per loop: style, instruments, tempo, key, bars, parts, seconds
    OUT/corpus.json               the command's settings and the renderer's version

Labels: genre = the style, artist = the instrument set. Each loop is drawn from its own generator
seeded by (seed, index), so the same seed gives the same MIDI; rendering and resampling are
deterministic for the same FluidSynth and torch versions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..audio import resample, write_wav
from .loop_patterns import write_loop
from .loop_styles import STYLES

SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RENDER_SR = 44100  # FluidSynth renders at the sound font's rate; the corpus is resampled after
DEFAULT_SR = 22050
EVAL_EVERY = 20
TARGET_RMS_DB = -17.0
PEAK_LIMIT = 0.89  # -1 dBFS


@dataclass(frozen=True)
class CorpusSettings:
    out: Path
    hours: float = 3.0
    seed: int = 0
    sr: int = DEFAULT_SR
    sound_font: Path = SOUND_FONT
    bars: tuple[int, ...] = (16, 24, 32)
    jobs: int = 1


class RenderError(RuntimeError):
    """FluidSynth is missing or failed on a file."""


def fluidsynth_version() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise RenderError("fluidsynth not found: apt-get install -y fluidsynth fluid-soundfont-gm")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].strip() if out else "unknown"


def render_midi(midi_path: Path, wav_path: Path, sound_font: Path) -> None:
    """FluidSynth's fast file renderer, reverb and chorus off (clean, dry loops)."""
    cmd = [
        "fluidsynth",
        "-ni",
        "-q",
        "-R",
        "0",
        "-C",
        "0",
        "-g",
        "0.5",
        "-r",
        str(RENDER_SR),
        "-O",
        "s16",
        "-T",
        "wav",
        "-F",
        str(wav_path),
        str(sound_font),
        str(midi_path),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not wav_path.exists():
        raise RenderError(f"fluidsynth failed on {midi_path}: {done.stderr.strip()[-400:]}")


def finish(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Mono, exactly the loop's length (a loop's end is its start again), at a common level."""
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    mono = np.pad(mono[:n_samples], (0, max(0, n_samples - mono.shape[0])))
    mono = mono - mono.mean()
    rms = float(np.sqrt(np.mean(mono**2))) or 1.0
    gain = 10 ** (TARGET_RMS_DB / 20) / rms
    peak = float(np.abs(mono).max()) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    return (mono * gain).astype(np.float32)


def render_loop(index: int, settings: CorpusSettings) -> dict:
    """Write loop `index` (MIDI drawn from (seed, index)) and return its tracks.json record."""
    rng = np.random.default_rng((settings.seed, index))
    styles = sorted(STYLES)
    style = STYLES[styles[index % len(styles)]]
    bars = int(settings.bars[rng.integers(len(settings.bars))])
    midi, spec = write_loop(style, rng, bars=bars)
    split = "eval" if index % EVAL_EVERY == EVAL_EVERY - 1 else "train"
    name = f"{style.name}/loop{index:05d}_{spec.bpm}bpm.wav"
    target = settings.out / split / name
    with tempfile.TemporaryDirectory(prefix="loop_") as tmp:
        midi_path, wav_path = Path(tmp) / "loop.mid", Path(tmp) / "loop.wav"
        midi.save(midi_path)
        render_midi(midi_path, wav_path, settings.sound_font)
        data, sr = sf.read(wav_path, dtype="float32", always_2d=True)
    audio = finish(data, round(spec.seconds * sr))
    out = resample(torch.from_numpy(audio), sr, settings.sr) if sr != settings.sr else torch.from_numpy(audio)
    out = out[: round(spec.seconds * settings.sr)]
    target.parent.mkdir(parents=True, exist_ok=True)
    write_wav(target, out, sr=settings.sr, subtype="pcm16")
    return {
        "file": name,
        "split": split,
        **asdict(spec),
        "key_name": spec.key_name,
        "seconds": round(out.shape[0] / settings.sr, 3),
    }


def build(settings: CorpusSettings, log=print) -> list[dict]:
    """Render loops until `hours` of training audio exist; write metadata, tracks.json, corpus.json."""
    version = fluidsynth_version()
    if not settings.sound_font.is_file():
        raise RenderError(f"sound font {settings.sound_font} not found: apt-get install -y fluid-soundfont-gm")
    # the mean loop is about 24 bars at about 110 BPM (52 s); draw enough and stop at the target
    mean_seconds = 52.0
    n = int(settings.hours * 3600 / mean_seconds * EVAL_EVERY / (EVAL_EVERY - 1)) + 1
    records: list[dict] = []
    with contextlib.ExitStack() as stack:
        if settings.jobs > 1:
            # spawned, not forked: a fork of a process that already runs threads (torch's, a server's) can
            # inherit a lock held by one of them and wait on it for ever
            pool = stack.enter_context(
                ProcessPoolExecutor(max_workers=settings.jobs, mp_context=multiprocessing.get_context("spawn"))
            )
            rendered = pool.map(render_loop, range(n), [settings] * n, chunksize=4)
        else:
            rendered = map(render_loop, range(n), [settings] * n)
        for i, record in enumerate(rendered):
            records.append(record)
            if (i + 1) % 50 == 0:
                log(f"  {i + 1}/{n} loops rendered")
    for split in ("train", "eval"):
        chosen = [r for r in records if r["split"] == split]
        meta = {
            r["file"]: {"artist": r["instruments"], "genre": r["style"], "bpm": r["bpm"], "beats_per_bar": 4}
            for r in chosen
        }
        (settings.out / split).mkdir(parents=True, exist_ok=True)
        (settings.out / split / "metadata.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    (settings.out / "tracks.json").write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    (settings.out / "corpus.json").write_text(
        json.dumps(
            {
                "seed": settings.seed,
                "hours": settings.hours,
                "sr": settings.sr,
                "bars": list(settings.bars),
                "sound_font": str(settings.sound_font),
                "fluidsynth": version,
                "loops": len(records),
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    train_h = sum(r["seconds"] for r in records if r["split"] == "train") / 3600
    log(f"{len(records)} loops, {train_h:.2f} h of training audio -> {settings.out}")
    return records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jukebox_model.training.loop_corpus", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--hours", type=float, default=3.0, help="about this much audio in all (train + eval)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sr", type=int, default=DEFAULT_SR, help="the corpus's sample rate (the model's)")
    p.add_argument("--sound-font", type=Path, default=SOUND_FONT)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="FluidSynth processes at once")
    args = p.parse_args(argv)
    try:
        build(CorpusSettings(args.out, args.hours, args.seed, args.sr, args.sound_font, jobs=args.jobs))
    except RenderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
