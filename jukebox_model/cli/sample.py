"""`jukebox-sample`: the reference's sample.py modes from the command line.

    jukebox-sample --models ~/jukebox --bundle 1b_lyrics --ids ids/ --mode ancestral \\
        --sample-length 20 --total-length 180 --n-samples 3 --artist "Alan Jackson" --genre Country --out run/
    jukebox-sample ... --mode primed --audio-file intro.wav --prompt-length 8
    jukebox-sample ... --mode continue --codes-file run/codes.pt --sample-length 40
    jukebox-sample ... --mode upsample --codes-file run/codes.pt

Each level's audio is written as soon as that level is done (level_2 first: a rough preview), and
the codes when the run ends. Ctrl-C stops at the next token and still writes the codes sampled
so far: continue from `codes.pt`.

Without --models or --vqvae, the embedded default bundle (jukebox_model/default_bundle/, a small
model trained on freely licensed game music) is used; --bundle-dir loads another bundle folder.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import torch

from ..audio import AudioFileError, read_audio, write_wav
from ..bundle import load_checkpoint_bundle, load_official_bundle
from ..bundle_dir import DEFAULT_BUNDLE_DIR, BundleError, load_bundle_dir
from ..checkpoints import CheckpointError
from ..labels import LabelError
from ..sampling.params import SamplingParams
from ..sampling.precision import DTYPES, default_dtype, parse_dtype
from ..sampling.sampler import Progress, Sampler, SampleResult, load_codes, save_codes
from ..sampling.schedule import seconds_to_samples

MODES = ("ancestral", "primed", "continue", "upsample")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jukebox-sample", description=__doc__.splitlines()[0])
    src = p.add_argument_group("models (official folder + bundle, or our own checkpoints)")
    src.add_argument("--models", type=Path, help="folder laid out like the download paths (jukebox/models/...)")
    src.add_argument("--bundle", default="1b_lyrics", help="5b, 5b_lyrics or 1b_lyrics (with --models)")
    src.add_argument("--vqvae", type=Path, help="VQ-VAE checkpoint (instead of --models)")
    src.add_argument("--prior", type=Path, action="append", default=[], help="prior checkpoint; repeat per level")
    src.add_argument("--ids", type=Path, help="folder with the artist/genre id tables")
    src.add_argument("--bundle-dir", type=Path, help="a bundle folder with bundle.json (default: the embedded default bundle)")
    p.add_argument("--mode", choices=MODES, default="ancestral")
    p.add_argument("--levels", type=int, default=None, help="how many levels to sample, top down (default: all)")
    p.add_argument("--sample-length", type=float, required=True, help="seconds of audio to produce")
    p.add_argument("--total-length", type=float, required=True, help="length of the whole song, in seconds (a label)")
    p.add_argument("--offset", type=float, default=0.0, help="where the sampled span starts in the song, seconds")
    p.add_argument("--n-samples", type=int, default=1)
    p.add_argument("--artist", default="unknown")
    p.add_argument("--genre", default="unknown")
    p.add_argument("--lyrics", default="", help="lyrics text, or @file.txt")
    p.add_argument("--audio-file", default="", help="comma-separated prompt files (primed mode)")
    p.add_argument("--prompt-length", type=float, default=None, help="seconds of each prompt (or of the codes file) to keep")
    p.add_argument("--codes-file", type=Path, help="codes from an earlier run (continue, upsample)")
    p.add_argument("--temperature", type=_floats, default=(0.99, 0.99, 0.99), help="per level 0,1,2 (or one value)")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=0.0)
    p.add_argument("--hop-fraction", type=_floats, default=(0.5, 0.5, 0.125), help="per level 0,1,2")
    p.add_argument("--chunk-size", type=int, default=SamplingParams().chunk_size, help="most positions per prefill pass")
    p.add_argument("--max-batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="auto", choices=("auto", *DTYPES),
                   help="priors' weights and activations, cast once at load (auto: bfloat16 on a GPU, float32 on a CPU)")
    p.add_argument("--compile", action="store_true", help="fuse the token step with torch.compile (compiles once per level)")
    p.add_argument("--out", type=Path, required=True)
    return p


def _load(args: argparse.Namespace) -> Sampler:
    sampler = _load_models(args)
    sampler.set_precision(default_dtype(args.device) if args.precision == "auto" else parse_dtype(args.precision))
    sampler.compile_steps = args.compile
    return sampler


def _load_models(args: argparse.Namespace) -> Sampler:
    if args.models is not None:
        return load_official_bundle(args.models, args.bundle, ids_dir=args.ids, device=args.device)
    if args.vqvae is None and not args.prior:
        folder = args.bundle_dir or DEFAULT_BUNDLE_DIR
        if args.bundle_dir is None:
            print(f"no --models or --vqvae given: using the embedded default bundle ({folder})", flush=True)
        return load_bundle_dir(folder, device=args.device)[0]
    if args.vqvae is None or not args.prior:
        raise ValueError("give --models (official layout) or --vqvae with one --prior per level")
    return load_checkpoint_bundle(args.vqvae, args.prior, ids_dir=args.ids, device=args.device)


def _start_codes(args: argparse.Namespace, sampler: Sampler, n_samples: int) -> list[torch.Tensor]:
    levels = sampler.vqvae.config.levels
    device = next(sampler.vqvae.parameters()).device
    empty = [torch.zeros(args.n_samples, 0, dtype=torch.long, device=device) for _ in range(levels)]
    top = sampler.vqvae.hop_lengths[-1]
    keep = None if args.prompt_length is None else seconds_to_samples(args.prompt_length, top_hop=top)
    if args.mode == "ancestral":
        return empty
    if args.mode == "primed":
        files = [f for f in args.audio_file.split(",") if f]
        if not files or keep is None:
            raise ValueError("primed mode needs --audio-file and --prompt-length")
        clips = [read_audio(files[i % len(files)])[:keep] for i in range(args.n_samples)]
        short = [files[i % len(files)] for i, c in enumerate(clips) if c.shape[0] < keep]
        if short:
            raise ValueError(f"prompt files shorter than {args.prompt_length} s: {', '.join(sorted(set(short)))}")
        with torch.no_grad():
            return sampler.vqvae.encode(torch.stack(clips).to(device)[..., None])
    if args.codes_file is None:
        raise ValueError(f"{args.mode} mode needs --codes-file")
    zs = [z.to(device) for z in load_codes(args.codes_file)["zs"]]
    if any(z.shape[0] != args.n_samples for z in zs):
        raise ValueError(f"{args.codes_file} holds {zs[0].shape[0]} samples, not --n-samples {args.n_samples}")
    if keep is not None:
        zs = [z[:, : keep // sampler.vqvae.hop_lengths[lv]] for lv, z in enumerate(zs)]
    if args.mode == "upsample":
        zs = [z if lv == levels - 1 else z[:, :0] for lv, z in enumerate(zs)]
    return zs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    lyrics = Path(args.lyrics[1:]).read_text() if args.lyrics.startswith("@") else args.lyrics
    temperature = args.temperature * 3 if len(args.temperature) == 1 else args.temperature
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        params = SamplingParams(
            temperature=temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            hop_fraction=args.hop_fraction,
            chunk_size=args.chunk_size,
            max_batch_size=args.max_batch_size,
            seed=args.seed,
        )
        sampler = _load(args)
        sr = sampler.vqvae.config.sr
        n_samples = seconds_to_samples(args.sample_length, top_hop=sampler.vqvae.hop_lengths[-1], sr=sr)
        zs = _start_codes(args, sampler, n_samples)
        top = sampler.vqvae.config.levels - 1
        n_levels = top + 1 if args.levels is None else min(args.levels, top + 1)
        levels = list(range(top, top - n_levels, -1)) if args.mode != "upsample" else list(range(top - 1, -1, -1))
        songs = [(args.artist, args.genre, lyrics)] * args.n_samples
        meta = {"mode": args.mode, "artist": args.artist, "genre": args.genre, "lyrics": lyrics, "sample_length": n_samples}

        def level_done(level: int, codes: torch.Tensor) -> None:
            audio = sampler.vqvae.decode([codes], start_level=level)
            for i in range(audio.shape[0]):
                write_wav(args.out / f"level_{level}" / f"item_{i}.wav", audio[i, :, 0], sr=sr)
            print(f"level {level}: wrote {audio.shape[0]} take(s) to {args.out / f'level_{level}'}", flush=True)

        def progress(p: Progress) -> None:
            if p.tokens_done % 256 == 0 or p.tokens_done == p.tokens_total:
                eta = f", ~{p.eta_s:.0f} s left" if p.eta_s is not None else ""
                print(f"level {p.level} window {p.window}/{p.n_windows}: {p.tokens_done}/{p.tokens_total} tokens{eta}", flush=True)

        result: SampleResult = sampler.sample(
            zs,
            n_samples=n_samples,
            songs=songs,
            total_length=int(args.total_length * sr),
            offset=int(args.offset * sr),
            levels=levels,
            params=params,
            on_progress=progress,
            on_level_done=level_done,
            cancel=cancel,
        )
        path = save_codes(args.out / "codes.pt", result, params=params, meta={**meta, "seed": result.seed})
        print(f"{'cancelled: ' if result.cancelled else ''}codes in {path} (seed {result.seed})")
        return 130 if result.cancelled else 0
    except (ValueError, FileNotFoundError, CheckpointError, AudioFileError, LabelError, BundleError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
