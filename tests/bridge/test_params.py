"""Producer parameters: every numeric form a control surface sends is accepted, nonsense is refused
with a message naming the parameter, and lengths in bars follow the tempo."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import CommandError
from bridge.session.params import PARAMS, Session, parse_param, session_from_values


@pytest.mark.parametrize("raw", [3, 3.0, "3", " 3 ", True])
def test_whole_numbers_come_as_ints_floats_strings_or_bools(raw):
    assert parse_param("n_takes", [raw]) == (1 if raw is True else 3)


@pytest.mark.parametrize(
    "raw, expected", [(True, True), (False, False), (1, True), (0, False), (1.0, True), (0.0, False)]
)
def test_switches_take_bools_and_0_or_1(raw, expected):
    assert parse_param("keep_prime", [raw]) is expected


@pytest.mark.parametrize("raw", [0.5, -1, 2, "yes", "no", "true", "1", None])
def test_switches_refuse_anything_but_on_or_off(raw):
    with pytest.raises(CommandError, match="keep_prime: expected on or off"):
        parse_param("keep_prime", [raw])


def test_a_preset_switch_must_be_a_toml_bool_or_0_or_1():
    with pytest.raises(CommandError, match="trim_bars"):
        session_from_values({"trim_bars": "yes"}, source="preset x")


@pytest.mark.parametrize(
    "name,args,needle",
    [
        ("n_takes", [2.5], "whole number"),
        ("n_takes", [0], "outside"),
        ("temperature", ["warm"], "expected a number"),
        ("temperature", [0.9, 0.9], "one value"),
        ("temperature", [1, 1, 1, 1], "too many"),
        ("top_p", [1.5], "outside"),
        ("length_unit", ["beats"], "'s' or 'bars'"),
        ("artist", [], "a value is needed"),
        ("artist", [None], "expected text"),
        ("lyrics", ["x" * 20_001], "limit"),
        ("genre", ["a\x00b"], "NUL"),
        ("nothing", [1], "unknown parameter"),
    ],
)
def test_bad_values_are_refused_with_the_parameter_named(name, args, needle):
    with pytest.raises(CommandError, match=needle):
        parse_param(name, args)


def test_seed_minus_one_or_random_means_a_fresh_seed_per_job():
    assert parse_param("seed", [-1]) is None and parse_param("seed", ["random"]) is None
    assert parse_param("seed", ["42"]) == 42


def test_bars_follow_the_tempo_and_the_metre():
    s = Session(length=8, length_unit="bars", bpm=120, beats_per_bar=4)
    assert s.length_s == 16.0
    assert s.replace(beats_per_bar=3, bpm=90).length_s == pytest.approx(16.0)


def test_a_preset_mapping_is_checked_as_osc_would_and_names_its_source():
    s = session_from_values({"temperature": 0.97, "n_takes": 2, "seed": None}, source="preset x")
    assert s.temperature == (0.97,) * 3 and s.n_takes == 2 and s.seed is None
    with pytest.raises(CommandError, match="preset x: unknown parameter 'tempo'"):
        session_from_values({"tempo": 120}, source="preset x")


def test_cc_values_map_linearly_onto_the_knob_range():
    spec = PARAMS["temperature"]
    assert spec.from_cc(0) == (0.5,) * 3 and spec.from_cc(127) == (1.2,) * 3
    assert PARAMS["n_takes"].from_cc(127) == 16 and PARAMS["keep_prime"].from_cc(100) is True
    with pytest.raises(CommandError, match="cannot be set from a CC"):
        PARAMS["artist"].from_cc(3)


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(),
        st.text(max_size=30),
        st.booleans(),
        st.binary(max_size=20),
        st.none(),
    )
)
def test_any_single_value_for_any_parameter_is_either_accepted_in_range_or_refused_cleanly(value):
    for name, spec in PARAMS.items():
        try:
            out = spec.coerce([value])
        except CommandError as e:
            assert name in str(e)
            continue
        for number in out if isinstance(out, tuple) else (out,):
            if isinstance(number, float):
                assert math.isfinite(number)
                assert spec.lo is None or spec.lo <= number <= spec.hi
