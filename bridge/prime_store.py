"""Kept copies of primes, by content, so a take can be made again after its clip was re-exported.

A primed job copies its clip to `<project>/.jukebox/primes/<sha256><suffix>` before the model reads
it: the model encodes the copy, the take's record names both the original path and the copy, and
regenerate uses the copy. Identical clips share one copy. The copy is hashed while it is written
(one read of the clip), under a hidden temp name, and appears under its hash only when whole.
`tail` reads the end of a clip at its own rate: what a primed take joins its new material to.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .untrusted import UntrustedFileError, open_regular

MAX_PRIME_BYTES = 1 << 31  # a 30-minute 48 kHz stereo float WAV is under 700 MiB (clipcheck bounds clips tighter)
SAFE_SUFFIXES = {".wav", ".aif", ".aiff", ".flac", ".ogg", ".mp3", ".w64", ".caf"}


class PrimeStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def keep(self, path: str | Path) -> tuple[Path, str]:
        """The content-addressed copy of `path` (made if new) and its SHA-256."""
        suffix = Path(path).suffix.lower()
        suffix = suffix if suffix in SAFE_SUFFIXES else ".audio"
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        if not os.path.lexists(path):
            raise ValueError(f"the prime {path} was not found: moved or deleted since it was set")
        try:
            source = open_regular(path, what="prime", max_bytes=MAX_PRIME_BYTES)
        except UntrustedFileError as e:
            raise ValueError(str(e)) from None
        fd, name = tempfile.mkstemp(prefix=".prime.", suffix=".part", dir=self.folder)
        tmp = Path(name)
        try:
            with source, os.fdopen(fd, "wb") as out:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.folder / f"{sha}{suffix}"
            if not final.is_file():
                os.replace(tmp, final)
            return final, sha
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def tail(path: str | Path, seconds: float, *, context_s: float = 0.0) -> tuple[np.ndarray, int, int]:
        """The last `seconds` of a clip at its own rate, mixed to mono (float32), with up to `context_s` more
        before them (for a resampler), its rate, and how many of the samples are the `seconds` themselves."""
        with open_regular(path, what="prime", max_bytes=MAX_PRIME_BYTES) as f, sf.SoundFile(f) as clip:
            n = min(clip.frames, max(0, round(seconds * clip.samplerate)))
            total = min(clip.frames, n + round(context_s * clip.samplerate))
            clip.seek(clip.frames - total)
            audio = clip.read(total, dtype="float32", always_2d=True)
            return audio.mean(axis=1, dtype=np.float32), clip.samplerate, n
