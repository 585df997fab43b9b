"""A model bundle as one folder: `bundle.json` naming a VQ-VAE, its priors and the id tables.

This is how a bundle trained here travels (the embedded default model, or a user's own): the
bridge and the CLI load a folder instead of a list of paths. The manifest holds only relative
paths and descriptive fields; the configs come from the checkpoints' own hparams.

    {"name": "my-band", "vqvae": "vqvae.pth.tar",
     "priors": ["prior_level_2.pth.tar", "prior_level_1.pth.tar", "prior_level_0.pth.tar"],
     "ids": "ids", "description": "..."}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write
from .bundle import load_checkpoint_bundle
from .checkpoints import CheckpointError, read_checkpoint
from .sampling.sampler import Sampler

MANIFEST = "bundle.json"
DEFAULT_BUNDLE_DIR = Path(__file__).resolve().parent / "default_bundle"


class BundleError(ValueError):
    """A bundle folder that cannot be used; the message names the folder and what is wrong."""


@dataclass(frozen=True)
class BundleManifest:
    folder: Path
    name: str
    vqvae: Path
    priors: tuple[Path, ...]
    ids: Path | None
    description: str
    tempo_words: bool = False  # the top prior was trained with tempo words on bar-aligned windows

    def describe(self) -> dict[str, Any]:
        """What a take's sidecar records of the model that made it."""
        return {
            "bundle": self.name,
            "folder": str(self.folder),
            "vqvae": self.vqvae.name,
            "priors": [p.name for p in self.priors],
        }


def read_manifest(folder: str | Path) -> BundleManifest:
    folder = Path(folder).expanduser().resolve()
    path = folder / MANIFEST
    if not path.is_file():
        raise BundleError(f"{folder}: not a bundle folder (no {MANIFEST})")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("vqvae"), str) or not isinstance(data.get("priors"), list):
        raise BundleError(f"{path}: needs 'vqvae' (a file name) and 'priors' (a list of file names)")

    def inside(name: Any, what: str) -> Path:
        if not isinstance(name, str) or not name:
            raise BundleError(f"{path}: {what} must be a relative file name, got {name!r}")
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:  # symlinks inside the folder are fine
            raise BundleError(f"{path}: {what} {name!r} must name a file inside the bundle folder")
        return folder / relative

    vqvae = inside(data["vqvae"], "vqvae")
    priors = tuple(inside(p, "prior") for p in data["priors"])
    ids = inside(data["ids"], "ids") if data.get("ids") else None
    missing = [str(p) for p in (vqvae, *priors) if not p.is_file()] + ([str(ids)] if ids and not ids.is_dir() else [])
    if missing:
        raise BundleError(f"{path}: missing files: {', '.join(missing)}")
    if not priors:
        raise BundleError(f"{path}: a bundle needs at least one prior")
    return BundleManifest(
        folder=folder,
        name=str(data.get("name") or folder.name),
        vqvae=vqvae,
        priors=priors,
        ids=ids,
        description=str(data.get("description", "")),
        tempo_words=data.get("tempo_words", False) is True,
    )


def load_bundle_dir(
    folder: str | Path, *, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> tuple[Sampler, BundleManifest]:
    """The ready sampler of a bundle folder, with its manifest (for sidecars and status replies);
    `dtype`: the priors' inference precision, applied as each tensor loads."""
    manifest = read_manifest(folder)
    try:
        sampler = load_checkpoint_bundle(
            manifest.vqvae, list(manifest.priors), ids_dir=manifest.ids, device=device, dtype=dtype
        )
    except CheckpointError as e:
        raise BundleError(f"{manifest.folder}: {e}") from None
    if manifest.tempo_words:
        sampler.levels[max(sampler.levels)].bar_tempo = True
    return sampler, manifest


def export_checkpoint(source: str | Path, target: str | Path) -> Path:
    """Copy a training checkpoint without its optimiser and run state: only `model` and `hps`
    (the EMA weights, in the reference format), so shipped files stay small and load anywhere."""
    checkpoint = read_checkpoint(source)
    if "model" not in checkpoint:
        raise CheckpointError(f"{source}: no 'model' entry to export")
    slim = {"model": checkpoint["model"], "hps": dict(checkpoint.get("hps") or {})}
    if "step" in checkpoint:
        slim["step"] = int(checkpoint["step"])
    with atomic_write(target) as f:
        torch.save(slim, f)
    return Path(target)


def write_manifest(
    folder: str | Path,
    *,
    name: str,
    vqvae: str,
    priors: list[str],
    ids: str | None,
    description: str = "",
    tempo_words: bool = False,
) -> Path:
    folder = Path(folder)
    data = {"name": name, "vqvae": vqvae, "priors": priors, "ids": ids, "description": description}
    if tempo_words:
        data["tempo_words"] = True
    with atomic_write(folder / MANIFEST) as f:
        f.write((json.dumps(data, indent=2) + "\n").encode())
    return folder / MANIFEST
