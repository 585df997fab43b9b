"""Test helpers for the bridge: a tiny real model bundle, a loopback OSC client, a running bridge.

The bundle is assembled from the reference fixtures (found by their naming scheme, never by
hard-coded names): the tiny VQ-VAE, a tiny top prior and both tiny upsamplers, with the
fixture's id tables — a real model, random-weighted, small enough to sample on a CPU in seconds.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pythonosc import osc_packet

from bridge.transports.notify import build_message
from tests.reference import discover, reference_dir

TOP_BASE = "prior_1b_lyrics"


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.01) -> None:
    """Poll until predicate() is true; fail naming it after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {predicate}")
        time.sleep(interval)


def make_tiny_bundle(folder: Path) -> Path | None:
    """A bundle folder of symlinks to the tiny fixtures; None when the fixture folder lacks them."""
    from jukebox_model.bundle_dir import write_manifest

    vq, priors = discover("vqvae"), discover("prior")
    tops = [f for f in priors if f.base_set == TOP_BASE]
    ups = sorted((f for f in priors if f.base_set.startswith("upsampler_level_")), key=lambda f: f.base_set)
    ids = reference_dir() / "ids"
    if not vq or not tops or len(ups) < 2 or not ids.is_dir():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for fx in [vq[0], tops[0], *ups]:
        link = folder / fx.checkpoint.name
        if not link.exists():
            link.symlink_to(fx.checkpoint)
        names.append(link.name)
    if not (folder / "ids").exists():
        (folder / "ids").symlink_to(ids)
    write_manifest(
        folder,
        name="tiny-reference",
        vqvae=names[0],
        priors=names[1:],
        ids="ids",
        description="tiny random-weight reference models (tests only)",
    )
    return folder


@dataclass
class Message:
    address: str
    args: list[Any]
    source: tuple[str, int]


class OscClient:
    """A UDP socket on 127.0.0.1 that sends OSC and collects every reply it gets."""

    def __init__(self, port: int):
        self.target = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.received: list[Message] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="test-osc-client", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            for timed in osc_packet.OscPacket(data).messages:
                message = timed.message
                with self._lock:
                    self.received.append(Message(message.address, list(message.params), source))

    def send(self, address: str, *args: Any) -> None:
        self.sock.sendto(build_message(address, args), self.target)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def ask_typed(self, address: str, *typed: tuple[Any, str], timeout: float = 15.0) -> Message:
        """Send arguments with explicit OSC type tags (e.g. (float('nan'), 'f')) and wait for the reply."""
        from pythonosc.osc_message_builder import OscMessageBuilder

        builder = OscMessageBuilder(address=address)
        for value, tag in typed:
            builder.add_arg(value, tag)
        start = len(self.messages())
        self.send_raw(builder.build().dgram)
        return self.wait_for(lambda m: m.address == address, timeout, f"reply on {address}", since=start)

    def messages(self, address: str | None = None) -> list[Message]:
        with self._lock:
            return [m for m in self.received if address is None or m.address == address]

    def wait_for(
        self, predicate: Callable[[Message], bool], timeout: float = 30.0, what: str = "a reply", since: int = 0
    ) -> Message:
        """The first message from index `since` on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        seen = since
        while time.monotonic() < deadline:
            with self._lock:
                batch = self.received[seen:]
            for m in batch:
                if predicate(m):
                    return m
            seen += len(batch)
            time.sleep(0.01)
        raise AssertionError(
            f"no {what} within {timeout} s; got {[(m.address, m.args) for m in self.messages()][-20:]}"
        )

    def ask(self, address: str, *args: Any, timeout: float = 15.0) -> Message:
        """Send and wait for the reply on the same address."""
        start = len(self.messages())
        self.send(address, *args)
        return self.wait_for(lambda m: m.address == address, timeout, f"reply on {address}", since=start)

    def wait_job(self, job_id: str, timeout: float = 120.0) -> Message:
        """Wait for the job's end event (done, cancelled or failed)."""
        ends = ("/jb/job/done", "/jb/job/cancelled", "/jb/job/failed")
        return self.wait_for(lambda m: m.address in ends and m.args[:1] == [job_id], timeout, f"end of job {job_id}")

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=2)


def tiny_bundle_or_skip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_tiny_bundle(tmp_path_factory.mktemp("bundle"))
    if folder is None:
        pytest.skip("the reference fixture folder lacks the tiny VQ-VAE, top prior, upsamplers or ids")
    return folder
