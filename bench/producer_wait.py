"""What a producer waits for and hears, on the real bridge with the embedded model (issue 21):

    .venv/bin/python bench/producer_wait.py [--threads 1] [--json result.json]

1. **A new idea while an old one is upsampled**: job A (the techno-loop preset, all levels) is sent;
   once its upsampling has started, job B (a preview) is sent. The figure is the time from B's request
   to B's preview file, with `preempt_upsamples` on and off, in one run on the same machine.
2. **Chain loudness**: a take at the preset's loudness target, its continue and its upsample (the continue's), measured with
   pyloudnorm: how far each file is from its parent, with the chain's one gain.
3. **First estimates**: on a fresh project (no kept token rates), job A (the preset, all levels) and job B
   queued behind it: the estimate each /jb/generate reply gives against the time to its job's end, with
   the warm-up measurement (`[model] measure_rates_s`) on and off.
4. **A busy neighbour**: the same preview take (techno-loop, top level, one seed) while another process
   keeps every core busy (a DAW's load), with the bridge's default threads (every core but one) and with
   torch's own default (every core).
5. **The loop point**: the wrap step (first sample minus last, over the take's median step) of the
   techno-loop takes as delivered, with `loop_clean` on and off.
Not a test: nothing here asserts; times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyloudnorm
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from take_quality import Client

from bridge.app import Bridge
from bridge.settings import BridgeSettings
from jukebox_model.music_measures import loop_click

ROOT = Path(__file__).resolve().parents[1]
PRESET = "techno-loop"


def _bridge(out: Path, threads: int, **settings: Any) -> tuple[Bridge, Client]:
    bridge = Bridge(
        BridgeSettings(
            host="127.0.0.1",
            port=0,
            project_dir=out,
            presets_dir=ROOT / "presets",
            sample_rate=48000,
            output_format="float",
            threads=threads,
            **settings,
        )
    )
    bridge.start()
    bridge.worker.ready.wait(300)
    return bridge, Client(bridge.port)


def preview_wait(out: Path, threads: int, preempt: bool) -> dict[str, float]:
    """Seconds from B's request to B's preview while A is being upsampled."""
    bridge, c = _bridge(out, threads, preempt_upsamples=preempt)
    try:
        c.ask("/jb/preset/load", PRESET)
        c.ask("/jb/set/n_takes", 1)
        a = c.ask("/jb/generate")[0]
        upsampling = time.monotonic()
        for addr, args in c.replies(time.monotonic() + 600):
            if addr == "/jb/job/progress" and args[0] == a and args[1] == 0:
                upsampling = time.monotonic()
                break
        c.ask("/jb/set/levels", 1)
        sent = time.monotonic()
        b = c.ask("/jb/generate")[0]
        heard = None
        a_done = None
        for addr, args in c.replies(time.monotonic() + 900):
            if addr == "/jb/job/take" and args[0] == b and heard is None:
                heard = time.monotonic() - sent
            if addr == "/jb/job/done" and args[0] == a:
                a_done = time.monotonic() - upsampling
            if heard is not None and a_done is not None:
                break
        return {"preview_s": heard, "old_upsample_s": a_done}
    finally:
        bridge.stop()


def first_estimates(out: Path, threads: int, measure_s: float) -> dict[str, float | None]:
    """The first two estimates a fresh project gets (A alone, B behind A) and the actual times to done."""
    bridge, c = _bridge(out, threads, measure_rates_s=measure_s)
    try:
        c.ask("/jb/preset/load", PRESET)
        c.ask("/jb/set/n_takes", 1)
        sent = time.monotonic()
        a = c.ask("/jb/generate")
        b = c.ask("/jb/generate")
        done: dict[str, float] = {}
        for addr, args in c.replies(time.monotonic() + 1800):
            if addr in ("/jb/job/done", "/jb/job/failed") and args[0] in (a[0], b[0]):
                done[args[0]] = time.monotonic() - sent
                if len(done) == 2:
                    break
        return {
            "a_estimate_s": a[3] if a[3] >= 0 else None,
            "a_actual_s": done.get(a[0]),
            "b_estimate_s": b[3] if b[3] >= 0 else None,
            "b_actual_s": done.get(b[0]),
        }
    finally:
        bridge.stop()


def _burn() -> None:
    while True:
        pass


def busy_neighbour(out: Path, threads: int) -> dict[str, float]:
    """Seconds for one preview take with a CPU-bound neighbour on every core, at `threads` (0: the default)."""
    import multiprocessing
    import os

    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(os.cpu_count() or 1)]
    for b in burners:
        b.start()
    try:
        bridge, c = _bridge(out, threads)
        try:
            c.ask("/jb/preset/load", PRESET)
            c.ask("/jb/set/n_takes", 1)
            c.ask("/jb/set/levels", 1)
            c.ask("/jb/set/seed", 11)
            started = time.monotonic()
            c.job("/jb/generate")
            return {"threads_setting": threads, "take_s": time.monotonic() - started}
        finally:
            bridge.stop()
    finally:
        for b in burners:
            b.terminate()


def lufs(path: str) -> float:
    audio, sr = sf.read(path, dtype="float64")
    return float(pyloudnorm.Meter(sr).integrated_loudness(audio))


def chain_and_loop(out: Path, threads: int) -> dict[str, Any]:
    bridge, c = _bridge(out, threads)
    try:
        c.ask("/jb/preset/load", PRESET)  # a loudness target, loop_clean on, whole bars
        c.ask("/jb/set/n_takes", 1)
        c.ask("/jb/set/seed", 3)
        clean = c.job("/jb/generate")
        c.ask("/jb/set/levels", 1)
        preview = c.job("/jb/generate")
        job = Path(preview[0]).name.split("_")[2]
        c.ask("/jb/set/length", 2)
        cont = c.job("/jb/generate/continue", job)
        cont_job = Path(cont[0]).name.split("_")[2]
        up = c.job("/jb/generate/upsample", cont_job)
        c.ask("/jb/set/levels", 2)
        c.ask("/jb/set/length", 4)
        c.ask("/jb/set/loop_clean", 0)
        raw = c.job("/jb/generate")
        parent, child, final = lufs(preview[0]), lufs(cont[0]), lufs(up[-1])

        def wrap(path: str) -> float:
            return loop_click(sf.read(path, dtype="float64")[0])

        return {
            "chain_lufs": {"preview": parent, "continue": child, "upsampled continue": final},
            "chain_spread_lu": max(parent, child, final) - min(parent, child, final),
            "wrap_step_loop_clean": wrap(clean[-1]),
            "wrap_step_plain": wrap(raw[-1]),
        }
    finally:
        bridge.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="producer-wait-") as tmp:
        root = Path(tmp)
        result = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "threads": args.threads,
            "preempt_on": preview_wait(root / "on", args.threads, True),
            "preempt_off": preview_wait(root / "off", args.threads, False),
            "estimates_measured": first_estimates(root / "eta_on", args.threads, 1.0),
            "estimates_unmeasured": first_estimates(root / "eta_off", args.threads, 0.0),
            "neighbour_default": busy_neighbour(root / "busy_default", 0),
            "neighbour_all_cores": busy_neighbour(root / "busy_all", os.cpu_count() or 1),
            **chain_and_loop(root / "chain", args.threads),
        }
    on, off = result["preempt_on"], result["preempt_off"]
    print("\n| figure | preemption on | preemption off |")
    print("|---|---|---|")
    print(f"| new idea's preview while an old take is upsampled (s) | {on['preview_s']:.1f} | {off['preview_s']:.1f} |")
    print(f"| the old take's upsample, start to done (s) | {on['old_upsample_s']:.1f} | {off['old_upsample_s']:.1f} |")
    print("\n| first estimates on a fresh project | estimate (s) | actual (s) | ratio |")
    print("|---|---|---|---|")
    for key, label in (("estimates_measured", "warm-up measured"), ("estimates_unmeasured", "no warm-up")):
        e = result[key]
        for job in ("a", "b"):
            est, act = e[f"{job}_estimate_s"], e[f"{job}_actual_s"]
            ratio = f"{est / act:.2f}" if est is not None and act else "-"
            name = "first job" if job == "a" else "second, queued behind it"
            est_text = "-1 (none)" if est is None else f"{est:.1f}"
            print(f"| {label}: {name} | {est_text} | {act:.1f} | {ratio} |")
    d, a = result["neighbour_default"], result["neighbour_all_cores"]
    print("\n| a preview take beside a process that keeps every core busy | seconds |")
    print("|---|---|")
    print(f"| bridge default threads (every core but one) | {d['take_s']:.1f} |")
    print(f"| every core (torch's default) | {a['take_s']:.1f} |")
    chain = result["chain_lufs"]
    print("\n| chain at the preset's loudness target | LUFS |")
    print("|---|---|")
    for name, value in chain.items():
        print(f"| {name} | {value:.2f} |")
    print(f"| spread | {result['chain_spread_lu']:.2f} LU |")
    print(
        f"\nwrap step over the median step: loop_clean {result['wrap_step_loop_clean']:.1f}, "
        f"plain {result['wrap_step_plain']:.1f}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
