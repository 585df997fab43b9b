"""Meta-device builds of the official priors equal official_manifest.json: keys, shapes, dtypes, counts, ties."""

from __future__ import annotations

import pytest

from jukebox_model import official
from jukebox_model.models import build_official
from tests.manifest_check import assert_matches_manifest
from tests.reference import manifest


@pytest.mark.parametrize("name", list(official.PRIORS))
def test_meta_build_matches_manifest(name):
    model = build_official(name, device="meta")  # never materialised: the 5b would not fit in RAM
    assert_matches_manifest(model, manifest()["models"][name])


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown official model"):
        build_official("prior_10b")
