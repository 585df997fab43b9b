"""Compare a module built on the meta device with an `official_manifest.json` entry."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def assert_matches_manifest(module: nn.Module, entry: dict[str, Any]) -> None:
    """Exact key set, shapes, dtypes, entry/element/parameter counts and weight ties."""
    state = module.state_dict(keep_vars=True)
    expected = {e["key"]: e for e in entry["state_dict"]}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    assert not missing and not unexpected, (
        f"missing {missing[:10]} ({len(missing)}), unexpected {unexpected[:10]} ({len(unexpected)})"
    )
    wrong_shape = [
        (k, tuple(state[k].shape), tuple(e["shape"])) for k, e in expected.items() if list(state[k].shape) != e["shape"]
    ]
    assert not wrong_shape, f"shape mismatches (key, ours, reference): {wrong_shape[:10]}"
    wrong_dtype = [
        (k, _dtype_name(state[k].dtype), e["dtype"])
        for k, e in expected.items()
        if _dtype_name(state[k].dtype) != e["dtype"]
    ]
    assert not wrong_dtype, f"dtype mismatches (key, ours, reference): {wrong_dtype[:10]}"
    buffers = {name for name, _ in module.named_buffers()}
    wrong_kind = [k for k, e in expected.items() if (k in buffers) != (e["kind"] == "buffer")]
    assert not wrong_kind, f"parameter/buffer kind differs for {wrong_kind[:10]}"
    assert len(state) == entry["n_state_dict_entries"]
    assert sum(t.numel() for t in state.values()) == entry["n_state_dict_elements"]
    assert sum(p.numel() for p in module.parameters()) == entry["n_parameters"]
    for key, e in expected.items():
        if "tied_to" in e:
            assert state[key] is state[e["tied_to"]], f"{key} must share its tensor with {e['tied_to']}"
