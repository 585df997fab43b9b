"""Bridge fixtures: the tiny real bundle (built once), a running bridge on an ephemeral loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bridge.harness import OscClient, tiny_bundle_or_skip


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    return tiny_bundle_or_skip(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_engine_factory(tiny_bundle):
    """Loading is the slow part: tests share one loaded engine (the worker owns it while it runs)."""
    from jukebox_model.api import BundleSource
    from jukebox_model.engine import load_engine

    engine = load_engine(BundleSource(tiny_bundle), device="cpu")
    return lambda: engine


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    """Fails a test that leaves one of the bridge's threads running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive() and t.name.startswith("jb-")]
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError(f"threads left running: {[t.name for t in left]}")


@pytest.fixture
def no_new_threads() -> Iterator[None]:
    """Fails a test that leaves any thread running at its end, watchdog's included, without waiting."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def make_bridge(tmp_path, tiny_engine_factory, no_thread_leaks):
    """make_bridge(**settings) -> (bridge, client): started on 127.0.0.1:<free port>, stopped at teardown."""
    from bridge.app import Bridge
    from bridge.settings import BridgeSettings

    started = []

    def make(engine=None, midi_ports=None, **overrides):
        values = dict(
            host="127.0.0.1",
            port=0,
            project_dir=tmp_path / "project",
            presets_dir=None,
            progress_interval_s=0.0,
            measure_rates_s=0.0,  # tests that want the warm-up's first estimate turn it on
        )
        values.update(overrides)
        bridge = Bridge(BridgeSettings(**values), engine=engine or tiny_engine_factory, midi_ports=midi_ports)
        bridge.start()
        bridge.worker.ready.wait(240)
        client = OscClient(bridge.port)
        started.append((bridge, client))
        return bridge, client

    yield make
    for bridge, client in started:
        client.close()
        bridge.stop()
