"""Random fixed-length crops from a folder of the user's audio (spec §6, training-time loading).

Every file is indexed once (duration via soundfile's header). A crop index maps to a file in
proportion to its duration; the offset inside the file is drawn from a generator seeded by
(seed, epoch, index), so every rank and every resume sees the same crops for the same step.
"""

from __future__ import annotations

import bisect
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ..audio import AudioFileError, read_audio
from ..config import SAMPLE_RATE

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff"})


@dataclass(frozen=True)
class AudioEntry:
    path: Path
    seconds: float


def _usable_seconds(path: Path) -> float | None:
    """The file's duration, or None (with a warning naming it) when crops could not be read from it."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        warnings.warn(f"skipping {path}: not a readable audio file ({e})", stacklevel=3)
        return None
    if info.frames <= 0 or info.samplerate <= 0:
        warnings.warn(f"skipping {path}: no audio frames", stacklevel=3)
        return None
    try:  # a few frames through the crops' own reader, which refuses truncated or undecodable files
        read_audio(path, sr=info.samplerate, duration_s=min(0.01, info.frames / info.samplerate))
    except AudioFileError as e:
        warnings.warn(f"skipping {e}", stacklevel=3)  # the message starts with the path
        return None
    return info.frames / info.samplerate


def scan_audio_folder(
    root: str | Path, *, min_seconds: float = 0.0, max_seconds: float | None = None
) -> list[AudioEntry]:
    """All decodable audio files under `root` (recursive, sorted); unreadable ones are skipped with a warning."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"audio folder not found: {root}")
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        seconds = _usable_seconds(path)
        if seconds is not None and min_seconds <= seconds and (max_seconds is None or seconds < max_seconds):
            entries.append(AudioEntry(path, seconds))
    if not entries:
        raise ValueError(f"no usable audio files in {root} (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
    return entries


class AudioCrops(Dataset):
    """Mono crops of `sample_length` samples at `sr`, shaped (sample_length, 1); short files are zero-filled."""

    def __init__(self, entries: list[AudioEntry], *, sample_length: int, sr: int = SAMPLE_RATE, seed: int = 0):
        if sample_length <= 0:
            raise ValueError(f"sample_length must be positive, got {sample_length}")
        self.entries, self.sample_length, self.sr, self.seed = entries, sample_length, sr, seed
        self.epoch = 0
        self._ends = np.cumsum([e.seconds for e in entries])
        crop_seconds = sample_length / sr
        self._length = max(len(entries), int(self._ends[-1] // crop_seconds))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        position = (index + rng.random()) / self._length * self._ends[-1]
        entry = self.entries[min(bisect.bisect_right(self._ends, position), len(self.entries) - 1)]
        crop_seconds = self.sample_length / self.sr
        offset = rng.uniform(0.0, max(0.0, entry.seconds - crop_seconds))
        try:
            audio = read_audio(entry.path, sr=self.sr, offset_s=offset, duration_s=crop_seconds)
        except (AudioFileError, FileNotFoundError) as e:  # changed or vanished since the scan
            warnings.warn(f"using silence for an unreadable crop: {e}", stacklevel=2)
            audio = torch.zeros(0)
        audio = audio[: self.sample_length]
        audio = torch.nn.functional.pad(audio, (0, self.sample_length - audio.shape[0]))
        return audio[:, None]
