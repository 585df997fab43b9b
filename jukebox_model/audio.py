"""Audio in and out, in the model's conventions: mono float32 in [-1, 1] at 44.1 kHz (spec §2.1, §6).

Reading goes through soundfile (WAV, FLAC, OGG, MP3, AIFF, ...), a channel-mean downmix and
torchaudio's resampler. Writing is atomic: a hidden temp name that folder watchers ignore, fsync,
then rename, so a DAW never sees a half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor

from .atomic import atomic_write
from .config import SAMPLE_RATE

SUBTYPES = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float": "FLOAT"}


class AudioFileError(ValueError):
    """An audio file that cannot be used; the message names the file and the reason."""


def read_audio(
    path: str | os.PathLike[str], *, sr: int = SAMPLE_RATE, offset_s: float = 0.0, duration_s: float | None = None
) -> Tensor:
    """(T,) float32 mono at `sr`: channel mean, no gain or normalisation (as the reference loads prompts)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioFileError(f"{path}: not a readable audio file ({e})") from e
    if info.frames == 0:
        raise AudioFileError(f"{path}: contains no audio frames")
    start = int(round(offset_s * info.samplerate))
    if start >= info.frames:
        raise AudioFileError(f"{path}: offset {offset_s:.3f} s is beyond its length {info.frames / info.samplerate:.3f} s")
    frames = -1 if duration_s is None else int(round(duration_s * info.samplerate))
    try:
        data, file_sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioFileError(f"{path}: decoding failed, the file may be truncated ({e})") from e
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: decoded to no audio frames (truncated?)")
    audio = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    return resample(audio, file_sr, sr)


def resample(audio: Tensor, source_sr: int, target_sr: int) -> Tensor:
    """Band-limited resampling along the last axis; identity when the rates agree."""
    if source_sr == target_sr:
        return audio
    return AF.resample(audio, source_sr, target_sr)


def write_wav(
    path: str | os.PathLike[str],
    audio: Tensor | np.ndarray,
    *,
    sr: int = SAMPLE_RATE,
    source_sr: int | None = None,
    subtype: str = "pcm24",
    clip: bool = True,
) -> Path:
    """Write mono (T,) or multichannel (T, C) audio atomically as WAV.

    `source_sr` resamples from the model's rate to `sr` (e.g. a 48 kHz project). `subtype` is
    'pcm16', 'pcm24' or 'float'; integer formats are always clipped to [-1, 1].
    """
    if subtype not in SUBTYPES:
        raise ValueError(f"subtype must be one of {sorted(SUBTYPES)}, got {subtype!r}")
    samples = torch.as_tensor(audio).detach().float().cpu()
    if samples.dim() not in (1, 2):
        raise ValueError(f"audio must be (T,) or (T, C), got shape {tuple(samples.shape)}")
    if source_sr is not None and source_sr != sr:
        samples = resample(samples.T, source_sr, sr).T if samples.dim() == 2 else resample(samples, source_sr, sr)
    if not torch.isfinite(samples).all():
        raise ValueError("audio contains NaN or infinite samples")
    if clip or subtype != "float":
        samples = samples.clamp(-1.0, 1.0)
    with atomic_write(path) as f:
        sf.write(f, samples.numpy(), sr, subtype=SUBTYPES[subtype], format="WAV")
    return Path(path)


def round_to_hop(n_samples: int, hop: int = 128) -> int:
    """Round a length down to a whole number of top-level tokens, as the reference does."""
    return (n_samples // hop) * hop


def to_model_input(audio: Tensor) -> Tensor:
    """(T,) or (N, T) mono audio -> the VQ-VAE's (N, T, 1)."""
    if audio.dim() == 1:
        audio = audio[None]
    if audio.dim() != 2:
        raise ValueError(f"expected (T,) or (N, T) mono audio, got shape {tuple(audio.shape)}")
    return audio[..., None].float()
