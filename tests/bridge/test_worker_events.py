"""The worker and the job board without the model (the fake engine): the events of a job in order, the
board as the one writer of job state, the journal after each journaled event, take records beside
the takes, cancel and shutdown mid-level, and a whole OSC round trip on the fake engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.commands import Origin
from bridge.controller import Controller
from bridge.events import (
    EventBus,
    JobEnded,
    JobInterrupted,
    JobPlanned,
    JobProgress,
    JobQueued,
    JobStarted,
    JobState,
    LevelDone,
    Stage,
    TakeDelivered,
)
from bridge.jobs.journal import JobJournal
from bridge.jobs.queue import JobQueue
from bridge.jobs.worker import ModelWorker
from bridge.settings import BridgeSettings
from bridge.takes.record import TakeRecord
from bridge.takes.renderer import Renderer, RenderSettings
from tests.bridge.fake_engine import FakeEngine
from tests.bridge.harness import wait_until

OSC = Origin("osc", client=("127.0.0.1", 5555), address="/jb/generate")


class Rig:
    def __init__(self, tmp_path: Path, engine: FakeEngine):
        self.settings = BridgeSettings(project_dir=tmp_path, presets_dir=None)
        self.bus = EventBus()
        self.events: list = []
        self.bus.subscribe(self.events.append)
        self.queue = JobQueue()
        self.journal = JobJournal(tmp_path / ".jukebox/jobs")
        self.controller = Controller(self.settings, self.queue, self.bus, journal=self.journal)
        self.worker = ModelWorker(
            self.controller.board,
            self.queue,
            Renderer(RenderSettings(project_dir=tmp_path)),
            lambda: engine,
            state_dir=tmp_path / ".jukebox",
        )
        self.worker.start()
        assert self.worker.ready.wait(5)

    def of(self, job_id: str) -> list:
        return [e for e in self.events if getattr(e, "job_id", None) == job_id]

    def ended(self, job_id: str) -> JobEnded:
        wait_until(lambda: any(isinstance(e, JobEnded) for e in self.of(job_id)), timeout=20)
        return next(e for e in self.of(job_id) if isinstance(e, JobEnded))

    def stop(self) -> None:
        self.worker.stop()


@pytest.fixture
def rig(tmp_path, no_thread_leaks):
    made = []

    def make(engine: FakeEngine | None = None) -> Rig:
        r = Rig(tmp_path, engine or FakeEngine())
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def test_a_job_publishes_queued_started_planned_progress_takes_levels_and_done_in_that_order(rig):
    r = rig()
    c = r.controller
    c.set_param("length", [0.05], origin=OSC)
    c.set_param("n_takes", [2], origin=OSC)
    job = c.generate(origin=OSC)
    end = r.ended(job)
    kinds = [type(e) for e in r.of(job) if not isinstance(e, JobProgress)]
    assert kinds == [
        JobQueued,
        JobStarted,
        JobPlanned,
        TakeDelivered,
        TakeDelivered,
        LevelDone,
        JobQueued,
        JobStarted,
        TakeDelivered,
        TakeDelivered,
        LevelDone,
        TakeDelivered,
        TakeDelivered,
        LevelDone,
        JobEnded,
    ]
    assert [e.stage for e in r.of(job) if isinstance(e, JobStarted)] == [Stage.PREVIEW, Stage.UPSAMPLE]
    assert end.state is JobState.DONE and end.files == 6
    status = c.board.get(job).status()
    assert status.state is JobState.DONE and len(status.files) == 6 and status.remaining_levels == ()
    assert json.loads(r.journal.path(job).read_text())["state"] == "done"


def test_every_take_has_a_versioned_record_that_reads_back_and_regenerates_that_take_alone(rig):
    r = rig()
    c = r.controller
    c.set_param("length", [0.05], origin=OSC)
    c.set_param("n_takes", [2], origin=OSC)
    c.set_param("levels", [1], origin=OSC)
    c.set_param("seed", [40], origin=OSC)
    job = c.generate(origin=OSC)
    r.ended(job)
    takes = [e for e in r.of(job) if isinstance(e, TakeDelivered)]
    record = TakeRecord.from_dict(json.loads(Path(takes[1].path).with_suffix(".json").read_text()))
    assert record.job == job and record.take == 2 and record.seed == 41 and record.request.n_takes == 1
    assert record.request.seed == 41 and record.audio is not None and record.audio.frames > 0
    again = c.replays.regenerate(Path(takes[1].path).with_suffix(".json"), origin=OSC)
    r.ended(again)
    redone = next(e for e in r.of(again) if isinstance(e, TakeDelivered))
    assert redone.seed == 41 and Path(redone.path).read_bytes()[44:] == Path(takes[1].path).read_bytes()[44:]


def test_cancel_mid_level_ends_the_job_cancelled_with_its_codes_kept_and_the_worker_runs_on(rig):
    engine = FakeEngine(token_delay_s=0.01)
    r = rig(engine)
    c = r.controller
    c.set_param("length", [2.0], origin=OSC)
    c.set_param("levels", [1], origin=OSC)
    job = c.generate(origin=OSC)
    assert engine.started.wait(10)
    assert c.board.cancel(job, origin=OSC) == [job]
    end = r.ended(job)
    assert end.state is JobState.CANCELLED and Path(end.codes_path).is_file()
    engine.token_delay_s = 0.0
    c.set_param("length", [0.05], origin=OSC)
    assert r.ended(c.generate(origin=OSC)).state is JobState.DONE


def test_a_shutdown_mid_level_leaves_the_job_queued_in_the_journal_not_cancelled(rig):
    engine = FakeEngine(token_delay_s=0.01)
    r = rig(engine)
    c = r.controller
    c.set_param("length", [2.0], origin=OSC)
    c.set_param("levels", [1], origin=OSC)
    job = c.generate(origin=OSC)
    assert engine.started.wait(10)
    r.stop()
    assert any(isinstance(e, JobInterrupted) for e in r.of(job))
    assert not any(isinstance(e, JobEnded) for e in r.of(job))
    assert json.loads(r.journal.path(job).read_text())["state"] == "queued"


def test_a_failure_in_a_job_is_its_end_with_the_systems_own_words_and_the_next_job_runs(rig):
    def disk_full() -> None:
        raise OSError(28, "No space left on device", "/project/take.wav")

    r = rig(FakeEngine(fail=disk_full))
    c = r.controller
    c.set_param("length", [0.05], origin=OSC)
    c.set_param("levels", [1], origin=OSC)
    failed = r.ended(c.generate(origin=OSC))
    assert failed.state is JobState.FAILED and failed.error == "No space left on device: /project/take.wav"
    assert r.ended(c.generate(origin=OSC)).state is JobState.DONE


def test_the_whole_bridge_serves_a_job_over_osc_on_the_fake_engine(make_bridge):
    bridge, client = make_bridge(engine=FakeEngine)
    client.ask("/jb/set/length", 0.05)
    client.ask("/jb/set/levels", 1)
    job = client.ask("/jb/generate").args[0]
    assert client.wait_job(job, timeout=20).address == "/jb/job/done"
    take = client.wait_for(lambda m: m.address == "/jb/job/take" and m.args[0] == job)
    assert Path(take.args[3]).is_file() and bridge.controller.board.get(job).status().state is JobState.DONE
