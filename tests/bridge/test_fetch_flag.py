"""`jukebox-bridge --fetch`: the official bundle is downloaded into --official-root (from a mirror set by
$JUKEBOX_FETCH_BASE_URL) and the bridge's model check then finds every file and the id tables."""

from __future__ import annotations

import io

import pytest

from bridge.cli import build_parser, check_model_files, fetch_official, settings_from_args
from bridge.settings import SettingsError
from jukebox_model import official
from jukebox_model.fetch import BASE_URL_ENV, IDS_URL_ENV
from tests.jukebox_model.test_fetch import _mirror, server  # noqa: F401 - the HTTP server fixture


def _settings(tmp_path, *extra: str):
    args = build_parser().parse_args(
        ["--project", str(tmp_path / "project"), "--official-root", str(tmp_path / "official"), *extra]
    )
    return args, settings_from_args(args)


def test_fetch_downloads_the_official_bundle_and_its_id_tables_then_the_model_check_passes(
    server,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    files = _mirror(server.root)
    monkeypatch.setenv(BASE_URL_ENV, server.url)
    monkeypatch.setenv(IDS_URL_ENV, server.ids_url)
    args, settings = _settings(tmp_path, "--fetch", "--accept-licence", "--official-bundle", "5b_lyrics")
    assert args.fetch and args.accept_licence
    with pytest.raises(SettingsError, match="official checkpoints missing"):
        check_model_files(settings)
    fetched = fetch_official(settings, accept_licence=True)
    assert fetched.ids_dir == tmp_path / "official" / "ids"
    check_model_files(fetched)
    for rel, data in files.items():
        assert (tmp_path / "official" / rel).read_bytes() == data
    spec = official.BUNDLES["5b_lyrics"]
    assert all((tmp_path / "official" / official.CHECKPOINT_PATHS[m]).is_file() for m in (spec.vqvae, *spec.priors))


def test_fetch_without_a_root_or_the_licence_is_a_clear_error(server, tmp_path, monkeypatch):  # noqa: F811
    _mirror(server.root)
    monkeypatch.setenv(BASE_URL_ENV, server.url)
    monkeypatch.setenv(IDS_URL_ENV, server.ids_url)
    args = build_parser().parse_args(["--project", str(tmp_path / "project"), "--fetch"])
    with pytest.raises(SettingsError, match="--official-root"):
        fetch_official(settings_from_args(args), accept_licence=True)
    _, settings = _settings(tmp_path, "--fetch", "--official-bundle", "1b_lyrics")
    monkeypatch.setattr("sys.stdin", io.StringIO())  # not a terminal: nobody to ask
    with pytest.raises(SettingsError, match="--fetch: .*licen"):
        fetch_official(settings, accept_licence=False)
