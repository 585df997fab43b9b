"""Audio I/O: formats, downmix, resampling, clear errors naming the file, atomic writes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from jukebox_model import audio as audio_mod
from jukebox_model.audio import AudioFileError, peak_info, read_audio, round_to_hop, to_model_input, write_wav

SR = 44100


def _sine(freq: float, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def _peak_hz(x: torch.Tensor, sr: int) -> float:
    spectrum = torch.fft.rfft(x.double()).abs()
    return float(spectrum.argmax()) * sr / x.shape[0]


@pytest.mark.parametrize(
    "fmt,subtype,tol", [("WAV", "PCM_24", 1e-6), ("WAV", "FLOAT", 0), ("FLAC", "PCM_24", 1e-6), ("OGG", "VORBIS", 0.05)]
)
def test_formats_read_back_as_mono_float32(tmp_path, fmt, subtype, tol):
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, _sine(440, 0.5), SR, format=fmt, subtype=subtype)
    got = read_audio(path)
    assert got.dtype == torch.float32 and got.dim() == 1
    assert abs(got.shape[0] - int(0.5 * SR)) <= 1024  # OGG may pad a little
    n = min(got.shape[0], int(0.5 * SR))
    assert float((got[:n] - torch.from_numpy(_sine(440, 0.5))[:n]).abs().max()) <= tol + 1e-7 or fmt == "OGG"
    assert abs(_peak_hz(got, SR) - 440) < 5


def test_mp3_is_read_when_libsndfile_supports_it_and_refused_by_name_otherwise(tmp_path):
    path = tmp_path / "clip.mp3"
    if "MP3" not in sf.available_formats():
        path.write_bytes(b"\xff\xfb\x90\x64" + bytes(1000))  # an MPEG-1 layer III frame header
        with pytest.raises(AudioFileError, match="clip.mp3"):
            read_audio(path)
        return
    sf.write(path, _sine(330, 1.0), SR, format="MP3")
    assert abs(_peak_hz(read_audio(path), SR) - 330) < 5


def test_stereo_is_downmixed_by_channel_mean(tmp_path):
    left, right = _sine(440, 0.2), np.zeros(int(0.2 * SR), np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    torch.testing.assert_close(read_audio(path), torch.from_numpy(left / 2))


def test_resampling_to_the_model_rate_keeps_duration_and_pitch(tmp_path):
    path = tmp_path / "48k.wav"
    sf.write(path, _sine(1000, 1.0, 48000), 48000, subtype="FLOAT")
    got = read_audio(path)
    assert abs(got.shape[0] - SR) <= 1
    assert abs(_peak_hz(got, SR) - 1000) < 2


def test_resampling_keeps_the_top_octave_and_rejects_what_would_alias(tmp_path):
    def level_db(freq: float) -> float:
        path = tmp_path / f"{freq}.wav"
        sf.write(path, _sine(freq, 0.5, 48000), 48000, subtype="FLOAT")
        got = read_audio(path)[2000:-2000]  # away from the edges
        return 20 * math.log10(float(got.abs().max()) / 0.5)

    assert level_db(20000) > -0.5  # in band at 44.1 kHz
    assert level_db(23000) < -60  # above 22.05 kHz: would fold back to 21.1 kHz


def test_offset_and_duration_select_a_span(tmp_path):
    path = tmp_path / "ramp.wav"
    sf.write(path, np.linspace(-1, 1, SR, dtype=np.float32), SR, subtype="FLOAT")
    got = read_audio(path, offset_s=0.5, duration_s=0.25)
    assert got.shape[0] == int(0.25 * SR)
    assert abs(float(got[0])) < 1e-3


def test_unreadable_inputs_raise_errors_naming_the_file(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    good = tmp_path / "good.wav"
    sf.write(good, _sine(440, 1.0), SR)
    truncated = tmp_path / "truncated.flac"
    sf.write(tmp_path / "full.flac", _sine(440, 2.0), SR)
    truncated.write_bytes((tmp_path / "full.flac").read_bytes()[:2000])
    unsupported = tmp_path / "clip.xyz"
    unsupported.write_bytes(b"\x00\x01" * 100)
    for path in (text, empty, truncated, unsupported):
        with pytest.raises(AudioFileError, match=path.name):
            read_audio(path)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioFileError, match="offset"):
        read_audio(good, offset_s=5.0)
    with pytest.raises(ValueError, match="offset_s"):
        read_audio(good, offset_s=-1.0)


def _cut(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_24"), ("AIFF", "PCM_16"), ("FLAC", "PCM_16"), ("MP3", None)])
def test_truncated_files_are_refused_rather_than_read_short(tmp_path, fmt, subtype):
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile has no {fmt} support")
    path = tmp_path / f"cut.{fmt.lower()}"
    sf.write(path, _sine(440, 1.0), SR, format=fmt, subtype=subtype)
    assert read_audio(path).shape[0] >= SR - 2048  # whole: reads in full
    with pytest.raises(AudioFileError, match="cut.*truncated"):
        read_audio(_cut(path))


def test_streamed_wav_without_a_length_in_its_header_is_read(tmp_path):
    path = tmp_path / "streamed.wav"
    sf.write(path, _sine(440, 0.5), SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.find(b"data")
    data[4:8] = data[at + 4 : at + 8] = b"\xff\xff\xff\xff"  # RIFF and data sizes unknown, as pipes write them
    path.write_bytes(bytes(data))
    assert read_audio(path).shape[0] == int(0.5 * SR)


@pytest.mark.parametrize("subtype,expected", [("pcm24", "PCM_24"), ("float", "FLOAT"), ("pcm16", "PCM_16")])
def test_write_wav_sample_formats(tmp_path, subtype, expected):
    path = write_wav(tmp_path / "out.wav", torch.from_numpy(_sine(440, 0.1)), sr=SR, subtype=subtype)
    assert sf.info(path).subtype == expected
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_write_wav_takes_libsndfile_subtype_names_and_refuses_others(tmp_path):
    assert sf.info(write_wav(tmp_path / "a.wav", torch.zeros(10), subtype="PCM_24")).subtype == "PCM_24"
    with pytest.raises(ValueError, match="mp3"):
        write_wav(tmp_path / "b.wav", torch.zeros(10), subtype="mp3")
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]


def test_write_wav_resamples_to_the_project_rate(tmp_path):
    path = write_wav(tmp_path / "48k.wav", torch.from_numpy(_sine(1000, 1.0)), sr=48000, source_sr=SR)
    data, sr = sf.read(path)
    assert sr == 48000 and abs(len(data) - 48000) <= 1


def test_integer_formats_clip_and_float_can_keep_overs(tmp_path):
    loud = torch.tensor([2.0, -3.0, 0.5])
    assert np.abs(sf.read(write_wav(tmp_path / "a.wav", loud, subtype="pcm24"))[0]).max() <= 1.0
    kept = sf.read(write_wav(tmp_path / "b.wav", loud, subtype="float", clip=False))[0]
    assert kept.max() == 2.0


def test_write_goes_through_a_hidden_part_file_in_the_same_folder(tmp_path, monkeypatch):
    seen = []
    real_write = audio_mod.sf.write

    def spying_write(f, *args, **kwargs):
        seen.extend(p.name for p in tmp_path.iterdir())
        return real_write(f, *args, **kwargs)

    monkeypatch.setattr(audio_mod.sf, "write", spying_write)
    write_wav(tmp_path / "take.wav", torch.zeros(100))
    assert len(seen) == 1 and seen[0].startswith(".take.wav") and seen[0].endswith(".part")
    assert [p.name for p in tmp_path.iterdir()] == ["take.wav"]


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = write_wav(tmp_path / "take.wav", torch.zeros(100))
    before = path.read_bytes()

    def broken_write(f, data, *args, **kwargs):
        f.write(b"RIFF....partial")
        raise OSError("disk full")

    monkeypatch.setattr(audio_mod.sf, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_wav(path, torch.ones(100))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["take.wav"]


def test_non_finite_audio_is_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_wav(tmp_path / "x.wav", torch.tensor([0.0, float("nan")]))
    assert not list(tmp_path.iterdir())


def test_lengths_round_down_to_whole_top_level_tokens():
    assert round_to_hop(44100) == 44032
    assert round_to_hop(128) == 128 and round_to_hop(127) == 0


def test_model_input_shape_and_batch_stacking():
    assert to_model_input(torch.zeros(10)).shape == (1, 10, 1)
    assert to_model_input(torch.zeros(3, 10)).shape == (3, 10, 1)
    clips = [torch.full((10,), float(i)) for i in range(3)]
    batch = to_model_input(clips)
    assert batch.shape == (3, 10, 1) and torch.equal(batch[2, :, 0], clips[2])
    with pytest.raises(ValueError, match="one length"):
        to_model_input([torch.zeros(10), torch.zeros(9)])
    with pytest.raises(ValueError):
        to_model_input(torch.zeros(1, 2, 3))


def test_peak_info_reports_level_and_overs():
    info = peak_info(torch.tensor([0.5, -2.0, 1.5, 1.0]))
    assert info.peak == 2.0 and info.clipped == 2
    assert info.peak_dbfs == pytest.approx(20 * math.log10(2.0))
    assert "2 samples over full scale" in info.describe()
    silent = peak_info(torch.zeros(4))
    assert silent.peak_dbfs == -math.inf and silent.clipped == 0 and silent.describe() == "silent"
