"""Which windows a level is sampled in, and how many new tokens each adds (spec §4.3–4.5).

A level holding `total` tokens is covered by windows of the prior's context `n_ctx`, stepping by
`hop` tokens; the last window is pulled back to end exactly at `total`. A window that already
holds tokens (primed, continued, or overlapping the previous window) samples only the rest.

Deviation from the reference (its primed-length bug, spec §4.5/§8): when a level is shorter than
one window, the reference samples `total` *new* tokens after whatever exists, so a 12 s prompt with
a 20 s target ends up 32 s long at the top level while the upsamplers render 20 s. Here a short
level is filled up to `total`: with `current` tokens present, it samples `total − current`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import SAMPLE_RATE


def window_starts(total: int, n_ctx: int, hop: int) -> list[int]:
    """Starts 0, hop, 2·hop, … while start < total − n_ctx + hop; a window reaching past the end is
    replaced by the one ending exactly at `total`."""
    if total < n_ctx:
        raise ValueError(f"{total} tokens do not fill one {n_ctx}-token window; use a partial window")
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop}")
    return [start if start + n_ctx < total else total - n_ctx for start in range(0, total - n_ctx + hop, hop)]


@dataclass(frozen=True)
class Window:
    start: int  # first token of the window at this level
    end: int  # one past its last token
    n_existing: int  # tokens already present in [start, end), used as the prime
    n_new: int  # tokens to sample after them


def plan_level(total: int, current: int, n_ctx: int, hop: int) -> list[Window]:
    """The windows that bring a level from `current` to `total` tokens; windows already full are left out."""
    if not 0 <= current:
        raise ValueError(f"current token count must be non-negative, got {current}")
    if current >= total:
        return []
    if total < n_ctx:
        return [Window(start=0, end=total, n_existing=current, n_new=total - current)]
    windows = []
    for start in window_starts(total, n_ctx, hop):
        end = start + n_ctx
        existing = max(0, min(current, end) - start)
        if existing < n_ctx:
            windows.append(Window(start=start, end=end, n_existing=existing, n_new=n_ctx - existing))
            current = end
    return windows


def level_hop(hop_fraction: float, n_ctx: int) -> int:
    """Tokens between window starts: int(hop_fraction · n_ctx), as the reference."""
    hop = int(hop_fraction * n_ctx)
    if hop <= 0:
        raise ValueError(f"hop_fraction {hop_fraction} gives no step for a {n_ctx}-token window")
    return hop


def bar_hop(hop: int, bar_tokens: float, n_ctx: int) -> int:
    """The hop in whole bars nearest below `hop` (at least one bar), so that every window of a prior trained
    on bar-aligned windows starts on a bar line; `hop` itself when a bar does not fit the window."""
    if bar_tokens <= 0 or bar_tokens > n_ctx:
        return hop
    return max(1, min(n_ctx, round(max(1, int(hop // bar_tokens)) * bar_tokens)))


def seconds_to_samples(seconds: float, *, top_hop: int = 128, sr: int = SAMPLE_RATE) -> int:
    """Sample lengths are whole top-level tokens: floor(seconds · sr / top_hop) · top_hop."""
    return int(seconds * sr) // top_hop * top_hop
