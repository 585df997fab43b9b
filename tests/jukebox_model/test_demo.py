"""`make demo` renders every level of a clip into ./demo_out/ from what ships with the checkout."""

from __future__ import annotations

import pytest
import soundfile as sf

from jukebox_model.cli import demo
from tests.reference import discover, reference_dir


@pytest.mark.skipif(not discover("vqvae"), reason="no VQ-VAE fixture in JUKEBOX_REFERENCE_DIR")
def test_demo_writes_input_and_every_level(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JUKEBOX_REFERENCE_DIR", str(reference_dir()))  # absolute, before leaving the checkout
    monkeypatch.chdir(tmp_path)
    assert demo.main() == 0
    written = sorted(p.name for p in (tmp_path / "demo_out").iterdir())
    assert written == ["input.wav", "level0.wav", "level1.wav", "level2.wav"]
    frames = {sf.info(tmp_path / "demo_out" / name).frames for name in written}
    assert len(frames) == 1
    assert "spectral convergence" in capsys.readouterr().out


def test_demo_without_a_checkpoint_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JUKEBOX_REFERENCE_DIR", str(tmp_path))
    assert demo.main() == 2
    assert str(tmp_path) in capsys.readouterr().err
