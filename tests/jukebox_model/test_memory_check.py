"""A model that does not fit is refused before a byte of it is loaded, with what it needs and what is
free, instead of the kernel killing the process part-way (issue 23)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jukebox_model import memory_check
from jukebox_model.api import BundleSource
from jukebox_model.bundle_dir import DEFAULT_BUNDLE_DIR
from jukebox_model.engine import load_engine
from jukebox_model.memory_check import GIB, MemoryNeed, MemoryShortError, check_memory, need_for_files


def _files(tmp_path: Path, sizes: list[int]) -> list[Path]:
    out = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}.pth.tar"
        with path.open("wb") as f:
            f.truncate(size)
        out.append(path)
    return out


def test_a_cpu_load_in_float32_needs_the_weights_once(tmp_path):
    files = _files(tmp_path, [4 * GIB, 8 * GIB])
    need = need_for_files(files, device="cpu", bytes_per_param=4)
    assert need.device_bytes == 0 and need.host_bytes == pytest.approx(12 * GIB * memory_check.SLACK, rel=1e-6)


def test_a_cpu_load_in_bfloat16_needs_half_the_weights_plus_the_largest_file_it_converts_from(tmp_path):
    files = _files(tmp_path, [4 * GIB, 8 * GIB])
    need = need_for_files(files, device="cpu", bytes_per_param=2)
    assert need.host_bytes == pytest.approx((6 + 8) * GIB * memory_check.SLACK, rel=1e-6)


def test_a_gpu_load_in_bfloat16_needs_half_the_files_on_the_device_and_one_file_on_the_host(tmp_path):
    files = _files(tmp_path, [4 * GIB, 8 * GIB])
    need = need_for_files(files, device="cuda:0", bytes_per_param=2)
    assert need.host_bytes == pytest.approx(8 * GIB * memory_check.SLACK, rel=1e-6)
    assert need.device_bytes == pytest.approx(6 * GIB * memory_check.SLACK, rel=1e-6)


def test_short_memory_is_refused_with_both_numbers(monkeypatch):
    monkeypatch.setattr(memory_check, "host_available", lambda: 3 * GIB)
    with pytest.raises(MemoryShortError, match=r"needs about 15\.0 GiB .* only 3\.0 GiB is free"):
        check_memory(MemoryNeed(15 * GIB, 0), device="cpu", what="the official 1b_lyrics bundle")
    check_memory(MemoryNeed(2 * GIB, 0), device="cpu", what="x")  # fits: no error


def test_the_engine_refuses_a_bundle_that_does_not_fit_before_loading_it(monkeypatch):
    monkeypatch.setattr(memory_check, "host_available", lambda: 1024)
    monkeypatch.delenv("JUKEBOX_SKIP_MEMORY_CHECK", raising=False)
    with pytest.raises(MemoryShortError, match="bundle .* needs about .* GiB of memory to load, but only 0.0 GiB"):
        load_engine(BundleSource(DEFAULT_BUNDLE_DIR), device="cpu")


def test_available_memory_is_read_from_meminfo_and_the_cgroup_limit(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   2000000 kB\n")
    assert memory_check.meminfo_available(meminfo) == 2000000 * 1024
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "memory.max").write_text("1073741824\n")
    (root / "memory.current").write_text("268435456\n")
    assert memory_check.cgroup_available(root) == 1073741824 - 268435456
    (root / "memory.max").write_text("max\n")  # no limit
    assert memory_check.cgroup_available(root) is None
