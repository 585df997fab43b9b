"""The floors a sampling workload cannot beat on a device: bytes over bandwidth, FLOPs over matmul rate.

docs/perf-anchors.md §3 derives them for an H100 (3.0 TB/s, 800 TFLOP/s): a decode step reads every
matmul weight of the transformer once plus the key/value rows its attention pattern needs at that
position; a prefill is 2 FLOPs per weight per token. Here they are computed from the model as built
(its dtype, its layers), against ceilings measured on the device the benchmark runs on, so a ratio
to the floor means the same on an H100, an H200 or a CPU.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from jukebox_model.config import AttnType, LyricsMode, PriorConfig
from jukebox_model.prior.prior import Prior
from jukebox_model.transformer.ops import Conv1D


@dataclass(frozen=True)
class Ceilings:
    bandwidth: float  # bytes per second a device-to-device copy moves (read + written)
    matmul: float  # FLOP/s of a large matrix product in the benchmark's dtype
    source: str


H100_ANCHOR = Ceilings(3.0e12, 800e12, "H100 anchor of perf-anchors §3 (3.0 TB/s, 800 TFLOP/s bf16)")


def median_seconds(fn, device: torch.device, repeats: int = 10) -> float:
    """Median seconds of fn() after one warm-up: CUDA events on a GPU (the work is asynchronous), a clock elsewhere."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def measure_ceilings(device: torch.device, dtype: torch.dtype) -> Ceilings:
    """A large copy (bytes read + written) and a large matmul on random data (not zeros, METHOD.md)."""
    big = device.type == "cuda"
    n_bytes = (2 << 30) if big else (256 << 20)
    src = torch.rand(n_bytes // 4, device=device)
    dst = torch.empty_like(src)
    copy_s = median_seconds(lambda: dst.copy_(src), device)
    n = 8192 if big else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    mm_s = median_seconds(lambda: a @ b, device, repeats=10 if big else 3)
    name = torch.cuda.get_device_name(device) if big else "CPU"
    return Ceilings(
        2 * n_bytes / copy_s, 2 * n**3 / mm_s, f"measured on {name} ({str(dtype).removeprefix('torch.')} matmul)"
    )


def step_weight_bytes(prior: Prior) -> int:
    """Bytes of matmul weights (and biases) one decode step reads: the transformer's projections and the output head."""
    model = prior.prior
    total = sum(
        p.numel() * p.element_size() for m in model.transformer.modules() if isinstance(m, Conv1D) for p in (m.w, m.b)
    )
    return total + model.x_out.weight.numel() * model.x_out.weight.element_size()


def transformer_matmul_params(prior: Prior) -> int:
    return (
        sum(m.w.numel() for m in prior.prior.transformer.modules() if isinstance(m, Conv1D))
        + prior.prior.x_out.weight.numel()
    )


def required_kv_bytes(prior: Prior, position: int) -> int:
    """Key + value bytes one query at `position` must read, per sample: only the rows its pattern sees."""
    total = 0
    for block in prior.prior.transformer.layers:
        attn = block.attn
        if attn.attn_type is AttnType.CROSS:
            rows = prior.n_tokens
        else:  # the keys the pattern lets a query at `position` see, as the cache step reads them
            rows = int(attn.cache_access(torch.tensor(position)).mask.sum())
        total += 2 * rows * attn.n_state
    itemsize = prior.prior.compute_dtype.itemsize
    return total * itemsize


def decode_floor_s(prior: Prior, batch: int, position: int, ceilings: Ceilings) -> float:
    return (step_weight_bytes(prior) + batch * required_kv_bytes(prior, position)) / ceilings.bandwidth


def prefill_floor_s(prior: Prior, tokens: int, batch: int, ceilings: Ceilings) -> float:
    """Compute-bound past a few tokens: 2 FLOPs per weight per token (attention adds <1 %, §4.3)."""
    flops = 2 * transformer_matmul_params(prior) * tokens * batch
    return max(flops / ceilings.matmul, step_weight_bytes(prior) / ceilings.bandwidth)


def lyric_prefix(config: PriorConfig) -> int:
    """Sequence positions in front of the music (the merged 1b layout's lyrics)."""
    return config.n_tokens if config.lyrics_mode is LyricsMode.MERGED else 0
