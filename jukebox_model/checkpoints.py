"""Reference-format checkpoints: safe reading, strict loading, atomic writing (spec §7).

A reference checkpoint is `torch.save({'hps': dict, 'model': state_dict, 'opt': ..., 'step': int})`.
Files are read with `weights_only=True`; the few non-tensor globals that 2020-era files may hold
(numpy scalars in `hps`, the reference's `Hyperparams` dict subclass) are allow-listed by name,
the latter read as a plain OrderedDict. Nothing else in a pickle is ever executed.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray
import torch
from torch import nn

from . import official
from .atomic import atomic_write
from .hparams import vqvae_config_from_hparams, vqvae_config_to_hparams

if TYPE_CHECKING:
    from .config import VQVAEConfig
    from .vqvae.vqvae import VQVAE

DDP_PREFIX = "module."


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the reason."""


class CheckpointMismatchError(CheckpointError):
    """State-dict keys or shapes differ from the model; lists every difference."""


def _numpy_globals() -> list[Any]:
    """numpy objects that plain numeric metadata pickles through (scalars, dtypes, small arrays)."""
    items: list[Any] = [np.dtype, np.ndarray]
    items += [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32", "bool")]
    for module_name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        items.append((_multiarray.scalar, f"{module_name}.scalar"))
        items.append((_multiarray._reconstruct, f"{module_name}._reconstruct"))
    return items


_ALLOWED_GLOBALS: list[Any] = [
    *_numpy_globals(),
    # The reference's `Hyperparams` dict subclass: read as an OrderedDict (same items, no behaviour).
    (OrderedDict, "jukebox.hparams.Hyperparams"),
]

_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint dict on the CPU without executing arbitrary pickle code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    use_mmap = zipfile.is_zipfile(path)  # mmap needs the zip format; legacy 2020 files are read whole
    try:
        with torch.serialization.safe_globals(_ALLOWED_GLOBALS):
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=use_mmap)
    except pickle.UnpicklingError as e:
        match = _UNSUPPORTED_GLOBAL.search(str(e))
        what = f"it refers to {match.group(1)}, which is not allow-listed" if match else str(e).splitlines()[0]
        raise CheckpointError(f"{path}: refused to load: {what}; only tensors and plain data are accepted") from e
    except Exception as e:  # truncated or corrupt files fail in many ways (EOFError, KeyError, RuntimeError, ...)
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {e}") from e
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path}: expected a dict, found {type(data).__name__}")
    return dict(data)


def model_state(checkpoint: Mapping[str, Any], *, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The model state dict of a reference checkpoint (or a bare state dict), `module.` stripped."""
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: no 'model' state dict")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: entry {key!r} is {type(value).__name__}, not a tensor")
        out[key.removeprefix(DDP_PREFIX)] = value
    return out


def _mismatches(module: nn.Module, state: Mapping[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    own = module.state_dict(keep_vars=True)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    return missing, unexpected, shapes


def _listing(title: str, items: list[str], limit: int = 20) -> str:
    more = f" … and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} {title}: " + ", ".join(items[:limit]) + more


def check_state_fits(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """Raise CheckpointMismatchError naming every missing, unexpected and mis-shaped key at once."""
    missing, unexpected, shapes = _mismatches(module, state)
    if missing or unexpected or shapes:
        parts = [
            _listing(t, i)
            for t, i in (("missing", missing), ("unexpected", unexpected), ("shape mismatches", shapes))
            if i
        ]
        raise CheckpointMismatchError(f"{source} does not fit {type(module).__name__}: " + "; ".join(parts))


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """Strict load that names every missing, unexpected and mis-shaped key at once.

    Tensors are copied into the module's own parameters, so each keeps the module's dtype (a float16
    file loads into a float32 model and vice versa) and tied weights stay tied. For training, where an
    optimiser already holds the parameters; inference loads assign instead (`assign_state_strict`).
    """
    check_state_fits(module, state, source=source)
    module.load_state_dict(state, strict=True)


DtypeRule = Callable[[nn.Module, str, torch.Tensor], torch.dtype]  # (owner, name, the module's tensor) -> dtype


def _to_target(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, bool]:
    """The tensor on `device` in `dtype`, and whether it is the source itself (nothing converted)."""
    same_device = tensor.device.type == device.type and (device.index is None or tensor.device.index == device.index)
    if same_device and tensor.dtype == dtype:
        return tensor.detach(), True
    return tensor.detach().to(device=device, dtype=dtype), False


def _page_in(tensor: torch.Tensor) -> None:
    """Read one element per page, so an mmap-backed weight is resident when loading returns (ready means
    ready: the first sampling step does not wait on the disk)."""
    if tensor.device.type != "cpu" or tensor.numel() == 0:
        return
    if tensor.is_contiguous():
        tensor.view(-1)[:: max(1, 4096 // tensor.element_size())].sum()
    else:
        tensor.sum()


@torch.no_grad()
def assign_state_strict(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    source: str = "checkpoint",
    device: torch.device | str = "cpu",
    dtype_for: DtypeRule | None = None,
) -> None:
    """Strict load into a module built on the meta device, assigning the checkpoint's tensors (issue #23).

    Copying (`load_state_strict`) holds the model and its checkpoint at once; here a tensor already in
    its target dtype and device *becomes* the parameter (a zip file's mmap-backed tensor, a legacy
    file's freshly read storage), and any other is converted alone with its source dropped before the
    next, so loading peaks at the model's size plus one tensor. `state` is consumed: pass the only
    reference to it. The target dtype is the module's own unless `dtype_for` says otherwise; tied
    parameters (one Parameter under two names) stay one tensor. Mmap-backed weights are private file
    pages: a write in place copies the page, never reaches the file.
    """
    check_state_fits(module, state, source=source)
    device = torch.device(device)
    loaded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(module's tensor) -> (it, its loaded one)
    for prefix, owner in module.named_modules(remove_duplicate=False):
        for table, persistent in ((owner._parameters, None), (owner._buffers, owner._non_persistent_buffers_set)):
            for name, own in list(table.items()):
                if own is None or (persistent is not None and name in persistent):
                    continue
                tensor = state.pop(f"{prefix}.{name}" if prefix else name)
                if id(own) not in loaded:
                    dtype = dtype_for(owner, name, own) if dtype_for is not None else own.dtype
                    value, assigned = _to_target(tensor, device, dtype)
                    if assigned:
                        _page_in(value)
                    if isinstance(own, nn.Parameter):
                        value = nn.Parameter(value, requires_grad=own.requires_grad)
                    loaded[id(own)] = (own, value)
                    loaded[id(value)] = (value, value)  # a module met again under a second prefix
                del tensor  # a converted copy and its source are never both held past this tensor
                table[name] = loaded[id(own)][1]
    left = [name for name, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if left:
        raise CheckpointError(f"{source}: {type(module).__name__} still has unloaded tensors: {', '.join(left)}")


def write_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: Mapping[str, torch.Tensor],
    hps: Mapping[str, Any],
    opt: Any = None,
    step: int = 0,
    **extra: Any,
) -> Path:
    """Write a reference-layout checkpoint atomically: a reader sees the old file or the new, never a part."""
    payload = {
        "hps": dict(hps),
        "model": {k: v.detach().cpu() for k, v in model.items()},
        "opt": opt,
        "step": int(step),
    }
    payload.update(extra)
    with atomic_write(path) as f:
        torch.save(payload, f)
    return Path(path)


def vqvae_config_from_checkpoint(checkpoint: Mapping[str, Any]) -> VQVAEConfig:
    """Checkpoint `hps` laid over the official VQ-VAE set, as the reference layers DEFAULTS under overrides."""
    hps = checkpoint.get("hps") or {}
    merged = vqvae_config_to_hparams(official.VQVAE)
    merged.update({k: v for k, v in dict(hps).items() if k in merged})
    return vqvae_config_from_hparams(merged)


def load_vqvae(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu", config: VQVAEConfig | None = None
) -> VQVAE:
    """A VQ-VAE in eval mode from a reference-format file (official or trained by us), built on meta and
    assigned the file's tensors (no random init, no second copy)."""
    from .vqvae.vqvae import VQVAE

    checkpoint = read_checkpoint(path)
    config = config or vqvae_config_from_checkpoint(checkpoint)
    state = model_state(checkpoint, source=str(path))
    del checkpoint  # the state dict holds the only references to the tensors: each is dropped as it is assigned
    with torch.device("meta"):
        model = VQVAE(config)
    assign_state_strict(model, state, source=str(path), device=device)
    return model.eval()
