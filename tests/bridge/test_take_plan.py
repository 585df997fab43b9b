"""A job's take plan, built without a model: names, spans, openings, chain loudness and records."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.jobs.take_plan import Opening, ParentLevel, opening_for, plan_takes
from bridge.takes.renderer import delivered_files
from jukebox_model.api import Mode, ModelInfo, StartCodes
from tests.bridge.record_examples import example_spec

ROOT = Path(__file__).resolve().parents[2]
INFO = ModelInfo(
    bundle="tiny", sr=22050, levels=(1, 0), hop_lengths=(32, 256), labels=True, lyrics=False, upsample_min_seconds=1.0
)


def _start(start=22050, end=66560, take_end=66150, meta=None) -> StartCodes:
    return StartCodes(None, start, end, take_end, "cd" * 32, (1, 0), meta or {})


def _plan(spec, start=None, **kw):
    start = start or _start()
    opening = kw.pop("opening", opening_for(spec, spec.request, start, INFO.sr, kw.pop("recorded", None)))
    return plan_takes(
        spec,
        spec.request,
        start,
        (1, 0),
        INFO,
        opening=opening,
        prime_original=kw.pop("prime_original", None),
        codes_path="/p/.jukebox/codes/x.pt",
        generator={"software": "test"},
        **kw,
    )


def test_the_plan_is_built_without_torch():
    code = "import sys, bridge.jobs.take_plan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_a_primed_take_opens_with_whole_bars_of_its_clip_and_names_its_real_take_numbers():
    spec = example_spec(Mode.PRIMED)
    spec = dataclasses.replace(spec, session=dataclasses.replace(spec.session, keep_prime=True, prime_s=5.0))
    plan = _plan(spec, prime_original="/music/inbox/clip as named.wav")
    bar = spec.session.bar_s
    assert plan.opening == Opening(spec.request.prime_path, 1 * bar, 22050)  # one whole bar of 5 s at 93.5 BPM
    assert plan.span.body_from == 22050 and plan.span.take_end_samples == 66150
    assert [t.number for t in plan.takes] == [3, 4]
    name = plan.name(1, 77, 0)
    assert (name.take, name.seed, name.level, name.label, name.parent) == (4, 77, 0, "verse", "")
    record = plan.record_for(1, 77, 0)
    assert (record.take, record.seed, record.level, record.take_index) == (4, 77, 0, 1)
    assert record.request.n_takes == 1 and record.request.seed == 77
    assert record.prime.path == "/music/inbox/clip as named.wav" and record.prime.copy == spec.request.prime_path
    assert (record.start_sample, record.end_sample, record.model_sr) == (22050, 66150, 22050)


def test_a_primed_take_without_its_prime_kept_starts_at_the_new_material():
    spec = example_spec(Mode.PRIMED)
    spec = dataclasses.replace(spec, session=dataclasses.replace(spec.session, keep_prime=False))
    plan = _plan(spec)
    assert plan.opening is None and plan.span.body_from == 22050


def test_a_continue_names_its_parent_takes_and_gets_their_gain():
    spec = example_spec(Mode.CONTINUE)
    spec = dataclasses.replace(spec, session=dataclasses.replace(spec.session, loudness_lufs=-14.0, keep_prime=True))
    asked = []

    def parent(take):
        asked.append(take)
        return ParentLevel(gain_db=float(take), lufs=-20.0)

    plan = _plan(spec, parent=parent)
    assert asked == [2, 1]
    assert [t.finishing.options.gain_db for t in plan.takes] == [2.0, 1.0]
    assert plan.name(0, 5, 1).parent == "continue-jaaaaaaa-t02"
    assert plan.record_for(0, 5, 1).lineage.take == 2
    assert plan.span.body_from == 0  # a keep-prime continue holds the earlier take too


def test_an_upsample_is_brought_to_its_parents_delivered_loudness():
    spec = example_spec(Mode.UPSAMPLE)
    spec = dataclasses.replace(spec, session=dataclasses.replace(spec.session, loudness_lufs=-14.0))
    plan = _plan(spec, parent=lambda take: ParentLevel(gain_db=3.0, lufs=-16.5 - take))
    assert [t.finishing.options.loudness_lufs for t in plan.takes] == [-18.5, -17.5]
    assert all(t.finishing.options.gain_db is None for t in plan.takes)


def test_without_a_loudness_target_a_chain_is_not_levelled():
    spec = example_spec(Mode.CONTINUE)
    spec = dataclasses.replace(spec, session=dataclasses.replace(spec.session, loudness_lufs=0.0))
    plan = _plan(spec, parent=lambda take: ParentLevel(gain_db=9.0, lufs=-10.0))
    assert all(t.finishing.options.loudness_lufs is None and t.finishing.options.gain_db is None for t in plan.takes)


def test_an_upsample_opens_with_the_opening_its_source_recorded():
    spec = example_spec(Mode.UPSAMPLE)
    recorded = Opening("/p/.jukebox/primes/ab.wav", 2.0, 4410)
    assert _plan(spec, recorded=recorded).opening == recorded
    ancestral = example_spec(Mode.ANCESTRAL)
    assert _plan(ancestral, recorded=recorded).opening is None


@pytest.mark.parametrize(
    "meta",
    [
        {"prime": 3, "head_seconds": 1.0, "body_from": 10},
        {"prime": "a.wav", "head_seconds": -1.0, "body_from": 10},
        {"prime": "a.wav", "head_seconds": 1.0, "body_from": 10**9},
        {"prime": "a.wav", "head_seconds": float("nan"), "body_from": 10},
        ["not", "a", "mapping"],
    ],
)
def test_a_recorded_opening_that_does_not_fit_its_codes_is_refused(meta):
    with pytest.raises(ValueError):
        Opening.from_meta(meta, start_samples=22050)


def test_a_recorded_opening_reads_back_what_was_written():
    opening = Opening("/p/.jukebox/primes/ab.wav", 2.5, 4410)
    assert Opening.from_meta(opening.to_meta(), start_samples=22050) == opening


def test_a_keep_prime_continue_opens_with_its_parent_takes_delivered_files_level_by_level():
    files = [
        "/p/jb_x_jaaaaaaa_t01_s5_L2.wav",
        "/p/jb_x_jaaaaaaa_t02_s6_L2.wav",
        "/p/jb_x_jaaaaaaa_t02_s6_120bpm-2bars_continue-jz-t01_L1.wav",
        "/p/jb_x_jaaaaaaa_t02_s6_L1-2.wav",
        "/p/jb_x_jbbbbbbb_t02_s6_L0.wav",
    ]
    assert delivered_files(files, "jaaaaaaa", 2) == {2: files[1], 1: files[3]}  # the last of each level
    spec = example_spec(Mode.CONTINUE)
    keep = dataclasses.replace(spec, session=dataclasses.replace(spec.session, keep_prime=True))
    plan = _plan(keep, parent=lambda take: ParentLevel(None, None, delivered_files(files, "jaaaaaaa", take)))
    assert plan.takes[0].opens_with == {2: files[1], 1: files[3]} and plan.takes[1].opens_with == {2: files[0]}
    alone = dataclasses.replace(spec, session=dataclasses.replace(spec.session, keep_prime=False))
    plan = _plan(alone, parent=lambda take: ParentLevel(None, None, delivered_files(files, "jaaaaaaa", take)))
    assert all(not t.opens_with for t in plan.takes)
