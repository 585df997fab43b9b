"""The Debian music converter's pure parts (copyright parsing, licence checks, selection, split,
metadata) and one end-to-end build on a fake package synthesised in a temp folder."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import soundfile as sf

from jukebox_model.training import debian_corpus as dc
from jukebox_model.training.prior_data import read_metadata

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Fake

Files: *
Copyright: 2002-2014, The Team
License: GPL-2+

Files:
 base/music/a.ogg
 base/music/b*.ogg
Copyright:
 Alice Composer
 Bob
License: CC-BY-SA-3.0

Files: base/music/secret.ogg
Copyright: Someone
License: proprietary
"""


def test_parse_copyright_and_last_matching_stanza_wins():
    stanzas = dc.parse_copyright(DEP5)
    assert [s.licence for s in stanzas] == ["GPL-2+", "CC-BY-SA-3.0", "proprietary"]
    assert stanzas[1].patterns == ("base/music/a.ogg", "base/music/b*.ogg")
    assert stanzas[1].copyright == "Alice Composer; Bob"
    assert dc.licence_for("base/music/b2.ogg", stanzas).licence == "CC-BY-SA-3.0"
    assert dc.licence_for("base/music/other.ogg", stanzas).licence == "GPL-2+"
    assert dc.licence_for("base/music/secret.ogg", stanzas).licence == "proprietary"
    assert dc.parse_copyright("This package is free-form text.\n\nGPL-2") == []


def test_is_free_checks_each_alternative():
    assert dc.is_free("GPL-2+")
    assert dc.is_free("CC-BY-SA-3.0+ or GPL-2+")
    assert dc.is_free("proprietary or CC0-1.0")
    assert not dc.is_free("proprietary")
    assert not dc.is_free("CC-BY-NC-3.0")
    assert not dc.is_free("")


def _track(package, name, seconds=100.0, licence="GPL-2+", artist="x"):
    return dc.Track(package, f"/src/{package}/{name}.ogg", name, artist, "style", licence, seconds=seconds)


def test_select_drops_unfree_and_short_and_spreads_the_picks():
    tracks = [_track("p", f"t{i:02d}") for i in range(10)] + [
        _track("p", "short", seconds=5),
        _track("p", "nc", licence="CC-BY-NC-4.0"),
        _track("q", "only"),
    ]
    chosen = dc.select(tracks, per_package=4, min_seconds=30)
    names = [t.name for t in chosen if t.package == "p"]
    assert names == ["t00", "t03", "t06", "t09"]  # evenly over the sorted list, first and last included
    assert "short" not in names and "nc" not in names
    assert [t.name for t in chosen if t.package == "q"] == ["only"]


def test_split_holds_out_middle_tracks_and_keeps_one_to_train_per_package():
    tracks = [_track("p", f"t{i}") for i in range(5)] + [_track("q", "solo")]
    train, held = dc.split(tracks, eval_per_package=1)
    assert [t.name for t in held] == ["t2"]  # q has one track only: it stays in training
    assert {t.name for t in train} == {"t0", "t1", "t3", "t4", "solo"}
    assert not {t.relative for t in train} & {t.relative for t in held}
    train2, held2 = dc.split(tracks, eval_per_package=2)
    assert len(held2) == 2 and len(train2) == 4


def test_metadata_is_keyed_by_relative_wav_path():
    meta = dc.metadata([_track("p", "song", artist="Alice")])
    assert meta == {"p/song.wav": {"artist": "Alice", "genre": "style"}}


def _tone(seconds, sr, freq):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_build_on_a_synthesised_package(tmp_path):
    # a folder package (48 kHz stereo OGG with an artist tag) and a .pk3 package with a DEP-5 copyright
    music = tmp_path / "games" / "fake" / "music"
    music.mkdir(parents=True)
    for i, name in enumerate(["one", "two", "three"]):
        stereo = np.stack([_tone(3.0, 48000, 220 * (i + 1))] * 2, axis=1)
        with sf.SoundFile(
            music / f"{name}.ogg", "w", samplerate=48000, channels=2, format="OGG", subtype="VORBIS"
        ) as f:
            f.artist = "Tag Composer"
            f.write(stereo)
    sf.write(music / "jingle.ogg", _tone(0.5, 44100, 440), 44100, format="OGG", subtype="VORBIS")
    pk3_dir = tmp_path / "games" / "arch" / "base"
    pk3_dir.mkdir(parents=True)
    with zipfile.ZipFile(pk3_dir / "0music.pk3", "w") as z:
        for name in ("a", "b1", "secret"):
            path = tmp_path / f"{name}.ogg"
            sf.write(path, _tone(2.5, 44100, 330), 44100, format="OGG", subtype="VORBIS")
            z.write(path, f"music/{name}.ogg")
        z.writestr("maps/readme.txt", "not music")
    docs = tmp_path / "doc"
    (docs / "fake-music").mkdir(parents=True)
    (docs / "fake-music" / "copyright").write_text("Free-form: GPL-2+\n")
    (docs / "arch-music").mkdir()
    (docs / "arch-music" / "copyright").write_text(DEP5)
    specs = [
        dc.PackageSpec("fake-music", "orchestral", "fake", (str(music),)),
        dc.PackageSpec("arch-music", "cinematic", "arch", (str(pk3_dir / "0music.pk3"),), member_prefix="music/"),
        dc.PackageSpec("absent-music", "none", "absent", (str(tmp_path / "nowhere"),)),
    ]
    out = tmp_path / "corpus"
    logs = []
    dc.build(
        out, specs, per_package=10, eval_per_package=1, min_seconds=1.0, max_seconds=2.0, doc_root=docs, log=logs.append
    )

    split = json.loads((out / "split.json").read_text())
    records = {f"{r['package']}/{r['name']}": r for r in json.loads((out / "tracks.json").read_text())}
    assert any("absent-music: not installed" in line for line in logs)
    assert "arch-music/secret" not in records  # proprietary: refused
    assert "fake-music/jingle" not in records  # shorter than min_seconds
    assert records["arch-music/a"]["licence"] == "CC-BY-SA-3.0"
    assert records["arch-music/a"]["copyright"] == "Alice Composer; Bob"
    assert records["fake-music/one"]["artist"] == "Tag Composer" and records["fake-music/one"]["licence"] == "GPL-2+"
    assert records["arch-music/a"]["source"].endswith("0music.pk3:music/a.ogg")
    assert split["eval"] == ["arch-music/a.wav", "fake-music/three.wav"]  # the middle of each sorted list
    assert not set(split["train"]) & set(split["eval"])
    for part in ("train", "eval"):
        meta = read_metadata(out / part)  # the trainers' own reader accepts it
        assert sorted(meta) == sorted(split[part])
        for rel in meta:
            info = sf.info(out / part / rel)
            assert info.samplerate == 44100 and info.channels == 1
            assert abs(info.frames / info.samplerate - 2.0) < 0.01  # cut to max_seconds
    assert read_metadata(out / "train")["fake-music/one.wav"].genre == "orchestral"
