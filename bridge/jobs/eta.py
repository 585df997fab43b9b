"""How long queued work will take, from the token rates the worker has measured on this machine.

Work is counted in sampler positions per batch chunk: a level of T tokens for N takes costs about
T · ceil(N / max_batch) positions (overlapping windows sample each position once). Until a level
has been measured there is no estimate, and the bridge says so (-1) rather than guess.
"""

from __future__ import annotations

import math
import threading

from jukebox_model.api import SamplingParams


class Throughput:
    def __init__(self, smoothing: float = 0.3):
        self.smoothing = smoothing
        self._rates: dict[int, float] = {}  # level -> positions per second
        self._lock = threading.Lock()

    def record(self, level: int, positions: float, seconds: float) -> None:
        if positions <= 0 or seconds <= 0:
            return
        rate = positions / seconds
        with self._lock:
            old = self._rates.get(level)
            self._rates[level] = rate if old is None else (1 - self.smoothing) * old + self.smoothing * rate

    def rate(self, level: int) -> float | None:
        with self._lock:
            return self._rates.get(level)

    def seconds(self, level: int, positions: float) -> float | None:
        rate = self.rate(level)
        return None if rate is None else positions / rate


SAMPLER_BATCH = SamplingParams().max_batch_size  # takes beyond it run as further batch chunks


def level_positions(n_samples: float, hop: int, n_takes: int, max_batch: int = SAMPLER_BATCH) -> float:
    return (n_samples / hop) * math.ceil(n_takes / max(1, max_batch))
