"""Per-request sampling settings; they travel with the job and are written into every take's sidecar."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class SamplingParams:
    temperature: tuple[float, float, float] = (0.99, 0.99, 0.99)  # per level, 0 finest (sample.py's defaults)
    top_k: int = 0
    top_p: float = 0.0
    hop_fraction: tuple[float, float, float] = (0.5, 0.5, 0.125)  # per level, as the README/Colab
    chunk_size: int = 8192  # most positions per prefill pass (the reference's 16/32 cost a weight read per chunk)
    max_batch_size: int = 16
    seed: int | None = None  # None: draw one and record it

    def __post_init__(self) -> None:
        if len(self.temperature) != 3 or any(t <= 0 for t in self.temperature):
            raise ValueError(f"temperature needs 3 positive values (levels 0, 1, 2), got {self.temperature}")
        if len(self.hop_fraction) != 3 or any(not 0 < h <= 1 for h in self.hop_fraction):
            raise ValueError(f"hop_fraction needs 3 values in (0, 1], got {self.hop_fraction}")
        if self.top_k < 0 or not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"top_k must be ≥ 0 and top_p in [0, 1], got {self.top_k}, {self.top_p}")
        if self.chunk_size <= 0 or self.max_batch_size <= 0:
            raise ValueError("chunk_size and max_batch_size must be positive")
