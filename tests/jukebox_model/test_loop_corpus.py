"""The loop corpus: reproducible MIDI loops in each style's idiom, rendered into the layout the trainers read."""

from __future__ import annotations

import io
import json
import shutil

import mido
import numpy as np
import pytest
import soundfile as sf

from jukebox_model.music_measures import beat_strength
from jukebox_model.training.audio_dataset import scan_audio_folder
from jukebox_model.training.loop_corpus import SOUND_FONT, CorpusSettings, build, finish, render_loop
from jukebox_model.training.loop_patterns import CHANNELS, TICKS_PER_BEAT, write_loop
from jukebox_model.training.loop_styles import KICK, SCALES, STYLES
from jukebox_model.training.prior_data import read_metadata


def _bytes(mid: mido.MidiFile) -> bytes:
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def _notes(mid: mido.MidiFile, channel: int) -> list[tuple[int, int]]:
    """(absolute tick, pitch) of the note-ons on one channel."""
    out = []
    for track in mid.tracks:
        now = 0
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity > 0 and msg.channel == channel:
                out.append((now, msg.note))
    return out


def test_the_same_seed_writes_the_same_loop_and_another_seed_another():
    style = STYLES["funk"]
    a, spec_a = write_loop(style, np.random.default_rng((0, 3)), bars=8)
    b, spec_b = write_loop(style, np.random.default_rng((0, 3)), bars=8)
    c, _ = write_loop(style, np.random.default_rng((0, 4)), bars=8)
    assert _bytes(a) == _bytes(b) and spec_a == spec_b
    assert _bytes(a) != _bytes(c)


@pytest.mark.parametrize("name", sorted(STYLES))
def test_a_loop_keeps_its_style_tempo_its_length_and_its_scale(name):
    style = STYLES[name]
    for seed in range(5):
        mid, spec = write_loop(style, np.random.default_rng((1, seed)), bars=8)
        assert style.bpm[0] <= spec.bpm <= style.bpm[1]
        assert abs(mid.length - spec.seconds) < 1e-4  # whole bars (to the MIDI tempo's microsecond)
        tempo = next(m.tempo for m in mid.tracks[0] if m.type == "set_tempo")
        assert round(mido.tempo2bpm(tempo)) == spec.bpm
        scale = {(spec.key + step) % 12 for step in SCALES[spec.mode]}
        for part in ("bass", "chords", "lead", "pad"):
            pitches = {p % 12 for _, p in _notes(mid, CHANNELS[part])}
            assert pitches <= scale, (part, spec)


def test_four_on_the_floor_styles_put_a_kick_on_every_beat_of_every_drum_bar():
    mid, _ = write_loop(STYLES["techno"], np.random.default_rng((2, 0)), bars=16)
    kicks = {tick for tick, pitch in _notes(mid, CHANNELS["drums"]) if pitch == KICK}
    bars_with_drums = {tick // (4 * TICKS_PER_BEAT) for tick in kicks}
    assert len(bars_with_drums) >= 12
    for bar in bars_with_drums:
        for beat in range(4):
            assert (bar * 4 + beat) * TICKS_PER_BEAT in kicks


def test_finishing_gives_the_loop_its_exact_length_no_dc_and_a_peak_below_full_scale():
    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((1000, 2)) * 3 + 0.5).astype(np.float32)
    out = finish(stereo, 1200)
    assert out.shape == (1200,) and abs(float(out.mean())) < 0.05 and float(np.abs(out).max()) <= 0.891


needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not SOUND_FONT.is_file(),
    reason="apt-get install fluidsynth fluid-soundfont-gm",
)


@needs_fluidsynth
def test_a_rendered_techno_loop_has_the_beat_it_was_written_with(tmp_path):
    settings = CorpusSettings(tmp_path, sr=22050)
    index = sorted(STYLES).index("techno")
    record = render_loop(index, settings)
    audio, sr = sf.read(tmp_path / record["split"] / record["file"], dtype="float32")
    assert sr == 22050 and audio.ndim == 1
    assert abs(audio.shape[0] / sr - record["seconds"]) < 1e-3
    assert beat_strength(audio[: 8 * sr], sr, record["bpm"]) > 0.3  # corpus loops measure 0.4-0.8


@needs_fluidsynth
def test_the_corpus_command_writes_the_layout_and_labels_the_trainers_read(tmp_path):
    records = build(CorpusSettings(tmp_path, hours=0.6 / 60, sr=16000, jobs=1), log=lambda *_: None)
    assert {r["split"] for r in records} == {"train"}
    train = tmp_path / "train"
    found = scan_audio_folder(train)
    meta = read_metadata(train)
    assert len(found) == len(records) == len(meta)
    for r in records:
        assert meta[r["file"]].genre == r["style"] and meta[r["file"]].artist == r["instruments"]
    corpus = json.loads((tmp_path / "corpus.json").read_text())
    assert corpus["sr"] == 16000 and corpus["loops"] == len(records) and "fluidsynth" in corpus["fluidsynth"].lower()
