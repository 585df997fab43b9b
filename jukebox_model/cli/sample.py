"""`jukebox-sample`: the reference's sample.py modes from the command line.

    jukebox-sample --models ~/jukebox --bundle 1b_lyrics --ids ids/ --mode ancestral \\
        --sample-length 20 --total-length 180 --n-samples 3 --artist "Alan Jackson" --genre Country --out run/
    jukebox-sample ... --mode primed --audio-file intro.wav --prompt-length 8
    jukebox-sample ... --mode continue --codes-file run/codes.pt --sample-length 40
    jukebox-sample ... --mode upsample --codes-file run/codes.pt

Each level's audio is written as soon as that level is done (level_2 first: a rough preview), and
the codes when the run ends. Ctrl-C stops at the next token and still writes the codes sampled
so far: continue from `codes.pt`. A client of the engine's job API (`jukebox_model.api`), like the
DAW bridge: a prime is cut the same way, keeping the last --prompt-length seconds of the clip
(the new material continues from where the clip stops). --sample-length is the whole take, the
prompt or the earlier take included.

Without --models or --vqvae, the embedded default bundle (jukebox_model/default_bundle/, a small
model trained on freely licensed game music) is used; --bundle-dir loads another bundle folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import signal
import sys
import threading
from pathlib import Path

from ..api import BundleSource, CheckpointSource, Mode, OfficialSource, Progress, SamplingParams, TakeRequest
from ..audio import AudioFileError, write_wav
from ..bundle_dir import BundleError
from ..checkpoints import CheckpointError
from ..engine import Engine, load_engine
from ..labels import LabelError
from ..sampling.precision import DTYPES
from ..sampling.schedule import seconds_to_samples

DEFAULTS = SamplingParams()


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
    src.add_argument(
        "--bundle-dir", type=Path, help="a bundle folder with bundle.json (default: the embedded default bundle)"
    )
    p.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.ANCESTRAL.value)
    p.add_argument("--levels", type=int, default=None, help="how many levels to sample, top down (default: all)")
    p.add_argument("--sample-length", type=float, required=True, help="seconds of audio in the take (prompt included)")
    p.add_argument("--total-length", type=float, required=True, help="length of the whole song, in seconds (a label)")
    p.add_argument("--offset", type=float, default=0.0, help="where the sampled span starts in the song, seconds")
    p.add_argument("--n-samples", type=int, default=1)
    p.add_argument("--artist", default="unknown")
    p.add_argument("--genre", default="unknown")
    p.add_argument("--lyrics", default="", help="lyrics text, or @file.txt")
    p.add_argument("--audio-file", default="", help="the prompt clip (primed mode)")
    p.add_argument(
        "--prompt-length",
        type=float,
        default=None,
        help="seconds of the prompt to keep, from its end (primed), or of the codes file, from its start",
    )
    p.add_argument("--codes-file", type=Path, help="codes from an earlier run (continue, upsample)")
    p.add_argument("--temperature", type=_floats, default=DEFAULTS.temperature, help="per level 0,1,2 (or one value)")
    p.add_argument("--top-k", type=int, default=DEFAULTS.top_k)
    p.add_argument("--top-p", type=float, default=DEFAULTS.top_p)
    p.add_argument("--hop-fraction", type=_floats, default=DEFAULTS.hop_fraction, help="per level 0,1,2")
    p.add_argument("--chunk-size", type=int, default=DEFAULTS.chunk_size, help="most positions per prefill pass")
    p.add_argument("--max-batch-size", type=int, default=DEFAULTS.max_batch_size)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... or auto")
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", *DTYPES),
        help="priors' weights and activations, cast once at load (auto: bfloat16 on a GPU, float32 on a CPU)",
    )
    p.add_argument(
        "--compile", action="store_true", help="fuse the token step with torch.compile (compiles once per level)"
    )
    p.add_argument("--out", type=Path, required=True)
    return p


def _source(args: argparse.Namespace) -> BundleSource | OfficialSource | CheckpointSource | None:
    if args.models is not None:
        return OfficialSource(args.models, args.bundle, args.ids)
    if args.vqvae is None and not args.prior:
        if args.bundle_dir is None:
            print("no --models or --vqvae given: using the embedded default bundle", flush=True)
            return None
        return BundleSource(args.bundle_dir)
    if args.vqvae is None or not args.prior:
        raise ValueError("give --models (official layout) or --vqvae with one --prior per level")
    return CheckpointSource(args.vqvae, tuple(args.prior), args.ids)


def _request(args: argparse.Namespace, engine: Engine, params: SamplingParams, lyrics: str) -> TakeRequest:
    """The take as the engine's request: --sample-length is the whole take, so what is new is what the
    prompt (or the earlier take) does not already cover."""
    info = engine.info()
    sr, top = info.sr, info.top_hop
    mode = Mode(args.mode)
    total = seconds_to_samples(args.sample_length, top_hop=top, sr=sr)
    keep = 0 if args.prompt_length is None else seconds_to_samples(args.prompt_length, top_hop=top, sr=sr)
    existing = 0
    if mode is Mode.PRIMED:
        if not args.audio_file or args.prompt_length is None:
            raise ValueError("primed mode needs --audio-file and --prompt-length")
        if "," in args.audio_file:
            raise ValueError("give one --audio-file (run once per prompt clip)")
        existing = keep
    elif mode.extends_codes:
        if args.codes_file is None:
            raise ValueError(f"{mode.value} mode needs --codes-file")
        existing = engine.codes_lengths(engine.load_codes(args.codes_file))[-1] * top
        existing = min(existing, keep) if keep else existing
    return TakeRequest(
        mode=mode,
        artist=args.artist,
        genre=args.genre,
        lyrics=lyrics,
        new_samples=max(0, total - existing) if mode is Mode.UPSAMPLE else max(1, total - existing),
        total_samples=int(args.total_length * sr),
        offset_samples=int(args.offset * sr),
        n_takes=args.n_samples,
        params=params,
        prime_path=args.audio_file or None,
        prime_samples=keep,
        codes_path=str(args.codes_file) if args.codes_file else None,
    )


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
        if params.seed is None:  # drawn here so the codes file and the output name it
            params = dataclasses.replace(params, seed=secrets.randbelow(2**31 - 1))
        engine = load_engine(_source(args), device=args.device, precision=args.precision, compile_steps=args.compile)
        request = _request(args, engine, params, lyrics)
        engine.check(request)
        start = engine.start(request)
        levels = start.levels_to_sample
        if request.mode is not Mode.UPSAMPLE and args.levels is not None:
            levels = levels[: max(1, args.levels)]
        sr = engine.info().sr

        def progress(p: Progress) -> None:
            if p.tokens_done % 256 == 0 or p.tokens_done == p.tokens_total:
                eta = f", ~{p.eta_s:.0f} s left" if p.eta_s is not None else ""
                print(
                    f"level {p.level} window {p.window}/{p.n_windows}: {p.tokens_done}/{p.tokens_total} tokens{eta}",
                    flush=True,
                )

        codes, cancelled = start.codes, False
        for level in levels:
            result = engine.sample_level(request, codes, level, start.end_samples, on_progress=progress, cancel=cancel)
            codes, cancelled = result.codes, result.cancelled
            if cancelled:
                break
            audio = engine.decode(codes, level)
            for i in range(audio.shape[0]):
                write_wav(args.out / f"level_{level}" / f"item_{i}.wav", audio[i], sr=sr)
            print(f"level {level}: wrote {audio.shape[0]} take(s) to {args.out / f'level_{level}'}", flush=True)
        meta = {
            "mode": request.mode.value,
            "artist": args.artist,
            "genre": args.genre,
            "lyrics": lyrics,
            "sample_length": start.end_samples,
            "seed": request.seed,
        }
        path = engine.save_codes(
            args.out / "codes.pt",
            codes,
            request,
            cancelled=cancelled,
            take_end_samples=start.take_end_samples,
            meta=meta,
        )
        print(f"{'cancelled: ' if cancelled else ''}codes in {path} (seed {request.seed})")
        return 130 if cancelled else 0
    except (ValueError, FileNotFoundError, CheckpointError, AudioFileError, LabelError, BundleError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
