"""Delivering takes: atomic, never overwriting, uniquely named, sidecar paired, at the project's rate and format."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import soundfile as sf

from bridge.takes.renderer import Renderer, RenderSettings, safe_token, write_new_pair
from tests.bridge.record_examples import example_take_record


def _tone(seconds: float = 0.05, sr: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_a_take_never_overwrites_an_earlier_file_of_the_same_name(tmp_path):
    r = Renderer(RenderSettings(project_dir=tmp_path))
    stem = r.take_stem(label="my preset", job_id="abc", take=1, seed=7, level=2)
    assert stem == "jb_my-preset_abc_t01_s7_L2"
    (tmp_path / f"{stem}.wav").write_bytes(b"the producer's own file")
    first = r.deliver(_tone(), source_sr=44100, stem=stem, record=example_take_record())
    second = r.deliver(_tone(), source_sr=44100, stem=stem, record=example_take_record())
    assert (tmp_path / f"{stem}.wav").read_bytes() == b"the producer's own file"
    assert first.name == f"{stem}-2.wav" and second.name == f"{stem}-3.wav"
    for wav in (first, second):
        assert json.loads(wav.with_suffix(".json").read_text())["job"] == example_take_record().job


def test_a_stray_sidecar_name_moves_the_take_to_a_name_whose_sidecar_is_its_own(tmp_path):
    (tmp_path / "take.json").write_text("{}")
    wav, side = write_new_pair(tmp_path, "take", lambda f: f.write(b"RIFF"), lambda f: f.write(b'{"mine": 1}'))
    assert (wav.name, side.name) == ("take-2.wav", "take-2.json") and (tmp_path / "take.json").read_text() == "{}"


def test_no_temp_file_is_left_or_visible_as_audio_and_a_failed_write_leaves_nothing(tmp_path):
    def boom(f):
        f.write(b"half a take")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_new_pair(tmp_path, "take", boom, lambda f: f.write(b"{}"))
    assert list(tmp_path.iterdir()) == []
    seen = []
    original = os.link

    def spy(src, dst, *a, **k):
        seen.append(os.path.basename(src))
        return original(src, dst, *a, **k)

    os.link = spy
    try:
        write_new_pair(tmp_path, "take", lambda f: f.write(b"RIFF"), lambda f: f.write(b"{}"))
    finally:
        os.link = original
    assert seen and all(name.startswith(".") and name.endswith(".part") for name in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.json", "take.wav"]


def test_concurrent_deliveries_of_one_name_all_land_under_distinct_names(tmp_path):
    names = []
    lock = threading.Lock()

    def deliver(i: int) -> None:
        wav, _ = write_new_pair(tmp_path, "take", lambda f: f.write(b"x" * i), lambda f: f.write(b"{}"))
        with lock:
            names.append(wav.name)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == 8 and len(list(tmp_path.glob("*.wav"))) == 8


@pytest.mark.parametrize("fmt,subtype", [("pcm24", "PCM_24"), ("pcm16", "PCM_16"), ("float", "FLOAT")])
def test_takes_are_resampled_to_the_project_rate_in_the_chosen_format(tmp_path, fmt, subtype):
    r = Renderer(RenderSettings(project_dir=tmp_path, sample_rate=48000, subtype=fmt))
    wav = r.deliver(_tone(0.1), source_sr=44100, stem="t", record=example_take_record())
    info = sf.info(str(wav))
    assert (info.samplerate, info.subtype, info.frames) == (48000, subtype, 4800)
    data, _ = sf.read(str(wav))
    spectrum = np.abs(np.fft.rfft(data))
    assert abs(np.argmax(spectrum) * 48000 / len(data) - 440) < 15  # still a 440 Hz tone
    side = json.loads(wav.with_suffix(".json").read_text())
    assert side["sample_rate"] == 48000 and side["frames"] == 4800 and side["format"] == fmt


def test_float_takes_keep_overs_and_integer_takes_are_clipped(tmp_path):
    loud = np.full(100, 1.5, dtype=np.float32)
    f = Renderer(RenderSettings(project_dir=tmp_path, subtype="float")).deliver(
        loud, source_sr=44100, stem="f", record=example_take_record()
    )
    i = Renderer(RenderSettings(project_dir=tmp_path)).deliver(
        loud, source_sr=44100, stem="i", record=example_take_record()
    )
    assert sf.read(str(f))[0].max() == pytest.approx(1.5) and sf.read(str(i))[0].max() <= 1.0


def test_a_take_with_nan_samples_is_refused_before_anything_is_written(tmp_path):
    bad = _tone()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Renderer(RenderSettings(project_dir=tmp_path)).deliver(
            bad, source_sr=44100, stem="t", record=example_take_record()
        )
    assert list(tmp_path.iterdir()) == []


def test_names_are_made_file_safe():
    assert safe_token("../../etc/passwd") == "etc-passwd"
    assert safe_token("Café del Mar / Ibiza") == "Caf-del-Mar-Ibiza"
    assert safe_token("...") == "x"


def test_a_disk_that_fills_up_while_a_take_is_written_raises_the_systems_error_not_an_assertion(tmp_path, monkeypatch):
    """libsndfile writing into a full disk itself swallows the error (soundfile then asserts); the take's
    bytes are written by plain writes, so the producer reads 'No space left on device'."""
    import errno

    from bridge.takes import renderer

    real_fdopen = os.fdopen

    class FillsUp:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data) -> int:
            self.written += len(data)
            if self.written > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    monkeypatch.setattr(renderer.os, "fdopen", lambda fd, mode: FillsUp(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left on device"):
        Renderer(RenderSettings(project_dir=tmp_path)).deliver(
            _tone(0.5), source_sr=44100, stem="t", record=example_take_record()
        )
    assert list(tmp_path.iterdir()) == []  # no partial take, no temp file
