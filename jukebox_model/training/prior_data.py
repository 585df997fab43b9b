"""Training windows for a prior: VQ-VAE codes of the user's songs plus their label rows.

Labels come from `metadata.json` beside the audio (format below). Songs are encoded once with a
trained VQ-VAE and the codes cached in the run folder; a window is n_ctx codes at the prior's
level (and, for an upsampler, the upper level's codes over the same span) with the label row of
that window (offset, lyrics window) as the labeller computes it for sampling.

metadata.json — one entry per audio file, keyed by its path relative to the audio folder:

    {
      "album/song1.wav": {"artist": "My Band", "genre": "Synth Pop", "lyrics": "First line\\n..."},
      "song2.flac": {"artist": "My Band", "genre": "Ambient"},
      "loop3.wav": {"artist": "Drum Kit", "genre": "Techno", "bpm": 128, "beats_per_bar": 4}
    }

Missing fields (or a missing file) mean artist/genre "unknown" and no lyrics. `bpm` (and
`beats_per_bar`, default 4) say where the bars of a song that starts on a downbeat are: with
`align_bars`, a window then starts on a bar line, so that position in the window tells the prior
where it is in the bar.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..atomic import atomic_write
from ..audio import read_audio
from ..labels import Labeller
from ..labels.tables import normalise_v2
from ..labels.tempo import bar_tokens, tempo_word, with_tempo
from ..vqvae import VQVAE
from .audio_dataset import AudioEntry

METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class SongMeta:
    artist: str = "unknown"
    genre: str = "unknown"
    lyrics: str = ""
    bpm: float | None = None  # the song's tempo, when it has one and starts on a downbeat
    beats_per_bar: int = 4


def read_metadata(audio_dir: Path) -> dict[str, SongMeta]:
    path = audio_dir / METADATA_FILE
    if not path.exists():
        warnings.warn(f"no {METADATA_FILE} in {audio_dir}: every song is labelled artist/genre 'unknown'", stacklevel=2)
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object mapping file paths to {{artist, genre, lyrics}}")
    out = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or not set(entry) <= {"artist", "genre", "lyrics", "bpm", "beats_per_bar"}:
            raise ValueError(
                f"{path}: entry {key!r} must be an object with artist, genre, lyrics, bpm and/or beats_per_bar"
            )
        if not all(isinstance(entry.get(k, ""), str) for k in ("artist", "genre", "lyrics")):
            raise ValueError(f"{path}: entry {key!r} has a non-text artist, genre or lyrics")
        bpm, beats = entry.get("bpm"), entry.get("beats_per_bar", 4)
        if bpm is not None and (isinstance(bpm, bool) or not isinstance(bpm, (int, float)) or not 20 <= bpm <= 999):
            raise ValueError(f"{path}: entry {key!r} has bpm {bpm!r}; a tempo from 20 to 999 is expected")
        if isinstance(beats, bool) or not isinstance(beats, int) or not 1 <= beats <= 99:
            raise ValueError(f"{path}: entry {key!r} has beats_per_bar {beats!r}; 1 to 99 is expected")
        out[Path(key).as_posix()] = SongMeta(**{**entry, "bpm": None if bpm is None else float(bpm)})
    return out


def write_id_tables(metadata: dict[str, SongMeta], folder: Path, *, v3: bool, tempo_words: bool = False) -> Path:
    """Id tables for the user's own artists and genres, in the reference's `name;id` format (id 0 = unknown);
    with `tempo_words`, the songs' tempo words follow the genre words."""
    version = "v3" if v3 else "v2"
    artists = sorted({(m.artist.lower() if v3 else normalise_v2(m.artist)) for m in metadata.values()} - {"unknown"})
    if v3:
        genres = sorted({m.genre.lower() for m in metadata.values()} - {"unknown"})
    else:
        genres = sorted({w for m in metadata.values() for w in normalise_v2(m.genre).split("_") if w} - {"unknown"})
        if tempo_words:
            genres += sorted({tempo_word(m.bpm) for m in metadata.values() if m.bpm is not None} - set(genres))
    folder.mkdir(parents=True, exist_ok=True)
    for kind, names in (("artist", artists), ("genre", genres)):
        lines = ["unknown;0"] + [f"{name};{i}" for i, name in enumerate(names, start=1)]
        (folder / f"{version}_{kind}_ids.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@dataclass(frozen=True)
class EncodedSong:
    path: Path
    meta: SongMeta
    n_samples: int
    codes: tuple[Tensor, ...]  # per level, (T_l,) int64


def _cache_key(path: Path, vqvae_id: str) -> str:
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{vqvae_id}".encode()).hexdigest()[:20]


@torch.no_grad()
def encode_songs(
    vqvae: VQVAE,
    entries: list[AudioEntry],
    metadata: dict[str, SongMeta],
    audio_dir: Path,
    cache_dir: Path,
    *,
    vqvae_id: str,
    chunk_seconds: float = 30.0,
) -> list[EncodedSong]:
    """Codes of every song at every level, computed once per file and VQ-VAE and cached."""
    cfg = vqvae.config
    top = cfg.hop_lengths[-1]
    chunk = max(top, int(chunk_seconds * cfg.sr) // top * top)
    device = next(vqvae.parameters()).device
    songs = []
    for entry in entries:
        cache = cache_dir / f"{_cache_key(entry.path, vqvae_id)}.pt"
        if cache.exists():
            saved = torch.load(cache, weights_only=True)
            codes, n = tuple(saved["codes"]), int(saved["n_samples"])
        else:
            audio = read_audio(entry.path, sr=cfg.sr)
            n = audio.shape[0]
            padded = torch.nn.functional.pad(audio, (0, -n % top))
            parts = [
                vqvae.encode(padded[s : s + chunk].to(device)[None, :, None]) for s in range(0, padded.shape[0], chunk)
            ]
            codes = tuple(torch.cat([p[level][0].cpu() for p in parts]) for level in range(cfg.levels))
            with atomic_write(cache) as f:
                torch.save({"codes": list(codes), "n_samples": n}, f)
        key = entry.path.relative_to(audio_dir).as_posix()
        songs.append(EncodedSong(entry.path, metadata.get(key, SongMeta()), n, codes))
    unused = set(metadata) - {s.path.relative_to(audio_dir).as_posix() for s in songs}
    if unused:
        warnings.warn(f"{METADATA_FILE} names files that are not usable audio: {sorted(unused)[:5]}", stacklevel=2)
    return songs


class PriorWindows(Dataset):
    """(z (n_ctx,), z_upper (n_ctx / cond_downsample,) or empty, y (label_length,)) per item."""

    def __init__(
        self,
        songs: list[EncodedSong],
        *,
        level: int,
        n_ctx: int,
        labeller: Labeller | None,
        cond_downsample: int | None,
        sr: int,
        min_duration: float | None,
        max_duration: float | None,
        seed: int = 0,
        align_bars: bool = False,
        tempo_words: bool = False,
    ):
        self.level, self.n_ctx, self.labeller, self.ds, self.seed = level, n_ctx, labeller, cond_downsample, seed
        self.align_bars, self.sr = align_bars, sr
        self.epoch = 0
        self.songs = []
        for song in songs:
            seconds = song.n_samples / sr
            if song.codes[level].shape[0] < n_ctx:
                warnings.warn(
                    f"skipping {song.path}: shorter than one {n_ctx}-token window at level {level}", stacklevel=2
                )
            elif (min_duration is not None and seconds < min_duration) or (
                max_duration is not None and seconds >= max_duration
            ):
                warnings.warn(
                    f"skipping {song.path}: {seconds:.1f} s is outside this prior's [{min_duration}, {max_duration}) s",
                    stacklevel=2,
                )
            else:
                self.songs.append(song)
        if not self.songs:
            raise ValueError("no song is long enough (and within the prior's duration range) to train on")
        self._ends = np.cumsum([s.codes[level].shape[0] for s in self.songs])
        self._length = max(len(self.songs), int(self._ends[-1] // n_ctx))
        self._rows = {}
        if labeller is not None:
            for i, s in enumerate(self.songs):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # unknown names were reported when the tables were made
                    genre = with_tempo(s.meta.genre, s.meta.bpm) if tempo_words else s.meta.genre
                    self._rows[i] = labeller.label(s.meta.artist, genre, s.meta.lyrics, s.n_samples, 0)

    def _bar_tokens(self, song: EncodedSong) -> float | None:
        """Tokens per bar at this level, when windows start on bar lines and the song has a tempo."""
        if not self.align_bars or song.meta.bpm is None:
            return None
        hop = round(song.n_samples / song.codes[self.level].shape[0])  # the codes cover the song, rounded up
        return bar_tokens(song.meta.bpm, song.meta.beats_per_bar, self.sr, hop)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        position = (index + rng.random()) / self._length * self._ends[-1]
        i = min(int(np.searchsorted(self._ends, position, side="right")), len(self.songs) - 1)
        song = self.songs[i]
        last = song.codes[self.level].shape[0] - self.n_ctx
        step = self.ds or 1
        bar = self._bar_tokens(song)
        if bar is not None and last >= 0:  # a bar line, on the upper level's grid when there is one
            starts = np.unique(np.round(np.arange(0, last + 1, bar) / step).astype(np.int64) * step)
            start = int(rng.choice(starts[starts <= last]))
        else:
            start = int(rng.integers(0, last // step + 1)) * step
        z = song.codes[self.level][start : start + self.n_ctx]
        z_upper = (
            song.codes[self.level + 1][start // step : (start + self.n_ctx) // step]
            if self.ds
            else torch.zeros(0, dtype=torch.long)
        )
        y = (
            torch.tensor(self.labeller.window(self._rows[i], start).y)
            if self.labeller is not None
            else torch.zeros(0, dtype=torch.long)
        )
        return z, z_upper, y
