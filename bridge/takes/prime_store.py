"""Kept copies of primes, by content, so a take can be made again after its clip was re-exported.

A primed job copies its clip to `<project>/.jukebox/primes/<sha256><suffix>` before the model reads
it: the model encodes the copy, the take's record names both the original path and the copy, and
regenerate uses the copy. Identical clips share one copy. The copy is hashed while it is written
(one read of the clip), under a hidden temp name, and appears under its hash only when whole.
`tail` reads the end of a clip at its own rate: what a primed take joins its new material to.

The folder is the bridge's own, but anyone may write into it: a copy read back by name (a
regenerate, a recorded opening) must be a regular file, not a symlink, whose content still has the
hash its name says; a name that is already there when a clip is kept is replaced by the fresh copy,
so a file planted under the next clip's hash is never what the model hears.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bridge.untrusted.files import UntrustedFileError, open_regular

_SHORTFALL_FRAMES, _SHORTFALL_FRACTION = (
    4096,
    0.02,
)  # a decode this short of its header is truncated (as the model reads)
MAX_PRIME_BYTES = 1 << 31  # a 30-minute 48 kHz stereo float WAV is under 700 MiB (clipcheck bounds clips tighter)
SAFE_SUFFIXES = {".wav", ".aif", ".aiff", ".flac", ".ogg", ".mp3", ".w64", ".caf"}


@dataclass(frozen=True)
class KeptPrime:
    """A primed job's clip as a value, read once: the kept copy, the hash of its bytes, and the clip's end at
    its own rate, which both the model (its kept part) and the take's opening (the prime's own audio) use."""

    clip: str  # as the producer named it
    copy: Path
    sha256: str
    audio: np.ndarray  # (T,) float32 mono: the clip's last `len / sr` seconds, or all of it
    sr: int

    def end(self, seconds: float, *, context_s: float = 0.0) -> np.ndarray:
        """The last `seconds` with up to `context_s` before them (as much as was read)."""
        n = round((seconds + context_s) * self.sr)
        return self.audio[max(0, len(self.audio) - n) :]


class PrimeStore:
    def __init__(self, folder: Path, *, follow_links: bool = False):
        self.folder = Path(folder)
        self.follow_links = follow_links  # the bridge setting: links in its own folders are not followed

    def is_kept_copy(self, path: str | Path) -> bool:
        """Whether `path` names a file in this store (by where it is, not by what it holds)."""
        try:
            return Path(os.path.abspath(path)).parent.resolve() == self.folder.resolve()
        except (OSError, RuntimeError, ValueError):
            return False

    def keep(self, path: str | Path) -> tuple[Path, str]:
        """The content-addressed copy of `path` (made fresh each time) and its SHA-256.

        `path` may be a kept copy itself (a regenerate): then it must still hold what its name says."""
        suffix = Path(path).suffix.lower()
        suffix = suffix if suffix in SAFE_SUFFIXES else ".audio"
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        if not os.path.lexists(path):
            raise ValueError(f"the prime {path} was not found: moved or deleted since it was set")
        kept = self.is_kept_copy(path)
        try:
            source = open_regular(
                path,
                what="kept prime" if kept else "prime",
                max_bytes=MAX_PRIME_BYTES,
                follow_links=self.follow_links or not kept,
            )
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
            if kept and Path(path).stem != sha:
                raise ValueError(
                    f"kept prime {Path(path).name} no longer holds the audio it was kept with (its hash differs): "
                    "it was changed since, so the take it belongs to cannot be made again from it"
                )
            final = self.folder / f"{sha}{suffix}"
            os.replace(tmp, final)  # whatever is under that name (a link, another file) gives way to the copy
            return final, sha
        finally:
            tmp.unlink(missing_ok=True)

    def keep_and_read(self, path: str | Path, *, seconds: float | None, name: str | None = None) -> KeptPrime:
        """Keep `path` (one read of the clip) and decode the copy's last `seconds` (None: all of it): what a
        primed job needs of its clip, so nothing reads the clip again. Errors name the clip as `name`."""
        copy, sha = self.keep(path)
        named = name or str(path)
        try:
            audio, sr, _ = self.tail(copy, float("inf") if seconds is None else seconds, name=named)
        except (sf.LibsndfileError, RuntimeError, TypeError) as e:
            raise ValueError(f"{named}: the prime could not be decoded ({e})") from None
        except UntrustedFileError as e:
            raise ValueError(f"{named}: {e}") from None
        if audio.shape[0] == 0:
            raise ValueError(f"{named}: the prime decoded to no audio (truncated?)")
        return KeptPrime(named, copy, sha, audio, sr)

    def collect(self, budget_bytes: int, in_use: set[str]) -> int:
        """Remove the oldest kept copies (by when they were last kept) until the store is within `budget_bytes`,
        never one whose name is `in_use` (a queued or running job reads it); returns the bytes freed.

        A take whose copy was collected can still be regenerated from its clip as named, if that is still there."""
        try:
            with os.scandir(self.folder) as entries:
                stats = [
                    (e.stat(follow_symlinks=False), Path(e.path))
                    for e in entries
                    if not e.name.startswith(".") and e.is_file(follow_symlinks=False)
                ]
            kept = [(st.st_mtime, st.st_size, path) for st, path in stats]
        except FileNotFoundError:
            return 0
        total, freed = sum(size for _, size, _ in kept), 0
        for _, size, path in sorted(kept):
            if total - freed <= budget_bytes:
                break
            if path.name in in_use:
                continue
            try:
                path.unlink()
                freed += size
            except OSError:
                pass
        return freed

    def verified(self, path: str | Path) -> Path:
        """A kept copy named by a file the bridge reads back: in this store, not a link, holding its hash."""
        if not self.is_kept_copy(path):
            raise ValueError(f"{path} is not one of this project's kept primes")
        try:
            digest = _sha256(path, what="kept prime", follow_links=self.follow_links)
        except UntrustedFileError as e:
            raise ValueError(str(e)) from None
        if digest != Path(path).stem:
            raise ValueError(f"kept prime {Path(path).name} no longer holds the audio it was kept with")
        return Path(path)

    @staticmethod
    def clip_sha256(path: str | Path) -> str | None:
        """The SHA-256 of a clip as the producer names it (read as untrusted); None when it is gone or unreadable."""
        try:
            return _sha256(path, what="clip", follow_links=True)
        except (OSError, UntrustedFileError):
            return None

    def tail(
        self, path: str | Path, seconds: float, *, context_s: float = 0.0, name: str | None = None
    ) -> tuple[np.ndarray, int, int]:
        """The last `seconds` of a clip at its own rate, mixed to mono (float32), with up to `context_s` more
        before them (for a resampler), its rate, and how many of the samples are the `seconds` themselves.
        `name`: how errors name the clip (a kept copy's producer-facing name)."""
        follow = self.follow_links or not self.is_kept_copy(path)
        with (
            open_regular(path, what="prime", max_bytes=MAX_PRIME_BYTES, follow_links=follow) as f,
            sf.SoundFile(f) as clip,
        ):
            frames = clip.frames
            n = frames if seconds >= frames / clip.samplerate else min(frames, max(0, round(seconds * clip.samplerate)))
            total = min(frames, n + round(context_s * clip.samplerate))
            clip.seek(frames - total)
            audio = clip.read(total, dtype="float32", always_2d=True)
            if total - audio.shape[0] > max(_SHORTFALL_FRAMES, _SHORTFALL_FRACTION * total):
                raise ValueError(
                    f"{name or path}: truncated, decoded {audio.shape[0]} of the {total} frames its header announces"
                )
            return audio.mean(axis=1, dtype=np.float32), clip.samplerate, min(n, audio.shape[0])


def _sha256(path: str | Path, *, what: str, follow_links: bool) -> str:
    digest = hashlib.sha256()
    with open_regular(path, what=what, max_bytes=MAX_PRIME_BYTES, follow_links=follow_links) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
