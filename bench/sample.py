"""Incremental-decode speed of the priors: ms per token step at several window positions.

Each official prior is built at its real depth, context and attention pattern with random weights;
by default at a small width (`--width 64`) so that the per-layer overhead the sampler adds is what
gets measured on a CPU. `--width official` uses the real widths (a GPU is needed for 5b; bf16 there).
A static cache means the step time must not grow with the position: the table prints each
position's time beside the first position's.

    python bench/sample.py                            # CPU, fp32, width 64, all official priors
    python bench/sample.py --device cuda --dtype bf16 --width official --batch 1
    python bench/sample.py --markdown                 # rows for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import time

import torch
from decode_setup import decode_setup, narrow

from jukebox_model import official
from jukebox_model.config import PriorConfig

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def step_times(config: PriorConfig, *, batch: int, positions: list[int], steps: int, device: torch.device, dtype: torch.dtype) -> dict[int, float]:
    """Median ms per single-token step, for `steps` steps starting at each position."""
    setup = decode_setup(config, batch=batch, device=device, dtype=dtype)
    length = setup.model.length
    out = {}
    for position in positions:
        times = []
        for s in range(steps):
            start = min(position + s, length - 1)
            _sync(device)
            t0 = time.perf_counter()
            setup.step(start)
            _sync(device)
            times.append(time.perf_counter() - t0)
        out[position] = 1000 * statistics.median(times[1:] if len(times) > 1 else times)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(official.PRIORS), help="comma-separated official prior names")
    p.add_argument("--width", default="64", help="transformer width, or 'official'")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    header = f"{datetime.date.today()} — {device.type}{'' if device.type != 'cpu' else f', {torch.get_num_threads()} threads'}, torch {torch.__version__}, {args.dtype}, width {args.width}, batch {args.batch} — commit {commit}"
    if args.markdown:
        print(f"\n### {header}\n")
        print("| model | layers | context | ms/step at start | middle | end | end / start | tokens/s |")
        print("|---|---|---|---|---|---|---|---|")
    else:
        print(header)
    for name in args.models.split(","):
        config = official.PRIORS[name]
        if args.width != "official":
            config = narrow(config, int(args.width))
        length = config.sequence_length
        positions = [0, length // 2, length - args.steps]
        ms = step_times(config, batch=args.batch, positions=positions, steps=args.steps, device=device, dtype=DTYPES[args.dtype])
        first, mid, last = (ms[q] for q in positions)
        rate = 1000 * args.batch / statistics.mean(ms.values())
        if args.markdown:
            print(f"| {name} | {config.prior.depth} | {length} | {first:.2f} | {mid:.2f} | {last:.2f} | {last / first:.2f} | {rate:.0f} |")
        else:
            print(f"{name:<18} {config.prior.depth:3d} layers ctx {length:5d}: {first:7.2f} / {mid:7.2f} / {last:7.2f} ms per step (end/start {last / first:.2f}), {rate:.0f} tokens/s")


if __name__ == "__main__":
    main()
