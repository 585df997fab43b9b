"""VQ-VAE encode/decode throughput at the official config (random weights), per level.

Prints seconds of audio processed per second of wall time and the real-time factor (RTF, wall /
audio; below 1 is faster than real time) for encode and decode of each level, each beside the
perf-anchors baseline measured on the 2-core project machine (perf-anchors.md §5).

    python bench/vqvae.py                                  # CPU, fp32, 5 s of audio
    python bench/vqvae.py --device cuda --dtype bf16 --seconds 60 --batch 16
    python bench/vqvae.py --markdown                       # rows for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

from jukebox_model import official
from jukebox_model.vqvae import VQVAE

# perf-anchors.md §5, 2 threads fp32 on the project's CPU: (low, high) RTF
CPU_BASELINE_RTF = {
    ("decode", 0): (0.58, 0.82),
    ("decode", 1): (0.18, 0.20),
    ("decode", 2): (0.13, 0.19),
    ("encode", 0): (0.45, 0.54),
    ("encode", 1): (0.08, 0.10),
    ("encode", 2): (0.08, 0.10),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up (allocations, cuDNN autotune)
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(seconds: float, batch: int, device: torch.device, dtype: torch.dtype, repeats: int) -> list[dict]:
    torch.manual_seed(0)
    model = VQVAE(official.VQVAE).to(device=device, dtype=dtype).eval()
    cfg = official.VQVAE
    n = int(seconds * cfg.sr) // cfg.hop_lengths[-1] * cfg.hop_lengths[-1]
    x = (torch.rand(batch, n, 1, device=device) * 2 - 1).to(dtype)
    audio_seconds = batch * n / cfg.sr
    rows = []
    with torch.inference_mode():
        for level in range(cfg.levels):
            zs = model.encode(x, start_level=level, end_level=level + 1)
            for op, fn in (
                ("encode", lambda: model.encode(x, start_level=level, end_level=level + 1)),
                ("decode", lambda: model.decode(zs, start_level=level, end_level=level + 1)),
            ):
                wall = _median_seconds(fn, device, repeats)
                rows.append(
                    dict(op=op, level=level, wall=wall, audio_per_s=audio_seconds / wall, rtf=wall / audio_seconds)
                )
    return rows


def _describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    except (OSError, StopIteration):
        model = platform.processor() or "CPU"
    return f"{model}, {torch.get_num_threads()} threads"


def _commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda requested but CUDA is not available")
    if device.type == "cpu" and args.dtype != "fp32":
        print(f"note: {args.dtype} is very slow on many CPUs (perf-anchors §5); fp32 is the CPU baseline")
    track_load = device.type == "cpu" and hasattr(os, "getloadavg")
    load_start = os.getloadavg()[0] if track_load else 0.0
    rows = run(args.seconds, args.batch, device, DTYPES[args.dtype], args.repeats)
    # the run itself adds about its thread count; much more than that means other jobs shared the CPU
    load = f", load avg {load_start:.2f} -> {os.getloadavg()[0]:.2f}" if track_load else ""
    where = f"{_describe_device(device)}, torch {torch.__version__}, {args.dtype}, batch {args.batch}"
    where += f", {args.seconds:g} s audio{load}"
    on_cpu = device.type == "cpu" and args.dtype == "fp32"
    if args.markdown:
        print(f"\n### {datetime.date.today()} — {where} — commit {_commit()}\n")
        print("| op | level | audio s / s | RTF | baseline RTF (2-core CPU, perf-anchors §5) | speed-up vs baseline |")
        print("|---|---|---|---|---|---|")
    else:
        print(where)
        print(f"{'op':<7}{'level':>6}{'audio s/s':>12}{'RTF':>9}   {'baseline RTF':<16}{'vs baseline':>12}")
    for r in rows:
        lo, hi = CPU_BASELINE_RTF[(r["op"], r["level"])]
        base = f"{lo:.2f}–{hi:.2f}" + ("" if on_cpu else " (CPU)")
        # speed-up against the baseline's range: >1 is faster than the anchor machine
        ratio = f"{lo / r['rtf']:.1f}–{hi / r['rtf']:.1f}×" + ("" if on_cpu else " (other device)")
        if args.markdown:
            print(f"| {r['op']} | {r['level']} | {r['audio_per_s']:.2f} | {r['rtf']:.3f} | {base} | {ratio} |")
        else:
            print(f"{r['op']:<7}{r['level']:>6}{r['audio_per_s']:>12.2f}{r['rtf']:>9.3f}   {base:<16}{ratio:>12}")


if __name__ == "__main__":
    main()
