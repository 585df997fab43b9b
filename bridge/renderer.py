"""Takes into the project folder: never half-written, never overwritten, each with a sidecar.

A DAW references delivered files in place (Live's clips, REAPER's items), so a take is written
under a hidden temp name no watcher matches, fsynced, then hard-linked to a new unique name (a
link fails if the name exists, so two deliveries can never claim one name) and the folder is
fsynced. The JSON sidecar beside it (`bridge.take_record.TakeRecord`) holds everything needed to make the take again.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from jukebox_model.atomic import fsync_folder

from .take_record import AudioWritten, TakeRecord

SUBTYPES = {"pcm24": "PCM_24", "pcm16": "PCM_16", "float": "FLOAT"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_token(text: str, *, limit: int = 40) -> str:
    """A file-name-safe piece of a name: ASCII letters, digits, '.', '_', '-'."""
    token = _UNSAFE.sub("-", text).strip("-._")
    return token[:limit] or "x"


@dataclass(frozen=True)
class RenderSettings:
    project_dir: Path
    sample_rate: int = 44100  # the project's rate; takes are resampled to it
    subtype: str = "pcm24"  # pcm24 | pcm16 | float
    prefix: str = "jb"

    def __post_init__(self) -> None:
        if self.subtype not in SUBTYPES:
            raise ValueError(f"output format must be one of {', '.join(SUBTYPES)}, got {self.subtype!r}")
        if not 8000 <= self.sample_rate <= 384000:
            raise ValueError(f"project sample rate {self.sample_rate} is not a usable audio rate")


def _link_new(tmp: Path, final: Path) -> bool:
    """Give `tmp` the name `final` unless that name exists; never replaces a file."""
    try:
        os.link(tmp, final)
        return True
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links: check, then rename (not race-free, never clobbers a known file)
        if final.exists():
            return False
        os.rename(tmp, final)
        return True


def _temp_file(folder: Path, stem: str, write: Any) -> Path:
    """Write through `write(file)` to a hidden `.stem.*.part` file in `folder` and fsync it."""
    fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part", dir=folder)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_new_pair(folder: Path, stem: str, write_wav: Any, write_sidecar: Any) -> tuple[Path, Path]:
    """`stem[-n].json` then `stem[-n].wav` under the first n free for both: the sidecar is in place
    before the WAV appears, and the two always share a name."""
    folder.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        temps.append(_temp_file(folder, stem, write_wav))  # one at a time: a failed sidecar still removes the audio
        temps.append(_temp_file(folder, stem, write_sidecar))
        wav_tmp, side_tmp = temps
        for n in range(1, 10_000):
            base = stem if n == 1 else f"{stem}-{n}"
            wav, side = folder / f"{base}.wav", folder / f"{base}.json"
            if wav.exists() or not _link_new(side_tmp, side):
                continue
            if not _link_new(wav_tmp, wav):
                side.unlink(missing_ok=True)
                continue
            fsync_folder(folder)
            return wav, side
        raise OSError(f"no free file name for {stem} in {folder}")
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


class Renderer:
    def __init__(self, settings: RenderSettings):
        self.settings = settings

    def take_stem(self, *, label: str, job_id: str, take: int, seed: int, level: int, extra: str = "") -> str:
        parts = [self.settings.prefix, safe_token(label), job_id, f"t{take + 1:02d}", f"s{seed}"]
        if extra:
            parts.append(safe_token(extra))
        parts.append(f"L{level}")
        return "_".join(parts)

    def deliver(self, audio: np.ndarray, *, source_sr: int, stem: str, record: TakeRecord) -> Path:
        """Write one take (mono float audio at `source_sr`) and its record as the sidecar; returns the WAV's path."""
        from jukebox_model.audio import resample  # torch: the renderer runs on the worker thread

        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"a take is mono (T,), got shape {samples.shape}")
        if not np.isfinite(samples).all():
            raise ValueError("the decoded take contains NaN or infinite samples")
        rate = self.settings.sample_rate
        if rate != source_sr:
            import torch

            samples = resample(torch.from_numpy(samples), source_sr, rate).numpy()
        subtype = SUBTYPES[self.settings.subtype]
        if subtype != "FLOAT":
            samples = np.clip(samples, -1.0, 1.0)
        written = record.with_audio(
            AudioWritten(sample_rate=rate, frames=int(samples.shape[0]), format=self.settings.subtype)
        )
        text = json.dumps(written.to_dict(), indent=2, default=str) + "\n"
        # encoded in memory, then written as plain bytes: libsndfile writing to a full disk itself
        # loses the system's error (soundfile asserts instead), a plain write raises ENOSPC with its words
        encoded = io.BytesIO()
        sf.write(encoded, samples, rate, subtype=subtype, format="WAV")
        wav, _ = write_new_pair(
            self.settings.project_dir, stem, lambda f: f.write(encoded.getbuffer()), lambda f: f.write(text.encode())
        )
        return wav
