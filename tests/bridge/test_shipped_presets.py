"""The presets that ship with the bridge: found wherever it is started, valid, and naming only artists and
genres the shipped (embedded) model knows, so loading one never conditions a take as 'unknown'."""

from __future__ import annotations

import os
import tomllib

import pytest

from bridge.session.midi_map import load_midi_map
from bridge.session.params import session_from_values
from bridge.settings import DEFAULT_PRESETS_DIR, BridgeSettings
from jukebox_model.bundle_dir import DEFAULT_BUNDLE_DIR, read_manifest
from jukebox_model.labels.tables import load_id_tables, normalise_v2

PRESETS = sorted(p for p in DEFAULT_PRESETS_DIR.glob("*.toml") if p.name != "midi.toml")


def test_the_default_presets_folder_is_the_shipped_one_whatever_the_working_folder(tmp_path):
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert BridgeSettings().presets_dir == DEFAULT_PRESETS_DIR and DEFAULT_PRESETS_DIR.is_absolute()
    finally:
        os.chdir(cwd)
    assert len(PRESETS) >= 4


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_each_shipped_preset_names_an_artist_and_genre_of_the_embedded_models_tables(path):
    manifest = read_manifest(DEFAULT_BUNDLE_DIR)
    tables = load_id_tables(DEFAULT_BUNDLE_DIR / (manifest.ids or "ids"), v3=False)
    values = tomllib.loads(path.read_text())
    values.pop("description", None)
    session = session_from_values(values, source=path.name)
    assert tables.artists.lookup(normalise_v2(session.artist)) not in (None, 0), session.artist
    for word in normalise_v2(session.genre).split("_"):
        assert tables.genres.lookup(word) not in (None, 0), session.genre


def test_the_shipped_midi_map_recalls_only_presets_that_ship():
    mapping = load_midi_map(DEFAULT_PRESETS_DIR / "midi.toml")
    assert set(mapping.programs.values()) <= {p.stem for p in PRESETS}
