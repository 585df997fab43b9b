"""The bridge is a good neighbour to the DAW: the model runs on the threads it is given (default: all
cores but one), at a lower priority, and its idle OpenMP threads sleep (issue 21, point 3)."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from bridge import cpu_manners
from bridge.app import engine_factory
from bridge.cli import build_parser, settings_from_args
from bridge.settings import BridgeSettings, SettingsError, values_from_toml


def _in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.update(value=fn()))
    t.start()
    t.join(30)
    return out["value"]


def test_the_default_leaves_the_daw_a_core():
    cores = len(os.sched_getaffinity(0))
    assert cpu_manners.default_threads() == max(1, cores - 1)


def test_a_lowered_thread_and_the_threads_it_starts_run_at_the_lower_priority():
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def lowered():
        now = cpu_manners.lower_this_thread(5)
        child = _in_thread(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return now, child

    now, child = _in_thread(lowered)
    assert now == min(19, main + 5) and child == now
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main  # the caller's own thread is untouched


def test_the_model_is_loaded_on_the_worker_thread_with_the_settings_threads_and_priority(monkeypatch, tmp_path):
    import jukebox_model.engine

    seen = {}

    def fake_load_engine(*args, **kwargs):
        seen["threads"] = torch.get_num_threads()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        seen["wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
        return object()

    monkeypatch.setattr(jukebox_model.engine, "load_engine", fake_load_engine)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    before = torch.get_num_threads()
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    try:
        load = engine_factory(BridgeSettings(project_dir=tmp_path, threads=1, worker_nice=3))
        _in_thread(load)
    finally:
        torch.set_num_threads(before)
    assert seen == {"threads": 1, "nice": min(19, main + 3), "wait_policy": "PASSIVE"}


def test_threads_and_nice_come_from_the_settings_file_and_the_command_line(tmp_path):
    values = values_from_toml({"model": {"threads": 2, "nice": 5}}, base=tmp_path, source="s.toml")
    assert values == {"threads": 2, "worker_nice": 5}
    settings = settings_from_args(build_parser().parse_args(["--threads", "3", "--nice", "0"]))
    assert settings.threads == 3 and settings.worker_nice == 0
    assert BridgeSettings().threads == 0 and BridgeSettings().worker_nice == 10


@pytest.mark.parametrize("kwargs, words", [({"threads": -1}, "threads"), ({"worker_nice": 20}, "nice")])
def test_impossible_thread_settings_are_refused(kwargs, words):
    with pytest.raises(SettingsError, match=words):
        BridgeSettings(**kwargs)
