"""Process-group setup from torchrun's environment: one process per GPU (NCCL) or per CPU worker (gloo).

Trainers enter `distributed_session`, which joins the group torchrun describes and leaves it
cleanly: after a barrier when the run finished, at once when it failed (a rank that raised must
not wait in a barrier while the others wait in a collective; torchrun then stops the rest).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # this process created the group, so it is ours to destroy

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK); single process otherwise."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world_size}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for, but no CUDA device is available")
        dev = torch.device("cuda", local_rank if world_size > 1 else torch.device(device).index or 0)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    owns_group = False
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            dist.init_process_group(backend="nccl", device_id=dev)
        else:
            dist.init_process_group(backend="gloo")
        owns_group = True
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, owns_group=owns_group)


def cleanup_distributed(info: DistInfo | None = None, *, barrier: bool = True) -> None:
    """Leave the process group; with `info`, only a group this process created is destroyed."""
    if info is not None and not info.owns_group:
        return
    if dist.is_available() and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()


@contextmanager
def distributed_session(device: str = "auto") -> Iterator[DistInfo]:
    """`setup_distributed` for the body of a run; a barrier on the way out only if the body succeeded."""
    info = setup_distributed(device)
    try:
        yield info
    except BaseException:
        cleanup_distributed(info, barrier=False)
        raise
    cleanup_distributed(info)
