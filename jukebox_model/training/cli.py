"""`jukebox-train`: train Jukebox models on your own audio.

jukebox-train vqvae --audio-dir my_audio/ --out runs/vqvae
jukebox-train prior --audio-dir my_audio/ --vqvae runs/vqvae/checkpoint_latest.pth.tar --config prior_1b_lyrics --out runs/top
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
from ..checkpoints import CheckpointError, read_checkpoint, vqvae_config_from_checkpoint
from ..hparams import (
    prior_config_from_hparams,
    prior_config_to_hparams,
    vqvae_config_from_hparams,
    vqvae_config_to_hparams,
)
from .loop import PRECISIONS, OptimSettings
from .prior_trainer import PriorTrainSettings, train_prior
from .run_state import LATEST
from .vqvae_trainer import DEFAULT_SAMPLE_LENGTH, VQVAETrainSettings, train_vqvae


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
        raise UsageError(
            f"config file {path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {e}"
        ) from None
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


def prior_config(spec: str, *, vqvae_levels: int):
    """An official prior name, or a JSON/TOML file: {"base": "<official prior>", <hparam overrides>...}."""
    if spec in official.PRIORS:
        return official.PRIORS[spec]
    overrides = dict(_load_overrides(Path(spec)))
    base_name = overrides.pop("base", None)
    if base_name not in official.PRIORS:
        raise UsageError(
            f"config file {spec}: 'base' must name an official prior ({', '.join(official.PRIORS)}), got {base_name!r}"
        )
    base = prior_config_to_hparams(official.PRIORS[base_name])
    known = set(base) | {k for k in _PRIOR_OPTIONAL_KEYS}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"config file {spec}: unknown prior hparams {unknown}")
    base.update(overrides)
    try:
        return prior_config_from_hparams(base, vqvae_levels=vqvae_levels)
    except (ValueError, TypeError, KeyError) as e:
        raise UsageError(f"config file {spec}: {e}") from None


# keys a prior set may lack in its base (e.g. lyrics-encoder keys when switching lyrics on)
_PRIOR_OPTIONAL_KEYS = (
    "prime_width",
    "prime_depth",
    "prime_heads",
    "prime_attn_order",
    "prime_blocks",
    "prime_spread",
    "prime_m_attn",
    "prime_m_mlp",
    "prime_init_scale",
    "prime_zero_out",
    "prime_res_scale",
    "prime_pos_init",
)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audio-dir", type=Path, required=True, help="folder of audio files (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and metrics.jsonl")
    p.add_argument("--batch-size", type=int, default=4, help="per process")
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--lr", type=float, default=OptimSettings.lr)
    p.add_argument("--lr-warmup", type=int, default=OptimSettings.lr_warmup)
    p.add_argument(
        "--lr-decay-start", type=int, default=OptimSettings.lr_decay_start, help="step where a linear decay to 0 begins"
    )
    p.add_argument(
        "--lr-decay",
        type=int,
        default=OptimSettings.lr_decay,
        help="steps the decay takes (0: no decay); applies on --resume too",
    )
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument(
        "--resume", type=Path, default=None, help=f"checkpoint to continue from (or 'latest' for OUT/{LATEST})"
    )
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
    vq.add_argument(
        "--config",
        default=None,
        help="official set name or a JSON/TOML file of hparam overrides (default: 'vqvae', or the --resume checkpoint's)",
    )
    vq.add_argument(
        "--sample-length",
        type=int,
        default=None,
        help=f"samples per training crop (default: {DEFAULT_SAMPLE_LENGTH}, or the --resume checkpoint's)",
    )
    vq.add_argument("--bandwidth-seconds", type=float, default=600.0, help="audio used for the loss normalisers")
    vq.add_argument("--no-ema", action="store_true", help="save raw weights instead of their moving average")
    vq.add_argument(
        "--init-from", type=Path, default=None, help="start a new run from a trained VQ-VAE's weights and codebooks"
    )
    vq.add_argument(
        "--decoders-only",
        action="store_true",
        help="train the decoders alone (frozen encoders and codebooks: priors on its codes stay valid)",
    )
    vq.add_argument(
        "--train-levels",
        type=int,
        nargs="+",
        default=None,
        help="train these levels alone (e.g. a top level added to a trained VQ-VAE given by --init-from)",
    )
    pr = sub.add_parser("prior", help="a top-level prior or an upsampler, on the codes of a trained VQ-VAE")
    _add_common(pr)
    pr.add_argument("--vqvae", type=Path, required=True, help="trained VQ-VAE checkpoint whose codes the prior models")
    pr.add_argument("--config", required=True, help="official prior name or a JSON/TOML file with 'base' and overrides")
    pr.add_argument("--ids", type=Path, default=None, help="artist/genre id tables (default: built from metadata.json)")
    pr.add_argument(
        "--init-from", type=Path, default=None, help="start from another prior's weights (decoder pretraining)"
    )
    pr.add_argument("--no-ema", action="store_true")
    pr.add_argument(
        "--align-bars",
        action="store_true",
        help="windows of songs with a bpm in metadata.json start on bar lines (the loop corpus writes them)",
    )
    pr.add_argument(
        "--tempo-words",
        action="store_true",
        help="add each song's tempo word (bpm70 ... bpm134) to its genre; its bundle then says tempo_words",
    )
    return parser


def _run_options(args: argparse.Namespace) -> tuple[dict, Path | None]:
    """Settings every trainer shares, from the common flags, and the checkpoint to resume from."""
    if not args.audio_dir.is_dir():
        raise UsageError(f"--audio-dir {args.audio_dir} is not a folder")
    resume = args.out / LATEST if args.resume == Path("latest") else args.resume
    if resume is not None and not resume.is_file():
        raise UsageError(f"--resume {resume}: no such checkpoint")
    common = dict(
        audio_dir=args.audio_dir,
        out_dir=args.out,
        batch_size=args.batch_size,
        steps=args.steps,
        optim=dataclasses.replace(
            OptimSettings(),
            lr=args.lr,
            lr_warmup=args.lr_warmup,
            lr_decay_start=args.lr_decay_start,
            lr_decay=args.lr_decay,
        ),
        precision=args.precision,
        ema=not args.no_ema,
        save_every=args.save_every,
        log_every=args.log_every,
        seed=args.seed,
        num_workers=args.num_workers,
        device=args.device,
        progress=not args.no_progress,
    )
    return common, resume


def _report(result) -> int:
    if result.checkpoint is not None:
        print(f"step {result.step}: wrote {result.checkpoint}")
    return 0


def _vqvae(args: argparse.Namespace) -> int:
    common, resume = _run_options(args)
    if args.init_from is not None and not args.init_from.is_file():
        raise UsageError(f"--init-from {args.init_from}: no such checkpoint")
    source = resume if resume is not None else args.init_from
    saved = (
        read_checkpoint(source) if source is not None and (args.config is None or args.sample_length is None) else None
    )
    if args.config is not None:
        config = vqvae_config(args.config)
    elif saved is not None:  # continue (or fine-tune) the model the checkpoint holds
        config = vqvae_config_from_checkpoint(saved)
    else:
        config = official.VQVAE
    sample_length = args.sample_length
    if sample_length is None:
        sample_length = int(((saved or {}).get("hps") or {}).get("sample_length", DEFAULT_SAMPLE_LENGTH))
    settings = VQVAETrainSettings(
        **common,
        sample_length=sample_length,
        bandwidth_seconds=args.bandwidth_seconds,
        decoders_only=args.decoders_only,
        train_levels=None if args.train_levels is None else tuple(args.train_levels),
    )
    return _report(train_vqvae(config, settings, resume=resume, init_from=args.init_from))


def _prior(args: argparse.Namespace) -> int:
    for flag, path in (("--vqvae", args.vqvae), ("--init-from", args.init_from)):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path}: no such checkpoint")
    levels = vqvae_config_from_checkpoint(read_checkpoint(args.vqvae)).levels
    config = prior_config(args.config, vqvae_levels=levels)
    common, resume = _run_options(args)
    settings = PriorTrainSettings(
        **common,
        vqvae_checkpoint=args.vqvae,
        ids_dir=args.ids,
        init_from=args.init_from,
        align_bars=args.align_bars,
        tempo_words=args.tempo_words,
    )
    return _report(train_prior(config, settings, resume=resume))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"vqvae": _vqvae, "prior": _prior}[args.model](args)
    except (UsageError, CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # e.g. an audio folder with no usable files
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
