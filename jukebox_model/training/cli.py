"""`jukebox-train`: train Jukebox models on your own audio.

    jukebox-train vqvae --audio-dir my_audio/ --out runs/vqvae
    torchrun --nproc_per_node 4 -m jukebox_model.training.cli vqvae --audio-dir my_audio/ --out runs/vqvae
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from .. import official
from ..checkpoints import CheckpointError
from ..hparams import vqvae_config_from_hparams, vqvae_config_to_hparams
from .loop import PRECISIONS, OptimSettings
from .vqvae_trainer import LATEST, VQVAETrainSettings, train_vqvae


class UsageError(ValueError):
    """Bad command-line input; reported as one line with exit code 2."""


def _load_overrides(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"config file {path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a table of hparams")
    return data.get("hparams", data)


def vqvae_config(spec: str):
    """An official set name ('vqvae') or a JSON/TOML file of hparams laid over the official set."""
    if spec in official.VQVAES:
        return official.VQVAES[spec]
    overrides = _load_overrides(Path(spec))
    base = vqvae_config_to_hparams(official.VQVAE)
    unknown = sorted(set(overrides) - set(base) - {"sample_length"})
    if unknown:
        raise UsageError(f"config file {spec}: unknown VQ-VAE hparams {unknown}")
    base.update({k: v for k, v in overrides.items() if k in base})
    try:
        return vqvae_config_from_hparams(base)
    except (ValueError, TypeError) as e:
        raise UsageError(f"config file {spec}: {e}") from None


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audio-dir", type=Path, required=True, help="folder of audio files (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and metrics.jsonl")
    p.add_argument("--batch-size", type=int, default=4, help="per process")
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--lr", type=float, default=OptimSettings.lr)
    p.add_argument("--lr-warmup", type=int, default=OptimSettings.lr_warmup)
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--resume", type=Path, default=None, help=f"checkpoint to continue from (or 'latest' for OUT/{LATEST})")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jukebox-train", description="Train Jukebox models on your own audio.")
    sub = parser.add_subparsers(dest="model", required=True)
    vq = sub.add_parser("vqvae", help="the hierarchical VQ-VAE")
    _add_common(vq)
    vq.add_argument("--config", default="vqvae", help="official set name or a JSON/TOML file of hparam overrides")
    vq.add_argument("--sample-length", type=int, default=262144, help="samples per training crop")
    vq.add_argument("--bandwidth-seconds", type=float, default=600.0, help="audio used for the loss normalisers")
    vq.add_argument("--no-ema", action="store_true", help="save raw weights instead of their moving average")
    return parser


def _vqvae(args: argparse.Namespace) -> int:
    config = vqvae_config(args.config)
    if not args.audio_dir.is_dir():
        raise UsageError(f"--audio-dir {args.audio_dir} is not a folder")
    resume = args.out / LATEST if args.resume == Path("latest") else args.resume
    if resume is not None and not resume.is_file():
        raise UsageError(f"--resume {resume}: no such checkpoint")
    settings = VQVAETrainSettings(
        audio_dir=args.audio_dir,
        out_dir=args.out,
        sample_length=args.sample_length,
        batch_size=args.batch_size,
        steps=args.steps,
        optim=dataclasses.replace(OptimSettings(), lr=args.lr, lr_warmup=args.lr_warmup),
        precision=args.precision,
        ema=not args.no_ema,
        save_every=args.save_every,
        log_every=args.log_every,
        bandwidth_seconds=args.bandwidth_seconds,
        seed=args.seed,
        num_workers=args.num_workers,
        device=args.device,
        progress=not args.no_progress,
    )
    result = train_vqvae(config, settings, resume=resume)
    if result.checkpoint is not None:
        print(f"step {result.step}: wrote {result.checkpoint}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"vqvae": _vqvae}[args.model](args)
    except (UsageError, CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # e.g. an audio folder with no usable files
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
