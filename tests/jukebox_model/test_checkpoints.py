"""Reference-format checkpoints load safely and strictly, and save atomically."""

from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from jukebox_model.checkpoints import (
    CheckpointError,
    CheckpointMismatchError,
    assign_state_strict,
    load_state_strict,
    model_state,
    read_checkpoint,
    write_checkpoint,
)
from tests.reference import discover


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3)
        self.register_buffer("k", torch.zeros(4, 2))


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: torch.randn_like(v) for k, v in net.state_dict().items()}


def test_reads_legacy_non_zip_files_with_numpy_scalars_in_hps(tmp_path):
    path = tmp_path / "legacy.pth.tar"
    state = _state(_Net())
    hps = {"bandwidth": {"l2": np.float64(0.07)}, "sr": np.int64(44100), "name": "x"}
    torch.save({"hps": hps, "model": state, "opt": None, "step": 3}, path, _use_new_zipfile_serialization=False)
    ckpt = read_checkpoint(path)
    assert float(ckpt["hps"]["bandwidth"]["l2"]) == pytest.approx(0.07)
    assert ckpt["step"] == 3
    assert torch.equal(ckpt["model"]["conv.weight"], state["conv.weight"])


def test_reference_hyperparams_class_is_read_as_a_plain_dict(tmp_path, monkeypatch):
    fake = types.ModuleType("jukebox.hparams")

    class Hyperparams(dict):
        pass

    Hyperparams.__module__ = "jukebox.hparams"
    Hyperparams.__qualname__ = "Hyperparams"
    fake.Hyperparams = Hyperparams
    monkeypatch.setitem(sys.modules, "jukebox", types.ModuleType("jukebox"))
    monkeypatch.setitem(sys.modules, "jukebox.hparams", fake)
    path = tmp_path / "old.pth.tar"
    torch.save({"hps": Hyperparams(levels=3), "model": _state(_Net())}, path)
    monkeypatch.delitem(sys.modules, "jukebox.hparams")
    monkeypatch.delitem(sys.modules, "jukebox")
    ckpt = read_checkpoint(path)
    assert isinstance(ckpt["hps"], dict) and ckpt["hps"]["levels"] == 3


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_code_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"model": {}, "hps": _Exploit(str(marker))}, path)
    with pytest.raises(CheckpointError, match="evil.pth.tar.*refused"):
        read_checkpoint(path)
    assert not marker.exists()


def test_truncated_empty_and_missing_files_name_the_file(tmp_path):
    good = tmp_path / "good.pth.tar"
    write_checkpoint(good, model=_state(_Net()), hps={})
    cut = tmp_path / "cut.pth.tar"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cut.pth.tar"):
        read_checkpoint(cut)
    empty = tmp_path / "empty.pth.tar"
    empty.touch()
    with pytest.raises(CheckpointError, match="empty.pth.tar"):
        read_checkpoint(empty)
    with pytest.raises(FileNotFoundError, match="nope.pth.tar"):
        read_checkpoint(tmp_path / "nope.pth.tar")
    text = tmp_path / "notes.pth.tar"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pth.tar"):
        read_checkpoint(text)


def test_ddp_prefix_is_stripped():
    state = {"module.conv.weight": torch.zeros(1), "conv.bias": torch.zeros(1)}
    assert set(model_state({"model": state})) == {"conv.weight", "conv.bias"}


@pytest.mark.parametrize("load", ["copy", "assign"])
def test_strict_load_reports_every_missing_unexpected_and_misshaped_key(load):
    net = _Net()
    state = _state(net)
    del state["conv.bias"]
    state["conv.extra"] = torch.zeros(1)
    state["k"] = torch.zeros(5, 2)
    with pytest.raises(CheckpointMismatchError) as info:
        if load == "copy":  # into a built module (training resumes this way)
            load_state_strict(net, state, source="file.pth.tar")
        else:  # into a module built on meta (how models are loaded for sampling)
            with torch.device("meta"):
                empty = _Net()
            assign_state_strict(empty, state, source="file.pth.tar")
    message = str(info.value)
    assert "file.pth.tar" in message
    assert "1 missing: conv.bias" in message
    assert "1 unexpected: conv.extra" in message
    assert "k: checkpoint (5, 2) vs model (4, 2)" in message


def test_half_precision_weights_load_into_a_float32_model():
    net = _Net()
    state = {k: v.half() for k, v in _state(net).items()}
    load_state_strict(net, state)
    assert net.conv.weight.dtype == torch.float32
    assert torch.equal(net.conv.weight, state["conv.weight"].float())


def test_write_is_atomic_and_keeps_the_old_file_when_saving_fails(tmp_path):
    path = tmp_path / "ckpt.pth.tar"
    first = _state(_Net())
    write_checkpoint(path, model=first, hps={"a": 1}, step=1)
    with pytest.raises((pickle.PicklingError, AttributeError)):  # which one depends on how the lambda is reached
        write_checkpoint(path, model=first, hps={}, step=2, bad=lambda: None)  # lambdas do not pickle
    assert read_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pth.tar"]


def test_written_checkpoint_has_reference_layout(tmp_path):
    path = write_checkpoint(tmp_path / "c.pth.tar", model=_state(_Net()), hps={"sr": 44100}, step=7, opt=None)
    ckpt = read_checkpoint(path)
    assert {"hps", "model", "opt", "step"} <= set(ckpt)
    assert ckpt["step"] == 7 and ckpt["opt"] is None and ckpt["hps"] == {"sr": 44100}


@pytest.mark.parametrize("fixture", discover("vqvae") + discover("prior"), ids=lambda f: f.name)
def test_reference_fixture_checkpoints_read_safely(fixture):
    ckpt = read_checkpoint(fixture.checkpoint)
    state = model_state(ckpt)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    assert isinstance(ckpt["hps"], dict)
