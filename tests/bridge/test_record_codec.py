"""The record codec: every record round-trips through JSON, files written before the codec still read
back to equal records (and are written again key for key), and a malformed value of each kind the
codec reads is refused with a ValueError naming the field's path."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bridge.commands import Origin
from bridge.events import JobState, Stage
from bridge.jobs.record import JobJournalEntry, JobRecord
from bridge.jobs.spec import JobSpec, Lineage, TakeLineage
from bridge.takes.record import AudioWritten, PrimeUsed, SourceUsed, TakeRecord
from bridge.untrusted import record_codec
from bridge.untrusted import typed_reads as checked
from bridge.untrusted.record_codec import RecordShape, StoredAs, on_disk
from jukebox_model.api import Mode
from tests.bridge.record_examples import example_journaled_job, example_spec, example_take_record

OLD = Path(__file__).parent / "old_records"  # written by the hand-written to_dict before the codec


def _through_json(data: Any) -> Any:
    return json.loads(json.dumps(data, allow_nan=False))


def _old(name: str) -> dict:
    return json.loads((OLD / name).read_text())


def _journaled(mode: Mode) -> JobRecord:
    """A job part-way through, as the old journal files were written from."""
    return example_journaled_job(mode)


# --- every record round-trips -----------------------------------------------------------------------


def _every_record() -> list[Any]:
    take = example_take_record(Mode.PRIMED)
    continued = example_take_record(Mode.CONTINUE)
    assert take.prime is not None and continued.source is not None and take.audio is not None
    return [
        take.prime,
        replace(take.prime, sha256=None, copy=None),
        continued.source,
        SourceUsed(None, None, None, None),
        take.audio,
        replace(take.audio, bars=None, finish=None),
        Lineage("continue", "jaaaaaaa", (2, 1)),
        Lineage("retry", "jaaaaaaa"),
        TakeLineage("regenerate", "jaaaaaaa", 3),
        Origin("osc", client=("::1", 9000), address="/jb/generate"),
        Origin("app"),
        *(example_take_record(mode) for mode in Mode),
        replace(take, audio=None, lineage=None, prime=None, preset=None),
        *(example_spec(mode) for mode in Mode),
        *(_journaled(mode).journal_entry() for mode in Mode),
    ]


@pytest.mark.parametrize("record", _every_record(), ids=lambda r: type(r).__name__)
def test_every_record_round_trips_through_json_to_an_equal_record(record):
    data = _through_json(record_codec.encode(record))
    assert record_codec.decode(type(record), data, what="test") == record


# --- files written before the codec -----------------------------------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
def test_a_sidecar_written_before_the_codec_reads_back_equal_and_is_written_again_key_for_key(mode):
    old = _old(f"sidecar_v2_{mode.value}.json")
    assert TakeRecord.from_dict(old) == example_take_record(mode)
    assert _through_json(example_take_record(mode).to_dict()) == old


@pytest.mark.parametrize("mode", list(Mode))
def test_a_journal_record_written_before_the_codec_reads_back_equal_and_is_written_again_key_for_key(mode):
    old = _old(f"journal_v2_{mode.value}.json")
    again = JobRecord.from_dict(old)
    assert again.journal_entry() == _journaled(mode).journal_entry()
    assert _through_json(again.to_dict()) == old


def test_a_version_one_sidecar_without_the_later_keys_reads_with_the_values_the_bridge_always_gave_them():
    record = TakeRecord.from_dict(_old("sidecar_v1_primed.json"))
    example = example_take_record(Mode.PRIMED)
    assert example.prime is not None and example.audio is not None
    assert record == replace(
        example,
        job_seed=example.seed,  # no job_seed: the take's own seed
        created="",
        preset=None,
        model={},
        generator={},
        source=None,
        take_index=0,
        prime=replace(example.prime, kept_samples=0, copy=None),
        audio=replace(example.audio, prime_frames=0, bars=None, finish=None),
    )


def test_a_journal_record_with_only_the_keys_it_cannot_do_without_reads_with_the_defaults():
    record = JobRecord.from_dict(_old("journal_v2_ancestral_fewest_keys.json"))
    spec = example_spec(Mode.ANCESTRAL)
    assert record.spec == replace(spec, origin=Origin("app"), preset=None, created=0.0)
    status = record.status()
    assert status.state is JobState.RUNNING and status.stage is Stage.PREVIEW
    assert status.files == () and status.delivered_levels == () and status.remaining_levels == ()
    assert record.gain_db(1) is None and record.lufs(1) is None


def test_null_model_generator_codes_and_origin_read_as_the_old_reader_read_them():
    data = _through_json(example_take_record().to_dict())
    data |= {"model": None, "generator": None, "codes": None}
    record = TakeRecord.from_dict(data)
    assert record.model == {} and record.generator == {} and record.codes_path is None and record.take_index == 0
    journal = _through_json(JobRecord(example_spec(Mode.ANCESTRAL)).to_dict()) | {"origin": None}
    assert JobRecord.from_dict(journal).spec.origin == Origin("app")


def test_a_take_sidecar_keeps_one_parent_take_and_the_journal_the_list():
    continued = example_take_record(Mode.CONTINUE)
    assert continued.to_dict()["lineage"] == {"relation": "continue", "job": "jaaaaaaa", "take": 2}
    journal = JobRecord(example_spec(Mode.CONTINUE)).to_dict()
    assert journal["lineage"] == {"relation": "continue", "job": "jaaaaaaa", "takes": [2, 1]}


# --- a malformed value of each kind names its field -------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Inner:
    n: int = field(metadata=on_disk(lo=0, hi=9))


def _no_twos(record: Kinds) -> None:
    if record.count == 2:
        raise ValueError("count 2 is not allowed with the rest")


@dataclass(frozen=True, kw_only=True)
class Kinds:
    """One field of each kind the codec reads."""

    ON_DISK: ClassVar[RecordShape] = RecordShape(
        version=3, derived=lambda r: {"shout": r.name.upper()}, agree=("shout",), check=_no_twos
    )

    count: int = field(metadata=on_disk(lo=0, hi=10))
    ratio: float = field(metadata=on_disk(lo=-1.0, hi=1.0))
    on: bool
    name: str = field(metadata=on_disk(max_chars=8))
    pick: str = field(metadata=on_disk(choices=("a", "b")))
    colour: Colour
    where: Path
    maybe: int | None
    items: tuple[int, ...] = field(metadata=on_disk(lo=0, max_items=3))
    pair: tuple[str, int]
    words: list[str]
    per_take: Mapping[int, float] = field(metadata=on_disk(lo=0.0, hi=1.0))
    free: Mapping[str, Any]
    inner: Inner
    nested: int = field(metadata=on_disk(key="group.nested", lo=0))
    job: str = field(metadata=on_disk(read=checked.job_id))
    doubled: int = field(metadata=on_disk(stored_as=StoredAs(str, to=str, back=lambda s, name: int(s))))
    flat: Inner | None = field(default=None, metadata=on_disk(flatten=True))


GOOD = Kinds(
    count=1,
    ratio=0.5,
    on=True,
    name="ok",
    pick="a",
    colour=Colour.RED,
    where=Path("/x/y"),
    maybe=None,
    items=(1, 2),
    pair=("h", 1),
    words=["a"],
    per_take={1: 0.5},
    free={"anything": [1, "x"]},
    inner=Inner(3),
    nested=4,
    job="jbbbbbbb",
    doubled=12,
    flat=Inner(5),
)

MALFORMED = [
    ("count", "1", "count must be an integer"),
    ("count", True, "count must be an integer"),
    ("count", 11, "count 11 is outside"),
    ("ratio", float("nan"), "ratio must be a finite number"),
    ("ratio", "0.5", "ratio must be a finite number"),
    ("ratio", 1.5, "ratio 1.5 is outside"),
    ("on", 1, "on must be true or false"),
    ("name", 3, "name must be text"),
    ("name", "x" * 9, "name is over 8 characters"),
    ("pick", "c", "pick 'c' is not one of a, b"),
    ("colour", "green", "colour 'green' is not one of red, blue"),
    ("colour", ["red"], "colour list is not one of"),
    ("where", 5, "where must be text"),
    ("maybe", "x", "maybe must be an integer"),
    ("items", "12", "items must be a list"),
    ("items", [1, 2, 3, 4], "items has over 3 items"),
    ("items", [1, -1], r"items\[1\] -1 is outside"),
    ("pair", ["h"], "pair must be a list of 2 items"),
    ("pair", ["h", "1"], r"pair\[1\] must be an integer"),
    ("words", [1], r"words\[0\] must be text"),
    ("per_take", [], "per_take must be an object"),
    ("per_take", {"one": 0.5}, "per_take: 'one' is not a whole number"),
    ("per_take", {"1": 2.0}, r"per_take\[1\] 2.0 is outside"),
    ("free", "text", "free must be an object"),
    ("inner", {"n": 10}, "inner.n 10 is outside"),
    ("inner", None, "inner must be an object"),
    ("group", {"nested": -1}, "group.nested -1 is outside"),
    ("group", 7, "group must be an object"),
    ("job", "../x", "job '../x' is not a job id"),
    ("doubled", 12, "doubled must be text"),
    ("n", -1, "n -1 is outside"),  # a flattened record's key, at the top
    ("version", 2, "version 2; this bridge reads version 3"),
    ("shout", "ok", "shout 'ok' disagrees with the record's 'OK'"),
    ("count", 2, "count 2 is not allowed"),
]


@pytest.mark.parametrize("key,value,message", MALFORMED, ids=[f"{k}={v!r}"[:30] for k, v, _ in MALFORMED])
def test_a_malformed_value_of_each_kind_is_refused_naming_its_field(key, value, message):
    data = _through_json(record_codec.encode(GOOD))
    assert record_codec.decode(Kinds, data, what="kinds") == GOOD
    data[key] = value
    with pytest.raises(ValueError, match=f"^kinds: {message}"):
        record_codec.decode(Kinds, json.loads(json.dumps(data)), what="kinds")


@pytest.mark.parametrize("key", ["count", "on", "inner", "version", "shout"])
def test_a_missing_key_without_a_default_is_refused_naming_it(key):
    data = _through_json(record_codec.encode(GOOD))
    del data[key]
    with pytest.raises(ValueError, match=f"^kinds: ({key}|version) "):
        record_codec.decode(Kinds, data, what="kinds")


def test_an_optional_flattened_record_is_there_when_any_of_its_keys_is():
    data = _through_json(record_codec.encode(GOOD))
    assert data["n"] == 5 and "flat" not in data
    del data["n"]
    assert record_codec.decode(Kinds, data, what="kinds").flat is None


def test_input_never_chooses_what_is_built_only_the_hints_do():
    data = _through_json(record_codec.encode(GOOD))
    data |= {"__class__": "os.system", "inner": {"n": 1, "__init__": "boom"}, "unknown": 1}
    got = record_codec.decode(Kinds, data, what="kinds")
    assert type(got) is Kinds and type(got.inner) is Inner and got.inner == Inner(1)
    with pytest.raises(ValueError, match="^kinds must be an object"):
        record_codec.decode(Kinds, [data], what="kinds")


def test_a_journal_entry_and_a_sidecar_name_the_file_and_the_field():
    data = _through_json(JobRecord(example_spec(Mode.CONTINUE)).to_dict())
    data["origin"]["client"] = ["127.0.0.1", 0]
    with pytest.raises(ValueError, match=r"^journal record: origin.client port 0 is outside"):
        JobRecord.from_dict(data)
    sidecar = _through_json(example_take_record(Mode.PRIMED).to_dict())
    sidecar["prime"]["kept_samples"] = -1
    with pytest.raises(ValueError, match=r"^take.json: prime.kept_samples -1 is outside"):
        TakeRecord.from_dict(sidecar, source="take.json")


def test_gains_outside_a_loudness_steps_range_are_refused():
    data = _through_json(_journaled(Mode.ANCESTRAL).to_dict())
    data["lufs"] = {"1": 11.0}
    with pytest.raises(ValueError, match=r"lufs\[1\] 11.0 is outside"):
        JobRecord.from_dict(data)
    assert JobJournalEntry.ON_DISK.version == 2


def test_a_record_spec_never_given_to_the_codec_is_a_type_error_not_a_silent_pass():
    @dataclass(frozen=True)
    class Odd:
        value: int | str

    with pytest.raises(TypeError, match="unions only"):
        record_codec.decode(Odd, {"value": 1}, what="odd")
    assert isinstance(JobSpec.ON_DISK, RecordShape) and isinstance(AudioWritten.ON_DISK, RecordShape)
    assert PrimeUsed("/a", None, 0) == record_codec.decode(PrimeUsed, {"path": "/a", "sha256": None}, what="p")
