"""Listen-proxy numbers for takes as a producer gets them: the real bridge on the embedded model, driven
over OSC, measured on the files it writes.

    .venv/bin/python bench/take_quality.py [--out runs/take_quality] [--json result.json]

A synthetic 120 BPM loop (kick, hat, bass; 48 kHz stereo, as a DAW exports it) is the prime. Two takes:
a primed one of 2 new bars (the prime's last 2 bars kept) trimmed to whole bars at -14 LUFS, then a
continue of it by 2 more bars. For each: the seam (the take's opening against the clip's last samples,
max abs difference; 0 is sample-exact), the length against whole bars, integrated loudness, DC, true peak
proxy (sample peak), and whether the name and record carry the lineage.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bridge.app import Bridge
from bridge.demo import DemoClient
from bridge.settings import BridgeSettings

BPM, BEATS, SR = 120.0, 4, 48000
BAR = int(SR * 60 * BEATS / BPM)


def synthetic_loop(bars: int) -> np.ndarray:
    """Kick on every beat, a hat on the off-beats, a bass note per bar: (T, 2) float32."""
    beat = SR * 60 // int(BPM)
    t = np.arange(bars * BAR) / SR
    out = np.zeros_like(t)
    for start in range(0, len(t), beat):
        n = np.arange(min(beat, len(t) - start))
        out[start : start + len(n)] += (
            0.6 * np.sin(2 * np.pi * 55 * n / SR * (1 + 2 * np.exp(-n / 800))) * np.exp(-n / 3000)
        )
        hat = start + beat // 2
        if hat < len(t):
            m = np.arange(min(600, len(t) - hat))
            out[hat : hat + len(m)] += 0.15 * np.random.default_rng(hat).standard_normal(len(m)) * np.exp(-m / 150)
    out += 0.2 * np.sin(2 * np.pi * 110 * t) * (np.floor(t * BPM / 60 / BEATS) % 2 * 0.5 + 0.5)
    stereo = np.stack([out, 0.9 * out], axis=1)
    return (0.5 * stereo / np.abs(stereo).max()).astype(np.float32)


class Client(DemoClient):
    """The demo's DAW stand-in (it prints what it sends), waiting for replies and whole jobs."""

    def ask(self, address: str, *args: Any) -> list[Any]:
        self.send(address, *args)
        return next(a for addr, a in self.replies(time.monotonic() + 30) if addr == address)

    def job(self, address: str, *args: Any, timeout: float = 900) -> list[str]:
        reply = self.ask(address, *args)
        if reply and reply[0] == "error":
            raise RuntimeError(f"{address}: {reply[1]}")
        job, takes = reply[0], []
        for addr, a in self.replies(time.monotonic() + timeout):
            if addr == "/jb/job/take" and a[0] == job:
                takes.append(a[3])
            elif addr in ("/jb/job/done", "/jb/job/failed", "/jb/job/cancelled") and a[0] == job:
                if addr != "/jb/job/done":
                    raise RuntimeError(f"{job}: {a}")
                return takes
        raise RuntimeError(f"{job} did not finish in {timeout} s")


def measure(path: str, clip_tail: np.ndarray | None) -> dict[str, Any]:
    audio, sr = sf.read(path, dtype="float32")
    record = json.loads(Path(path).with_suffix(".json").read_text())
    head = record.get("prime_frames", 0)
    seam = None
    if clip_tail is not None and head:  # the finishing gain applies to the whole take, the opening included
        gain = 10 ** ((record.get("finish") or {}).get("gain_db", 0.0) / 20)
        seam = float(np.abs(audio[:head] - gain * clip_tail[-head:]).max())
    return {
        "file": Path(path).name,
        "frames": len(audio),
        "bars": len(audio) / BAR,
        "whole_bars": len(audio) % BAR == 0,
        "prime_frames": head,
        "seam_max_abs_diff": seam,
        "lufs": round(float(pyloudnorm.Meter(sr).integrated_loudness(audio.astype(np.float64))), 2),
        "peak_dbfs": round(20 * float(np.log10(np.abs(audio).max() + 1e-12)), 2),
        "dc": float(audio.mean()),
        "lineage": record.get("lineage"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="project folder (default: a temp folder)")
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="take-quality-"))
    inbox = out / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    clip = synthetic_loop(4)
    sf.write(inbox / "loop-120bpm.wav", clip, SR, subtype="FLOAT")
    mono_tail = clip.mean(axis=1)

    settings = BridgeSettings(
        host="127.0.0.1",
        port=0,
        project_dir=out / "project",
        inbox_dir=inbox,
        presets_dir=None,
        sample_rate=SR,
        output_format="float",
    )
    bridge = Bridge(settings)
    bridge.start()
    started = time.perf_counter()
    try:
        bridge.worker.ready.wait(300)
        c = Client(bridge.port)
        for address, *values in (
            ("/jb/set/artist", "tr808 machine"),
            ("/jb/set/genre", "techno"),
            ("/jb/set/levels", 1),
            ("/jb/set/seed", 11),
            ("/jb/set/length", 2, "bars", BPM),
            ("/jb/set/beats_per_bar", BEATS),
            ("/jb/set/prime_s", 2 * BAR / SR),
            ("/jb/set/trim_bars", 1),
            ("/jb/set/loudness_lufs", -14),
            ("/jb/prime/file", str(inbox / "loop-120bpm.wav")),
        ):
            c.ask(address, *values)
        primed = c.job("/jb/generate/primed")
        first = measure(primed[0], mono_tail)
        cont = c.job("/jb/generate/continue", Path(primed[0]).name.split("_")[2])
        second = measure(cont[0], mono_tail)
        result = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": time.perf_counter() - started,
            "primed": first,
            "continued": second,
        }
    finally:
        bridge.stop()
    print(
        f"{'take':<10} {'frames':>8} {'bars':>6} {'whole':>5} {'seam diff':>10} {'LUFS':>7} {'peak dBFS':>9} "
        f"{'DC':>9}  lineage"
    )
    for name in ("primed", "continued"):
        m = result[name]
        seam = "-" if m["seam_max_abs_diff"] is None else f"{m['seam_max_abs_diff']:.1e}"
        lineage = m["lineage"] and f"{m['lineage']['relation']} {m['lineage']['job']} t{m['lineage']['take']}"
        print(
            f"{name:<10} {m['frames']:>8} {m['bars']:>6.2f} {m['whole_bars']!s:>5} {seam:>10} {m['lufs']:>7} "
            f"{m['peak_dbfs']:>9} {m['dc']:>9.1e}  {lineage or '-'}"
        )
        print(f"{'':<10} {m['file']}")
    print(f"({result['seconds']:.0f} s, project {out / 'project'})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
