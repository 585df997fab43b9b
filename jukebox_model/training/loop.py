"""Pieces every trainer shares: optimiser and learning-rate schedule, mixed precision, metric logging."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from .distributed import DistInfo

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True, kw_only=True)
class OptimSettings:
    lr: float = 3e-4  # the reference's default
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    lr_warmup: int = 100  # steps of linear warm-up
    lr_decay_start: int = 0  # step where a linear decay to zero begins (the reference's lr_start_linear_decay)
    lr_decay: int = 0  # steps the decay takes; 0 keeps the rate constant after warm-up
    clip: float = 1.0  # gradient-norm clip


def lr_scale(step: int, s: OptimSettings) -> float:
    """The learning rate's factor at a step: linear warm-up, then constant or a linear decay to zero.

    A function of the step alone, so a run resumed with other decay settings follows the new ones
    from its own step on (the scheduler keeps only the step and the base rate).
    """
    scale = min(1.0, (step + 1) / max(1, s.lr_warmup))
    if s.lr_decay > 0 and step >= s.lr_decay_start:
        scale *= max(0.0, 1.0 - (step - s.lr_decay_start) / s.lr_decay)
    return scale


def make_optimizer(
    module: nn.Module, s: OptimSettings
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps, weight_decay=s.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_scale(step, s))
    return opt, schedule


class Precision:
    """Autocast for bf16/fp16 on the training device; fp16 also scales the loss to avoid underflow."""

    def __init__(self, name: str, device: torch.device):
        if name not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {name!r}")
        self.name, self.dtype, self.device = name, PRECISIONS[name], device
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def optimizer_step(
    loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, precision: Precision, clip: float
) -> float:
    """Backward, unscale, clip, step; returns the gradient norm.

    A step whose gradient norm is inf/nan is skipped (the fp16 scaler also lowers its scale), as
    the reference skips them: clipping by a nan norm would turn every weight into nan.
    """
    opt.zero_grad(set_to_none=True)
    precision.scaler.scale(loss).backward()
    precision.scaler.unscale_(opt)
    grad_norm = float(torch.nn.utils.clip_grad_norm_(module.parameters(), clip if clip > 0 else math.inf))
    if precision.scaler.is_enabled() or math.isfinite(grad_norm):
        precision.scaler.step(opt)
    precision.scaler.update()
    return grad_norm


class MetricsLog:
    """Append-only JSONL of scalar metrics, one line per logged step."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def batches_per_epoch(n_items: int, world_size: int, batch_size: int) -> int:
    return math.ceil(math.ceil(n_items / world_size) / batch_size)


def epoch_loader(
    dataset: Dataset, info: DistInfo, epoch: int, *, batch_size: int, skip: int, seed: int, num_workers: int = 0
) -> DataLoader:
    """This rank's shuffled items of `epoch`, without the first `skip` batches (trained on before a resume).

    Datasets with a `set_epoch` method draw their random crops per epoch. The loader has its own
    generator: it would otherwise draw worker seeds from the global RNG, which codebook restarts
    also use, and a resumed run would drift from an uninterrupted one.
    """
    sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    indices = list(sampler)[skip * batch_size :]
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    return DataLoader(dataset, batch_size=batch_size, sampler=indices, num_workers=num_workers, generator=generator)
