"""How long queued work will take, from the token rates the worker has measured on this machine.

Work is counted in sampler positions per batch chunk: a level of T tokens for N takes costs about
T · ceil(N / max_batch) positions (overlapping windows sample each position once). Until a level
has been measured there is no estimate, and the bridge says so (-1) rather than guess. Measured rates
are kept in `<project>/.jukebox/rates.json` per model, device, precision and thread count, so after
the first session the first estimate of a new job is already a measurement.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from bridge.untrusted.files import UntrustedFileError, read_json_object
from jukebox_model.api import SamplingParams
from jukebox_model.atomic import atomic_write

log = logging.getLogger(__name__)

MAX_RATE = 1e9  # positions per second no machine reaches: anything above is not a measurement


class Throughput:
    def __init__(self, smoothing: float = 0.3):
        self.smoothing = smoothing
        self._rates: dict[int, float] = {}  # level -> positions per second
        self._lock = threading.Lock()
        self._store: tuple[Path, str] | None = None  # where measured rates are kept, and under which key
        self._kept: dict[str, dict[int, float]] = {}  # that file as read at the start: the other keys' rates

    def keep_in(self, path: Path, key: str) -> None:
        """Rates measured for `key` (model, device, precision, threads) in an earlier session are this
        session's first estimates; each new measurement is written back. A file of another shape is
        logged and replaced."""
        kept = _read_rates(path)
        with self._lock:
            self._store, self._kept = (path, key), kept
            for level, rate in kept.get(key, {}).items():
                self._rates.setdefault(level, rate)

    def record(self, level: int, positions: float, seconds: float) -> None:
        if positions <= 0 or seconds <= 0:
            return
        rate = positions / seconds
        with self._lock:
            old = self._rates.get(level)
            self._rates[level] = rate if old is None else (1 - self.smoothing) * old + self.smoothing * rate
            if self._store is None:
                return
            path, key = self._store
            self._kept[key] = dict(self._rates)
            kept = {k: dict(v) for k, v in self._kept.items()}
        _write_rates(path, kept)

    def rate(self, level: int) -> float | None:
        with self._lock:
            return self._rates.get(level)

    def seconds(self, level: int, positions: float) -> float | None:
        rate = self.rate(level)
        return None if rate is None else positions / rate


SAMPLER_BATCH = SamplingParams().max_batch_size  # takes beyond it run as further batch chunks


def level_positions(n_samples: float, hop: int, n_takes: int, max_batch: int = SAMPLER_BATCH) -> float:
    return (n_samples / hop) * math.ceil(n_takes / max(1, max_batch))


def levels_seconds(
    throughput: Throughput,
    levels: Iterable[int],
    n_samples: float,
    hops: Sequence[int],
    n_takes: int,
    max_batch: int = SAMPLER_BATCH,
    *,
    running: tuple[int, float] | None = None,
) -> float | None:
    """The one estimate of how long sampling `levels` of `n_samples` takes on this machine; `running`
    is (level, fraction done) of a level under way. None while any of those levels is unmeasured."""
    total = 0.0
    for level in levels:
        seconds = throughput.seconds(level, level_positions(n_samples, hops[level], n_takes, max_batch))
        if seconds is None:
            return None
        if running is not None and running[0] == level:
            seconds *= 1 - running[1]
        total += seconds
    return total


def _read_rates(path: Path) -> dict[str, dict[int, float]]:
    """`{key: {level: rate}}` from the rates file, read as untrusted: what is not a level and a plausible rate
    is left out."""
    if not path.exists() and not path.is_symlink():
        return {}  # the first session: nothing measured yet
    try:
        data = read_json_object(path, what="rates file", follow_links=False)
    except (UntrustedFileError, OSError, ValueError) as e:
        log.warning("ignoring the token rates in %s: %s", path, e)
        return {}
    out: dict[str, dict[int, float]] = {}
    for key, levels in data.items():
        if not isinstance(levels, dict):
            continue
        rates = {
            int(level): float(rate)
            for level, rate in levels.items()
            if level in ("0", "1", "2")
            and isinstance(rate, (int, float))
            and not isinstance(rate, bool)
            and 0 < rate < MAX_RATE
        }
        if rates:
            out[str(key)] = rates
    return out


def _write_rates(path: Path, data: dict[str, dict[int, float]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            f.write(
                (
                    json.dumps({k: {str(lv): r for lv, r in v.items()} for k, v in data.items()}, indent=1) + "\n"
                ).encode()
            )
    except OSError as e:  # a full disk costs the estimate, never the job
        log.warning("could not keep the token rates in %s: %s", path, e)
