"""`jukebox-reconstruct`: audio in -> VQ-VAE codes -> audio out, per level.

Hearing a clip through each level shows what the priors will be asked to model: level 0 is close
to the input, level 2 keeps only the coarse structure.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..audio import SUBTYPES, AudioFileError, read_audio, write_wav
from ..checkpoints import CheckpointError, load_vqvae
from ..vqvae import VQVAE


@dataclass(frozen=True)
class Reconstruction:
    codes: list[torch.Tensor]  # per requested level, (T // hop_l,) int64
    audio: dict[int, torch.Tensor]  # level -> (T,) float32
    n_samples: int


@torch.no_grad()
def reconstruct(model: VQVAE, audio: torch.Tensor, levels: list[int], *, chunk_samples: int) -> Reconstruction:
    """Encode and decode `audio` (T,) in chunks of `chunk_samples` (a multiple of the top hop) so that
    memory stays bounded for whole songs. Chunks are coded independently."""
    top_hop = model.hop_lengths[-1]
    if chunk_samples % top_hop:
        raise ValueError(f"chunk_samples must be a multiple of {top_hop}")
    n = audio.shape[0]
    padded = torch.nn.functional.pad(audio, (0, -n % top_hop))  # whole tokens at every level
    device = next(model.parameters()).device
    codes: dict[int, list[torch.Tensor]] = {level: [] for level in levels}
    outs: dict[int, list[torch.Tensor]] = {level: [] for level in levels}
    for start in range(0, padded.shape[0], chunk_samples):
        x = padded[start : start + chunk_samples].to(device)[None, :, None]
        zs = model.encode(x)
        for level in levels:
            codes[level].append(zs[level][0].cpu())
            outs[level].append(model.decode(zs[level:], start_level=level)[0, :, 0].float().cpu())
    return Reconstruction(
        codes=[torch.cat(codes[level]) for level in levels],
        audio={level: torch.cat(outs[level])[:n] for level in levels},
        n_samples=n,
    )


def _levels(text: str) -> list[int]:
    try:
        return sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"levels must be comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jukebox-reconstruct", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", type=Path, help="audio files (WAV, FLAC, OGG, MP3, ...)")
    p.add_argument("--checkpoint", required=True, type=Path, help="VQ-VAE checkpoint (reference format)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--levels", type=_levels, default=None, help="comma-separated levels (default: all)")
    p.add_argument("--rate", type=int, default=None, help="output sample rate (default: the model's)")
    p.add_argument("--format", choices=sorted(SUBTYPES), default="pcm24", help="WAV sample format")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=None, help="only the first S seconds of each input")
    p.add_argument("--chunk-seconds", type=float, default=30.0, help="process audio in chunks of this length")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model = load_vqvae(args.checkpoint, device=args.device)
    except (FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg = model.config
    levels = args.levels if args.levels is not None else list(range(cfg.levels))
    if not levels or levels[0] < 0 or levels[-1] >= cfg.levels:
        print(f"error: levels must lie in 0..{cfg.levels - 1}, got {levels}", file=sys.stderr)
        return 2
    top_hop = cfg.hop_lengths[-1]
    chunk = max(top_hop, int(args.chunk_seconds * cfg.sr) // top_hop * top_hop)
    rate = args.rate or cfg.sr
    failures = 0
    for path in args.inputs:
        try:
            audio = read_audio(path, sr=cfg.sr, duration_s=args.seconds)
        except (FileNotFoundError, AudioFileError) as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        result = reconstruct(model, audio, levels, chunk_samples=chunk)
        for level, out in result.audio.items():
            target = write_wav(args.out / f"{path.stem}_level{level}.wav", out, sr=rate, source_sr=cfg.sr, subtype=args.format)
            print(f"wrote {target}")
        with atomic_write(args.out / f"{path.stem}_codes.pt") as f:
            torch.save(
                {
                    "zs": dict(zip(levels, result.codes)),
                    "sr": cfg.sr,
                    "hop_lengths": list(cfg.hop_lengths),
                    "n_samples": result.n_samples,
                    "checkpoint": str(args.checkpoint),
                    "source": str(path),
                },
                f,
            )
    return 2 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
