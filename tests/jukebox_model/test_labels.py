"""Label rows, lyric windows and names match the reference labeller on every case of labels_cases.json;
bad input is a LabelError that says what is wrong; the timing checks refuse exactly what the prior's
timing embedding cannot embed."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import pytest
import torch

from jukebox_model.config import SAMPLE_RATE
from jukebox_model.hparams import prior_config_from_hparams
from jukebox_model.labels import LabelError, Labeller, TimingRanges, load_id_tables
from jukebox_model.labels.lyrics import V2, V3, relevant_tokens
from jukebox_model.labels.tables import normalise_v2, read_id_table
from jukebox_model.official import PRIOR_1B_LYRICS
from jukebox_model.prior.conditioners import LabelConditioner
from tests.reference import discover, reference_dir


def _cases() -> list:
    path = reference_dir() / "labels_cases.json"
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no labels_cases.json in {reference_dir()}"))]
    return [pytest.param(c, id=c["name"]) for c in json.loads(path.read_text())["cases"]]


def _labeller(spec: dict) -> Labeller:
    return Labeller(
        load_id_tables(reference_dir() / "ids", v3=spec["v3"]),
        max_genre_words=spec["max_genre_words"],
        n_tokens=spec["n_tokens"],
        window_samples=spec["sample_length"],
        raw_to_tokens=spec["raw_to_tokens"],
    )


def _label(labeller: Labeller, inputs: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown names warn; covered separately
        return labeller.label(
            inputs["artist"], inputs["genre"], inputs["lyrics"], inputs["total_length"], inputs["offset"]
        )


def _v2(n_tokens: int = 4, **kwargs) -> Labeller:
    kwargs = {"max_genre_words": 2, "window_samples": 100, "raw_to_tokens": 1, **kwargs}
    return Labeller(load_id_tables(reference_dir() / "ids", v3=False), n_tokens=n_tokens, **kwargs)


# -- the reference's cases ---------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases())
def test_label_row_and_info_match_the_reference(case):
    labeller = _labeller(case["labeller"])
    if case["outputs"] is None:
        with pytest.raises(LabelError) as raised:  # the reference's bare AssertionError, with a reason
            _label(labeller, case["inputs"])
        assert isinstance(raised.value, ValueError) and str(raised.value)
        return
    row, out = _label(labeller, case["inputs"]), case["outputs"]
    assert list(row.y) == out["y"]
    assert row.artist_id == out["artist_id"]
    assert list(row.genre_ids) == out["genre_ids"]
    assert list(row.window_tokens) == out["window_tokens"]
    assert row.lyrics == out["cleaned_lyrics"]
    assert list(row.full_tokens) == out["full_tokens"]
    assert labeller.describe(row.y) == out["describe_label"]


@pytest.mark.parametrize("case", _cases())
def test_per_window_rows_match_the_reference(case):
    if case["outputs"] is None:
        pytest.skip("input the reference rejects")
    labeller = _labeller(case["labeller"])
    row = _label(labeller, case["inputs"])
    for window in case["get_y_windows"]:
        moved = labeller.window(row, window["start"])
        assert list(moved.y) == window["y"], window["start"]
        assert (None if moved.indices is None else list(moved.indices)) == window["indices"]
        assert moved.full_tokens is row.full_tokens  # a window re-slices the song's tokens, no re-cleaning


@pytest.mark.parametrize("fixture", discover("prior"), ids=lambda f: f.name)
def test_tiny_prior_label_rows_are_reproduced_and_pass_the_timing_checks(fixture):
    io = fixture.io()
    meta, inputs = io["meta"], io["inputs"]
    config = prior_config_from_hparams(fixture.hparams()["hparams"])
    labeller = Labeller.for_prior(
        config.labels, reference_dir() / "ids", n_ctx=meta["n_ctx"], hop_length=meta["raw_to_tokens"]
    )
    assert (labeller.timing is not None) == (config.labels.min_duration is not None)
    for i, item in enumerate(inputs["metas"]):
        row = _label(labeller, item)
        assert list(row.y) == inputs["labels_y"][i].tolist()
        moved = labeller.window(row, inputs["start"])
        assert list(moved.y) == inputs["y"][i].tolist()
        if inputs["lyric_window_indices"] is not None:
            assert list(moved.indices) == list(inputs["lyric_window_indices"][i])
        assert list(row.full_tokens) == list(inputs["full_lyric_tokens"][i])


# -- errors and unknown names ------------------------------------------------------------------


def test_more_genre_words_than_slots_is_a_label_error_naming_the_count():
    with pytest.raises(LabelError, match="3 words.*at most 2"):
        _v2().label("x", "Hard Rock / Blues", "", 1000)


def test_offset_outside_the_song_is_a_label_error_when_lyrics_fill_the_window():
    labeller = _v2()
    row = labeller.label("x", "rock", "a long lyric line", 1000)
    with pytest.raises(LabelError, match="offset 1000 lies outside the song"):
        labeller.window(row, 1000)
    # short lyrics are padded, not placed: the reference accepts any offset for them
    assert labeller.window(labeller.label("x", "rock", "ab", 1000), 1000).window_tokens[:2] == (0, 0)


def test_nonsense_lengths_starts_and_rows_are_label_errors():
    labeller = _v2()
    with pytest.raises(LabelError, match="total_length"):
        labeller.label("x", "rock", "", 0)
    row = labeller.label("x", "rock", "", 1000)
    with pytest.raises(LabelError, match="start"):
        labeller.window(row, -1)
    with pytest.raises(LabelError, match="row of length"):
        labeller.describe(row.y[:-1])
    with pytest.raises(LabelError, match="row of length"):
        _v2(n_tokens=6).window(row, 0)


def test_odd_lyric_windows_and_mismatched_vocabularies_are_refused():
    with pytest.raises(ValueError, match="even"):
        _v2(n_tokens=3)
    with pytest.raises(LabelError, match="even"):
        relevant_tokens([1, 2, 3, 4], 3, 100, 0, 10)
    labels = replace(PRIOR_1B_LYRICS.labels, n_vocab=80)
    with pytest.raises(ValueError, match="n_vocab is 80.*79"):
        Labeller.for_prior(labels, reference_dir() / "ids", n_ctx=8, hop_length=128)


def test_unknown_artist_and_genre_words_map_to_id_zero_with_a_warning_and_are_listed():
    labeller = _v2()
    with pytest.warns(UserWarning, match="artist 'No Such Artist 123'.*genre word 'zzyzx'"):
        row = labeller.label("No Such Artist 123", "Rock Zzyzx", "", 1000)
    assert row.artist_id == 0 and row.genre_ids[1] == 0 and row.genre_ids[0] > 0
    assert row.unknown == ("artist 'No Such Artist 123'", "genre word 'zzyzx'")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known names are silent, also per window
        known = labeller.label("Alan Jackson", "Rock", "", 1000)
        labeller.window(known, 10)
    assert known.unknown == ()


def test_v3_unknown_names_are_looked_up_whole():
    tables = load_id_tables(reference_dir() / "ids", v3=True)
    labeller = Labeller(tables, max_genre_words=1, n_tokens=0, window_samples=1, raw_to_tokens=1)
    with pytest.warns(UserWarning, match="genre 'Rock Zzyzx'"):
        assert labeller.genre_ids("Rock Zzyzx") == [0]
    with pytest.warns(UserWarning, match="artist"):
        assert labeller.artist_id("No Such Artist 123") == 0


# -- id tables, names, vocabularies, lyric windows ---------------------------------------------


def test_missing_tables_explain_where_they_come_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="noncommercial"):
        load_id_tables(tmp_path, v3=False)


def test_id_tables_lower_case_names_let_later_lines_win_and_join_shared_ids(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Zed;1\nalpha;1\nbeta ;2\nzed;3\n\n;0\nunknown;0\n", encoding="utf-8")
    table = read_id_table(path)
    assert table.lookup("zed") == 3 and table.lookup("beta ") == 2 and table.lookup("beta") is None
    assert table.name(1) == "alpha" and table.name(0) == "_unknown" and table.name(3) == "zed"
    assert table.name(7) == "<7>" and table.max_id == 3
    path.write_text("good;1\nno id here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"t.txt:2: expected 'name;id'"):
        read_id_table(path)


def test_v2_names_become_lower_case_ascii_words():
    assert normalise_v2("  Céline  Dion!") == "c_line_dion"
    assert normalise_v2("AC/DC") == "ac_dc"
    assert normalise_v2("R&B") == "r_b"


def test_vocabularies_and_cleaning():
    assert V2.n_vocab == 80 and V3.n_vocab == 79
    assert "+" in V2.chars and "+" not in V3.chars and V2.chars.replace("+", "") == V3.chars
    assert V2.clean("Café — \\x 🎸") == "Cafe -- \nx "
    assert V3.clean("2 + 2") == "2  2"
    assert V2.decode([0, 0, *V2.encode("Hi!")]) == "Hi!"


def test_short_lyrics_are_left_padded_and_long_ones_follow_the_offset():
    tokens, indices = relevant_tokens([5, 6], 4, 100, 0, 10)
    assert tokens == (0, 0, 5, 6) and indices == (-1, -1, 0, 1)
    full = list(range(1, 101))
    assert relevant_tokens(full, 10, 1000, 0, 100)[1] == tuple(range(0, 10))
    assert relevant_tokens(full, 10, 1000, 500, 100)[1] == tuple(range(50, 60))
    assert relevant_tokens(full, 10, 1000, 990, 100)[1] == tuple(range(90, 100))
    # spec §5.3: 1000 characters, 180 s song, a 23.8 s window at 90 s -> characters 310..821
    sr = SAMPLE_RATE
    _, indices = relevant_tokens(list(range(1000)), 512, 180 * sr, 90 * sr, int(23.8 * sr))
    assert indices == tuple(range(310, 822))


# -- timing ranges -----------------------------------------------------------------------------


def test_timing_checks_name_the_problem_in_seconds():
    timing = TimingRanges.from_config(PRIOR_1B_LYRICS.labels)
    labeller = _v2(n_tokens=0, window_samples=1_000_000, timing=timing)
    with pytest.raises(LabelError, match=r"song length .*\(10.00 s\) is outside .*\[17.84 s, 600.00 s\)"):
        labeller.label("x", "rock", "", 10 * SAMPLE_RATE)
    row = labeller.label("x", "rock", "", 599 * SAMPLE_RATE, 570 * SAMPLE_RATE)
    with pytest.raises(LabelError, match=r"ends at 602.68 s, past this prior's max_duration of 600.00 s"):
        labeller.window(row, 10 * SAMPLE_RATE)  # raw_to_tokens 1: start in samples
    with pytest.raises(LabelError, match="inside the song"):
        labeller.window(row, 29 * SAMPLE_RATE)
    hi = int(timing.max_total)
    with pytest.raises(LabelError, match=f"{hi - 1} samples \\(float32, .* rounds it to {hi}\\)"):
        timing.check_total_length(hi - 1)
    assert TimingRanges.from_config(replace(PRIOR_1B_LYRICS.labels, min_duration=None)) is None


def test_timing_checks_refuse_exactly_what_the_timing_embedding_refuses():
    labels = PRIOR_1B_LYRICS.labels
    timing = TimingRanges.from_config(labels)
    embed = LabelConditioner(labels, n_time=4, out_width=2, sr=SAMPLE_RATE, include_time_signal=True, init_scale=1.0)
    lo, hi, window = int(timing.min_total), int(timing.max_total), 786_432
    totals = [lo - 1, lo, lo + 1, 3 * lo, hi - 3, hi - 2, hi - 1, hi, hi + 1]
    for total in totals:
        edges = {0, 1, total // 2, total - window, hi - window, hi - window + 1, total - 3, total - 2, total - 1, total}
        for offset in edges:
            if offset < 0:
                continue
            y = torch.tensor([[total, offset, window, 1, 1]])
            try:
                embed(y)
                embeds = True
            except ValueError:
                embeds = False
            try:
                timing.check(total, offset, window)
                accepted = True
            except LabelError:
                accepted = False
            assert accepted == embeds, (total, offset)
