"""liblo's `oscsend` and `oscdump` as an independent OSC implementation driving the bridge: requests
sent by one program, replies and job events read by another, over real UDP on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

HAVE_LIBLO = shutil.which("oscsend") is not None and shutil.which("oscdump") is not None
if not HAVE_LIBLO and os.environ.get("CI"):
    raise RuntimeError("CI must have liblo-tools (oscsend/oscdump): .ci/run installs them")
pytestmark = pytest.mark.skipif(not HAVE_LIBLO, reason="liblo-tools (oscsend/oscdump) not installed")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dump:
    """`oscdump -L <port>` in the background; its lines parsed into (address, types, args text)."""

    def __init__(self, port: int):
        self.proc = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, text=True)
        self.lines: list[tuple[str, str, str]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        time.sleep(0.3)  # let it bind

    def _read(self) -> None:
        for line in self.proc.stdout:
            parts = line.rstrip("\n").split(" ", 3)  # <timetag> <path> <types> <args...>
            if len(parts) >= 3:
                self.lines.append((parts[1], parts[2], parts[3] if len(parts) > 3 else ""))

    def wait(self, predicate, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if predicate(line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"oscdump saw nothing matching within {timeout} s: {self.lines[-15:]}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


def oscsend(port: int, address: str, types: str = "", *values: str) -> None:
    subprocess.run(
        ["oscsend", "localhost", str(port), address, types, *values]
        if types
        else ["oscsend", "localhost", str(port), address],
        check=True,
        timeout=10,
    )


def test_oscsend_requests_reach_the_bridge_and_oscdump_hears_replies_and_a_whole_job(make_bridge):
    bridge, _ = make_bridge()
    dump_port = _free_port()
    dump = Dump(dump_port)
    try:
        # oscsend cannot receive, so it subscribes oscdump's port (sent from oscsend's own host)
        oscsend(bridge.port, "/jb/subscribe", "i", str(dump_port))
        dump.wait(lambda l: l[0] == "/jb/subscribe")
        oscsend(bridge.port, "/jb/ping")
        assert dump.wait(lambda l: l[0] == "/jb/ping")[2].startswith('"ok"')
        oscsend(bridge.port, "/jb/set/temperature", "f", "0.95")  # float
        oscsend(bridge.port, "/jb/set/n_takes", "s", "1")  # numeric string
        oscsend(bridge.port, "/jb/set/keep_prime", "T")  # bool tag
        oscsend(bridge.port, "/jb/set/length", "d", "0.1")  # double
        oscsend(bridge.port, "/jb/set/levels", "i", "1")
        dump.wait(lambda l: l[0] == "/jb/set/levels")
        assert bridge.controller.session.temperature == (0.95, 0.95, 0.95)
        assert bridge.controller.session.keep_prime is True and bridge.controller.session.length == 0.1

        oscsend(bridge.port, "/jb/set/n_takes", "s", "many")
        error = dump.wait(lambda l: l[0] == "/jb/error")
        assert "/jb/set/n_takes" in error[2] and "expected a number" in error[2]

        oscsend(bridge.port, "/jb/generate")
        queued = dump.wait(lambda l: l[0] == "/jb/generate")
        job_id = queued[2].split(" ")[0].strip('"')
        assert queued[1].startswith("ssi")  # job id, "queued", position
        take = dump.wait(lambda l: l[0] == "/jb/job/take" and job_id in l[2])
        assert ".wav" in take[2]
        done = dump.wait(lambda l: l[0] == "/jb/job/done" and job_id in l[2])
        assert done[1] == "sis"
        assert any(l[0] == "/jb/job/progress" for l in dump.lines)
    finally:
        dump.close()
