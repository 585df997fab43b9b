"""Does a bundle's top prior keep a beat? Top-level-only takes of the rhythmic presets, decoded from the top level
(or, with --down-to L, sampled on down to level L and decoded from it).

    .venv/bin/python bench/top_beat.py [--bundle DIR] [--presets techno-loop,house-groove,...] [--seeds 4]
        [--temperature 0.9] [--top-p 0.9]

For each preset: 4-bar ancestral takes at the preset's tempo (a bundle trained with tempo words gets
it as a label), sampled at the top level alone and decoded from it, so the upsampler plays no part.
Printed: the onset-envelope autocorrelation at its strongest period and at the preset's beat
(jukebox_model.music_measures.beat_strength), per preset and as medians over all takes. The loop
corpus measures 0.76 and 0.69. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path
from statistics import median

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jukebox_model.api import SamplingParams  # noqa: E402
from jukebox_model.bundle_dir import DEFAULT_BUNDLE_DIR, load_bundle_dir  # noqa: E402
from jukebox_model.music_measures import beat_strength  # noqa: E402

RHYTHMIC = "techno-loop,house-groove,funk-break,hiphop-beat,electronic-pulse"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE_DIR)
    p.add_argument("--presets", default=RHYTHMIC, help="comma-separated names in presets/")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--bars", type=float, default=4.0)
    p.add_argument("--temperature", type=float, default=None, help="top level (default: the preset's)")
    p.add_argument("--top-p", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--down-to", type=int, default=None, help="sample the levels below the top down to this one and decode it"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sampler, _ = load_bundle_dir(args.bundle)
    vq = sampler.vqvae.eval()
    sr, top = vq.config.sr, max(sampler.levels)
    hop = vq.hop_lengths[top]
    lowest = top if args.down_to is None else args.down_to
    levels = list(range(top, lowest - 1, -1))
    every, every_at = [], []
    print("| preset | beat (median) | beat at the preset's tempo (median) | per take | seconds |")
    print("|---|---|---|---|---|")
    for name in args.presets.split(","):
        preset = tomllib.loads((ROOT / "presets" / f"{name}.toml").read_text())
        bpm = float(preset["bpm"])
        n = round(args.bars * int(preset.get("beats_per_bar", 4)) * 60 / bpm * sr) // hop * hop
        temperature = list(preset.get("temperature", [0.98] * 3))
        if args.temperature is not None:
            temperature[2] = temperature[1] = args.temperature
        beats, at = [], []
        started = time.perf_counter()
        for seed in range(args.seeds):
            empty = [torch.zeros(1, 0, dtype=torch.long) for _ in range(vq.config.levels)]
            params = SamplingParams(seed=seed, temperature=tuple(temperature), top_p=args.top_p)
            with torch.no_grad():
                result = sampler.sample(
                    empty,
                    n_samples=n,
                    songs=[(preset["artist"], preset["genre"], "")],
                    total_length=int(preset.get("total_s", 60) * sr),
                    offset=int(preset.get("offset_s", 0) * sr),
                    levels=levels,
                    params=params,
                    bpm=bpm,
                    beats_per_bar=int(preset.get("beats_per_bar", 4)),
                )
                audio = vq.decode([result.zs[lowest]], start_level=lowest)[0, :, 0].numpy()
            beats.append(beat_strength(audio, sr))
            at.append(beat_strength(audio, sr, bpm))
        every += beats
        every_at += at
        takes = ", ".join(f"{b:.2f}" for b in at)
        print(
            f"| {name} ({bpm:g} BPM) | {median(beats):.2f} | {median(at):.2f} | {takes} | "
            f"{time.perf_counter() - started:.0f} |"
        )
    print(f"| all | {median(every):.2f} | {median(every_at):.2f} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
