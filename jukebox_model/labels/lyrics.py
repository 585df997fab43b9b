"""Lyrics text: cleaning, the character vocabularies and the per-window selection (spec §5.3).

Vocabularies (id = position + 1; id 0 pads and decodes to ''):
  v2, 80 ids: A–Z a–z 0–9 . , : ; ! ? - + ' " ( ) [ ] space tab newline
  v3, 79 ids: the same without '+'
"""

from __future__ import annotations

import string

from unidecode import unidecode

_COMMON = string.ascii_uppercase + string.ascii_lowercase + string.digits
V2_VOCAB = _COMMON + ".,:;!?-+'\"()[] \t\n"
V3_VOCAB = _COMMON + ".,:;!?-'\"()[] \t\n"


class Vocabulary:
    def __init__(self, chars: str):
        self.chars = chars
        self.ids = {c: i + 1 for i, c in enumerate(chars)}

    @property
    def n_vocab(self) -> int:
        return len(self.chars) + 1

    def clean(self, text: str) -> str:
        """Transliterate to ASCII, turn backslashes into newlines, drop what the vocabulary lacks."""
        ascii_text = unidecode(text).replace("\\", "\n")
        return "".join(c for c in ascii_text if c in self.ids)

    def encode(self, cleaned: str) -> list[int]:
        return [self.ids[c] for c in cleaned]

    def decode(self, tokens: list[int]) -> str:
        return "".join(self.chars[t - 1] for t in tokens if t > 0)


V2 = Vocabulary(V2_VOCAB)
V3 = Vocabulary(V3_VOCAB)


class LyricsWindowError(ValueError):
    pass


def relevant_tokens(full: list[int], n_tokens: int, total_length: int, offset: int, duration: int) -> tuple[list[int], list[int]]:
    """The n_tokens lyric characters for a window at `offset` of `duration` samples in a song of
    `total_length`, assuming lyrics spread linearly over the song; and each token's character index
    (−1 for left padding when the lyrics are shorter than the window)."""
    if n_tokens == 0:
        return [], []
    if len(full) < n_tokens:
        pad = n_tokens - len(full)
        return [0] * pad + list(full), [-1] * pad + list(range(len(full)))
    if not 0 <= offset < total_length:
        raise LyricsWindowError(
            f"window offset {offset} lies outside the song (0 ≤ offset < total_length = {total_length}), "
            "so no lyrics can be placed in it"
        )
    half = n_tokens // 2
    midpoint = int(len(full) * (offset + duration / 2.0) / total_length)
    midpoint = min(max(midpoint, half), len(full) - half)
    return list(full[midpoint - half : midpoint + half]), list(range(midpoint - half, midpoint + half))
