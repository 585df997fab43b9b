"""`make demo`: the bridge on the embedded default model, one take rendered through real OSC messages.

It starts the server exactly as `jukebox-bridge` does (project folder ./demo_out/project), then acts
as a DAW would: a UDP client on 127.0.0.1 sets the length and conditioning and sends
`/jb/generate`, prints the progress and the takes as the replies arrive, and leaves the server
running for you to drive (`oscsend localhost 9950 /jb/generate`) until Ctrl-C. `--once` stops after
the take (used by the tests).
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pythonosc import osc_packet

from bridge.settings import DEFAULT_PORT, BridgeSettings
from bridge.transports.notify import build_message


class DemoClient:
    """A DAW stand-in: sends OSC from its own port and prints what comes back."""

    def __init__(self, port: int):
        self.target = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)

    def send(self, address: str, *args: Any) -> None:
        print(f"  -> {address} {' '.join(map(str, args))}".rstrip(), flush=True)
        self.sock.sendto(build_message(address, args), self.target)

    def replies(self, until: float):
        while time.monotonic() < until:
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            for timed in osc_packet.OscPacket(data).messages:
                yield timed.message.address, list(timed.message.params)

    def close(self) -> None:
        self.sock.close()


SHIPPED_PRESETS = Path(__file__).resolve().parents[1] / "presets"  # where a bundle's demo preset ships


def demo_preset(bundle: Path) -> str | None:
    """The shipped preset the bundle names for the demo (bundle.json's "demo" entry), if any."""
    import json

    try:
        demo = json.loads((bundle / "bundle.json").read_text()).get("demo") or {}
    except (OSError, ValueError, AttributeError):
        return None
    preset = demo.get("preset") if isinstance(demo, dict) else None
    return str(preset) if isinstance(preset, str) and preset else None


def first_names(bundle: Path) -> tuple[str, str]:
    """An artist and a genre the bundle knows, so the demo is conditioned on something real: the
    manifest's "demo" entry if it has one, else the first named entry of each of its id tables."""
    import json

    try:
        manifest = json.loads((bundle / "bundle.json").read_text())
    except (OSError, ValueError):
        return "unknown", "unknown"
    demo = manifest.get("demo") or {}
    if demo.get("artist") and demo.get("genre"):
        return str(demo["artist"]), str(demo["genre"])
    ids = bundle / str(manifest.get("ids") or "ids")
    names = []
    for kind in ("artist", "genre"):
        best = ("unknown", 1 << 62)
        for table in sorted(ids.glob(f"*_{kind}_ids.txt")):
            for line in table.read_text(encoding="utf-8", errors="replace").splitlines():
                name, sep, number = line.rpartition(";")
                if sep and number.strip().isdigit() and 0 < int(number) < best[1] and name.strip():
                    best = (name.strip().replace("_", " "), int(number))
        names.append(best[0])
    return names[0], names[1]


def render_one_take(
    bridge: Any, *, seconds: float | None, artist: str, genre: str, timeout: float, preset: str | None = None
) -> list[str]:
    """One take: the bundle's demo preset (its length, unless `seconds` is given), else `seconds` of artist/genre."""
    client = DemoClient(bridge.port)
    files: list[str] = []
    try:
        if not bridge.worker.ready.wait(timeout):
            raise RuntimeError("the model did not load in time")
        if bridge.worker.load_error:
            raise RuntimeError(f"the model did not load: {bridge.worker.load_error}")
        if preset is not None:
            steps: list[tuple[Any, ...]] = [("/jb/preset/load", preset)]
            if seconds is not None:
                steps.append(("/jb/set/length", seconds, "s"))
        else:
            steps = [("/jb/set/length", seconds or 4.0), ("/jb/set/artist", artist), ("/jb/set/genre", genre)]
        for address, *args in (*steps, ("/jb/set/n_takes", 1), ("/jb/generate",)):
            client.send(address, *args)
        job = None
        last_print = 0.0
        for address, args in client.replies(time.monotonic() + timeout):
            if address == "/jb/preset/load" and args and args[0] == "error":
                raise RuntimeError(f"the demo preset {preset!r} did not load: {args[1]}")
            if address == "/jb/generate":
                if args and args[0] == "error":
                    raise RuntimeError(args[1])
                job = args[0]
                estimate = f", about {args[3]:.0f} s for the whole take" if args[3] >= 0 else ""
                print(f"  <- {address} job {job}, position {args[2]}{estimate}", flush=True)
            elif address == "/jb/job/progress" and args[0] == job:
                if time.monotonic() - last_print > 1.0 or args[2] >= 1.0:
                    eta = f", ~{args[3]:.0f} s left for the whole take" if args[3] >= 0 else ""
                    print(f"  <- progress: level {args[1]} {100 * args[2]:5.1f} %{eta}", flush=True)
                    last_print = time.monotonic()
            elif address == "/jb/job/take" and args[0] == job:
                files.append(args[3])
                print(f"  <- take {args[1]} level {args[2]} (seed {args[4]}): {args[3]}", flush=True)
            elif address in ("/jb/job/failed", "/jb/error") and job in args:
                raise RuntimeError(" ".join(map(str, args)))
            elif address == "/jb/job/done" and args[0] == job:
                return files
            elif address.endswith("error") or (args and args[0] == "error"):
                print(f"  <- {address} {args}", flush=True)
        raise RuntimeError(f"no finished take within {timeout:.0f} s")
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bridge.demo", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, help="bundle folder (default: the embedded one)")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="demo folder (takes in OUT/project)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--seconds", type=float, default=None, help="length of the demo take (default: the demo preset's)")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--once", action="store_true", help="stop after the take instead of serving on")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from bridge.app import Bridge
    from jukebox_model.bundle_dir import DEFAULT_BUNDLE_DIR, BundleError, read_manifest

    bundle = args.bundle or DEFAULT_BUNDLE_DIR
    try:
        read_manifest(bundle)
    except BundleError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    artist, genre = first_names(bundle)
    preset = demo_preset(bundle)
    settings = BridgeSettings(
        port=args.port,
        project_dir=args.out / "project",
        inbox_dir=args.out / "inbox",
        presets_dir=SHIPPED_PRESETS if preset is not None and SHIPPED_PRESETS.is_dir() else None,
        bundle_dir=bundle,
        device=args.device,
    )
    try:
        bridge = Bridge(settings)
    except OSError:  # the default port is taken (another bridge?): any free one will do for the demo
        bridge = Bridge(settings.replace(port=0))
    print(
        f"demo: bridge on 127.0.0.1:{bridge.port}, model {bundle}, takes into {bridge.settings.project_dir}", flush=True
    )
    result: dict[str, Any] = {}

    def drive(b: Any) -> None:
        def work() -> None:
            try:
                result["files"] = render_one_take(
                    b, seconds=args.seconds, artist=artist, genre=genre, timeout=args.timeout, preset=preset
                )
                files = result["files"]
                print(f"demo: {len(files)} files in {b.settings.project_dir} (each with a .json sidecar)")
                if files:  # takes arrive coarsest level first: the last one is the finished take
                    print(f"demo: the finished take is {files[-1]}", flush=True)
                if args.once:
                    b.request_stop()
                else:
                    print(
                        f"demo: still serving; try `oscsend localhost {b.port} /jb/generate` "
                        f"(replies: `oscdump {b.port + 1}` after `oscsend localhost {b.port} /jb/subscribe i {b.port + 1}`)."
                        " Ctrl-C stops.",
                        flush=True,
                    )
            except Exception as e:  # noqa: BLE001 - the demo reports any failure and stops
                result["error"] = str(e)
                print(f"demo: {e}", file=sys.stderr)
                b.request_stop()

        threading.Thread(target=work, name="demo-client", daemon=True).start()

    code = bridge.run(after_start=drive)
    if "error" in result:
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
