"""Label rows, lyric windows and names match the reference labeller on every case of labels_cases.json."""

from __future__ import annotations

import json
import warnings

import pytest

from jukebox_model.hparams import prior_config_from_hparams
from jukebox_model.labels import LabelError, Labeller, load_id_tables
from jukebox_model.labels.lyrics import V2, V3, relevant_tokens
from jukebox_model.labels.tables import normalise_v2
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
        return labeller.label(inputs["artist"], inputs["genre"], inputs["lyrics"], inputs["total_length"], inputs["offset"])


@pytest.mark.parametrize("case", _cases())
def test_label_row_and_info_match_the_reference(case):
    labeller = _labeller(case["labeller"])
    if case["outputs"] is None:
        with pytest.raises(LabelError):
            _label(labeller, case["inputs"])
        return
    row, out = _label(labeller, case["inputs"]), case["outputs"]
    assert list(row.y) == out["y"]
    assert row.artist_id == out["artist_id"]
    n_meta = len(row.y) - case["labeller"]["n_tokens"]
    assert list(row.y[4:n_meta]) == out["genre_ids"]
    assert list(row.y[n_meta:]) == out["window_tokens"]
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


@pytest.mark.parametrize("fixture", discover("prior"), ids=lambda f: f.name)
def test_tiny_prior_label_rows_are_reproduced(fixture):
    io = fixture.io()
    meta, inputs = io["meta"], io["inputs"]
    config = prior_config_from_hparams(fixture.hparams()["hparams"])
    labeller = Labeller.for_prior(config.labels, reference_dir() / "ids", n_ctx=meta["n_ctx"], hop_length=meta["raw_to_tokens"])
    for i, item in enumerate(inputs["metas"]):
        row = _label(labeller, item)
        assert list(row.y) == inputs["labels_y"][i].tolist()
        moved = labeller.window(row, inputs["start"])
        assert list(moved.y) == inputs["y"][i].tolist()
        if inputs["lyric_window_indices"] is not None:
            assert list(moved.indices) == list(inputs["lyric_window_indices"][i])
        assert list(row.full_tokens) == list(inputs["full_lyric_tokens"][i])


def test_errors_are_label_errors_with_reasons():
    labeller = Labeller(load_id_tables(reference_dir() / "ids", v3=False), max_genre_words=2, n_tokens=4, window_samples=100, raw_to_tokens=1)
    with pytest.raises(LabelError, match="3 words"):
        labeller.label("x", "a b c", "", 1000)
    row = labeller.label("x", "rock", "a long lyric line", 1000)
    with pytest.raises(LabelError, match="outside the song"):
        labeller.window(row, 1000)
    with pytest.raises(LabelError, match="total_length"):
        labeller.label("x", "rock", "", 0)


def test_unknown_names_map_to_id_zero_with_a_warning():
    labeller = Labeller(load_id_tables(reference_dir() / "ids", v3=True), max_genre_words=1, n_tokens=0, window_samples=1, raw_to_tokens=1)
    with pytest.warns(UserWarning, match="unknown artist"):
        assert labeller.artist_id("No Such Artist 123") == 0


def test_missing_tables_explain_where_they_come_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="noncommercial"):
        load_id_tables(tmp_path, v3=False)


def test_vocabularies_and_normalisation():
    assert V2.n_vocab == 80 and V3.n_vocab == 79 and "+" not in V3.chars
    assert V2.clean("Café\\x") == "Cafe\nx"
    assert V2.decode(V2.encode("Hi!")) == "Hi!"
    assert normalise_v2("  Céline  Dion!") == "c_line_dion"


def test_short_lyrics_are_left_padded_and_long_ones_follow_the_offset():
    tokens, indices = relevant_tokens([5, 6], 4, 100, 0, 10)
    assert tokens == [0, 0, 5, 6] and indices == [-1, -1, 0, 1]
    full = list(range(1, 101))
    assert relevant_tokens(full, 10, 1000, 0, 100)[1] == list(range(0, 10))
    assert relevant_tokens(full, 10, 1000, 500, 100)[1] == list(range(50, 60))
    assert relevant_tokens(full, 10, 1000, 990, 100)[1] == list(range(90, 100))
