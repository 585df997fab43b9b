"""The bridge end to end over real UDP on 127.0.0.1: a running server with the tiny real model,
driven by a python-osc client, writing takes into a temp project folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.bridge.harness import OscClient

SHORT = 0.1  # seconds: more than one window at every tiny level, a few seconds of CPU for all three


def _ready(bridge) -> None:
    assert bridge.worker.ready.wait(240) and bridge.controller.model_state == "ready"


def _takes(client: OscClient, job_id: str):
    return [m for m in client.messages("/jb/job/take") if m.args[0] == job_id]


def test_requests_are_answered_on_their_address_and_bad_ones_get_an_error_there_and_on_jb_error(make_bridge):
    bridge, c = make_bridge()
    assert c.ask("/jb/ping").args[0] == "ok"
    assert c.ask("/jb/set/temperature", 0.9).args == pytest.approx([0.9, 0.9, 0.9])
    assert c.ask("/jb/set/n_takes", "3").args == [3]  # numeric strings
    assert c.ask("/jb/set/n_takes", 2.0).args == [2]  # TouchOSC floats
    assert c.ask("/jb/set/keep_prime", False).args == [0]  # bools
    assert c.ask("/jb/set/artist", "Alan Jackson").args == ["Alan Jackson"]
    assert c.ask("/jb/get/artist").args == ["Alan Jackson"]
    assert c.ask("/jb/set/length", 8, "bars", 96).args == [8.0, "bars", 96.0]  # exact in float32
    assert bridge.controller.session.length_s == 20.0

    for address, args, needle in [
        ("/jb/set/temperature", ["hot"], "expected a number"),
        ("/jb/set/n_takes", [2.5], "whole number"),
        ("/jb/set/n_takes", [1000], "outside"),
        ("/jb/set/length", [8, "beats"], "'s' or 'bars'"),
        ("/jb/get/nothing", [], "unknown address"),
        ("/live/song/get/tempo", [], "start with /jb/"),
        ("/jb/generate", ["sideways"], "unknown mode"),
        ("/jb/generate/continue", [], "no earlier take"),
        ("/jb/generate/primed", [], "no prime is set"),
        ("/jb/job/status", ["nope"], "unknown job"),
        ("/jb/preset/list", [], "no presets folder"),
    ]:
        reply = c.ask(address, *args)
        assert reply.args[0] == "error" and needle in reply.args[1], (address, reply.args)
        on_error = c.wait_for(lambda m, a=address, r=reply: m.address == "/jb/error" and m.args[:2] == [a, r.args[1]])
        assert on_error
    for value, tag in [(float("nan"), "f"), (float("inf"), "d")]:
        reply = c.ask_typed("/jb/set/temperature", (value, tag))
        assert reply.args[0] == "error" and "finite" in reply.args[1]
    assert bridge.controller.session.n_takes == 2  # refused values changed nothing

    c.send_raw(b"not an osc packet at all")
    malformed = c.wait_for(lambda m: m.address == "/jb/error" and "malformed" in str(m.args))
    assert malformed and c.ask("/jb/ping").args[0] == "ok"


def test_a_job_reports_queue_progress_takes_and_done_with_every_level_delivered_preview_first(make_bridge):
    bridge, c = make_bridge(sample_rate=48000, output_format="float")
    _ready(bridge)
    c.ask("/jb/set/length", SHORT)
    c.ask("/jb/set/n_takes", 2)
    c.ask("/jb/set/seed", 1234)
    c.ask("/jb/set/artist", "Alan Jackson")
    c.ask("/jb/set/genre", "Country")
    reply = c.ask("/jb/generate")
    job_id, state, position = reply.args[:3]
    assert state == "queued" and position == 1 and reply.args[4:] == ["ancestral", 1234]
    end = c.wait_job(job_id)
    assert end.address == "/jb/job/done"

    events = [m for m in c.messages() if m.args[:1] == [job_id] and m.address.startswith("/jb/job/")]
    kinds = [m.address.rsplit("/", 1)[1] for m in events]
    assert kinds[0] == "queued" and kinds[1] == "started" and kinds[-1] == "done"
    assert "progress" in kinds and kinds.index("progress") < kinds.index("take")
    takes = _takes(c, job_id)
    assert [(m.args[1], m.args[2]) for m in takes] == [(1, 2), (2, 2), (1, 1), (2, 1), (1, 0), (2, 0)]
    assert [m.args[4] for m in takes[:2]] == [1234, 1235]  # a seed per take
    assert end.args[1] == 6 and Path(end.args[2]).is_file()  # file count and the codes file

    project = bridge.settings.project_dir
    for m in takes:
        path = Path(m.args[3])
        assert path.parent == project and job_id in path.name and f"_t0{m.args[1]}_" in path.name
        assert path.name.endswith(f"_L{m.args[2]}.wav")
        info = sf.info(str(path))
        assert info.samplerate == 48000 and info.subtype == "FLOAT" and info.frames == round(SHORT * 48000)
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["job"] == job_id and sidecar["take"] == m.args[1] and sidecar["level"] == m.args[2]
        assert sidecar["seed"] == m.args[4] and sidecar["conditioning"]["artist"] == "Alan Jackson"
        assert sidecar["model"]["bundle"] == "tiny-reference" and sidecar["codes"]["path"] == end.args[2]
        assert sidecar["regenerate"]["request"]["params"]["seed"] == m.args[4]
        assert sidecar["regenerate"]["request"]["n_takes"] == 1
    assert not [p for p in project.iterdir() if p.name.endswith(".part")]  # no temp file left behind


def test_previews_of_waiting_jobs_run_before_earlier_jobs_are_upsampled(make_bridge):
    bridge, c = make_bridge()
    _ready(bridge)
    c.ask("/jb/set/length", SHORT)
    first = c.ask("/jb/generate").args[0]
    second = c.ask("/jb/generate").args[0]
    c.wait_job(first)
    c.wait_job(second)
    order = [(m.args[0], m.args[2]) for m in c.messages("/jb/job/take")]
    assert order == [(first, 2), (second, 2), (first, 1), (first, 0), (second, 1), (second, 0)]


def test_cancel_keeps_what_was_sampled_and_continue_picks_up_from_there(make_bridge):
    bridge, c = make_bridge()
    _ready(bridge)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/length", 3.0)  # long enough to be caught mid-level
    job_id = c.ask("/jb/generate").args[0]
    c.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[0] == job_id)
    assert c.ask("/jb/cancel", job_id).args == [1, job_id]
    end = c.wait_job(job_id)
    assert end.address == "/jb/job/cancelled" and end.args[1] == 0
    kept = torch.load(end.args[2], weights_only=True)["zs"]
    full = int(3.0 * 44100) // 128
    assert 0 < kept[2].shape[1] < full

    c.ask("/jb/set/length", SHORT)
    cont = c.ask("/jb/generate/continue", job_id).args[0]
    done = c.wait_job(cont)
    assert done.address == "/jb/job/done"
    extended = torch.load(done.args[2], weights_only=True)["zs"][2]
    assert torch.equal(extended[:, : kept[2].shape[1]], kept[2])
    assert extended.shape[1] == -(-(kept[2].shape[1] * 128 + round(SHORT * 44100)) // 128)
    take = _takes(c, cont)[0]
    assert sf.info(take.args[3]).frames == kept[2].shape[1] * 128 + round(
        SHORT * 44100
    )  # the earlier take + the new part


def test_a_primed_take_follows_the_prime_and_primes_outside_the_allowed_folders_are_refused(make_bridge, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bridge, c = make_bridge(inbox_dir=inbox)
    _ready(bridge)
    t = np.arange(int(0.2 * 44100)) / 44100
    sf.write(inbox / "clip.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
    outside = tmp_path / "elsewhere.wav"
    sf.write(outside, np.zeros(4410, dtype=np.float32), 44100)
    (inbox / "escape.wav").symlink_to(outside)

    for path, needle in [
        (str(outside), "outside"),
        (str(inbox / ".." / "elsewhere.wav"), "outside"),
        (str(inbox / "escape.wav"), "outside"),
        (str(inbox / "missing.wav"), "not a file"),
    ]:
        reply = c.ask("/jb/prime/file", path)
        assert reply.args[0] == "error" and needle in reply.args[1], (path, reply.args)
    assert c.ask("/jb/prime/file", "clip.wav").args == [str(inbox / "clip.wav")]  # relative to the inbox

    c.ask("/jb/set/prime_s", 0.1)
    c.ask("/jb/set/length", SHORT)
    c.ask("/jb/set/levels", 1)
    primed = c.ask("/jb/generate").args
    assert primed[4] == "primed"
    assert c.wait_job(primed[0]).address == "/jb/job/done"
    kept_prime = int(0.1 * 44100) // 128 * 128
    take = _takes(c, primed[0])[0]
    assert sf.info(take.args[3]).frames == kept_prime + round(SHORT * 44100)
    sidecar = json.loads(Path(take.args[3]).with_suffix(".json").read_text())
    assert sidecar["prime"]["path"] == str(inbox / "clip.wav") and len(sidecar["prime"]["sha256"]) == 64

    c.ask("/jb/set/keep_prime", 0)
    new_only = c.ask("/jb/generate/primed").args[0]
    c.wait_job(new_only)
    assert sf.info(_takes(c, new_only)[0].args[3]).frames == round(SHORT * 44100)


def test_one_take_regenerates_alone_from_the_seed_in_its_sidecar(make_bridge):
    bridge, c = make_bridge()
    _ready(bridge)
    c.ask("/jb/set/length", SHORT)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/n_takes", 2)
    c.ask("/jb/set/seed", 100)
    pair = c.ask("/jb/generate").args[0]
    c.wait_job(pair)
    second = Path(_takes(c, pair)[1].args[3])
    seed = json.loads(second.with_suffix(".json").read_text())["seed"]
    assert seed == 101
    c.ask("/jb/set/n_takes", 1)
    c.ask("/jb/set/seed", seed)
    alone = c.ask("/jb/generate").args[0]
    c.wait_job(alone)
    a, _ = sf.read(second)
    b, _ = sf.read(_takes(c, alone)[0].args[3])
    np.testing.assert_allclose(a, b, atol=1e-6)

    c.ask("/jb/set/seed", -1)
    c.ask("/jb/set/length", 5)  # the sidecar, not the session, decides what is made
    again = c.ask("/jb/regenerate", str(second.with_suffix(".json"))).args
    assert again[1] == "queued" and again[5] == 101
    c.wait_job(again[0])
    regenerated, _ = sf.read(_takes(c, again[0])[0].args[3])
    np.testing.assert_allclose(a, regenerated, atol=1e-6)
    outside = c.ask("/jb/regenerate", "/etc/passwd")
    assert outside.args[0] == "error" and "sidecar in the project folder" in outside.args[1]


def test_a_failing_job_is_reported_and_the_server_keeps_serving_with_the_model_loaded(make_bridge, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bridge, c = make_bridge(inbox_dir=inbox)
    _ready(bridge)
    clip = inbox / "clip.wav"
    sf.write(clip, np.zeros(8820, dtype=np.float32), 44100)
    c.ask("/jb/prime/file", str(clip))
    clip.write_bytes(b"RIFF" + b"\x00" * 40)  # the clip is spoiled after it was accepted
    c.ask("/jb/set/length", SHORT)
    c.ask("/jb/set/levels", 1)
    failed = c.ask("/jb/generate").args[0]
    end = c.wait_job(failed)
    assert end.address == "/jb/job/failed" and "clip.wav" in end.args[1]
    assert c.wait_for(lambda m: m.address == "/jb/error" and m.args[:2] == ["/jb/job/failed", failed])

    c.ask("/jb/prime/clear")
    c.ask("/jb/set/artist", "Nobody In The Tables 123")
    ok = c.ask("/jb/generate").args[0]
    assert c.wait_job(ok).address == "/jb/job/done"
    warning = c.wait_for(lambda m: m.address == "/jb/job/warning" and m.args[0] == ok)
    assert "Nobody In The Tables 123" in warning.args[1]
    assert bridge.worker.alive


def test_subscribers_hear_the_jobs_of_other_clients_until_they_unsubscribe(make_bridge):
    bridge, c = make_bridge()
    _ready(bridge)
    listener = OscClient(bridge.port)
    try:
        assert listener.ask("/jb/subscribe").args == ["127.0.0.1", listener.port]
        c.ask("/jb/set/length", SHORT)
        c.ask("/jb/set/levels", 1)
        job_id = c.ask("/jb/generate").args[0]
        assert listener.wait_job(job_id).address == "/jb/job/done"
        assert [m.args[0] for m in listener.messages("/jb/job/take")] == [job_id]
        assert listener.messages("/jb/set/length")  # replies to others are heard too

        listener.ask("/jb/unsubscribe")
        later = c.ask("/jb/generate").args[0]
        c.wait_job(later)
        assert not [m for m in listener.messages() if m.args[:1] == [later]]
    finally:
        listener.close()


def test_status_and_job_status_report_the_state_the_queue_and_the_files(make_bridge):
    bridge, c = make_bridge()
    _ready(bridge)
    status = c.ask("/jb/status").args
    assert status[:3] == ["ready", 0, ""] and status[3] == "tiny-reference"
    c.ask("/jb/set/length", SHORT)
    c.ask("/jb/set/levels", 1)
    job_id = c.ask("/jb/generate").args[0]
    c.wait_job(job_id)
    snap = c.ask("/jb/job/status", job_id).args
    assert snap[:3] == [job_id, "done", "preview"] and snap[-1] == 1
    assert c.ask("/jb/jobs").args == [job_id]


def test_a_model_that_fails_to_load_is_reported_and_generate_is_refused_with_the_reason(make_bridge):
    def broken():
        raise FileNotFoundError("checkpoint not found: /models/vqvae.pth.tar")

    bridge, c = make_bridge(engine=broken)
    assert bridge.worker.ready.wait(10) and bridge.controller.model_state == "failed"
    reply = c.ask("/jb/generate")
    assert reply.args[0] == "error" and "vqvae.pth.tar" in reply.args[1]
    assert c.ask("/jb/status").args[0] == "failed"


def test_a_long_prime_is_read_from_its_end_and_the_take_follows_its_last_seconds(make_bridge, tmp_path):
    """Only the kept tail of a long export is decoded; the take starts with exactly that tail."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _, c = make_bridge(inbox_dir=inbox, output_format="float")
    sr = 44100
    silence, tone = np.zeros(sr * 30, dtype=np.float32), 0.4 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    sf.write(inbox / "long.wav", np.concatenate([silence, tone.astype(np.float32)]), sr, subtype="FLOAT")
    c.ask("/jb/prime/file", "long.wav")
    c.ask("/jb/set/prime_s", 0.1)
    c.ask("/jb/set/length", SHORT)
    c.ask("/jb/set/levels", 1)
    job = c.ask("/jb/generate").args[0]
    assert c.wait_job(job).address == "/jb/job/done"
    take = Path(_takes(c, job)[0].args[3])
    kept = int(0.1 * sr) // 128 * 128
    audio, _ = sf.read(take)
    assert len(audio) == kept + round(SHORT * sr)
    assert np.abs(audio[:kept]).mean() > 0.05  # the prime part is the tone at the clip's end, not its silent start


def test_progress_eta_covers_the_levels_still_to_come_once_they_have_been_measured(make_bridge):
    bridge, c = make_bridge()
    c.ask("/jb/set/length", SHORT)
    first = c.ask("/jb/generate").args[0]  # measures every level's rate
    c.wait_job(first)
    second = c.ask("/jb/generate").args[0]
    c.wait_job(second)
    top = [m.args[3] for m in c.messages("/jb/job/progress") if m.args[0] == second and m.args[1] == 2]
    bottom = [m.args[3] for m in c.messages("/jb/job/progress") if m.args[0] == second and m.args[1] == 0]
    assert top and bottom and min(top) > 0  # the preview's ETA includes the upsampling still to come
    assert bottom[-1] == pytest.approx(0.0, abs=0.05)
    level_one_alone = bridge.controller.board.throughput.seconds(1, SHORT * 44100 / 32)
    assert min(top) >= level_one_alone * 0.5
