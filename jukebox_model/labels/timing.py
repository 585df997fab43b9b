"""The sample ranges a top prior's timing signal accepts (spec §3.3, §8.12).

The prior embeds total_length in [min_duration·sr, max_duration·sr), the window's absolute start
and end in [0, max_duration·sr] and its start relative to the song in [0, 1). Out-of-range values
have no embedding row, so they are refused here with a reason instead of failing inside the model.
The comparisons are made on float32 values, as the embedding makes them: 26,459,999 samples
(just under 600 s) rounds to 26,460,000 in float32 and is refused there, so it is refused here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import SAMPLE_RATE, LabelConfig
from .errors import LabelError

_f32 = np.float32


def _as_f32(value: int) -> str:
    """A note for values float32 rounds, which is why an in-range integer can still be refused."""
    rounded = int(_f32(value))
    return "" if rounded == value else f" (float32, in which the embedding compares, rounds it to {rounded})"


@dataclass(frozen=True, slots=True)
class TimingRanges:
    min_total: float  # min_duration · sr, lowest song length in samples
    max_total: float  # max_duration · sr, end of the song-length and absolute-position ranges
    sr: int

    def __post_init__(self) -> None:
        if not 0 <= self.min_total < self.max_total:
            raise ValueError(f"timing range needs 0 <= min < max samples, got [{self.min_total}, {self.max_total})")

    @classmethod
    def from_config(cls, labels: LabelConfig, sr: int = SAMPLE_RATE) -> TimingRanges | None:
        """The ranges of a prior with this label config; None when it sets no durations (upsamplers)."""
        if labels.min_duration is None or labels.max_duration is None:
            return None
        return cls(min_total=labels.min_duration * sr, max_total=labels.max_duration * sr, sr=sr)

    def _seconds(self, samples: float) -> str:
        return f"{samples / self.sr:.2f} s"

    def check_total_length(self, total_length: int) -> None:
        if not _f32(self.min_total) <= _f32(total_length) < _f32(self.max_total):
            raise LabelError(
                f"song length {total_length} samples{_as_f32(total_length)} ({self._seconds(total_length)}) is outside "
                f"this prior's range [{self._seconds(self.min_total)}, {self._seconds(self.max_total)}): its timing "
                "embedding has no row for it"
            )

    def check_window(self, total_length: int, offset: int, length: int) -> None:
        """A window of `length` samples at `offset` in a song of `total_length` samples."""
        if length <= 0:
            raise LabelError(f"window length must be positive, got {length} samples")
        start, total = _f32(offset), _f32(total_length)
        # in float32 start < total also keeps start / total below 1 (the relative embedding's range)
        if not (0 <= offset < total_length and start < total):
            raise LabelError(
                f"window offset {offset} samples{_as_f32(offset)} must lie inside the song, "
                f"in [0, total_length = {total_length}{_as_f32(total_length)})"
            )
        end = start + _f32(length)
        if end > _f32(self.max_total):
            raise LabelError(
                f"window [{offset}, {offset + length}) samples ends at {self._seconds(float(end))}, past this prior's "
                f"max_duration of {self._seconds(self.max_total)}"
            )

    def check(self, total_length: int, offset: int, length: int) -> None:
        """Everything the timing embedding requires of a label row's first three values."""
        self.check_total_length(total_length)
        self.check_window(total_length, offset, length)
