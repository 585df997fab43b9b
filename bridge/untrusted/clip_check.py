"""Is this audio file complete and decodable? Asked of a clip before it becomes the prime.

A file in a watch folder may still be growing (a DAW export, a copy from a network drive), may be
cut short (an interrupted copy), or may not be audio at all. `check_clip` refuses all of these with
a reason a producer can act on, without torch (this runs on the watch-folder thread):

* libsndfile must open it and find frames;
* for WAV (RIFF, RF64) and AIFF the header's sizes must agree with the file's length. Writers put
  placeholder sizes in the header and fix them on close, so a header with a zero or too-large
  `data`/`SSND` size is a file still being written (or cut short), even though libsndfile would
  read what is there;
* the last frames must decode: FLAC and MP3 headers announce their length up front, so a
  truncated one opens fine and fails only at its end.
"""

from __future__ import annotations

import os
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import soundfile as sf

from bridge.errors import CommandError
from bridge.untrusted.files import UntrustedFileError, open_regular

# Decoders of compressed formats may report a length that is off by a few codec frames; a tail
# shorter than announced by more than this is a truncated file, not rounding.
_TAIL_FRAMES = 16384
_SHORTFALL_FRAMES = 4096
_UNKNOWN_SIZES = {0, 0xFFFFFFFF}  # placeholders of writers that have not (yet) filled the header in
_MAX_CHUNKS = 1000  # a header walk that does not reach the audio in this many chunks is garbage
# the model reads a prime whole (as float32) before keeping its last prime_s seconds: half an hour of 48 kHz
# stereo (690 MB decoded) is the most a clip may hold, so a huge or sparse file cannot exhaust memory
MAX_CLIP_SAMPLES = 30 * 60 * 48000 * 2
_OPENING = re.compile(r"^Error opening (?:<[^>]*>|'.*?'|\S+): ")  # soundfile's prefix naming the file object


@dataclass(frozen=True)
class ClipInfo:
    """What the prime code needs to know before reading the clip."""

    path: Path
    frames: int
    samplerate: int
    channels: int
    format: str  # libsndfile's container name, e.g. "WAV", "FLAC"
    subtype: str  # e.g. "PCM_16", "FLOAT"

    @property
    def duration_s(self) -> float:
        return self.frames / self.samplerate


class ClipIncomplete(CommandError):
    """The clip is not whole yet: still being written, or a copy that stopped. It may still become whole."""


def check_clip(path: str | os.PathLike[str]) -> ClipInfo:
    """The clip's info if it is complete and decodable, else CommandError naming the file and the reason."""
    path = Path(path)
    try:
        str(path).encode(sys.getfilesystemencoding())
    except UnicodeEncodeError:  # os.fsdecode kept undecodable bytes as surrogates; libsndfile cannot be given them
        raise CommandError(f"{path}: the file name is not valid UTF-8; rename the file to use it as a prime") from None
    try:  # stat first: a FIFO or device is refused before anything opens it (libsndfile would block on a FIFO)
        f = open_regular(path, what="clip")
    except UntrustedFileError as e:
        raise CommandError(_refusal(path, e)) from None
    with f:  # every read below goes through this one descriptor, so the name cannot be swapped under us
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise CommandError(f"{path}: the file is empty (0 bytes)")
        try:
            _check_container(path, f, size)
        except OSError as e:
            raise CommandError(f"{path}: cannot be read ({e.strerror or e})") from None
        info = _open_info(path, f)
        _check_length(path, info)
        _check_tail(path, f, info.frames)
    return ClipInfo(
        path=path,
        frames=int(info.frames),
        samplerate=int(info.samplerate),
        channels=int(info.channels),
        format=str(info.format),
        subtype=str(info.subtype),
    )


@dataclass(frozen=True)
class _Info:
    frames: int
    samplerate: int
    channels: int
    format: str
    subtype: str


def _refusal(path: Path, e: UntrustedFileError) -> str:
    """clipcheck's own wording for what bridge.untrusted refused ("no such file", "not a regular file")."""
    text = str(e).removeprefix(f"clip {str(path)!r} ")
    if text == "does not exist":
        return f"{path}: no such file"
    if text.endswith(", not a regular file"):
        return f"{path}: not a regular file (it {text.removesuffix(', not a regular file')})"
    return f"{path}: {text}"


def _open_info(path: Path, f: BinaryIO) -> _Info:
    f.seek(0)
    try:
        with sf.SoundFile(f) as snd:
            return _Info(snd.frames, snd.samplerate, snd.channels, snd.format, snd.subtype)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise CommandError(f"{path}: not a readable audio file ({_reason(e)})") from None


def _check_length(path: Path, info: _Info) -> None:
    if info.frames <= 0 or info.samplerate <= 0 or info.channels <= 0:
        raise CommandError(f"{path}: contains no audio frames (empty or truncated)")
    if info.frames * info.channels > MAX_CLIP_SAMPLES:
        raise CommandError(
            f"{path}: too long for a prime ({info.frames / info.samplerate / 60:.0f} min of {info.channels}-channel "
            f"audio; at most {MAX_CLIP_SAMPLES} samples, half an hour of 48 kHz stereo); trim it to the part to continue from"
        )


# --- container headers -------------------------------------------------------------------------


def _check_container(path: Path, f: BinaryIO, file_size: int) -> None:
    """WAV/RF64/AIFF: header sizes against the file length. Other containers are left to libsndfile."""
    head = f.read(12)
    if len(head) < 12:
        return
    magic, form = head[:4], head[8:12]
    if magic in (b"RIFF", b"RF64") and form == b"WAVE":
        _check_chunks(path, f, file_size, "<", b"data", rf64=magic == b"RF64", riff_size=_u32(head[4:8], "<"))
    elif magic == b"FORM" and form in (b"AIFF", b"AIFC"):
        _check_chunks(path, f, file_size, ">", b"SSND", rf64=False, riff_size=_u32(head[4:8], ">"))


def _check_chunks(
    path: Path, f: BinaryIO, file_size: int, endian: str, audio_id: bytes, *, rf64: bool, riff_size: int
) -> None:
    """Walk the chunks to the audio chunk; the sizes must be filled in and the bytes they declare present."""
    name = audio_id.decode()
    ds64_sizes: tuple[int, int] | None = None  # RF64: the real 64-bit (riff, data) sizes live in 'ds64'
    offset = 12
    for _ in range(_MAX_CHUNKS):
        f.seek(offset)
        header = f.read(8)
        if len(header) < 8:
            raise CommandError(f"{path}: truncated, the file ends before its '{name}' chunk (incomplete copy?)")
        chunk_id, size = header[:4], _u32(header[4:8], endian)
        if rf64 and chunk_id == b"ds64":
            raw = f.read(16)
            if len(raw) == 16:
                ds64_sizes = struct.unpack("<QQ", raw)
        if chunk_id == audio_id:
            if rf64 and ds64_sizes is not None:
                riff_size, size = ds64_sizes
            _check_sizes(path, file_size, riff_size, size, present=file_size - (offset + 8), name=name)
            return
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
        if offset > file_size:
            raise CommandError(
                f"{path}: truncated, its '{chunk_id.decode('latin-1')}' chunk runs past the end of the file"
            )
    raise CommandError(f"{path}: no '{name}' chunk in the first {_MAX_CHUNKS} chunks (not a usable audio file)")


def _check_sizes(path: Path, file_size: int, riff_size: int, data_size: int, *, present: int, name: str) -> None:
    if data_size == 0 and present <= 0:
        raise CommandError(f"{path}: contains no audio frames (the '{name}' chunk is empty)")
    if data_size in _UNKNOWN_SIZES or riff_size in _UNKNOWN_SIZES:
        raise ClipIncomplete(
            f"{path}: the header's sizes are not filled in (the file is still being written, or its writer "
            "never finished it)"
        )
    if riff_size + 8 > file_size:
        raise ClipIncomplete(
            f"{path}: incomplete, the header declares {riff_size + 8} bytes but the file has {file_size} "
            "(still being written, or an interrupted copy)"
        )
    if data_size > present:
        raise ClipIncomplete(
            f"{path}: incomplete, the '{name}' chunk declares {data_size} bytes of audio but only {present} are "
            "present (still being written, or an interrupted copy)"
        )


def _u32(raw: bytes, endian: str) -> int:
    return int(struct.unpack(f"{endian}I", raw)[0])


# --- decoding ----------------------------------------------------------------------------------


def _check_tail(path: Path, f: BinaryIO, frames: int) -> None:
    """Decode the last frames the header announces: a truncated FLAC/MP3 opens fine and fails here."""
    tail = min(frames, _TAIL_FRAMES)
    f.seek(0)
    try:
        with sf.SoundFile(f) as snd:
            snd.seek(frames - tail)
            got = len(snd.read(tail, dtype="float32", always_2d=True))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise CommandError(f"{path}: truncated or corrupt, its last frames do not decode ({_reason(e)})") from None
    if tail - got > min(_SHORTFALL_FRAMES, tail // 2):
        raise CommandError(
            f"{path}: truncated, it announces {frames} frames but its end decodes to {got} of the last {tail}"
        )


def _reason(e: Exception) -> str:
    """libsndfile's own words without the file it repeats ("Error opening <_io.BufferedReader name=3>: Format
    not recognised.")."""
    text = _OPENING.sub("", str(e), count=1)
    return text.strip().rstrip(".") or type(e).__name__
