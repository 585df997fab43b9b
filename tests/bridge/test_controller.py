"""The controller without a model (the fake engine's facts and checks): limits, requests the model
refuses answered at once, cancelling queued jobs, retry, queue ETAs once token rates are measured,
and the journal's record of every job surviving into a new controller."""

from __future__ import annotations

import dataclasses

import pytest

from bridge.commands import Origin
from bridge.controller import Controller
from bridge.errors import CommandError
from bridge.events import EventBus, JobEnded, JobState, JobWarning, ModelState
from bridge.jobs.journal import JobJournal
from bridge.jobs.queue import JobQueue
from bridge.settings import BridgeSettings
from bridge.transports.notify import Notifier
from bridge.transports.osc import OscEvents
from tests.bridge.fake_engine import INFO, FakeEngine

OSC = Origin("osc", client=("127.0.0.1", 5555), address="/jb/generate")


class Recording(Notifier):
    def __init__(self):
        super().__init__()
        self.log: list[tuple] = []

    def send(self, client, address, *args):
        self.log.append((address, *args))


def _controller(tmp_path, **settings) -> Controller:
    s = BridgeSettings(project_dir=tmp_path, presets_dir=None, **settings)
    bus = EventBus()
    c = Controller(s, JobQueue(s.max_queue), bus, journal=JobJournal(tmp_path / ".jukebox/jobs"))
    c.notifier = Recording()
    c.events = []
    bus.subscribe(OscEvents(c.notifier))
    bus.subscribe(c.events.append)
    engine = FakeEngine(dataclasses.replace(INFO, upsample_min_seconds=1.5))
    c.board.set_model_state(ModelState.READY, info=engine.info(), check=engine.check)
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
    assert len(c.board.queue) == 1


def test_a_request_the_model_refuses_is_an_error_at_once_and_nothing_is_queued(tmp_path):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    c.set_param("offset_s", [200.0], origin=OSC)  # past the song's 180 s: the (fake) model refuses it
    with pytest.raises(CommandError, match="refuses this take: the offset is past the end"):
        c.generate(origin=OSC)
    assert len(c.board.queue) == 0 and c.board.records() == []


def test_no_job_is_queued_while_the_model_is_loading_or_after_it_failed(tmp_path):
    c = _controller(tmp_path)
    c.board.set_model_state(ModelState.WARMING)
    c2 = Controller(c.settings, JobQueue(), EventBus())
    with pytest.raises(CommandError, match="still loading"):
        c2.generate(origin=OSC)
    c2.board.set_model_state(ModelState.FAILED, error="no such file")
    with pytest.raises(CommandError, match="did not load: no such file"):
        c2.generate(origin=OSC)


def test_names_the_id_tables_lack_are_warned_about_as_the_job_is_queued(tmp_path):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    c.set_param("artist", ["Nobody Known"], origin=OSC)
    job = c.generate(origin=OSC)
    warnings = [e for e in c.events if isinstance(e, JobWarning)]
    assert [w.job_id for w in warnings] == [job] and "'Nobody Known'" in warnings[0].message


def test_cancelling_a_queued_job_removes_it_and_tells_the_clients(tmp_path):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    a, b = c.generate(origin=OSC), c.generate(origin=OSC)
    assert c.board.cancel(a, origin=OSC) == [a]
    assert [j.id for j, _ in c.board.queue.waiting()] == [b] and c.board.get(a).status().state is JobState.CANCELLED
    assert ("/jb/job/cancelled", a, 0, "") in c.notifier.log
    assert [e.state for e in c.events if isinstance(e, JobEnded)] == [JobState.CANCELLED]
    with pytest.raises(CommandError, match="already cancelled"):
        c.board.cancel(a, origin=OSC)
    assert c.board.cancel(None, origin=OSC) == [b] and len(c.board.queue) == 0


def test_retry_repeats_the_last_job_with_a_fresh_seed(tmp_path):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    c.set_param("seed", [7], origin=OSC)
    first = c.board.get(c.generate(origin=OSC))
    again = c.board.get(c.replays.retry(origin=OSC))
    assert again.spec.session == first.spec.session and again.spec.mode == first.spec.mode
    assert first.spec.seed == 7 and again.spec.seed != 7


def test_queue_etas_appear_once_token_rates_are_measured(tmp_path):
    c = _controller(tmp_path)
    c.set_param("length", [2.0], origin=OSC)
    a, b = c.generate(origin=OSC), c.generate(origin=OSC)
    assert c.board.eta_for(b) == -1.0  # nothing measured: no guess
    for level, rate in ((2, 100.0), (1, 400.0), (0, 1600.0)):
        c.board.throughput.record(level, int(rate), 1.0)
    one_job = 3 * (2.0 * 44100 / 128 / 100.0)  # each level: tokens / rate, the same for every level here
    assert c.board.eta_for(a) == pytest.approx(one_job) and c.board.eta_for(b) == pytest.approx(2 * one_job)


def test_every_job_is_journalled_and_a_new_controller_queues_the_unfinished_ones_again(tmp_path):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    c.set_param("artist", ["Somebody"], origin=OSC)
    kept, dropped = c.generate(origin=OSC), c.generate(origin=OSC)
    c.board.cancel(dropped, origin=OSC)
    later = _controller(tmp_path)
    assert later.board.restore(later.state.confine_prime, later.codes_dir) == [kept]
    job = later.board.get(kept)
    assert job.resumed and job.spec.session.artist == "Somebody" and job.spec.seed == c.board.get(kept).spec.seed
    assert job.spec.request == c.board.get(kept).spec.request
    assert later.board.get(kept).status().state is JobState.QUEUED


def test_a_damaged_journal_record_is_skipped_and_left_for_a_person(tmp_path, caplog):
    c = _controller(tmp_path)
    c.set_param("levels", [1], origin=OSC)
    good = c.generate(origin=OSC)
    (tmp_path / ".jukebox/jobs/broken.json").write_text("{not json")
    later = _controller(tmp_path)
    assert later.board.restore(later.state.confine_prime, later.codes_dir) == [good]
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


def test_a_preset_loaded_while_the_daw_tempo_is_followed_keeps_the_daws_tempo(tmp_path):
    from bridge.events import ParamChanged
    from bridge.session.presets import PresetLibrary

    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "groove.toml").write_text("bpm = 110\nbeats_per_bar = 3\ngenre = 'house'\n", encoding="utf-8")
    c = _controller(tmp_path)
    c.state.presets = PresetLibrary(folder)
    c.state.presets.reload()
    c.load_preset("groove", origin=OSC)
    assert (c.state.session.bpm, c.state.session.beats_per_bar) == (110, 3)  # not following yet: the preset's
    c.follow_tempo(124.0, 4, "live")
    c.events.clear()
    c.load_preset("groove", origin=Origin("midi", address="program 5"))  # a MIDI program change, say
    session = c.state.session
    assert (session.bpm, session.beats_per_bar, session.genre) == (124.0, 4, "house")
    assert not [e for e in c.events if isinstance(e, ParamChanged) and e.name in ("bpm", "beats_per_bar")]
