"""The tempo as a genre word: a label a v2 prior can be trained and sampled with, in 8-BPM buckets.

Jukebox's labels have no tempo; a loop model without one picks its own tempo inside a style's range,
and a take trimmed to whole bars at the session's tempo then ends off the beat. The v2 genre is a bag
of words, so one more word per song ("bpm126" for 126-133 BPM) conditions the prior on its tempo
without any new part in the model: the trainer adds it from metadata.json's `bpm`, and a bundle that
was trained so says `"tempo_words": true` in bundle.json, so the sampler adds the session's.
"""

from __future__ import annotations

LOWEST_BPM = 70  # the first bucket's lower edge; slower tempos share it
BUCKET_BPM = 8
BUCKETS = 9  # 70-77, 78-85, ..., 134 and faster: nine words, as many as a small genre table has room for


def _word(bucket: int) -> str:
    return f"bpm{LOWEST_BPM + BUCKET_BPM * bucket}"


def tempo_word(bpm: float) -> str:
    """The genre word for a tempo: its bucket's lower edge ("bpm126" for 126 to 133.99 BPM)."""
    if not bpm > 0:
        raise ValueError(f"a tempo must be positive, not {bpm!r}")
    return _word(min(BUCKETS - 1, max(0, int((bpm - LOWEST_BPM) // BUCKET_BPM))))


def all_tempo_words() -> list[str]:
    return [_word(b) for b in range(BUCKETS)]


def bar_tokens(bpm: float, beats_per_bar: int, sr: int, hop: int) -> float:
    """How many tokens of `hop` samples one bar spans: where the bar lines of a take or a training song are."""
    return beats_per_bar * 60.0 / bpm * sr / hop


def with_tempo(genre: str, bpm: float | None) -> str:
    """The genre with its tempo word added (unchanged without a tempo)."""
    return genre if bpm is None else f"{genre} {tempo_word(bpm)}"
