"""Token rates outlive the session: a bridge restarted on the same project and model gives a measured
first estimate at once, instead of -1; a rates file of any other shape is logged and replaced."""

from __future__ import annotations

import json
import logging

import pytest

from bridge.jobs.eta import Throughput
from tests.bridge.fake_engine import FakeEngine


def test_rates_kept_for_one_model_are_the_next_sessions_first_estimates_and_other_keys_stay(tmp_path):
    path = tmp_path / "rates.json"
    first = Throughput()
    first.keep_in(path, "bundle-a|cpu|float32|threads=1")
    assert first.seconds(2, 1000) is None  # nothing measured yet: no guess
    first.record(2, positions=500, seconds=2.0)
    other = Throughput()
    other.keep_in(path, "bundle-b|cpu|float32|threads=1")
    other.record(0, positions=10, seconds=1.0)
    again = Throughput()
    again.keep_in(path, "bundle-a|cpu|float32|threads=1")
    assert again.seconds(2, 1000) == pytest.approx(4.0) and again.seconds(0, 10) is None
    assert set(json.loads(path.read_text())) == {"bundle-a|cpu|float32|threads=1", "bundle-b|cpu|float32|threads=1"}


@pytest.mark.parametrize(
    "content",
    ["[1, 2]", "not json", '{"k": {"2": -5, "1": "fast", "0": 1e300, "9": 3}}', '{"k": [1]}', '{"k": {"2": true}}'],
)
def test_a_rates_file_of_another_shape_gives_no_estimate_and_is_replaced(tmp_path, content, caplog):
    path = tmp_path / "rates.json"
    path.write_text(content)
    caplog.set_level(logging.WARNING)
    t = Throughput()
    t.keep_in(path, "k")
    assert all(t.seconds(level, 100) is None for level in (0, 1, 2))
    t.record(1, positions=100, seconds=1.0)
    assert json.loads(path.read_text()) == {"k": {"1": 100.0}}


def test_a_rates_file_that_is_a_symlink_is_not_followed(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text('{"k": {"2": 50}}')
    (tmp_path / "rates.json").symlink_to(outside)
    t = Throughput()
    t.keep_in(tmp_path / "rates.json", "k")
    assert t.seconds(2, 100) is None


def test_a_restarted_bridge_gives_a_measured_eta_for_its_first_job(make_bridge, tmp_path):
    _, c = make_bridge(engine=FakeEngine, project_dir=tmp_path / "project")
    c.ask("/jb/set/levels", 1)
    first = c.ask("/jb/generate")
    assert first.args[3] == -1.0  # nothing measured on this machine yet
    c.wait_job(first.args[0])
    _, again = make_bridge(engine=FakeEngine, project_dir=tmp_path / "project")
    again.ask("/jb/set/levels", 1)
    queued = again.ask("/jb/generate")
    assert queued.args[3] > 0  # the rate measured in the first session


def test_a_machine_that_never_ran_the_model_measures_its_rates_while_warming_for_the_first_estimate(
    make_bridge, tmp_path
):
    from bridge.jobs.eta import level_positions
    from tests.bridge.fake_engine import INFO

    delay = 0.002
    engines: list[FakeEngine] = []

    def factory():
        engines.append(FakeEngine(token_delay_s=delay))
        return engines[-1]

    _, c = make_bridge(engine=factory, project_dir=tmp_path / "project", measure_rates_s=1.0)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/length", 2.0)
    queued = c.ask("/jb/generate")
    assert engines[0].measured == 1
    top = INFO.levels[0]
    expected = level_positions(2.0 * INFO.sr, INFO.hop_lengths[top], 1) * delay  # the warm-up's rate, no guess
    assert queued.args[3] == pytest.approx(expected, rel=1e-6)
    c.wait_job(queued.args[0])
    _, again = make_bridge(engine=factory, project_dir=tmp_path / "project", measure_rates_s=1.0)
    again.ask("/jb/set/levels", 1)
    again.ask("/jb/generate")
    assert engines[1].measured == 0  # the kept rates are this session's: no second measurement
