"""A bundle whose top prior was trained with tempo words on bar-aligned windows (bundle.json
"tempo_words": true) is given each take's tempo: its label gets the tempo word and its windows start on
bar lines; any other bundle ignores the tempo."""

from __future__ import annotations

import json
import shutil

import pytest

from jukebox_model.api import BundleSource, Mode, TakeRequest
from jukebox_model.bundle_dir import DEFAULT_BUNDLE_DIR, load_bundle_dir
from jukebox_model.engine import load_engine
from jukebox_model.sampling.schedule import bar_hop


def _bundle_with_tempo(tmp_path, tempo_words: bool):
    folder = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE_DIR, folder)
    manifest = json.loads((folder / "bundle.json").read_text())
    manifest["tempo_words"] = tempo_words
    (folder / "bundle.json").write_text(json.dumps(manifest))
    return folder


def _request(bpm: float) -> TakeRequest:
    return TakeRequest(
        mode=Mode.ANCESTRAL,
        artist="tr808 machine",
        genre="techno",
        new_samples=22050,
        total_samples=60 * 22050,
        bpm=bpm,
    )


def test_only_a_bundle_trained_with_tempo_words_labels_a_take_with_its_tempo(tmp_path):
    # the shipped tables have no tempo words: a label that carries one names it as unknown
    with_tempo = load_engine(BundleSource(_bundle_with_tempo(tmp_path / "a", True)), device="cpu")
    assert with_tempo.check(_request(128.0)) == ["genre word 'bpm126'"]
    plain = load_engine(BundleSource(_bundle_with_tempo(tmp_path / "b", False)), device="cpu")
    assert plain.check(_request(128.0)) == []


def test_the_manifest_marks_the_top_prior_only(tmp_path):
    sampler, manifest = load_bundle_dir(_bundle_with_tempo(tmp_path, True))
    top = max(sampler.levels)
    assert manifest.tempo_words and sampler.levels[top].bar_tempo
    assert not any(model.bar_tempo for level, model in sampler.levels.items() if level != top)


@pytest.mark.parametrize(
    "hop, bar, n_ctx, expected",
    [
        (256, 159.0, 512, 159),  # one bar: the most whole bars within the hop
        (256, 100.5, 512, 201),  # two bars, rounded to a token
        (64, 159.0, 512, 159),  # at least one bar, even past the hop
        (256, 600.0, 512, 256),  # a bar longer than the window: the hop as it was
    ],
)
def test_window_hops_are_whole_bars(hop, bar, n_ctx, expected):
    assert bar_hop(hop, bar, n_ctx) == expected
