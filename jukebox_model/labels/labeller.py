"""Label rows: [total_length, offset, length, artist, genre ids…, lyric tokens…] (spec §5.4, §4.3).

`Labeller.label` makes a song's row for its first window; `Labeller.window` re-targets it to the
window starting `start` tokens later, as each sampled window needs its own offset and lyrics.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import LabelConfig
from .lyrics import V2, V3, LyricsWindowError, Vocabulary, relevant_tokens
from .tables import IdTables, load_id_tables, normalise_v2


class LabelError(ValueError):
    """Label input that cannot be turned into a row (too many genre words, window past the song…)."""


@dataclass(frozen=True)
class LabelRow:
    y: tuple[int, ...]  # the row fed to the prior
    artist: str
    genre: str
    lyrics: str  # cleaned lyrics of the whole song
    full_tokens: tuple[int, ...]  # tokens of the whole song's lyrics
    indices: tuple[int, ...] | None  # character index of each window token (−1 = padding); None without lyrics

    @property
    def total_length(self) -> int:
        return self.y[0]

    @property
    def offset(self) -> int:
        return self.y[1]

    @property
    def artist_id(self) -> int:
        return self.y[3]


class Labeller:
    def __init__(self, tables: IdTables, *, max_genre_words: int, n_tokens: int, window_samples: int, raw_to_tokens: int):
        self.tables = tables
        self.vocab: Vocabulary = V3 if tables.v3 else V2
        self.max_genre_words, self.n_tokens = max_genre_words, n_tokens
        self.window_samples, self.raw_to_tokens = window_samples, raw_to_tokens

    @classmethod
    def for_prior(cls, labels: LabelConfig, ids_folder: str | Path, *, n_ctx: int, hop_length: int) -> Labeller:
        """The labeller of a prior whose windows are n_ctx tokens of `hop_length` samples."""
        return cls(
            load_id_tables(ids_folder, v3=labels.labels_v3),
            max_genre_words=labels.max_bow_genre_size,
            n_tokens=labels.n_tokens if labels.use_tokens else 0,
            window_samples=n_ctx * hop_length,
            raw_to_tokens=hop_length,
        )

    # -- names -> ids -------------------------------------------------------------------------

    def artist_id(self, artist: str) -> int:
        key = artist.lower() if self.tables.v3 else normalise_v2(artist)
        found = self.tables.artists.lookup(key)
        if found is None:
            warnings.warn(f"unknown artist {artist!r}: using id 0 (unknown)", stacklevel=3)
            return 0
        return found

    def genre_ids(self, genre: str) -> list[int]:
        """v3: the whole lower-cased name; v2: a bag of words of the normalised name, padded with −1."""
        words = [genre.lower()] if self.tables.v3 else normalise_v2(genre).split("_")
        if len(words) > self.max_genre_words:
            raise LabelError(f"genre {genre!r} has {len(words)} words; this model takes at most {self.max_genre_words}")
        ids = []
        for word in words:
            found = self.tables.genres.lookup(word)
            if found is None:
                warnings.warn(f"unknown genre {word!r}: using id 0 (unknown)", stacklevel=3)
                found = 0
            ids.append(found)
        return ids + [-1] * (self.max_genre_words - len(ids))

    # -- rows -----------------------------------------------------------------------------------

    def _lyric_window(self, full: tuple[int, ...], total_length: int, offset: int) -> tuple[list[int], tuple[int, ...] | None]:
        if self.n_tokens == 0:
            return [], None
        try:
            tokens, indices = relevant_tokens(list(full), self.n_tokens, total_length, offset, self.window_samples)
        except LyricsWindowError as e:
            raise LabelError(str(e)) from None
        return tokens, tuple(indices)

    def label(self, artist: str, genre: str, lyrics: str, total_length: int, offset: int = 0) -> LabelRow:
        if total_length <= 0 or offset < 0:
            raise LabelError(f"total_length must be positive and offset non-negative, got {total_length}, {offset}")
        cleaned = self.vocab.clean(lyrics)
        full = tuple(self.vocab.encode(cleaned))
        tokens, indices = self._lyric_window(full, total_length, offset)
        y = (total_length, offset, self.window_samples, self.artist_id(artist), *self.genre_ids(genre), *tokens)
        return LabelRow(y=y, artist=artist, genre=genre, lyrics=cleaned, full_tokens=full, indices=indices)

    def window(self, row: LabelRow, start: int) -> LabelRow:
        """The row for the window `start` tokens into the sampled span: offset moved, lyrics re-picked."""
        offset = row.y[1] + start * self.raw_to_tokens
        n_meta = len(row.y) - self.n_tokens
        tokens, indices = self._lyric_window(row.full_tokens, row.total_length, offset)
        y = (row.y[0], offset, self.window_samples, *row.y[3:n_meta], *tokens)
        return replace(row, y=y, indices=indices)

    def describe(self, y: tuple[int, ...] | list[int]) -> dict[str, str]:
        """Human-readable names of a row's artist, genres and lyric window."""
        n_meta = len(y) - self.n_tokens
        genres = [self.tables.genres.names.get(g, f"<{g}>") for g in y[4:n_meta] if g >= 0]
        return {
            "artist": self.tables.artists.names.get(y[3], f"<{y[3]}>"),
            "genre": "_".join(genres),
            "lyrics": self.vocab.decode(list(y[n_meta:])),
        }

