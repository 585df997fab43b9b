"""Loop training data that carries its tempo: windows start on bar lines and the genre gets a tempo word,
so a prior can learn where in the bar each position is, and a take can ask for the session's tempo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jukebox_model.labels.tempo import all_tempo_words, tempo_word, with_tempo
from jukebox_model.training.prior_data import EncodedSong, PriorWindows, SongMeta, read_metadata, write_id_tables

HOP = 256
SR = 22050


def _song(bpm: float | None, seconds: float = 60.0) -> EncodedSong:
    n = int(seconds * SR)
    return EncodedSong(Path(f"{bpm}.wav"), SongMeta(genre="techno", bpm=bpm), n, (torch.arange(-(-n // HOP)),))


def _windows(song: EncodedSong, *, align: bool) -> PriorWindows:
    return PriorWindows(
        [song],
        level=0,
        n_ctx=128,
        labeller=None,
        cond_downsample=None,
        sr=SR,
        min_duration=None,
        max_duration=None,
        align_bars=align,
    )


@pytest.mark.parametrize("bpm", [70.0, 93.7, 124.0, 134.0])
def test_aligned_windows_start_on_a_bar_line_of_the_songs_own_tempo(bpm):
    windows = _windows(_song(bpm), align=True)
    bar_tokens = 4 * 60.0 / bpm * SR / HOP
    starts = set()
    for epoch in range(3):
        windows.set_epoch(epoch)
        for i in range(len(windows)):
            start = int(windows[i][0][0])  # the codes are their own positions
            starts.add(start)
            bars = start / bar_tokens
            assert abs(bars - round(bars)) * bar_tokens <= 0.5 + 1e-6  # on a bar line, to the nearest token
    assert len(starts) > 5  # many bars, not one


def test_without_a_tempo_or_alignment_windows_start_anywhere():
    for song, align in ((_song(None), True), (_song(124.0), False)):
        windows = _windows(song, align=align)
        bar_tokens = 4 * 60.0 / 124.0 * SR / HOP
        offs = [
            abs(s / bar_tokens - round(s / bar_tokens)) for s in (int(windows[i][0][0]) for i in range(len(windows)))
        ]
        assert max(offs) > 0.1


def test_tempo_words_are_eight_bpm_buckets_from_70_and_join_the_genre():
    assert [tempo_word(b) for b in (60, 70, 77.9, 78, 124, 126, 133.99, 134, 180)] == [
        "bpm70",
        "bpm70",
        "bpm70",
        "bpm78",
        "bpm118",
        "bpm126",
        "bpm126",
        "bpm134",
        "bpm134",
    ]
    assert len(all_tempo_words()) == 9 and with_tempo("techno", 128) == "techno bpm126"
    assert with_tempo("techno", None) == "techno"
    with pytest.raises(ValueError):
        tempo_word(0)


def test_metadata_carries_bpm_and_the_id_tables_get_the_tempo_words_after_the_genres(tmp_path):
    (tmp_path / "metadata.json").write_text(
        json.dumps({"a.wav": {"genre": "techno", "bpm": 128}, "b.wav": {"genre": "house", "bpm": 120.5}})
    )
    meta = read_metadata(tmp_path)
    assert meta["a.wav"].bpm == 128.0 and meta["b.wav"].beats_per_bar == 4
    write_id_tables(meta, tmp_path / "ids", v3=False, tempo_words=True)
    lines = (tmp_path / "ids/v2_genre_ids.txt").read_text().split()
    assert lines == ["unknown;0", "house;1", "techno;2", "bpm118;3", "bpm126;4"]


@pytest.mark.parametrize("entry", [{"bpm": "fast"}, {"bpm": 5}, {"bpm": True}, {"bpm": 120, "beats_per_bar": 0}])
def test_a_tempo_that_is_not_one_is_refused_naming_the_file(tmp_path, entry):
    (tmp_path / "metadata.json").write_text(json.dumps({"loop.wav": {"genre": "techno", **entry}}))
    with pytest.raises(ValueError, match="loop.wav"):
        read_metadata(tmp_path)
