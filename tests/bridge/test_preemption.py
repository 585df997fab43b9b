"""A new idea is heard before an old one is upsampled: an upsampling stage in progress yields to a newly
queued preview at once, goes back to the queue with the tokens it reached, and finishes afterwards,
every take of every level delivered exactly once (issue 21, item 1)."""

from __future__ import annotations

from collections import Counter

from tests.bridge.fake_engine import FakeEngine
from tests.bridge.harness import wait_until


def test_a_new_preview_preempts_a_running_upsample_which_resumes_from_where_it_stopped(make_bridge):
    engine = FakeEngine(token_delay_s=0.0005)  # level 0 of a second: 5512 tokens, about 3 s
    _, c = make_bridge(engine=lambda: engine)
    c.ask("/jb/set/length", 1.0)
    c.ask("/jb/set/seed", 7)
    old = c.ask("/jb/generate").args[0]
    c.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[0] == old and m.args[1] == 0)  # upsampling
    new = c.ask("/jb/generate").args[0]
    new_preview = c.wait_for(lambda m: m.address == "/jb/job/take" and m.args[0] == new and m.args[2] == 2)
    assert c.wait_job(old).address == "/jb/job/done"
    assert c.wait_job(new).address == "/jb/job/done"
    takes = [(m.args[0], m.args[2]) for m in c.messages("/jb/job/take")]
    assert Counter(takes) == {(old, 2): 1, (old, 1): 1, (old, 0): 1, (new, 2): 1, (new, 1): 1, (new, 0): 1}
    assert takes.index((new, 2)) < takes.index((old, 0))  # heard before the old idea's last level
    assert new_preview.args[2] == 2
    # the old job's upsample yielded mid-level and went back to the queue as an upsample
    requeued = [m for m in c.messages("/jb/job/queued") if m.args[0] == old]
    assert len(requeued) >= 3 and requeued[-1].args[3] == "upsample"
    done = next(m for m in c.messages("/jb/job/done") if m.args[0] == old)
    codes = engine.load_codes(done.args[2])
    assert codes[0].shape[1] == -(-44100 // 128) * 128 // 8  # level 0 whole
    assert bool((codes[0] == codes[0][:, :1]).all())  # and one run: nothing sampled twice or skipped


def test_a_preview_does_not_preempt_its_own_jobs_upsampling_or_a_cancel_of_it(make_bridge):
    engine = FakeEngine(token_delay_s=0.0005)
    bridge, c = make_bridge(engine=lambda: engine)
    c.ask("/jb/set/length", 1.0)
    job = c.ask("/jb/generate").args[0]
    c.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[0] == job and m.args[1] == 0)
    assert c.ask("/jb/cancel", job).args[0] == 1
    assert c.wait_job(job).address == "/jb/job/cancelled"  # a cancel is a cancel, not a yield
    wait_until(lambda: bridge.worker._current is None)
    assert [m.args[0] for m in c.messages("/jb/job/queued")].count(job) == 2  # its preview, its upsample


def test_with_preemption_off_an_upsample_in_progress_finishes_first(make_bridge):
    engine = FakeEngine(token_delay_s=0.0005)
    _, c = make_bridge(engine=lambda: engine, preempt_upsamples=False)
    c.ask("/jb/set/length", 1.0)
    old = c.ask("/jb/generate").args[0]
    c.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[0] == old and m.args[1] == 0)
    new = c.ask("/jb/generate").args[0]
    c.wait_job(new)
    takes = [(m.args[0], m.args[2]) for m in c.messages("/jb/job/take")]
    assert takes.index((old, 0)) < takes.index((new, 2))


def test_a_cancelled_job_returns_its_step_buffers(make_bridge):
    engine = FakeEngine(token_delay_s=0.0005)
    _, c = make_bridge(engine=lambda: engine)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/length", 3.0)
    job = c.ask("/jb/generate").args[0]
    c.wait_for(lambda m: m.address == "/jb/job/progress" and m.args[0] == job)
    before = engine.released
    c.ask("/jb/cancel", job)
    assert c.wait_job(job).address == "/jb/job/cancelled"
    assert engine.released == before + 1
