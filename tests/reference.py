"""Locate and discover the reference fixtures by the naming scheme of their README.

A fixture folder holds, per tiny model `<name>`: `checkpoint_<name>.pth.tar`, `<name>_hparams.json`
(with `base_hparams_set` naming the official set it shrinks) and `<name>_io.pt`. Tests never
hard-code names, values or hparams: everything is read from the folder given by
JUKEBOX_REFERENCE_DIR (default ../shared/fixtures/jukebox_reference).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    return Path(
        os.environ.get("JUKEBOX_REFERENCE_DIR", REPO_ROOT.parent / "shared/fixtures/jukebox_reference")
    ).resolve()


@dataclass(frozen=True)
class TinyFixture:
    name: str
    base_set: str  # official hparams set it shrinks, e.g. 'vqvae', 'prior_5b_lyrics'
    checkpoint: Path
    hparams_file: Path
    io_file: Path

    def hparams(self) -> dict[str, Any]:
        return json.loads(self.hparams_file.read_text())

    def io(self) -> dict[str, Any]:
        import torch

        return torch.load(self.io_file, map_location="cpu", weights_only=True)


def discover(kind: str) -> list[TinyFixture]:
    """Tiny fixtures whose base set is 'vqvae' (kind='vqvae') or any prior set (kind='prior')."""
    root = reference_dir()
    found = []
    for hp in sorted(root.glob("*_hparams.json")):
        name = hp.name[: -len("_hparams.json")]
        base = json.loads(hp.read_text()).get("base_hparams_set", "")
        is_vqvae = base == "vqvae"
        if (kind == "vqvae") != is_vqvae:
            continue
        found.append(
            TinyFixture(
                name=name,
                base_set=base,
                checkpoint=root / f"checkpoint_{name}.pth.tar",
                hparams_file=hp,
                io_file=root / f"{name}_io.pt",
            )
        )
    return found


def fixture_params(kind: str) -> list[Any]:
    """pytest parameters over the discovered fixtures; one skipped parameter if there are none."""
    found = discover(kind)
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no {kind} fixtures in {reference_dir()}"))]
    return [pytest.param(f, id=f.name) for f in found]


def manifest() -> dict[str, Any]:
    path = reference_dir() / "official_manifest.json"
    if not path.exists():
        pytest.skip(f"no official_manifest.json in {reference_dir()}")
    return json.loads(path.read_text())
