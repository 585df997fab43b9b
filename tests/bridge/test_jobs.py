"""The job queue: previews before upsampling, arrival order within a stage, a bound, removal, close."""

from __future__ import annotations

import threading

import pytest

from bridge.commands import Origin
from bridge.errors import CommandError
from bridge.jobs.queue import JobQueue
from bridge.jobs.record import JobRecord
from bridge.jobs.spec import PREVIEW, UPSAMPLE, JobSpec
from bridge.session.params import Session
from jukebox_model.api import Mode, SamplingParams, TakeRequest


def _job(name: str) -> JobRecord:
    request = TakeRequest(mode=Mode.ANCESTRAL, new_samples=128, total_samples=44100, params=SamplingParams(seed=1))
    return JobRecord(JobSpec(id=name, request=request, session=Session(), origin=Origin("app")))


def test_previews_run_before_upsampling_stages_and_each_in_arrival_order():
    q = JobQueue()
    a_up, b, c_up, d = _job("a-up"), _job("b"), _job("c-up"), _job("d")
    q.put(a_up, UPSAMPLE)
    q.put(b, PREVIEW)
    q.put(c_up, UPSAMPLE)
    assert q.put(d, PREVIEW) == 2  # behind b, ahead of the upsampling stages
    assert [j.id for j, _ in q.waiting()] == ["b", "d", "a-up", "c-up"]
    assert [q.get(0)[0].id for _ in range(4)] == ["b", "d", "a-up", "c-up"]
    assert q.get(timeout=0.01) is None


def test_a_full_queue_refuses_new_jobs_but_never_a_started_jobs_second_stage():
    q = JobQueue(max_queued=2)
    q.put(_job("1"))
    q.put(_job("2"))
    with pytest.raises(CommandError, match="queue is full"):
        q.put(_job("3"))
    assert q.put(_job("1-up"), UPSAMPLE, force=True) == 3


def test_removed_jobs_leave_the_order_of_the_rest_and_positions_update():
    q = JobQueue()
    for name in "abc":
        q.put(_job(name))
    assert q.remove("b").id == "b" and q.remove("b") is None
    assert q.position("c") == 2 and [j.id for j, _ in q.waiting()] == ["a", "c"]


def test_close_wakes_a_waiting_worker_and_refuses_more_work():
    q = JobQueue()
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.close()
    t.join(timeout=2)
    assert got == [None] and not t.is_alive()
    with pytest.raises(CommandError, match="shutting down"):
        q.put(_job("late"))


def test_job_ids_never_look_like_take_numbers():
    from bridge.jobs.spec import new_job_id

    made = [new_job_id() for _ in range(2000)]
    ids = set(made)
    assert len(ids) == 2000 and all(i[0] == "j" and not i.isdigit() and len(i) == 11 for i in ids)
    assert made == sorted(made)  # one process's ids sort as they were made
