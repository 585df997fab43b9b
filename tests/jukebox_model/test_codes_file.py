"""The codes file is the engine's own: versioned, the take's end a typed field of its own, the host's meta
kept and never read; version-1 files (the take's end inside the host's meta) still continue."""

from __future__ import annotations

import pytest
import torch

from jukebox_model.api import SamplingParams
from jukebox_model.sampling.sampler import CODES_VERSION, SampleResult, load_codes, save_codes


def _result() -> SampleResult:
    return SampleResult(
        zs=[torch.zeros(2, 40, dtype=torch.long), torch.ones(2, 10, dtype=torch.long)], cancelled=False, seed=3
    )


def test_the_take_end_is_the_files_own_field_and_the_hosts_meta_is_kept_as_it_is(tmp_path):
    path = save_codes(
        tmp_path / "c.pt", _result(), params=SamplingParams(), meta={"take_end_samples": 5}, take_end_samples=1200
    )
    data = load_codes(path)
    assert data["version"] == CODES_VERSION == 2 and data["take_end_samples"] == 1200
    assert data["meta"] == {"take_end_samples": 5}  # a host's key of that name is not what the engine reads


def test_a_version_1_file_gives_its_take_end_from_the_meta_it_kept_it_in(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"zs": _result().zs, "seed": 3, "params": {}, "meta": {"take_end_samples": 900}}, path)
    assert load_codes(path)["take_end_samples"] == 900


@pytest.mark.parametrize("version, end", [(3, 100), ("2", 100), (True, 100)])
def test_an_unknown_version_is_refused_naming_the_file(tmp_path, version, end):
    path = tmp_path / "future.pt"
    torch.save({"version": version, "zs": _result().zs, "take_end_samples": end, "meta": {}}, path)
    with pytest.raises(ValueError, match="future.pt.*version"):
        load_codes(path)


@pytest.mark.parametrize("end", [None, 0, -5, True, 1.5, "900"])
def test_a_take_end_that_is_no_sample_count_is_left_out(tmp_path, end):
    path = tmp_path / "odd.pt"
    torch.save({"version": 2, "zs": _result().zs, "take_end_samples": end, "meta": {}}, path)
    assert load_codes(path)["take_end_samples"] is None
