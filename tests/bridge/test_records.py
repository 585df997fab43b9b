"""The take record (sidecar) and the job record (journal): versioned, round-tripping for every mode,
and refusing what they would not have written."""

from __future__ import annotations

import json

import pytest

from bridge.events import JobEnded, JobStarted, JobState, LevelDone, Stage
from bridge.jobs.record import JobRecord
from bridge.takes.record import VERSION, TakeRecord
from jukebox_model.api import Mode, SamplingParams, TakeRequest
from tests.bridge.record_examples import example_journaled_job, example_request, example_spec, example_take_record


def _through_json(data: dict) -> dict:
    return json.loads(json.dumps(data))


@pytest.mark.parametrize("mode", list(Mode))
def test_a_take_request_round_trips_through_json_for_every_mode(mode):
    request = example_request(mode)
    assert TakeRequest.from_dict(_through_json(request.to_dict())) == request


@pytest.mark.parametrize("mode", list(Mode))
def test_a_take_record_round_trips_through_its_sidecar_json_for_every_mode(mode):
    record = example_take_record(mode)
    data = _through_json(record.to_dict())
    assert data["version"] == VERSION and data["regenerate"]["request"]["n_takes"] == 1
    assert TakeRecord.from_dict(data) == record


@pytest.mark.parametrize("mode", list(Mode))
def test_a_job_record_round_trips_through_the_journal_for_every_mode(mode):
    record = example_journaled_job(mode)
    spec = record.spec
    again = JobRecord.from_dict(_through_json(record.to_dict()), resumed=True)
    assert again.spec == spec and again.resumed
    before, after = record.status(), again.status()
    for field in ("state", "stage", "files", "codes_path", "delivered_levels", "remaining_levels"):
        assert getattr(after, field) == getattr(before, field), field
    assert after.remaining_levels == (1, 0) and after.state is JobState.RUNNING
    assert again.gain_db(1) == -3.25 and again.gain_db(2) is None  # a continue of take 1 gets this gain
    assert again.lufs(1) == -14.5 and again.lufs(2) is None  # an upsample of it, this loudness


def test_a_version_one_sidecar_written_before_records_were_versioned_still_regenerates():
    data = _through_json(example_take_record(Mode.PRIMED).to_dict())
    del data["version"]
    assert TakeRecord.from_dict(data).request == example_take_record(Mode.PRIMED).request


def test_an_ended_job_takes_no_further_events():
    spec = example_spec(Mode.ANCESTRAL)
    record = JobRecord(spec)
    assert record.apply(JobEnded(spec.id, spec.origin, JobState.CANCELLED, 0, ""))
    assert not record.apply(JobEnded(spec.id, spec.origin, JobState.DONE, 0, ""))
    assert not record.apply(JobStarted(spec.id, spec.origin, Stage.PREVIEW))
    assert record.status().state is JobState.CANCELLED


def test_an_event_for_another_job_is_refused():
    record = JobRecord(example_spec(Mode.ANCESTRAL))
    with pytest.raises(ValueError, match="applied to job"):
        record.apply(LevelDone("jcccccccc", record.spec.origin, 2))


HOSTILE_JOURNAL = [
    ("id", "../../etc/passwd", "not a job id"),
    ("id", ["jbbbbbbb"], "must be text"),
    ("version", 99, "version"),
    ("version", 2.0, "version"),
    ("version", True, "version"),
    ("state", "exploded", "journal record"),
    ("files", "not a list", "must be a list"),
    ("delivered_levels", [7], "outside"),
    ("origin", {"kind": "osc", "client": ["example.com", 1]}, "not an IP address"),
    ("origin", {"kind": "osc", "client": ["127.0.0.1", 70000]}, "outside"),
    ("request", None, "must be an object"),
    ("request", {"mode": "ancestral"}, "must be an integer"),
    ("session", {"temperature": {"a": 1}}, "temperature"),
    ("source_job", "../x", "not a job id"),
]


@pytest.mark.parametrize("field,value,message", HOSTILE_JOURNAL, ids=[f"{f}={v!r}"[:40] for f, v, _ in HOSTILE_JOURNAL])
def test_a_journal_record_of_any_other_shape_is_refused_naming_what_is_wrong(field, value, message):
    data = _through_json(JobRecord(example_spec(Mode.CONTINUE)).to_dict())
    data[field] = value
    with pytest.raises(ValueError, match=message):
        JobRecord.from_dict(data)


HOSTILE_SIDECAR = [
    ("job", "../escape", "not a job id"),
    ("regenerate", [], "must be an object"),
    (
        "regenerate",
        {"request": {"mode": "primed", "new_samples": 1, "total_samples": 1}, "levels": [2]},
        "needs a prime clip",
    ),
    ("mode", "ancestral", "disagrees"),
    ("seed", -4, "outside"),
    ("seed", True, "must be an integer"),
    ("span", {"start_sample": 0}, "must be an integer"),
    ("prime", {"path": 3}, "must be text"),
    ("version", True, "version"),
    ("version", 2.0, "version"),
    ("take", 10**18, "outside"),
    ("lineage", {"relation": "continue", "job": "jbbbbbbb", "take": 10**18}, "outside"),
]


@pytest.mark.parametrize("field,value,message", HOSTILE_SIDECAR, ids=[f"{f}={v!r}"[:40] for f, v, _ in HOSTILE_SIDECAR])
def test_a_sidecar_of_any_other_shape_is_refused_naming_what_is_wrong(field, value, message):
    data = _through_json(example_take_record(Mode.PRIMED).to_dict())
    data[field] = value
    with pytest.raises(ValueError, match=message):
        TakeRecord.from_dict(data)


def test_sampling_params_from_a_file_must_have_the_shapes_they_were_written_with():
    with pytest.raises(ValueError, match="temperature must be a list"):
        SamplingParams.from_dict({"temperature": 0.5})
    with pytest.raises(ValueError, match="unknown sampling params"):
        SamplingParams.from_dict({"evil": 1})
    with pytest.raises(ValueError, match="3 positive values"):
        SamplingParams.from_dict({"temperature": [1.0, float("nan"), 1.0]})


def test_a_sidecar_session_value_too_big_for_a_float_is_a_clear_refusal():
    data = _through_json(example_take_record().to_dict())
    data["session"]["length"] = 10**400
    with pytest.raises(ValueError, match="length: .* out of range"):
        TakeRecord.from_dict(data)
