"""Label rows: [total_length, offset, length, artist, genre ids…, lyric tokens…] (spec §5.4, §4.3).

`Labeller.label` makes a song's row for a window at `offset`; `Labeller.window` re-targets it to
the window starting `start` tokens later, as every sampled window needs its own offset and lyrics
(the reference's `get_y`). Names are looked up and lyrics cleaned once per song; a window only
moves the offset and slices the song's tokens again, so it is cheap to call per window.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import SAMPLE_RATE, LabelConfig
from .errors import LabelError
from .lyrics import V2, V3, Vocabulary, relevant_tokens
from .tables import IdTables, load_id_tables, normalise_v2
from .timing import TimingRanges


@dataclass(frozen=True)
class LabelRow:
    y: tuple[int, ...]  # the int64 row fed to the prior
    artist: str  # as given
    genre: str  # as given
    lyrics: str  # cleaned lyrics of the whole song
    full_tokens: tuple[int, ...]  # tokens of the whole song's lyrics
    indices: tuple[int, ...] | None  # character index of each window token (−1 = padding); None without lyrics
    unknown: tuple[str, ...] = ()  # names the id tables lack, mapped to id 0, e.g. "artist 'Foo'"

    @property
    def n_tokens(self) -> int:
        return 0 if self.indices is None else len(self.indices)

    @property
    def total_length(self) -> int:
        return self.y[0]

    @property
    def offset(self) -> int:
        return self.y[1]

    @property
    def length(self) -> int:
        return self.y[2]

    @property
    def artist_id(self) -> int:
        return self.y[3]

    @property
    def genre_ids(self) -> tuple[int, ...]:
        return self.y[4 : len(self.y) - self.n_tokens]

    @property
    def window_tokens(self) -> tuple[int, ...]:
        return self.y[len(self.y) - self.n_tokens :]


class Labeller:
    """One prior's labeller: its id tables, genre slots, lyric window and window length in samples.

    `timing`, when given, refuses rows the prior's timing embedding has no row for (top priors)."""

    def __init__(
        self,
        tables: IdTables,
        *,
        max_genre_words: int,
        n_tokens: int,
        window_samples: int,
        raw_to_tokens: int,
        timing: TimingRanges | None = None,
    ):
        if max_genre_words < 1:
            raise ValueError(f"max_genre_words must be >= 1, got {max_genre_words}")
        if n_tokens < 0 or n_tokens % 2:
            raise ValueError(f"n_tokens (lyric window) must be even and >= 0, got {n_tokens}")
        if window_samples <= 0 or raw_to_tokens <= 0:
            raise ValueError(
                f"window_samples and raw_to_tokens must be positive, got {window_samples}, {raw_to_tokens}"
            )
        self.tables = tables
        self.vocab: Vocabulary = V3 if tables.v3 else V2
        self.max_genre_words, self.n_tokens = max_genre_words, n_tokens
        self.window_samples, self.raw_to_tokens = window_samples, raw_to_tokens
        self.timing = timing

    @classmethod
    def for_prior(
        cls,
        labels: LabelConfig,
        ids_folder: str | Path,
        *,
        n_ctx: int,
        hop_length: int,
        sr: int = SAMPLE_RATE,
        check_timing: bool = True,
    ) -> Labeller:
        """The labeller of a prior whose windows are n_ctx tokens of `hop_length` samples. With
        `check_timing`, a config that sets min/max_duration (the top priors') gets its rows checked."""
        tables = load_id_tables(ids_folder, v3=labels.labels_v3)
        vocab = V3 if tables.v3 else V2
        if labels.use_tokens and labels.n_vocab != vocab.n_vocab:
            raise ValueError(
                f"the prior's n_vocab is {labels.n_vocab} but the {tables.version} lyrics vocabulary "
                f"has {vocab.n_vocab} ids"
            )
        return cls(
            tables,
            max_genre_words=labels.max_bow_genre_size,
            n_tokens=labels.n_tokens if labels.use_tokens else 0,
            window_samples=n_ctx * hop_length,
            raw_to_tokens=hop_length,
            timing=TimingRanges.from_config(labels, sr) if check_timing else None,
        )

    @property
    def row_length(self) -> int:
        return 4 + self.max_genre_words + self.n_tokens

    # -- names -> ids -------------------------------------------------------------------------

    def _artist(self, artist: str) -> tuple[int, list[str]]:
        key = artist.lower() if self.tables.v3 else normalise_v2(artist)
        found = self.tables.artists.lookup(key)
        return (0, [f"artist {artist!r}"]) if found is None else (found, [])

    def _genres(self, genre: str) -> tuple[list[int], list[str]]:
        """v3: the whole lower-cased name; v2: a bag of words of the normalised name, padded with −1."""
        words = [genre.lower()] if self.tables.v3 else normalise_v2(genre).split("_")
        if len(words) > self.max_genre_words:
            raise LabelError(
                f"genre {genre!r} has {len(words)} words {words}; this model takes at most {self.max_genre_words}"
            )
        ids, unknown = [], []
        for word in words:
            found = self.tables.genres.lookup(word)
            if found is None:
                unknown.append(f"genre word {word!r}" if not self.tables.v3 else f"genre {genre!r}")
            ids.append(0 if found is None else found)
        return ids + [-1] * (self.max_genre_words - len(ids)), unknown

    def _warn_unknown(self, unknown: list[str]) -> None:
        if unknown:
            warnings.warn(
                f"not in the {self.tables.version} id tables, so conditioned as 'unknown' (id 0): {', '.join(unknown)}",
                stacklevel=3,
            )

    def artist_id(self, artist: str) -> int:
        """The artist's id; 0 (with a warning) for a name the tables lack."""
        found, unknown = self._artist(artist)
        self._warn_unknown(unknown)
        return found

    def genre_ids(self, genre: str) -> list[int]:
        """The genre slots (−1 = empty); 0 (with a warning) for each word or name the tables lack."""
        ids, unknown = self._genres(genre)
        self._warn_unknown(unknown)
        return ids

    # -- rows -----------------------------------------------------------------------------------

    def _lyric_window(
        self, full: tuple[int, ...], total_length: int, offset: int
    ) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        if self.n_tokens == 0:
            return (), None
        return relevant_tokens(full, self.n_tokens, total_length, offset, self.window_samples)

    def label(
        self, artist: str, genre: str, lyrics: str, total_length: int, offset: int = 0, *, warn: bool = True
    ) -> LabelRow:
        """The row of a song `total_length` samples long for the window at `offset` samples; `warn=False`
        leaves reporting unknown names (`LabelRow.unknown`) to the caller."""
        if total_length <= 0 or offset < 0:
            raise LabelError(f"total_length must be positive and offset non-negative, got {total_length}, {offset}")
        if self.timing is not None:
            self.timing.check(total_length, offset, self.window_samples)
        artist_id, unknown = self._artist(artist)
        genre_ids, unknown_genres = self._genres(genre)
        cleaned = self.vocab.clean(lyrics)
        full = tuple(self.vocab.encode(cleaned))
        tokens, indices = self._lyric_window(full, total_length, offset)
        if warn:
            self._warn_unknown(unknown + unknown_genres)
        y = (total_length, offset, self.window_samples, artist_id, *genre_ids, *tokens)
        return LabelRow(
            y=y,
            artist=artist,
            genre=genre,
            lyrics=cleaned,
            full_tokens=full,
            indices=indices,
            unknown=tuple(unknown + unknown_genres),
        )

    def window(self, row: LabelRow, start: int) -> LabelRow:
        """The row for the window `start` tokens (of this prior's level) after the row's offset:
        offset moved by start · raw_to_tokens, length set to this prior's window, lyrics re-picked."""
        if start < 0:
            raise LabelError(f"window start must be >= 0 tokens, got {start}")
        if len(row.y) != self.row_length:
            raise LabelError(f"a row of length {len(row.y)} is not this labeller's (length {self.row_length})")
        offset = row.y[1] + start * self.raw_to_tokens
        if self.timing is not None:
            self.timing.check(row.total_length, offset, self.window_samples)
        tokens, indices = self._lyric_window(row.full_tokens, row.total_length, offset)
        y = (row.y[0], offset, self.window_samples, *row.y[3 : 4 + self.max_genre_words], *tokens)
        return replace(row, y=y, indices=indices)

    def describe(self, y: tuple[int, ...] | list[int]) -> dict[str, str]:
        """Human-readable names of a row's artist, genres and lyric window (the reference's describe_label)."""
        if len(y) != self.row_length:
            raise LabelError(f"a row of length {len(y)} is not this labeller's (length {self.row_length})")
        n_meta = 4 + self.max_genre_words
        genres = [self.tables.genres.name(int(g)) for g in y[4:n_meta] if g >= 0]
        return {
            "artist": self.tables.artists.name(int(y[3])),
            "genre": "_".join(genres),
            "lyrics": self.vocab.decode([int(t) for t in y[n_meta:]]),
        }
