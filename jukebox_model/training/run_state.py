"""Saving and restoring a training run in a reference-format checkpoint.

`model` holds the EMA weights (what the reference saves and what inference loads); everything a
resumed run needs to continue exactly — raw weights, optimiser, schedule, loss scaler, EMA, RNG and
any trainer-specific extras — rides along under `train_state`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoints import CheckpointError, load_state_strict, read_checkpoint, write_checkpoint
from .ema import ParameterEMA
from .loop import Precision

LATEST = "checkpoint_latest.pth.tar"


@dataclass
class RunParts:
    model: nn.Module
    opt: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    ema: ParameterEMA | None
    precision: Precision


def save_run(
    out_dir: Path, step: int, parts: RunParts, *, hps: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> Path:
    """Write `checkpoint_step<step>.pth.tar` and `checkpoint_latest.pth.tar`; returns the former."""
    train_state = {
        "model": {k: v.detach().cpu().clone() for k, v in parts.model.state_dict().items()},
        "ema": parts.ema.state_dict() if parts.ema is not None else None,
        "schedule": parts.schedule.state_dict(),
        "scaler": parts.precision.scaler.state_dict(),
        "rng": torch.get_rng_state(),
        **(extra or {}),
    }
    with parts.ema.swapped_in() if parts.ema is not None else contextlib.nullcontext():
        kwargs = dict(
            model=parts.model.state_dict(),
            hps=dict(hps),
            opt=parts.opt.state_dict(),
            step=step,
            train_state=train_state,
        )
        path = write_checkpoint(out_dir / f"checkpoint_step{step}.pth.tar", **kwargs)
        write_checkpoint(out_dir / LATEST, **kwargs)
    return path


def restore_run(path: Path, parts: RunParts) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Load a checkpoint written by `save_run` into the parts; returns (step, hps, train_state)."""
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("train_state")
    if state is None:
        raise CheckpointError(f"{path}: no training state to resume from (use it to initialise a new run instead)")
    if checkpoint.get("opt") is None:
        raise CheckpointError(f"{path}: has training state but no optimiser state")
    load_state_strict(parts.model, state["model"], source=str(path))
    parts.opt.load_state_dict(checkpoint["opt"])
    parts.schedule.load_state_dict(state["schedule"])
    parts.precision.scaler.load_state_dict(state["scaler"])
    if parts.ema is not None and state.get("ema") is not None:
        parts.ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["rng"])
    return int(checkpoint.get("step", 0)), dict(checkpoint.get("hps") or {}), state
