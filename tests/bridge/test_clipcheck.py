"""bridge.untrusted.clip_check: complete clips pass with their info; growing, cut and non-audio files are refused by name."""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.errors import CommandError
from bridge.untrusted.clip_check import ClipInfo, check_clip

SR = 44100


def _noise(frames: int, channels: int = 1) -> np.ndarray:
    return (np.random.default_rng(0).random((frames, channels), dtype=np.float32) - 0.5) * 0.5


def _encoded(fmt: str, frames: int = SR, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _noise(frames, channels), SR, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    "fmt, name", [("WAV", "a.wav"), ("AIFF", "a.aif"), ("FLAC", "a.flac"), ("OGG", "a.ogg"), ("MP3", "a.mp3")]
)
def test_complete_clip_of_each_inbox_format_passes_with_its_info(tmp_path: Path, fmt: str, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_encoded(fmt, frames=SR, channels=2))
    info = check_clip(path)
    assert isinstance(info, ClipInfo)
    assert (info.path, info.frames, info.samplerate, info.channels, info.format) == (path, SR, SR, 2, fmt)
    assert info.duration_s == pytest.approx(1.0)


def test_wav_with_metadata_chunks_before_and_after_the_audio_passes(tmp_path: Path) -> None:
    path = tmp_path / "tagged.wav"
    with sf.SoundFile(path, "w", SR, 1, format="WAV") as f:
        f.title = "take 3"  # libsndfile writes a LIST chunk
        f.write(_noise(1000))
    data = bytearray(path.read_bytes())
    assert b"LIST" in data
    data += b"id3 " + struct.pack("<I", 5) + b"ID3v2" + b"\0"  # a tag chunk after the audio, padded to even
    data[4:8] = struct.pack("<I", len(data) - 8)
    path.write_bytes(bytes(data))
    assert check_clip(path).frames == 1000


@pytest.mark.parametrize("fmt, name", [("WAV", "cut.wav"), ("AIFF", "cut.aiff")])
def test_truncated_wav_and_aiff_are_refused_as_incomplete(tmp_path: Path, fmt: str, name: str) -> None:
    data = _encoded(fmt)
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    assert sf.info(str(path)).frames > 0  # libsndfile alone would happily read the first half
    with pytest.raises(CommandError, match=r"incomplete, the header declares .* but the file has") as e:
        check_clip(path)
    assert str(path) in str(e.value)


def test_wav_cut_inside_its_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stub.wav"
    path.write_bytes(_encoded("WAV")[:30])
    with pytest.raises(CommandError, match=str(path)):
        check_clip(path)


@pytest.mark.parametrize("fmt, name", [("FLAC", "cut.flac"), ("MP3", "cut.mp3")])
def test_truncated_compressed_clip_that_still_opens_is_refused_at_its_end(tmp_path: Path, fmt: str, name: str) -> None:
    data = _encoded(fmt, frames=4 * SR)
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    assert sf.info(str(path)).frames == 4 * SR  # the header still announces the whole length
    with pytest.raises(CommandError, match="truncated") as e:
        check_clip(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("fmt", ["WAV", "AIFF", "RF64"])
def test_file_still_being_written_by_libsndfile_is_refused_until_closed(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"growing.{fmt.lower()}"
    f = sf.SoundFile(path, "w", SR, 1, format=fmt)
    try:
        f.write(_noise(2000))
        f.flush()  # bytes on disk, header sizes still the writer's placeholders
        with pytest.raises(CommandError, match="still being written") as e:
            check_clip(path)
        assert str(path) in str(e.value)
    finally:
        f.close()
    assert check_clip(path).frames == 2000


def test_zero_length_file_is_refused_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(CommandError, match=r"zero\.wav: the file is empty \(0 bytes\)"):
        check_clip(path)


def test_complete_wav_without_frames_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "silent-nothing.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), SR)
    with pytest.raises(CommandError, match="contains no audio frames"):
        check_clip(path)


def test_text_file_with_an_audio_name_is_refused_as_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("verse, chorus, verse\n" * 20)
    with pytest.raises(CommandError, match=r"notes\.wav: not a readable audio file \(Format not recognised\)"):
        check_clip(path)


def test_missing_file_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        check_clip(tmp_path / "gone.wav")
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    with pytest.raises(CommandError, match="not a regular file"):
        check_clip(folder)


def test_clipcheck_presets_and_inbox_do_not_import_torch() -> None:
    import subprocess

    code = "import sys, bridge.untrusted.clip_check, bridge.session.presets, bridge.transports.watch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
