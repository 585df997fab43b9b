"""Lyrics text: cleaning, the character vocabularies and the per-window selection (spec §5.3, §4.6).

Vocabularies (id = position + 1; id 0 pads and decodes to ''):
  v2, 80 ids: A–Z a–z 0–9 . , : ; ! ? - + ' " ( ) [ ] space tab newline
  v3, 79 ids: the same without '+'
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from unidecode import unidecode

from .errors import LabelError

_COMMON = string.ascii_uppercase + string.ascii_lowercase + string.digits
V2_VOCAB = _COMMON + ".,:;!?-+'\"()[] \t\n"
V3_VOCAB = _COMMON + ".,:;!?-'\"()[] \t\n"


class Vocabulary:
    def __init__(self, chars: str):
        if len(set(chars)) != len(chars):
            raise ValueError(f"vocabulary characters repeat: {chars!r}")
        self.chars = chars
        self.ids = {c: i + 1 for i, c in enumerate(chars)}

    @property
    def n_vocab(self) -> int:
        return len(self.chars) + 1  # + the padding id 0

    def clean(self, text: str) -> str:
        """Transliterate to ASCII, turn backslashes into newlines, drop what the vocabulary lacks."""
        ascii_text = unidecode(text).replace("\\", "\n")
        return "".join(c for c in ascii_text if c in self.ids)

    def encode(self, cleaned: str) -> list[int]:
        """Ids of already cleaned text (a character outside the vocabulary is a KeyError)."""
        return [self.ids[c] for c in cleaned]

    def decode(self, tokens: Sequence[int]) -> str:
        return "".join(self.chars[t - 1] for t in tokens if t > 0)


V2 = Vocabulary(V2_VOCAB)
V3 = Vocabulary(V3_VOCAB)


def relevant_tokens(
    full: Sequence[int], n_tokens: int, total_length: int, offset: int, duration: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The n_tokens lyric characters for a window at `offset` of `duration` samples in a song of
    `total_length` samples, assuming the lyrics spread linearly over the song; and each token's
    character index (−1 for the left padding when the lyrics are shorter than the window).

    The window is centred on the character under the window's middle, pulled back inside the
    lyrics; a partial window still counts its full `duration` (spec §8.13)."""
    if n_tokens < 0 or n_tokens % 2:
        raise LabelError(f"the lyric window must be an even number of tokens, got {n_tokens}")
    if n_tokens == 0:
        return (), ()
    if len(full) < n_tokens:
        pad = n_tokens - len(full)
        return (0,) * pad + tuple(full), (-1,) * pad + tuple(range(len(full)))
    if not 0 <= offset < total_length:
        raise LabelError(
            f"window offset {offset} lies outside the song (0 <= offset < total_length = {total_length}), "
            "so no lyrics can be placed in it"
        )
    half = n_tokens // 2
    midpoint = int(len(full) * (offset + duration / 2.0) / total_length)
    midpoint = min(max(midpoint, half), len(full) - half)
    return tuple(full[midpoint - half : midpoint + half]), tuple(range(midpoint - half, midpoint + half))
