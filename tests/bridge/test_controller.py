"""The controller without a model: limits, cancelling queued jobs, retry, queue ETAs once token rates
are measured, and the journal's record of every job surviving into a new controller."""

from __future__ import annotations

import pytest

from bridge.controller import Controller
from bridge.controls import Origin
from bridge.errors import CommandError
from bridge.jobs import JobQueue, JobState
from bridge.journal import JobJournal
from bridge.notify import Notifier
from bridge.settings import BridgeSettings

OSC = Origin("osc", client=("127.0.0.1", 5555), address="/jb/generate")


class Recording(Notifier):
    def __init__(self):
        super().__init__()
        self.log: list[tuple] = []

    def send(self, client, address, *args):
        self.log.append((address, *args))


def _controller(tmp_path, **settings) -> Controller:
    s = BridgeSettings(project_dir=tmp_path, presets_dir=None, **settings)
    c = Controller(s, JobQueue(s.max_queue), Recording(), journal=JobJournal(tmp_path / ".jukebox/jobs"))
    c.set_model_state("ready", {"sr": 44100, "levels": [2, 1, 0], "hop_lengths": [8, 32, 128], "upsample_min_seconds": 1.5})
    return c


def test_limits_from_the_settings_and_the_model_refuse_a_job_before_it_is_queued(tmp_path):
    c = _controller(tmp_path, max_seconds=30, max_takes=4)
    for name, value, needle in [("length", 31, "over the limit of 30"), ("n_takes", 5, "over the limit of 4")]:
        c.set_param(name, [value], origin=OSC)
        with pytest.raises(CommandError, match=needle):
            c.generate(origin=OSC)
        c.set_param(name, [1], origin=OSC)
    c.set_param("length", [1.0], origin=OSC)
    with pytest.raises(CommandError, match="at least 1.50 s"):
        c.generate(origin=OSC)
    c.set_param("levels", [1], origin=OSC)  # a preview alone has no such minimum
    assert c.generate(origin=OSC)
    assert len(c.queue) == 1


def test_cancelling_a_queued_job_removes_it_and_tells_the_clients(tmp_path):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    a, b = c.generate(origin=OSC), c.generate(origin=OSC)
    assert c.cancel(a, origin=OSC) == [a]
    assert [j.id for j, _ in c.queue.waiting()] == [b] and c.job(a).snapshot()["state"] == "cancelled"
    assert ("/jb/job/cancelled", a, 0, "") in c.notifier.log
    with pytest.raises(CommandError, match="already cancelled"):
        c.cancel(a, origin=OSC)
    assert c.cancel(origin=OSC) == [b] and len(c.queue) == 0


def test_retry_repeats_the_last_job_with_a_fresh_seed(tmp_path):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    c.set_param("seed", [7], origin=OSC)
    first = c.job(c.generate(origin=OSC))
    again = c.job(c.retry(origin=OSC))
    assert again.spec.session == first.spec.session and again.spec.mode == first.spec.mode
    assert first.spec.seed == 7 and again.spec.seed != 7


def test_queue_etas_appear_once_token_rates_are_measured(tmp_path):
    c = _controller(tmp_path)
    c.set_param("length", [2.0], origin=OSC)
    a, b = c.generate(origin=OSC), c.generate(origin=OSC)
    assert c.eta_for(b) == -1.0  # nothing measured: no guess
    for level, rate in ((2, 100.0), (1, 400.0), (0, 1600.0)):
        c.throughput.record(level, int(rate), 1.0)
    one_job = 3 * (2.0 * 44100 / 128 / 100.0)  # each level: tokens / rate, the same for every level here
    assert c.eta_for(a) == pytest.approx(one_job) and c.eta_for(b) == pytest.approx(2 * one_job)


def test_every_job_is_journalled_and_a_new_controller_queues_the_unfinished_ones_again(tmp_path):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    c.set_param("artist", ["Somebody"], origin=OSC)
    kept, dropped = c.generate(origin=OSC), c.generate(origin=OSC)
    c.cancel(dropped, origin=OSC)
    later = _controller(tmp_path)
    assert later.restore() == [kept]
    job = later.job(kept)
    assert job.resumed and job.spec.session.artist == "Somebody" and job.spec.seed == c.job(kept).spec.seed
    assert later.job(kept).snapshot()["state"] == JobState.QUEUED.value


def test_a_damaged_journal_record_is_skipped_and_left_for_a_person(tmp_path, caplog):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    good = c.generate(origin=OSC)
    (tmp_path / ".jukebox/jobs/broken.json").write_text("{not json")
    later = _controller(tmp_path)
    assert later.restore() == [good]
    assert (tmp_path / ".jukebox/jobs/broken.json").exists() and "cannot be resumed" in caplog.text


def test_a_client_can_subscribe_only_its_own_host_or_an_allowed_one(tmp_path):
    """Checked on the surface with a notifier that never sends, so no datagram can leave loopback."""
    from bridge.transports.osc import OscSurface

    c = _controller(tmp_path)
    surface = OscSurface(c, c.notifier, allow=("192.168.1.0/24",))
    sender = ("127.0.0.1", 4000)
    surface.handle("/jb/subscribe", [9999, "192.0.2.7"], sender)
    assert c.notifier.log[-1][:2] == ("/jb/error", "/jb/subscribe") and "allowed client" in c.notifier.log[-1][2]
    surface.handle("/jb/subscribe", [9999, "192.168.1.40"], sender)  # listed: fine
    surface.handle("/jb/subscribe", [9998], sender)  # its own host: fine
    assert c.notifier.subscribers() == [("192.168.1.40", 9999), ("127.0.0.1", 9998)]
