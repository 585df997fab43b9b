"""Audio in and out, in the model's conventions: mono float32 in [-1, 1] at 44.1 kHz (spec §2.1, §6).

Reading goes through soundfile (WAV, FLAC, OGG, MP3, AIFF, ...), a channel-mean downmix and
torchaudio's resampler, like the reference's prompt loader (no gain, no normalisation, no clipping).
Files that would silently give less audio than they claim (truncated downloads, half-copied
takes) are refused with an error that names the file. Writing is atomic: a hidden temp name that
folder watchers ignore, fsync, then rename, so a DAW never sees a half-written file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor

from .atomic import atomic_write
from .config import SAMPLE_RATE

# CLI name -> libsndfile subtype. 24-bit suits DAW import; float keeps overs and needs no dither.
SUBTYPES = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float": "FLOAT"}

# Decoders of compressed formats may report a frame count that is off by a few codec frames;
# a shortfall larger than this is a truncated file, not rounding.
_SHORTFALL_FRAMES = 4096
_SHORTFALL_FRACTION = 0.02
# WAV/AIFF headers: libsndfile reports "data : <declared> (should be <present>)" when bytes are missing.
_CHUNK_SIZE = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = {0, 0xFFFFFFFF}  # written by streaming encoders that never knew the length
# librosa's "kaiser_best" (the reference's prompt resampler, spec §6) in torchaudio's terms: flat to
# ~20 kHz at 44.1 kHz and >100 dB rejection of what would alias; torchaudio's default lets a 23 kHz
# tone in a 48 kHz file through at about -7 dB.
_KAISER_BEST = dict(
    lowpass_filter_width=64, rolloff=0.9475937167399596, resampling_method="sinc_interp_kaiser", beta=14.769656459379492
)


class AudioFileError(ValueError):
    """An audio file that cannot be used; the message names the file and the reason."""


# --- reading -----------------------------------------------------------------------------------


def _check_header_complete(path: Path, info: sf._SoundFileInfo) -> None:
    match = _CHUNK_SIZE.search(info.extra_info or "")
    if match is None:
        return
    declared, present = int(match.group(1)), int(match.group(2))
    if declared > present and declared not in _STREAMING_SIZES:
        raise AudioFileError(
            f"{path}: truncated, the header declares {declared} bytes of audio but only {present} are present"
        )


def _info(path: Path) -> sf._SoundFileInfo:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioFileError(f"{path}: not a readable audio file ({e})") from e
    if info.frames <= 0:
        raise AudioFileError(f"{path}: contains no audio frames (empty or truncated)")
    _check_header_complete(path, info)
    return info


def read_audio(
    path: str | os.PathLike[str], *, sr: int = SAMPLE_RATE, offset_s: float = 0.0, duration_s: float | None = None
) -> Tensor:
    """(T,) float32 mono at `sr`: channel mean, no gain or normalisation (as the reference loads prompts).

    `offset_s`/`duration_s` select a span in the file's own time; a span running past the end
    gives what is there.
    """
    path = Path(path)
    if offset_s < 0 or (duration_s is not None and duration_s <= 0):
        raise ValueError(f"{path}: offset_s must be >= 0 and duration_s > 0, got {offset_s} and {duration_s}")
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    info = _info(path)
    start = round(offset_s * info.samplerate)
    if start >= info.frames:
        length = info.frames / info.samplerate
        raise AudioFileError(f"{path}: offset {offset_s:.3f} s is beyond its length {length:.3f} s")
    frames = -1 if duration_s is None else round(duration_s * info.samplerate)
    try:
        data, file_sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioFileError(f"{path}: decoding failed, the file may be truncated or corrupt ({e})") from e
    expected = info.frames - start if frames < 0 else min(frames, info.frames - start)
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: decoded to no audio frames (truncated?)")
    if expected - data.shape[0] > max(_SHORTFALL_FRAMES, _SHORTFALL_FRACTION * expected):
        raise AudioFileError(
            f"{path}: truncated, decoded {data.shape[0]} of the {expected} frames its header announces"
        )
    audio = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    return resample(audio, file_sr, sr)


def resample(audio: Tensor, source_sr: int, target_sr: int) -> Tensor:
    """High-quality band-limited resampling along the last axis; identity when the rates agree."""
    if source_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {source_sr} -> {target_sr}")
    if source_sr == target_sr:
        return audio
    return AF.resample(audio, source_sr, target_sr, **_KAISER_BEST)


# --- writing -----------------------------------------------------------------------------------


def _soundfile_subtype(subtype: str) -> str:
    """Accept the CLI names ('pcm24') and libsndfile's own ('PCM_24')."""
    if subtype in SUBTYPES:
        return SUBTYPES[subtype]
    if subtype in SUBTYPES.values():
        return subtype
    raise ValueError(f"subtype must be one of {sorted(SUBTYPES)} (or {sorted(SUBTYPES.values())}), got {subtype!r}")


def write_wav(
    path: str | os.PathLike[str],
    audio: Tensor | np.ndarray,
    *,
    sr: int = SAMPLE_RATE,
    source_sr: int | None = None,
    subtype: str = "pcm24",
    clip: bool = True,
) -> Path:
    """Write mono (T,) or multichannel (T, C) audio atomically as WAV at `sr`.

    `source_sr` is the rate `audio` is at; when it differs from `sr` the audio is resampled (e.g.
    the model's 44.1 kHz to a 48 kHz project). `subtype` is 'pcm16', 'pcm24' or 'float'; integer
    formats are always clipped to [-1, 1], float keeps overs only with `clip=False`.
    """
    sf_subtype = _soundfile_subtype(subtype)
    samples = torch.as_tensor(audio).detach().float().cpu()
    if samples.dim() not in (1, 2):
        raise ValueError(f"audio must be (T,) or (T, C), got shape {tuple(samples.shape)}")
    if source_sr is not None and source_sr != sr:
        samples = resample(samples.T, source_sr, sr).T if samples.dim() == 2 else resample(samples, source_sr, sr)
    if not torch.isfinite(samples).all():
        raise ValueError(f"{path}: audio contains NaN or infinite samples")
    if clip or sf_subtype != "FLOAT":
        samples = samples.clamp(-1.0, 1.0)
    with atomic_write(path) as f:
        sf.write(f, samples.contiguous().numpy(), sr, subtype=sf_subtype, format="WAV")
    return Path(path)


@dataclass(frozen=True)
class PeakInfo:
    peak: float  # max |x|
    peak_dbfs: float  # 20·log10(peak); -inf for silence
    clipped: int  # samples with |x| > 1, which an integer WAV (or clip=True) flattens

    def describe(self) -> str:
        level = "silent" if self.peak == 0 else f"peak {self.peak_dbfs:+.1f} dBFS"
        return level + (f", {self.clipped} samples over full scale" if self.clipped else "")


def peak_info(audio: Tensor) -> PeakInfo:
    """How loud a decoded signal is and how much of it a fixed-point file would clip (decoders are unclipped)."""
    magnitude = torch.as_tensor(audio).detach().abs().float()
    peak = float(magnitude.max()) if magnitude.numel() else 0.0
    dbfs = 20 * math.log10(peak) if peak > 0 else -math.inf
    return PeakInfo(peak=peak, peak_dbfs=dbfs, clipped=int((magnitude > 1.0).sum()))


# --- model-side shapes ---------------------------------------------------------------------------


def round_to_hop(n_samples: int, hop: int = 128) -> int:
    """Round a length down to a whole number of top-level tokens, as the reference does."""
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop}")
    return (n_samples // hop) * hop


def to_model_input(audio: Tensor | Sequence[Tensor]) -> Tensor:
    """(T,), (N, T) or a list of N (T,) clips -> the VQ-VAE's float32 (N, T, 1).

    A list is stacked as the reference stacks prompts: all clips must have the same length.
    """
    if not isinstance(audio, Tensor):
        clips = list(audio)
        if not clips:
            raise ValueError("to_model_input needs at least one clip")
        lengths = [clip.shape[-1] for clip in clips]
        if any(clip.dim() != 1 for clip in clips) or len(set(lengths)) != 1:
            shapes = [tuple(clip.shape) for clip in clips]
            raise ValueError(f"clips must be mono (T,) tensors of one length to form a batch, got shapes {shapes}")
        audio = torch.stack(clips)
    if audio.dim() == 1:
        audio = audio[None]
    if audio.dim() != 2:
        raise ValueError(f"expected (T,) or (N, T) mono audio, got shape {tuple(audio.shape)}")
    return audio[..., None].float()
