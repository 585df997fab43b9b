"""`make demo`: the most complete job this build can run, on material that ships with the checkout.

Until the bridge and an embedded trained model land, the demo puts a synthetic musical clip
through a VQ-VAE at every level and writes what each level keeps to ./demo_out/, so a newcomer can
hear the first stage of Jukebox. The VQ-VAE is the tiny reference checkpoint found in
$JUKEBOX_REFERENCE_DIR (any `*_hparams.json` whose base set is 'vqvae').
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import torch

from ..audio import round_to_hop, write_wav
from ..checkpoints import load_vqvae
from ..hparams import vqvae_config_from_hparams
from ..vqvae import losses
from .reconstruct import reconstruct

DEFAULT_REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared/fixtures/jukebox_reference"


def find_vqvae_checkpoint(folder: Path) -> tuple[Path, dict] | None:
    """The first VQ-VAE checkpoint of a reference fixture folder, with its hparams."""
    for hparams_file in sorted(folder.glob("*_hparams.json")):
        try:
            data = json.loads(hparams_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # not a fixture description
        name = hparams_file.name.removesuffix("_hparams.json")
        checkpoint = folder / f"checkpoint_{name}.pth.tar"
        if isinstance(data, dict) and data.get("base_hparams_set") == "vqvae" and checkpoint.is_file():
            return checkpoint, data["hparams"]
    return None


def synth_clip(seconds: float, sr: int) -> torch.Tensor:
    """A I–V–vi–IV progression of plucked triads: enough musical structure to hear each level's detail."""
    t = torch.arange(int(seconds * sr)) / sr
    roots = [261.63, 392.00, 440.00, 349.23]  # C, G, A, F
    chord_len = seconds / len(roots)
    out = torch.zeros_like(t)
    for i, root in enumerate(roots):
        local = t - i * chord_len
        active = (local >= 0) & (local < chord_len)
        envelope = torch.exp(-3.0 * local.clamp(min=0)) * active
        third = 1.2 if i == 2 else 1.25  # minor third on vi
        for ratio in (1.0, third, 1.5):
            out += 0.18 * envelope * torch.sin(2 * math.pi * root * ratio * local)
    return out.clamp(-1, 1)


def main() -> int:
    folder = Path(os.environ.get("JUKEBOX_REFERENCE_DIR", DEFAULT_REFERENCE_DIR))
    found = find_vqvae_checkpoint(folder)
    if found is None:
        print(
            f"demo: no VQ-VAE checkpoint in {folder}; set JUKEBOX_REFERENCE_DIR to the reference fixture folder",
            file=sys.stderr,
        )
        return 2
    checkpoint, hparams = found
    model = load_vqvae(checkpoint, config=vqvae_config_from_hparams(hparams))
    sr = model.config.sr
    clip = synth_clip(4.0, sr)
    out = Path("demo_out")
    write_wav(out / "input.wav", clip, sr=sr)
    chunk = round_to_hop(10 * sr, model.hop_lengths[-1])
    result = reconstruct(model, clip, range(model.config.levels), chunk_samples=chunk)
    print(f"VQ-VAE {checkpoint.name}: hops {model.config.hop_lengths}, {model.config.l_bins} codes per level")
    for level, audio in result.audio.items():
        path = write_wav(out / f"level{level}.wav", audio, sr=sr)
        sc = float(losses.spectral_convergence(clip[None, :, None], audio[None, :, None]).mean())
        tokens = result.codes[level].shape[0]
        print(f"  level {level}: {tokens:6d} tokens -> {path}  (spectral convergence {sc:.3f}; 0 is perfect)")
    print(f"input: {out / 'input.wav'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
