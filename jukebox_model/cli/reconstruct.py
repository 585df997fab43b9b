"""`jukebox-reconstruct`: audio in -> VQ-VAE codes -> audio out, per level.

Hearing a clip through each level shows what the priors will be asked to model: level 0 is close
to the input, level 2 keeps only the coarse structure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..audio import SUBTYPES, AudioFileError, peak_info, read_audio, write_wav
from ..checkpoints import CheckpointError, load_vqvae
from ..config import VQVAEConfig
from ..vqvae import VQVAE
from ..vqvae.resnet import dilations

# --- chunked reconstruction ----------------------------------------------------------------------
#
# Whole songs do not fit through the level-0 auto-encoder at once on a small machine, so audio is
# cut into chunks aligned to the top hop. Each chunk is run with `context` extra samples on both
# sides and only its own span is kept; with a context at least as wide as the convolutions reach,
# the result is what a single pass over the whole file would give.


def receptive_reach(config: VQVAEConfig, level: int) -> int:
    """Samples on either side of a span that can change that level's codes or decoded audio.

    Counted conservatively from the conv stacks of spec §2.2: strided convs (kernel 2s), dilated
    kernel-3 residual convs and the kernel-3 convs at both ends, each at its own sample spacing.
    """
    residual = sum(dilations(config.level_depth(level), config.dilation_growth_rate, config.dilation_cycle, False))
    stages = [config.strides_t[j] for j in range(level + 1) for _ in range(config.downs_t[j])]
    encoder, spacing = 0, 1
    for stride in stages:  # strided conv, then the residual stack at the new spacing
        encoder += (2 * stride - 1) * spacing
        spacing *= stride
        encoder += residual * spacing
    encoder += spacing  # kernel-3 conv to emb_width
    decoder = spacing  # kernel-3 conv from emb_width
    for stride in reversed(stages):  # residual stack, then transposed conv to the finer spacing
        decoder += residual * spacing + 2 * spacing
        spacing //= stride
    decoder += spacing  # kernel-3 conv to one channel
    return max(encoder, decoder) + config.hop_lengths[level]


def context_samples(config: VQVAEConfig, levels: Iterable[int]) -> int:
    """The widest reach of the given levels, rounded up to whole top-level tokens."""
    top = config.hop_lengths[-1]
    reach = max(receptive_reach(config, level) for level in levels)
    return -(-reach // top) * top


def _windows(n: int, chunk: int, context: int) -> Iterator[tuple[int, int, int, int]]:
    """(start, end) of each chunk and of the window around it, clipped to [0, n)."""
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        yield start, end, max(0, start - context), min(n, end + context)


@dataclass(frozen=True)
class Reconstruction:
    codes: dict[int, torch.Tensor]  # level -> (T_padded // hop_l,) int64
    audio: dict[int, torch.Tensor]  # level -> (T,) float32, the input's length
    n_samples: int


@torch.no_grad()
def encode_chunked(model: VQVAE, audio: torch.Tensor, level: int, *, chunk_samples: int, context: int) -> torch.Tensor:
    """(T,) audio, T a multiple of the top hop -> (T // hop_level,) int64 codes."""
    hop = model.hop_lengths[level]
    device = next(model.parameters()).device
    pieces = []
    for start, end, lo, hi in _windows(audio.shape[0], chunk_samples, context):
        x = audio[lo:hi].to(device)[None, :, None]  # (1, W, 1)
        z = model.encode(x, start_level=level, end_level=level + 1)[0][0]  # (W // hop,)
        pieces.append(z[(start - lo) // hop : (end - lo) // hop].cpu())
    return torch.cat(pieces)


@torch.no_grad()
def decode_chunked(model: VQVAE, codes: torch.Tensor, level: int, *, chunk_samples: int, context: int) -> torch.Tensor:
    """(T // hop_level,) codes -> (T,) float32 audio through that level's decoder alone."""
    hop = model.hop_lengths[level]
    device = next(model.parameters()).device
    pieces = []
    for start, end, lo, hi in _windows(codes.shape[0] * hop, chunk_samples, context):
        z = codes[lo // hop : hi // hop].to(device)[None]  # (1, W // hop)
        out = model.decode([z], start_level=level, end_level=level + 1)[0, :, 0]  # (W,)
        pieces.append(out[start - lo : end - lo].float().cpu())
    return torch.cat(pieces)


def reconstruct(
    model: VQVAE, audio: torch.Tensor, levels: Iterable[int], *, chunk_samples: int, context: int | None = None
) -> Reconstruction:
    """Codes and decoded audio of (T,) `audio` at each level, in bounded memory.

    The audio is zero-padded to whole top-level tokens (as the model needs) and the output cut back
    to T. `context` defaults to the receptive reach, which makes chunking invisible in the result.
    """
    levels = sorted(set(levels))
    top = model.hop_lengths[-1]
    if chunk_samples <= 0 or chunk_samples % top:
        raise ValueError(f"chunk_samples must be a positive multiple of the top hop {top}, got {chunk_samples}")
    if context is None:
        context = context_samples(model.config, levels)
    if context < 0 or context % top:
        raise ValueError(f"context must be a non-negative multiple of the top hop {top}, got {context}")
    if audio.dim() != 1:
        raise ValueError(f"expected mono (T,) audio, got shape {tuple(audio.shape)}")
    n = audio.shape[0]
    padded = torch.nn.functional.pad(audio.float(), (0, -n % top))
    codes, decoded = {}, {}
    for level in levels:
        codes[level] = encode_chunked(model, padded, level, chunk_samples=chunk_samples, context=context)
        decoded[level] = decode_chunked(model, codes[level], level, chunk_samples=chunk_samples, context=context)[:n]
    return Reconstruction(codes=codes, audio=decoded, n_samples=n)


# --- command line --------------------------------------------------------------------------------


def _levels(text: str) -> list[int]:
    try:
        return sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"levels must be comma-separated integers, got {text!r}") from None


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jukebox-reconstruct", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", type=Path, help="audio files (WAV, FLAC, OGG, MP3, AIFF, ...)")
    p.add_argument("--checkpoint", required=True, type=Path, help="VQ-VAE checkpoint (reference format)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--levels", type=_levels, default=None, help="comma-separated levels, e.g. 0,2 (default: all)")
    p.add_argument("--rate", type=_positive(int), default=None, help="output sample rate (default: the model's, 44100)")
    p.add_argument("--format", choices=sorted(SUBTYPES), default="pcm24", help="WAV sample format (default: pcm24)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--seconds", type=_positive(float), default=None, help="only the first S seconds of each input")
    p.add_argument("--chunk-seconds", type=_positive(float), default=30.0, help="audio per pass through the model")
    return p


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r} ({e})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device


def _output_stems(inputs: list[Path]) -> list[str]:
    """One output stem per input; inputs sharing a file stem get -2, -3, ... so no output is overwritten."""
    used: set[str] = set()
    stems = []
    for path in inputs:
        stem, k = path.stem, 1
        while stem in used:
            k += 1
            stem = f"{path.stem}-{k}"
        used.add(stem)
        stems.append(stem)
    return stems


def _process(model: VQVAE, path: Path, stem: str, levels: list[int], args: argparse.Namespace, chunk: int) -> None:
    cfg = model.config
    audio = read_audio(path, sr=cfg.sr, duration_s=args.seconds)
    result = reconstruct(model, audio, levels, chunk_samples=chunk)
    for level, out in result.audio.items():
        target = args.out / f"{stem}_level{level}.wav"
        write_wav(target, out, sr=args.rate or cfg.sr, source_sr=cfg.sr, subtype=args.format)
        peak = peak_info(out)
        clipped = f" ({peak.describe()}, clipped)" if peak.clipped and args.format != "float" else ""
        print(f"{path}: level {level} -> {target}{clipped}")
    codes_path = args.out / f"{stem}_codes.pt"
    with atomic_write(codes_path) as f:
        torch.save(
            {
                "zs": result.codes,
                "sr": cfg.sr,
                "hop_lengths": list(cfg.hop_lengths),
                "n_samples": result.n_samples,
                "checkpoint": str(args.checkpoint),
                "source": str(path),
            },
            f,
        )
    print(f"{path}: codes of levels {levels} -> {codes_path}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model = load_vqvae(args.checkpoint, device=_device(args.device))
    except (FileNotFoundError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg = model.config
    levels = args.levels if args.levels is not None else list(range(cfg.levels))
    if not levels or levels[0] < 0 or levels[-1] >= cfg.levels:
        print(f"error: levels must lie in 0..{cfg.levels - 1}, got {levels}", file=sys.stderr)
        return 2
    top_hop = cfg.hop_lengths[-1]
    chunk = max(top_hop, int(args.chunk_seconds * cfg.sr) // top_hop * top_hop)
    failures = 0
    for path, stem in zip(args.inputs, _output_stems(args.inputs)):
        try:
            _process(model, path, stem, levels, args, chunk)
        except (AudioFileError, OSError, torch.cuda.OutOfMemoryError) as e:  # report, then go on with the rest
            print(f"error: {path}: {e}" if str(path) not in str(e) else f"error: {e}", file=sys.stderr)
            failures += 1
    return 2 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
