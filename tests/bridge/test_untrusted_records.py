"""Files the bridge reads back about its own work — journal records, sidecars, codes files — as untrusted
input, and no reply loop through the bridge's own socket. Real files, FIFOs and UDP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import pickle
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder

from bridge.commands import Origin
from bridge.controller import Controller
from bridge.errors import CommandError
from bridge.events import EventBus, ModelState
from bridge.jobs.journal import JobJournal
from bridge.jobs.queue import JobQueue
from bridge.jobs.record import JobRecord
from bridge.settings import BridgeSettings
from jukebox_model.api import Mode
from jukebox_model.sampling.sampler import load_codes
from tests.bridge.fake_engine import FakeEngine
from tests.bridge.record_examples import example_spec, example_take_record

OSC = Origin("osc", client=("127.0.0.1", 5555), address="/jb/regenerate")


def _controller(project: Path, **settings) -> Controller:
    s = BridgeSettings(project_dir=project, presets_dir=None, **settings)
    c = Controller(s, JobQueue(), EventBus(), journal=JobJournal(project / ".jukebox/jobs"))
    engine = FakeEngine()
    c.board.set_model_state(ModelState.READY, info=engine.info(), check=engine.check)
    return c


def _restore(c: Controller) -> list[str]:
    return c.board.restore(c.state.confine_prime, c.codes_dir)


def _good_record(project: Path, job_id: str = "jgood000", mode: Mode = Mode.ANCESTRAL) -> dict:
    return JobRecord(example_spec(mode, job_id=job_id)).to_dict()


def test_no_journal_file_of_any_shape_stops_a_start_and_the_good_records_still_resume(tmp_path, caplog):
    jobs = tmp_path / ".jukebox/jobs"
    jobs.mkdir(parents=True)
    (jobs / "jgood000.json").write_text(json.dumps(_good_record(tmp_path)))
    hostile = {
        "jlist000.json": "[1, 2, 3]",
        "jnull000.json": "null",
        "jtext000.json": '"just text"',
        "jnum0000.json": "12",
        "jdeep000.json": "[" * 100_000 + "]" * 100_000,
        "jtype000.json": json.dumps({**_good_record(tmp_path, "jtype000"), "files": {"a": 1}}),
        "jwho0000.json": json.dumps({**_good_record(tmp_path, "jwho0000"), "id": "../../escape"}),
        "jother00.json": json.dumps(_good_record(tmp_path, "jsomeone")),  # names another job than its file
        "empty.json": "",
    }
    for name, text in hostile.items():
        (jobs / name).write_text(text)
    (jobs / "jbin0000.json").write_bytes(b"\xff\xfe\x00garbage")
    (jobs / "jhuge000.json").write_bytes(b" " * (5 * 1024 * 1024))
    os.mkfifo(jobs / "jfifo000.json")  # reading it would block a start forever

    started = time.monotonic()
    assert _restore(_controller(tmp_path)) == ["jgood000"]
    assert time.monotonic() - started < 10
    for name in [*hostile, "jbin0000.json", "jhuge000.json", "jfifo000.json"]:
        assert name in caplog.text, name
        assert (jobs / name).exists()  # left for a person to look at
    assert "a FIFO" in caplog.text and "over the limit" in caplog.text and "not UTF-8" in caplog.text


@pytest.mark.parametrize("field,value", [("prime_path", "/etc/passwd"), ("codes_path", "/etc/passwd")])
def test_a_journal_record_naming_a_file_outside_the_allowed_folders_is_not_resumed(tmp_path, caplog, field, value):
    mode = Mode.PRIMED if field == "prime_path" else Mode.CONTINUE
    record = _good_record(tmp_path, "jout0000", mode)
    record["request"][field] = value
    jobs = tmp_path / ".jukebox/jobs"
    jobs.mkdir(parents=True)
    (jobs / "jout0000.json").write_text(json.dumps(record))
    assert _restore(_controller(tmp_path)) == []
    assert "jout0000" in caplog.text and "outside the folders" in caplog.text


def _sidecar(project: Path, name: str, data: dict | None = None, *, mode: Mode = Mode.CONTINUE) -> Path:
    path = project / name
    path.write_text(json.dumps(data if data is not None else example_take_record(mode).to_dict()))
    return path


def test_regenerate_refuses_a_sidecar_whose_codes_or_prime_lie_outside_the_allowed_folders(tmp_path):
    c = _controller(tmp_path)
    with pytest.raises(CommandError, match="codes .*outside the folders"):
        c.replays.regenerate(_sidecar(tmp_path, "a.json"), origin=OSC)  # its codes are in /music/p/...
    primed = example_take_record(Mode.PRIMED).to_dict()
    with pytest.raises(CommandError, match="prime .*outside the folders primes may come from"):
        c.replays.regenerate(_sidecar(tmp_path, "b.json", primed), origin=OSC)
    assert c.board.records() == []


def test_regenerate_of_a_fifo_or_a_huge_or_hostile_sidecar_answers_at_once_with_the_reason(tmp_path):
    c = _controller(tmp_path)
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "huge.json").write_bytes(b"{" + b" " * (5 * 1024 * 1024) + b"}")
    cases = {
        "fifo.json": "a FIFO",
        "huge.json": "over the limit",
        "list.json": "JSON list",
        "deep.json": "not valid JSON",
        "wrong.json": "not a take sidecar",
    }
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "deep.json").write_text("[" * 100_000)
    (tmp_path / "wrong.json").write_text(json.dumps({**example_take_record().to_dict(), "take": "two"}))
    for name, reason in cases.items():
        started = time.monotonic()
        with pytest.raises(CommandError, match=reason):
            c.replays.regenerate(tmp_path / name, origin=OSC)
        assert time.monotonic() - started < 5, name


def test_a_codes_file_that_is_not_tensors_of_codes_is_refused_and_never_runs_code(tmp_path):
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (ran,))

    (tmp_path / "code.pt").write_bytes(pickle.dumps({"zs": [Payload()]}))
    torch.save({"zs": [torch.zeros(2, 3)]}, tmp_path / "floats.pt")
    torch.save({"zs": [torch.zeros(2, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long)]}, tmp_path / "rows.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    torch.save({"zs": [torch.zeros(1, 3, dtype=torch.long)], "params": {"seed": "x"}}, tmp_path / "params.pt")
    os.mkfifo(tmp_path / "fifo.pt")
    for name, reason in {
        "code.pt": "not a readable codes file",
        "floats.pt": "2-D int64",
        "rows.pt": "numbers of takes",
        "list.pt": "not a codes file",
        "params.pt": "seed must be an integer",
        "fifo.pt": "not a regular file",
    }.items():
        with pytest.raises(ValueError, match=reason):
            load_codes(tmp_path / name)
    assert not ran.exists()


# --- reply loops --------------------------------------------------------------------------------------


def test_the_bridge_refuses_to_subscribe_its_own_socket_in_any_address_form_and_answers_on(make_bridge):
    bridge, c = make_bridge(engine=FakeEngine)
    port = bridge.port
    for host in ("127.0.0.1", "127.0.0.2", "0.0.0.0", "::ffff:127.0.0.1", "::1"):
        reply = c.ask("/jb/subscribe", port, host)
        assert reply.args[0] == "error" and "own OSC port" in reply.args[1], host
    assert bridge.notifier.subscribers() == []
    assert c.ask("/jb/ping").args[0] == "ok"


def test_a_subscriber_configured_as_the_bridges_own_port_gets_nothing_and_nothing_loops(make_bridge, tmp_path):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # a free port the bridge will bind, listed as a subscriber too
    bridge, c = make_bridge(engine=FakeEngine, port=port, subscribers=(("127.0.0.1", port),))
    before = bridge.osc.received
    for _ in range(5):
        c.ask("/jb/nonsense")
    time.sleep(0.5)
    assert bridge.osc.received - before == 5 and bridge.osc.looped == 0  # only the client's own datagrams arrived


def test_datagrams_that_come_from_the_bridges_own_notifier_are_dropped_unanswered(make_bridge):
    bridge, c = make_bridge(engine=FakeEngine)
    notifier = bridge.notifier
    notifier._sock.sendto(b"/jb/ping\x00\x00\x00\x00,\x00\x00\x00", ("127.0.0.1", bridge.port))  # as if it looped
    deadline = time.monotonic() + 5
    while bridge.osc.looped == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bridge.osc.looped == 1
    assert c.ask("/jb/ping").args[0] == "ok"


def test_an_empty_bundle_gets_an_error_reply_instead_of_silence(make_bridge):
    _, c = make_bridge(engine=FakeEngine)
    c.send_raw(OscBundleBuilder(IMMEDIATELY).build().dgram)
    reply = c.wait_for(lambda m: m.address == "/jb/error" and m.args[0] == "(empty)", timeout=5)
    assert "no messages" in reply.args[1]


def test_a_prime_that_is_a_fifo_is_refused_without_blocking_the_osc_thread(make_bridge, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "clip.wav")
    _, c = make_bridge(engine=FakeEngine, inbox_dir=inbox)
    done = threading.Event()

    def ask() -> None:
        reply = c.ask("/jb/prime/file", str(inbox / "clip.wav"), timeout=5)
        assert reply.args[0] == "error" and "FIFO" in reply.args[1]
        done.set()

    ask()
    assert done.is_set() and c.ask("/jb/ping").args[0] == "ok"


def test_a_bridge_bound_to_every_address_counts_each_of_this_machines_addresses_as_its_own():
    from bridge.transports.notify import Notifier

    n = Notifier()
    n.guard(9950, "0.0.0.0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a UDP connect sends nothing: it only picks the local address
            local = probe.getsockname()[0]
        except OSError:
            local = "127.0.0.1"
    assert n.is_own((local, 9950)) and n.is_own(("127.0.0.5", 9950)) and n.is_own(("0.0.0.0", 9950))
    assert not n.is_own(("192.0.2.55", 9950))  # TEST-NET-1: never an address of this machine
    assert not n.is_own((local, 9951))  # another port is another program
    with pytest.raises(ValueError, match="own OSC port"):
        n.subscribe((local, 9950))
    n.stop()
