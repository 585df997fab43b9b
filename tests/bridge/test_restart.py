"""A bridge killed mid-render loses nothing: no partial take is ever visible, and after a restart
the queued jobs resume from the codes they had finished, delivering only what was not delivered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import soundfile as sf

from tests.bridge.harness import OscClient

REPO = Path(__file__).resolve().parents[2]
LENGTH = 0.3  # seconds: the level-1 stage runs long enough to be killed in the middle


def _start_process(bundle: Path, project: Path, presets: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "run_bridge.py"),
            "--bundle",
            str(bundle),
            "--project",
            str(project),
            "--presets",
            str(presets),
            "--port",
            "0",
            "--device",
            "cpu",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    line = proc.stdout.readline()
    assert "OSC on" in line, line
    port = int(line.split("OSC on ")[1].split(",")[0].rsplit(":", 1)[1])
    return proc, port


def _levels_by_job(project: Path) -> Counter:
    return Counter((p.name.split("_")[2], p.name.rsplit("_", 1)[1]) for p in project.glob("*.wav"))


def test_a_killed_bridge_leaves_no_partial_take_and_resumes_its_jobs_after_a_restart(
    tiny_bundle, tmp_path, make_bridge
):
    project, presets = tmp_path / "project", tmp_path / "presets"
    presets.mkdir()
    proc, port = _start_process(tiny_bundle, project, presets)
    client = OscClient(port)
    try:
        deadline = time.monotonic() + 240  # loading and the warm-up rate measurement, on a loaded machine
        while client.ask("/jb/status").args[0] != "ready":
            assert time.monotonic() < deadline, "the bridge did not get ready"
            time.sleep(0.2)
        client.ask("/jb/set/length", LENGTH)
        client.ask("/jb/set/levels", 2)
        client.ask("/jb/set/hop_fraction", 0.5)  # few windows: the test is about the kill, not the schedule
        first = client.ask("/jb/generate").args[0]
        second = client.ask("/jb/generate").args[0]
        # both previews are delivered first; kill while the first job is being upsampled
        client.wait_for(lambda m: m.address == "/jb/job/take" and m.args[0] == second and m.args[2] == 2, timeout=240)
        client.wait_for(
            lambda m: m.address == "/jb/job/progress" and m.args[0] == first and m.args[1] == 1, timeout=120
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()

    before = _levels_by_job(project)
    assert before == Counter({(first, "L2.wav"): 1, (second, "L2.wav"): 1})
    for wav in project.glob("*.wav"):  # every visible take is whole, with its sidecar
        assert sf.info(str(wav)).frames == round(LENGTH * 44100) and wav.with_suffix(".json").is_file()
    journal = {
        json.loads(p.read_text())["id"]: json.loads(p.read_text()) for p in (project / ".jukebox/jobs").glob("*.json")
    }
    assert {journal[first]["state"], journal[second]["state"]} <= {"queued", "running"}
    saved = project / ".jukebox/codes" / f"{first}.pt"
    assert saved.is_file()

    import torch

    top_before = torch.load(saved, weights_only=True)["zs"][2]
    _, c = make_bridge(project_dir=project)  # the same project folder, a new process's worth of bridge
    c.ask("/jb/subscribe")
    ends = [c.wait_job(job_id, timeout=300) for job_id in (first, second)]
    assert [e.address for e in ends] == ["/jb/job/done", "/jb/job/done"]
    after = _levels_by_job(project)
    assert after == Counter({(first, "L2.wav"): 1, (first, "L1.wav"): 1, (second, "L2.wav"): 1, (second, "L1.wav"): 1})
    top_after = torch.load(saved, weights_only=True)["zs"][2]
    assert torch.equal(top_before, top_after)  # the finished level was not sampled again
    assert not list(project.glob(".*.part"))
    assert {json.loads((project / ".jukebox/jobs" / f"{j}.json").read_text())["state"] for j in (first, second)} == {
        "done"
    }


def test_stopping_the_bridge_interrupts_the_running_job_and_the_next_start_finishes_it(make_bridge, tmp_path):
    project = tmp_path / "project"
    bridge, c = make_bridge(project_dir=project)
    c.ask("/jb/subscribe")  # the 'stopping' state is an event: subscribers hear it
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/hop_fraction", 0.5)
    c.ask("/jb/set/length", 1.5)
    job_id = c.ask("/jb/generate").args[0]
    c.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[0] == job_id and m.args[2] > 0.05, timeout=120)
    bridge.stop()  # what Ctrl-C does
    assert c.wait_for(lambda m: m.address == "/jb/state" and m.args[0] == "stopping", timeout=5)
    assert not c.messages("/jb/job/cancelled")
    record = json.loads((project / ".jukebox/jobs" / f"{job_id}.json").read_text())
    assert record["state"] == "queued"

    _, c2 = make_bridge(project_dir=project)
    c2.ask("/jb/subscribe")
    assert c2.wait_job(job_id, timeout=240).address == "/jb/job/done"
    take = c2.wait_for(lambda m: m.address == "/jb/job/take" and m.args[0] == job_id)
    assert sf.info(take.args[3]).frames == round(1.5 * 44100)
