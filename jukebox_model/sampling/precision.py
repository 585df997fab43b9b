"""Inference precision: a prior's weights cast once, at load, to the dtype its activations will use.

`Conv1D` casts its weight to the input's dtype on every call, which is free when they already agree and
a full copy of the weights per step when they do not (the 5b priors keep their projections in float16,
spec §7). Sampling a 5b prior in bfloat16 with float16 weights would so read and write ~10 GB of casts
per token; casting here once makes every such cast a no-op. LayerNorm weights stay float32: the norm is
computed in float32 (transformer/ops.py) and they are a few kilobytes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..prior.prior import Prior

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(name: str) -> torch.dtype:
    """'float32' | 'bfloat16' | 'float16' (also 'fp32', 'bf16', 'fp16') -> the torch dtype."""
    key = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}.get(name, name)
    if key not in DTYPES:
        raise ValueError(f"precision must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[key]


def default_dtype(device: torch.device | str) -> torch.dtype:
    """bfloat16 on a GPU (half the bytes per step; the reference samples in float16), float32 elsewhere
    (bfloat16 matmuls are far slower than float32 on common CPUs, docs/perf-anchors.md §5)."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def inference_dtype_rule(dtype: torch.dtype) -> Callable[[nn.Module, str, torch.Tensor], torch.dtype]:
    """The dtype `cast_for_inference` gives each tensor, as a rule a loader applies tensor by tensor
    (checkpoints.assign_state_strict), so the weights reach the device already cast, never held twice."""
    if not dtype.is_floating_point:
        raise ValueError(f"inference precision must be a floating dtype, got {dtype}")

    def rule(owner: nn.Module, name: str, tensor: torch.Tensor) -> torch.dtype:
        keep = isinstance(owner, nn.LayerNorm) or not tensor.is_floating_point()
        return tensor.dtype if keep else dtype

    return rule


@torch.no_grad()
def cast_for_inference(prior: Prior, dtype: torch.dtype) -> Prior:
    """Cast every floating parameter and buffer except LayerNorms' to `dtype`, in place; returns the prior.

    Tied tensors (the output head and token embedding) stay one tensor."""
    if not dtype.is_floating_point:
        raise ValueError(f"inference precision must be a floating dtype, got {dtype}")
    norms = {id(p) for m in prior.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters(recurse=False)}
    for module in prior.modules():
        for param in module.parameters(recurse=False):
            if id(param) not in norms and param.is_floating_point() and param.dtype != dtype:
                param.data = param.data.to(dtype)
        for name, buf in module.named_buffers(recurse=False):
            if buf.is_floating_point() and buf.dtype != dtype:
                setattr(module, name, buf.to(dtype))
    return prior.eval()
