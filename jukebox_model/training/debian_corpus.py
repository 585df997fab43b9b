"""Build a training corpus from the freely licensed game music that Debian packages ship.

    apt-get install -y wesnoth-1.16-music ufoai-music warzone2100-music nexuiz-music
    python -m jukebox_model.training.debian_corpus --out data/debian_music

Each package's recordings (OGG/Opus files, or OGG members of the Quake-style `.pk3` zip archives
that ufoai and nexuiz use) are decoded, mixed to mono, resampled to 44.1 kHz and written as 16-bit
WAV into the layout the trainers read:

    OUT/train/<package>/<track>.wav   + OUT/train/metadata.json   (jukebox-train --audio-dir OUT/train)
    OUT/eval/<package>/<track>.wav    + OUT/eval/metadata.json    (held out: never trained on)
    OUT/split.json                    which track went where
    OUT/tracks.json                   per track: source, package, artist, genre, licence, copyright, seconds

Labels: artist = the composer where the package says who wrote the track (Vorbis `artist` tag,
warzone2100's album.json `author`), else the package's name; genre = one style word per package.
Licences come from the package's copyright file (per-file stanzas where it has them, ufoai), from
warzone2100's per-album license.txt, or from the file's own `license` tag; a track whose licence is
not on the free list below is left out. The selection is deterministic: the same packages give the
same corpus.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import re
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..audio import resample, write_wav
from ..config import SAMPLE_RATE

AUDIO_SUFFIXES = (".ogg", ".opus", ".flac", ".wav")

# Licences accepted for a shipped model's training data (SPDX-style names as Debian writes them).
FREE_LICENCES = (
    "GPL-2",
    "GPL-2+",
    "GPL-3",
    "GPL-3+",
    "LGPL-2.1+",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-3.0+",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "public-domain",
    "Expat",
    "GPL",
)


@dataclass(frozen=True)
class PackageSpec:
    """How to find and label one package's music."""

    package: str
    genre: str  # one style word for every track of the package
    artist: str  # used when the track names no composer
    roots: tuple[str, ...]  # folders (or .pk3 archives) under which the recordings lie
    member_prefix: str = ""  # inside a .pk3: only members under this folder
    default_licence: str = "GPL-2+"  # the package-wide licence of its copyright file
    skip: tuple[str, ...] = ()  # fnmatch patterns of file names that are not music (jingles, tests)


PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec(
        "wesnoth-1.16-music",
        "orchestral",
        "wesnoth",
        ("/usr/share/games/wesnoth/1.16/data/core/music",),
        skip=("silence.ogg",),
    ),
    PackageSpec(
        "ufoai-music",
        "cinematic",
        "ufoai",
        ("/usr/share/games/ufoai/base/0music.pk3",),
        member_prefix="music/",
        skip=("dynamictest-*",),
    ),
    PackageSpec("warzone2100-music", "electronic", "warzone2100", ("/usr/share/games/warzone2100/music",)),
    PackageSpec(
        "nexuiz-music",
        "techno",
        "nexuiz",
        ("/usr/share/games/nexuiz/data/music.pk3",),
        member_prefix="sound/cdtracks/",
        skip=("thunder.ogg",),
    ),
)
# fb-music-high is not used: it ships tracker modules (.xm), not recordings.


@dataclass(frozen=True)
class Track:
    """One recording found in a package, before conversion."""

    package: str
    source: str  # file path, or 'archive.pk3:member'
    name: str  # file name without suffix, unique within the package
    artist: str
    genre: str
    licence: str
    copyright: str = ""
    seconds: float = 0.0

    @property
    def relative(self) -> str:
        """Where its WAV goes inside train/ or eval/ (and its metadata.json key)."""
        return f"{self.package}/{self.name}.wav"


# --- copyright files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyrightStanza:
    patterns: tuple[str, ...]
    copyright: str
    licence: str


def parse_copyright(text: str) -> list[CopyrightStanza]:
    """The `Files:` stanzas of a machine-readable (DEP-5) copyright file; [] for a free-form one."""
    stanzas = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, list[str]] = {}
        current = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and current is not None:
                fields[current].append(line.strip())
            elif ":" in line:
                current, _, value = line.partition(":")
                current = current.strip().lower()
                fields[current] = [value.strip()] if value.strip() else []
        if "files" not in fields or "license" not in fields:
            continue
        patterns = tuple(p for line in fields["files"] for p in line.split())
        licence = fields["license"][0] if fields["license"] else ""
        holders = "; ".join(dict.fromkeys(line for line in fields.get("copyright", []) if line and line != "."))
        stanzas.append(CopyrightStanza(patterns, holders, licence))
    return stanzas


def licence_for(path: str, stanzas: list[CopyrightStanza]) -> CopyrightStanza | None:
    """The last stanza whose pattern matches `path` (DEP-5: later stanzas override earlier ones)."""
    found = None
    for stanza in stanzas:
        if any(fnmatch.fnmatchcase(path, p) for p in stanza.patterns):
            found = stanza
    return found


def is_free(licence: str) -> bool:
    """Every alternative of an 'A or B' licence expression is checked; one free one suffices."""
    alternatives = [a.strip() for a in re.split(r"\s+or\s+|\|", licence, flags=re.IGNORECASE) if a.strip()]
    return any(a in FREE_LICENCES for a in alternatives)


# --- finding the recordings ----------------------------------------------------------------------


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)


def _tags(data: bytes | str) -> dict[str, str]:
    try:
        with sf.SoundFile(io.BytesIO(data) if isinstance(data, bytes) else data) as f:
            return {k: v for k, v in f.copy_metadata().items() if isinstance(v, str)}
    except (sf.LibsndfileError, RuntimeError):
        return {}


def _warzone_authors(root: Path) -> dict[str, tuple[str, str]]:
    """album-relative file -> (author, licence) from warzone2100's album.json and license.txt."""
    out = {}
    for album in sorted(root.glob("albums/*/album.json")):
        try:
            data = json.loads(album.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        licence_file = album.parent / "license.txt"
        text = licence_file.read_text(encoding="utf-8", errors="replace") if licence_file.exists() else ""
        # license.txt: CC-BY-SA-3.0+ or GPL-2+ for every track of the album, except a track it names as GPL-only
        album_licence = "CC-BY-SA-3.0+ or GPL-2+" if "CC-BY-SA-3.0" in text else "GPL-2+"
        gpl_only = set(re.findall(r"except\*?\s+(\w+)", text))
        for track in data.get("tracks", []):
            file = track.get("filename")
            if not file:
                continue
            licence = "GPL-2+" if Path(file).stem in gpl_only else album_licence
            out[f"{album.parent.name}/{file}"] = (str(track.get("author") or data.get("author") or ""), licence)
    return out


def find_tracks(spec: PackageSpec, *, doc_root: Path = Path("/usr/share/doc")) -> list[Track]:
    """The package's recordings with labels and licences (durations not yet read)."""
    copyright_path = doc_root / spec.package / "copyright"
    stanzas = (
        parse_copyright(copyright_path.read_text(encoding="utf-8", errors="replace")) if copyright_path.exists() else []
    )
    tracks: list[Track] = []
    for root in map(Path, spec.roots):
        if root.suffix == ".pk3" and root.is_file():
            with zipfile.ZipFile(root) as z:
                members = sorted(
                    m for m in z.namelist() if m.startswith(spec.member_prefix) and m.lower().endswith(AUDIO_SUFFIXES)
                )
            for member in members:
                if any(fnmatch.fnmatchcase(Path(member).name, p) for p in spec.skip):
                    continue
                # ufoai's copyright names files as base/music/X.ogg; the archive holds music/X.ogg
                stanza = licence_for(f"{root.parent.name}/{member}", stanzas) or licence_for(member, stanzas)
                licence = stanza.licence if stanza else spec.default_licence
                tracks.append(
                    Track(
                        spec.package,
                        f"{root}:{member}",
                        _stem(member),
                        spec.artist,
                        spec.genre,
                        licence,
                        stanza.copyright if stanza else "",
                    )
                )
        elif root.is_dir():
            authors = _warzone_authors(root) if (root / "albums").is_dir() else {}
            for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
                if any(fnmatch.fnmatchcase(path.name, p) for p in spec.skip):
                    continue
                rel = path.relative_to(root).as_posix()
                tags = _tags(str(path))
                artist, licence = spec.artist, spec.default_licence
                if rel.removeprefix("albums/") in authors:
                    author, licence = authors[rel.removeprefix("albums/")]
                    artist = author or artist
                elif tags.get("artist"):
                    artist = tags["artist"]
                copyright_text = tags.get("copyright", "")
                name = _stem(rel.replace("/", "_").removeprefix("albums_"))
                tracks.append(Track(spec.package, str(path), name, artist, spec.genre, licence, copyright_text))
    return tracks


# --- selection and split (pure) ------------------------------------------------------------------


def select(tracks: list[Track], *, per_package: int, min_seconds: float) -> list[Track]:
    """Free, long-enough tracks; at most `per_package` of each package, spread evenly over its
    name-sorted list (so one album or composer does not take every slot)."""
    out = []
    for package in sorted({t.package for t in tracks}):
        usable = sorted(
            (t for t in tracks if t.package == package and is_free(t.licence) and t.seconds >= min_seconds),
            key=lambda t: t.name,
        )
        if len(usable) > per_package:
            picks = np.linspace(0, len(usable) - 1, per_package).round().astype(int)
            usable = [usable[i] for i in sorted(set(picks.tolist()))]
        out.extend(usable)
    return out


def split(tracks: list[Track], *, eval_per_package: int) -> tuple[list[Track], list[Track]]:
    """(train, eval): the eval tracks are every package's middle ones, so each style is held out once."""
    train, held = [], []
    for package in sorted({t.package for t in tracks}):
        mine = sorted((t for t in tracks if t.package == package), key=lambda t: t.name)
        n_eval = min(eval_per_package, max(0, len(mine) - 1))  # a package keeps one track to train on
        chosen = set(np.linspace(0, len(mine) - 1, n_eval + 2)[1:-1].round().astype(int).tolist()) if n_eval else set()
        for i, t in enumerate(mine):
            (held if i in chosen else train).append(t)
    return train, held


def metadata(tracks: Iterable[Track]) -> dict[str, dict[str, str]]:
    """metadata.json for the trainers: relative WAV path -> artist and genre."""
    return {t.relative: {"artist": t.artist, "genre": t.genre} for t in tracks}


# --- decoding and writing ------------------------------------------------------------------------


def _open(track: Track) -> io.BytesIO | str:
    if ".pk3:" in track.source:
        archive, member = track.source.split(".pk3:", 1)
        with zipfile.ZipFile(archive + ".pk3") as z:
            return io.BytesIO(z.read(member))
    return track.source


def duration(track: Track) -> float:
    try:
        info = sf.info(_open(track))
    except (sf.LibsndfileError, RuntimeError):
        return 0.0
    return info.frames / info.samplerate if info.samplerate else 0.0


def decode(track: Track, *, max_seconds: float | None) -> torch.Tensor:
    """Mono float32 at 44.1 kHz, at most `max_seconds` long (the start of the track)."""
    with sf.SoundFile(_open(track)) as f:
        frames = f.frames if max_seconds is None else min(f.frames, int(max_seconds * f.samplerate))
        data = f.read(frames, dtype="float32", always_2d=True)
        sr = f.samplerate
    audio = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    return resample(audio, sr, SAMPLE_RATE) if sr != SAMPLE_RATE else audio


def build(
    out: Path,
    specs: Iterable[PackageSpec] = PACKAGES,
    *,
    per_package: int = 10,
    eval_per_package: int = 1,
    min_seconds: float = 40.0,
    max_seconds: float | None = 150.0,
    doc_root: Path = Path("/usr/share/doc"),
    log=print,
) -> dict:
    found: list[Track] = []
    for spec in specs:
        if not any(Path(r).exists() for r in spec.roots):
            log(f"{spec.package}: not installed (apt-get install -y {spec.package}), skipped")
            continue
        tracks = [replace(t, seconds=duration(t)) for t in find_tracks(spec, doc_root=doc_root)]
        refused = sorted({t.licence for t in tracks if not is_free(t.licence)})
        log(f"{spec.package}: {len(tracks)} recordings" + (f", licences refused: {refused}" if refused else ""))
        found.extend(tracks)
    chosen = select(found, per_package=per_package, min_seconds=min_seconds)
    train, held = split(chosen, eval_per_package=eval_per_package)
    if not train:
        raise SystemExit("no usable recordings found: install the music packages first")
    records = []
    for part, tracks in (("train", train), ("eval", held)):
        for t in tracks:
            audio = decode(t, max_seconds=max_seconds)
            target = out / part / t.relative
            target.parent.mkdir(parents=True, exist_ok=True)
            write_wav(target, audio, sr=SAMPLE_RATE, subtype="pcm16")
            records.append({**asdict(t), "split": part, "seconds": round(audio.shape[0] / SAMPLE_RATE, 3)})
            log(f"  {part}: {t.relative} ({records[-1]['seconds']:.0f} s, {t.artist}, {t.licence})")
        (out / part).mkdir(parents=True, exist_ok=True)
        (out / part / "metadata.json").write_text(json.dumps(metadata(tracks), indent=2) + "\n", encoding="utf-8")
    (out / "split.json").write_text(
        json.dumps({"train": [t.relative for t in train], "eval": [t.relative for t in held]}, indent=2) + "\n",
        encoding="utf-8",
    )
    (out / "tracks.json").write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    total = sum(r["seconds"] for r in records if r["split"] == "train")
    log(f"{len(train)} training tracks ({total / 60:.1f} min), {len(held)} held out -> {out}")
    return {"train": train, "eval": held, "records": records}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jukebox_model.training.debian_corpus", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-package", type=int, default=10, help="tracks taken from each package")
    p.add_argument("--eval-per-package", type=int, default=1, help="of those, held out for evaluation")
    p.add_argument("--min-seconds", type=float, default=40.0, help="shorter recordings (jingles) are left out")
    p.add_argument(
        "--max-seconds", type=float, default=150.0, help="longer tracks are cut to their start (0: keep whole)"
    )
    p.add_argument("--packages", nargs="*", default=None, help="package names (default: all known)")
    args = p.parse_args(argv)
    specs = [s for s in PACKAGES if args.packages is None or s.package in args.packages]
    build(
        args.out,
        specs,
        per_package=args.per_package,
        eval_per_package=args.eval_per_package,
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
