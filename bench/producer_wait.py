"""What a producer waits for and hears, on the real bridge with the embedded model (issue 21):

    .venv/bin/python bench/producer_wait.py [--threads 1] [--json result.json]

1. **A new idea while an old one is upsampled**: job A (the techno-loop preset, all levels) is sent;
   once its upsampling has started, job B (a preview) is sent. The figure is the time from B's request
   to B's preview file, with `preempt_upsamples` on and off, in one run on the same machine.
2. **Chain loudness**: a take at the preset's loudness target, its continue and its upsample (the continue's), measured with
   pyloudnorm: how far each file is from its parent, with the chain's one gain.
3. **The loop point**: the wrap step (first sample minus last, over the take's median step) of the
   techno-loop takes as delivered, with `loop_clean` on and off.
Not a test: nothing here asserts; times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
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
            **chain_and_loop(root / "chain", args.threads),
        }
    on, off = result["preempt_on"], result["preempt_off"]
    print("\n| figure | preemption on | preemption off |")
    print("|---|---|---|")
    print(f"| new idea's preview while an old take is upsampled (s) | {on['preview_s']:.1f} | {off['preview_s']:.1f} |")
    print(f"| the old take's upsample, start to done (s) | {on['old_upsample_s']:.1f} | {off['old_upsample_s']:.1f} |")
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
