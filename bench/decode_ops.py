"""Ops, allocations and host syncs of one cached decode step at several window positions, for every official prior.

With a static KV cache a sampling step should dispatch the same ops and allocate the same number of
tensors wherever it is in the window (docs/perf-anchors.md §6.3, issue #7): per-step growth is what
makes the original slow (§3.4: a `torch.cat` of the cache per step) and it would defeat CUDA graphs.
Counts come from a TorchDispatchMode (jukebox_model/op_count.py), so they are exact and do not depend on
the machine's load; the step time beside them is only indicative on a shared CPU.

Each prior has its real depth, context, heads and attention pattern, random weights (seed 0), and a narrow
width (`--width 64`). Bytes allocated may legitimately grow with the position where a layer attends to a
growing prefix (the one dense layer of 1b_lyrics, the column layers: up to n_ctx / block_ctx keys);
op and allocation counts should not.

    python bench/decode_ops.py                     # CPU, fp32, width 64, all official priors
    python bench/decode_ops.py --markdown          # tables for docs/benchmarks.md
    python bench/decode_ops.py --models prior_1b_lyrics --positions 1,200,6527 --ops
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import subprocess
import time

import torch
from decode_setup import decode_setup, narrow

from jukebox_model import official
from jukebox_model.op_count import OpCounts, count_ops

_OWN_FILES = ("bench/decode_ops.py", "bench/decode_setup.py")  # with jukebox_model/: what the counts depend on


def default_positions(length: int, block_ctx: int) -> list[int]:
    """Start, the second block, a block start and its neighbour in the middle, the last block, the end."""
    return sorted({1, block_ctx + 1, length // 4 + 1, length // 2, length // 2 + 1, length - block_ctx + 1, length - 1})


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def verdict(values: list[float], positions: list[int], steady_from: int) -> str:
    """'flat', or where a later position exceeds the first steady one (from the second block on)."""
    steady = [(p, v) for p, v in zip(positions, values) if p >= steady_from] or list(zip(positions, values))
    p0, v0 = steady[0]
    worst_p, worst_v = max(steady, key=lambda pv: pv[1])
    if worst_v > v0:
        return f"GROWS ×{worst_v / v0:.2f} from position {p0} to {worst_p}"
    return "flat" if all(v == v0 for _, v in steady) else f"no growth (varies {min(v for _, v in steady):g}..{v0:g})"


@torch.no_grad()
def measure(
    name: str, *, width: str, positions: list[int] | None, steps: int
) -> tuple[dict, list[int], dict[int, tuple[OpCounts, float]]]:
    config = official.PRIORS[name]
    if width != "official":
        config = narrow(config, int(width))
    setup = decode_setup(config)
    layers = setup.model.transformer.layers
    length = setup.model.length
    block_ctx = layers[0].attn.block_ctx
    positions = positions or default_positions(length, block_ctx)
    rows = {}
    for p in positions:
        counts = count_ops(setup.step, p)
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            setup.step(p)
            times.append(time.perf_counter() - t0)
        rows[p] = (counts, 1000 * statistics.median(times))
    info = {"layers": len(layers), "length": length, "block_ctx": block_ctx}
    return info, positions, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(official.PRIORS), help="comma-separated official prior names")
    p.add_argument("--width", default="64", help="transformer width, or 'official'")
    p.add_argument(
        "--positions", default=None, help="comma-separated window positions (default: spread over the window)"
    )
    p.add_argument("--steps", type=int, default=5, help="timed steps per position (median)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ops", action="store_true", help="also print the ops and bytes of the last position by aten op")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "jukebox_model", *_OWN_FILES],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if commit and dirty:
        commit += " + uncommitted changes to jukebox_model/ or this bench"
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"{when} — {_cpu_model()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}, fp32, "
        f"width {args.width}, batch 1 — commit {commit or 'unknown'}"
    )
    print(f"\n### {header}\n" if args.markdown else header)
    fixed = [int(x) for x in args.positions.split(",")] if args.positions else None
    for name in args.models.split(","):
        info, positions, rows = measure(name, width=args.width, positions=fixed, steps=args.steps)
        first, _ = rows[positions[0]]
        title = f"{name}: {info['layers']} layers, {info['length']} positions, block_ctx {info['block_ctx']}"
        cols = [
            "position",
            "aten ops",
            "×first",
            "allocations",
            "×first",
            "KiB allocated",
            "×first",
            "syncs",
            "ms/step*",
        ]
        table = []
        for q in positions:
            c, ms = rows[q]
            table.append(
                [
                    str(q),
                    str(c.n_ops),
                    f"{c.n_ops / first.n_ops:.3f}",
                    str(c.allocations),
                    f"{c.allocations / first.allocations:.3f}",
                    f"{c.bytes / 1024:.1f}",
                    f"{c.bytes / first.bytes:.3f}",
                    str(c.syncs),
                    f"{ms:.2f}",
                ]
            )
        steady = info["block_ctx"] + 1
        notes = {
            "ops": verdict([rows[q][0].n_ops for q in positions], positions, steady),
            "allocations": verdict([rows[q][0].allocations for q in positions], positions, steady),
            "bytes": verdict([rows[q][0].bytes for q in positions], positions, steady),
            "syncs": verdict([rows[q][0].syncs for q in positions], positions, steady),
        }
        if args.markdown:
            print(f"\n**{title}**\n")
            print("| " + " | ".join(cols) + " |")
            print("|" + "---|" * len(cols))
            for r in table:
                print("| " + " | ".join(r) + " |")
            print("\n" + "; ".join(f"{k}: {v}" for k, v in notes.items()) + " (from position " + str(steady) + " on)")
        else:
            print(f"\n{title}")
            widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(cols)]
            print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
            for r in table:
                print("  ".join(x.rjust(w) for x, w in zip(r, widths)))
            for k, v in notes.items():
                print(f"  {k:<12} {v} (from position {steady} on)")
        if args.ops:
            last, _ = rows[positions[-1]]
            print(f"  ops at {positions[-1]}: " + ", ".join(f"{k} {v}" for k, v in last.ops.most_common()))
            print(f"  bytes at {positions[-1]}: " + ", ".join(f"{k} {v}" for k, v in last.bytes_by_op.most_common()))
    print("\n* step time: median of --steps eager steps without the counter; indicative only on a shared CPU.")


if __name__ == "__main__":
    main()
