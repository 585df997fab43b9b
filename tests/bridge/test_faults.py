"""Faults injected into a running bridge: out of memory in a job, a full disk while a take is written,
an inbox clip deleted before it is read, and model files missing or corrupt at start.

The first three run against the tiny real model over loopback UDP; the model faults start the
real entry point (`run_bridge.py`) as a subprocess and bound how long it may take to give up.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from bridge.takes import renderer
from tests.bridge.harness import OscClient

REPO = Path(__file__).resolve().parents[2]
SHORT = 0.1
START_LIMIT_S = 120  # torch's import dominates; a bridge that does not give up by then has hung


class FailingEngine:
    """The tiny engine, except that `sample_level` fails the first `times` calls with what `fail()` raises."""

    def __init__(self, engine: Any, fail, times: int = 1):
        self._engine, self._fail, self.left = engine, fail, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def sample_level(self, *args: Any, **kwargs: Any) -> Any:
        if self.left > 0:
            self.left -= 1
            self._fail()
        return self._engine.sample_level(*args, **kwargs)


def _raise(error: BaseException):
    def fail() -> None:
        raise error

    return fail


def _allocate_too_much() -> None:
    torch.empty(2**60, dtype=torch.uint8)  # 1 EiB, beyond any address space: refused at once, even with overcommit


def _preview(c: OscClient, n_takes: int = 1) -> str:
    c.ask("/jb/set/length", SHORT)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/n_takes", n_takes)
    return c.ask("/jb/generate").args[0]


@pytest.mark.parametrize(
    "fail",
    [
        pytest.param(
            _raise(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")), id="cuda-oom"
        ),
        pytest.param(_raise(MemoryError()), id="memory-error"),
        pytest.param(_allocate_too_much, id="cpu-allocator"),
    ],
)
def test_out_of_memory_in_a_job_fails_that_job_with_advice_and_the_next_job_runs_on_the_loaded_model(
    make_bridge, tiny_engine_factory, fail
):
    engine = FailingEngine(tiny_engine_factory(), fail)
    bridge, c = make_bridge(engine=lambda: engine)
    failed = _preview(c)
    end = c.wait_job(failed, timeout=60)
    assert end.address == "/jb/job/failed"
    notice = c.wait_for(lambda m: m.address == "/jb/error" and m.args[:2] == ["/jb/job/failed", failed])
    assert notice.args[2] == end.args[1]
    assert bridge.controller.model_state == "ready" and bridge.worker.engine is engine  # not reloaded
    ok = _preview(c)
    assert c.wait_job(ok, timeout=60).address == "/jb/job/done" and bridge.worker.alive
    assert end.args[1].startswith("out of memory:") and "fewer takes" in end.args[1]


def _project_files(project: Path) -> list[str]:
    return sorted(p.name for p in project.iterdir() if p.is_file())


@pytest.mark.parametrize("fail_at", [1, 2, 3], ids=["first-take-audio", "first-take-sidecar", "second-take-audio"])
def test_a_full_disk_while_a_take_is_written_fails_the_job_clearly_and_leaves_no_partial_or_hidden_file(
    make_bridge, monkeypatch, fail_at
):
    """Each take is two temp files (audio, then sidecar); the `fail_at`-th one hits ENOSPC after 4 KiB."""
    bridge, c = make_bridge()
    real = renderer._temp_file
    calls: list[str] = []

    def filling_up(folder: Path, stem: str, write):
        calls.append(stem)
        if len(calls) == fail_at:

            def partial(f) -> None:
                f.write(b"\0" * 4096)
                raise OSError(errno.ENOSPC, "No space left on device")

            return real(folder, stem, partial)
        return real(folder, stem, write)

    monkeypatch.setattr(renderer, "_temp_file", filling_up)
    project = bridge.settings.project_dir
    job = _preview(c, n_takes=2)
    end = c.wait_job(job, timeout=60)
    assert end.address == "/jb/job/failed" and "No space left on device" in end.args[1], end.args
    files = _project_files(project)
    assert not [f for f in files if f.startswith(".") or f.endswith(".part")], files  # no temp file left
    wavs = [f for f in files if f.endswith(".wav")]
    delivered = [m.args[3] for m in c.messages("/jb/job/take") if m.args[0] == job]
    assert [Path(p).name for p in delivered] == wavs  # what is visible is exactly what was announced
    assert len(wavs) == (1 if fail_at == 3 else 0)
    for wav in wavs:  # a take that made it is whole, with its sidecar
        assert sf.info(str(project / wav)).frames == round(SHORT * 44100)
        assert json.loads((project / wav).with_suffix(".json").read_text())["job"] == job
    assert len([f for f in files if f.endswith(".json")]) == len(wavs)

    monkeypatch.setattr(renderer, "_temp_file", real)  # space again
    ok = _preview(c)
    assert c.wait_job(ok, timeout=60).address == "/jb/job/done"
    assert len([f for f in _project_files(project) if f.endswith(".wav")]) == len(wavs) + 1


def _clip(path: Path, seconds: float = 0.3) -> None:
    t = np.arange(int(seconds * 44100)) / 44100
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 44100)


def test_an_inbox_clip_deleted_after_it_was_taken_but_before_it_is_read_fails_clearly_and_nothing_else(
    make_bridge, tmp_path
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bridge, c = make_bridge(inbox_dir=inbox, inbox_quiet_s=0.05, inbox_auto_generate=True)
    c.ask("/jb/subscribe")  # jobs the inbox starts have no OSC requester
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/length", 3.0)
    busy = c.ask("/jb/generate").args[0]  # keeps the worker from reading the clip at once
    c.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[0] == busy, timeout=60)
    c.ask("/jb/set/length", SHORT)
    c.ask("/jb/set/prime_s", 0.1)
    clip = inbox / "take-me.wav"
    _clip(clip)
    queued = c.wait_for(lambda m: m.address == "/jb/job/queued" and m.args[3] == "primed", timeout=15)
    clip.unlink()
    assert c.ask("/jb/cancel", busy).args[:2] == [1, busy]
    end = c.wait_job(queued.args[0], timeout=60)
    assert end.address == "/jb/job/failed" and "take-me.wav" in end.args[1] and "not found" in end.args[1], end.args

    reply = c.ask("/jb/prime/inbox")  # the inbox has nothing left to offer
    assert reply.args[0] == "error" and "no clip" in reply.args[1]
    reply = c.ask("/jb/generate/primed")  # the session's prime is the deleted clip
    assert reply.args[0] == "error" and "gone" in reply.args[1] and "take-me.wav" in reply.args[1]
    assert c.ask("/jb/ping").args[0] == "ok" and bridge.worker.alive and bridge.inbox._thread.is_alive()

    again = inbox / "second.wav"  # the inbox still takes clips
    _clip(again)
    second = c.wait_for(
        lambda m: m.address == "/jb/job/queued" and m.args[3] == "primed" and m.args[0] != queued.args[0], timeout=15
    )
    assert c.wait_job(second.args[0], timeout=60).address == "/jb/job/done"


def test_a_clip_deleted_between_arriving_and_being_checked_is_dropped_without_a_report_or_a_prime(
    make_bridge, tmp_path
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bridge, c = make_bridge(inbox_dir=inbox, inbox_quiet_s=0.5, inbox_auto_generate=True)
    c.ask("/jb/subscribe")
    since = len(c.messages())
    for i in range(5):
        clip = inbox / f"gone-{i}.wav"
        _clip(clip, 0.05)
        clip.unlink()  # well within the quiet time: the watcher never reads it
    time.sleep(1.5)
    assert c.ask("/jb/ping").args[0] == "ok"
    said = [m for m in c.messages()[since:] if m.address in ("/jb/error", "/jb/prime", "/jb/job/queued")]
    assert said == [] and bridge.controller.prime is None and bridge.inbox.latest() is None


# --- model files at start: the real entry point ------------------------------------------------------------


def _start(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        str(REPO / "run_bridge.py"),
        "--port",
        "0",
        "--project",
        str(tmp_path / "project"),
        "--presets",
        str(tmp_path / "presets"),
        "--device",
        "cpu",
        *args,
    ]
    began = time.monotonic()
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=START_LIMIT_S, check=False)
    assert time.monotonic() - began < START_LIMIT_S
    return done


def _bundle_copy(tiny_bundle: Path, folder: Path) -> tuple[Path, dict]:
    shutil.copytree(tiny_bundle, folder, symlinks=True)
    return folder, json.loads((folder / "bundle.json").read_text())


def _replace(link: Path, data: bytes) -> None:
    link.unlink()  # a symlink to the shared fixture: never write through it
    link.write_bytes(data)


def test_missing_model_files_stop_the_bridge_before_it_starts_with_one_clear_line_and_exit_2(tmp_path, tiny_bundle):
    cases = {}
    cases["no such folder"] = (tmp_path / "nowhere", "not a bundle folder")
    folder, manifest = _bundle_copy(tiny_bundle, tmp_path / "missing-checkpoint")
    (folder / manifest["priors"][0]).unlink()
    cases["missing checkpoint"] = (folder, f"missing files: {folder / manifest['priors'][0]}")
    folder, _ = _bundle_copy(tiny_bundle, tmp_path / "bad-manifest")
    (folder / "bundle.json").write_text('{"vqvae": ')
    cases["manifest not JSON"] = (folder, "unreadable manifest")
    for what, (folder, needle) in cases.items():
        done = _start(tmp_path, "--bundle", str(folder))
        assert done.returncode == 2, (what, done.stderr[-2000:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("jukebox-bridge: ") and needle in lines[0], (what, lines)
        assert not (tmp_path / "project").exists()  # nothing started, nothing made


@pytest.mark.parametrize("damage", ["random-bytes", "truncated", "empty"])
def test_a_corrupt_checkpoint_is_found_when_the_worker_loads_it_and_the_bridge_exits_3_naming_it(
    tmp_path, tiny_bundle, damage
):
    folder, manifest = _bundle_copy(tiny_bundle, tmp_path / "corrupt")
    victim = folder / manifest["vqvae"]
    original = victim.read_bytes()
    data = {"random-bytes": os.urandom(4096), "truncated": original[: len(original) // 2], "empty": b""}[damage]
    _replace(victim, data)
    done = _start(tmp_path, "--bundle", str(folder))
    assert done.returncode == 3, done.stderr[-3000:]
    final = [line for line in done.stderr.splitlines() if "the model did not load" in line]
    assert len(final) == 1 and victim.name in final[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
