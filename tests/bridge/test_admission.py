"""One admission check on every path that makes a job: a sidecar (regenerate) or a journal record
(resume) is held to the same limits on takes and length as an OSC request (issue 22, break 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.errors import CommandError
from bridge.jobs.record import JobRecord
from jukebox_model.api import Mode
from tests.bridge.record_examples import example_spec, example_take_record
from tests.bridge.test_untrusted_records import OSC, _controller, _restore


def _journal(project: Path, job_id: str, **request_changes) -> None:
    record = JobRecord(example_spec(Mode.ANCESTRAL, job_id=job_id)).to_dict()
    record["request"].update(request_changes)
    jobs = project / ".jukebox/jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    (jobs / f"{job_id}.json").write_text(json.dumps(record))


def test_a_journal_record_with_more_takes_than_the_limit_is_not_resumed(tmp_path, caplog):
    _journal(tmp_path, "jmany000", n_takes=17)
    _journal(tmp_path, "jfine000")
    assert _restore(_controller(tmp_path, max_takes=16)) == ["jfine000"]
    assert "jmany000" in caplog.text and "n_takes 17 is over the limit of 16" in caplog.text


def test_a_journal_record_longer_than_the_limit_is_not_resumed(tmp_path, caplog):
    c = _controller(tmp_path, max_seconds=10.0)
    sr = c.board.model_info.sr
    _journal(tmp_path, "jlong000", new_samples=60 * sr)
    assert _restore(c) == []
    assert "length 60.0 s is over the limit of 10 s" in caplog.text


@pytest.mark.parametrize("n_takes", [2, 1_000_000])
def test_regenerate_refuses_a_sidecar_that_asks_for_more_than_its_one_take(tmp_path, n_takes):
    c = _controller(tmp_path)
    data = example_take_record(Mode.ANCESTRAL).to_dict()
    data["regenerate"]["request"]["n_takes"] = n_takes
    sidecar = tmp_path / "forged.json"
    sidecar.write_text(json.dumps(data))
    with pytest.raises(CommandError, match=f"n_takes {n_takes}"):
        c.replays.regenerate(sidecar, origin=OSC)
    assert c.board.records() == []


def test_the_board_itself_refuses_a_job_over_the_limits_whatever_made_it(tmp_path):
    c = _controller(tmp_path, max_takes=1)
    with pytest.raises(CommandError, match="n_takes 2 is over the limit of 1"):
        c.board.submit(example_spec(Mode.ANCESTRAL))  # its request has 2 takes
    assert c.board.records() == []


def test_regenerate_and_retry_meet_the_models_upsample_minimum_as_generate_does(tmp_path):
    from tests.bridge.test_controller import _controller as controller_min_1_5_s

    c = controller_min_1_5_s(tmp_path)  # its model upsamples takes of 1.5 s or more
    sr = c.board.model_info.sr
    data = example_take_record(Mode.ANCESTRAL).to_dict()  # all three levels
    data["regenerate"]["request"]["new_samples"] = sr  # 1 s
    sidecar = tmp_path / "short.json"
    sidecar.write_text(json.dumps(data))
    with pytest.raises(CommandError, match="at least 1.50 s"):
        c.replays.regenerate(sidecar, origin=OSC)
    data["regenerate"]["levels"] = [2]  # the preview alone has no minimum
    sidecar.write_text(json.dumps(data))
    assert c.replays.regenerate(sidecar, origin=OSC)
    c.set_param("length", [1.0], origin=OSC)
    c.set_param("levels", [1], origin=OSC)
    c.generate(origin=OSC)
    assert c.replays.retry(origin=OSC)  # the same preview again: admitted
    assert len(c.board.records()) == 3
