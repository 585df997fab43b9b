"""`make demo`'s driver: the real bridge, one take rendered through real OSC messages, then a clean stop."""

from __future__ import annotations

import json

import soundfile as sf

from bridge import demo


def test_the_demo_renders_one_take_through_osc_and_stops_cleanly_with_once(
    tiny_bundle, tmp_path, capsys, no_thread_leaks
):
    code = demo.main(
        [
            "--bundle",
            str(tiny_bundle),
            "--out",
            str(tmp_path),
            "--port",
            "0",
            "--seconds",
            "0.1",
            "--once",
            "--device",
            "cpu",
            "--timeout",
            "120",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    takes = sorted((tmp_path / "project").glob("*.wav"))
    assert [t.name.rsplit("_", 1)[1] for t in takes] == ["L0.wav", "L1.wav", "L2.wav"]
    for take in takes:
        assert sf.info(str(take)).frames == round(0.1 * 44100)
        assert json.loads(take.with_suffix(".json").read_text())["mode"] == "ancestral"
    assert "-> /jb/generate" in out and "<- take 1 level 2" in out


def test_the_demo_without_a_bundle_says_what_is_missing(tmp_path, capsys):
    assert demo.main(["--bundle", str(tmp_path / "nowhere"), "--out", str(tmp_path), "--once"]) == 2
    assert "nowhere" in capsys.readouterr().err


def _demo(tiny_bundle, tmp_path) -> int:
    return demo.main(
        ["--bundle", str(tiny_bundle), "--out", str(tmp_path), "--port", "0", "--seconds", "0.1", "--once"]
        + ["--device", "cpu", "--timeout", "120"]
    )


def test_the_demo_plays_the_bundles_demo_preset_from_the_shipped_presets(
    tiny_bundle, tmp_path, capsys, monkeypatch, no_thread_leaks
):
    monkeypatch.setattr(demo, "demo_preset", lambda bundle: "quick-sketch")  # as bundle.json names one
    assert _demo(tiny_bundle, tmp_path) == 0, capsys.readouterr().out
    (take,) = sorted((tmp_path / "project").glob("*.wav"))  # the preset renders the top level only
    record = json.loads(take.with_suffix(".json").read_text())
    assert record["preset"] == "quick-sketch" and record["session"]["genre"] == "house"


def test_a_demo_preset_that_does_not_load_stops_the_demo_with_the_reason(
    tiny_bundle, tmp_path, capsys, monkeypatch, no_thread_leaks
):
    monkeypatch.setattr(demo, "demo_preset", lambda bundle: "no-such-preset")
    assert _demo(tiny_bundle, tmp_path) == 1
    assert "the demo preset 'no-such-preset' did not load" in capsys.readouterr().err
