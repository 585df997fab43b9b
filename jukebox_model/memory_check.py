"""Is there memory for a model before it is loaded? A clear refusal instead of the kernel's OOM kill.

Loading the official 1b_lyrics bundle on a CPU needs about 12 GB resident: the loaders assign each
checkpoint tensor to its module instead of copying it (checkpoints.assign_state_strict), so float32
weights are held once. Under a memory cap the kernel kills the process part-way, and nobody hears
why. So the loaders first add up what the files will take (their sizes: float32 checkpoints) and
compare it with what the machine can still give: `MemAvailable`, or less where a cgroup (a container,
a systemd slice) caps the process. Where the weights change precision or device on the way in, each
tensor is converted from a file read on the host (a legacy file whole, a zip file's mapped pages), so
the host needs the largest file besides; on a GPU the device needs the files' size scaled to that
precision.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GIB = 1 << 30
SLACK = 1.10  # activations, buffers, the allocator's overhead on top of the weights
_CGROUP = Path("/sys/fs/cgroup")


class MemoryShortError(MemoryError):
    """The model does not fit what is free; the message has both numbers and what to do."""


@dataclass(frozen=True)
class MemoryNeed:
    host_bytes: int
    device_bytes: int  # 0 on a CPU


def need_for_files(files: Sequence[Path], *, device: str, bytes_per_param: int) -> MemoryNeed:
    """What loading these float32 checkpoint files takes on the host and on the device."""
    sizes = [Path(f).stat().st_size for f in files]
    if not sizes:
        return MemoryNeed(0, 0)
    total, largest = sum(sizes), max(sizes)
    if device.startswith("cuda"):
        return MemoryNeed(host_bytes=int(largest * SLACK), device_bytes=int(total * bytes_per_param / 4 * SLACK))
    converting = largest if bytes_per_param != 4 else 0  # the file a converted tensor is read from
    return MemoryNeed(host_bytes=int((total * bytes_per_param / 4 + converting) * SLACK), device_bytes=0)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) and anything odd: no number


def meminfo_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cgroup_available(root: Path = _CGROUP) -> int | None:
    """Room left under this process's cgroup memory limit (v2, then v1), if it has one."""
    own = root
    try:  # v2: this process's own group, from /proc/self/cgroup ("0::/some/group")
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                candidate = root / line[3:].lstrip("/")
                if (candidate / "memory.max").exists():
                    own = candidate
    except OSError:
        pass
    limit, used = _read_int(own / "memory.max"), _read_int(own / "memory.current")
    if limit is None:  # v1
        limit, used = (
            _read_int(root / "memory" / "memory.limit_in_bytes"),
            _read_int(root / "memory" / "memory.usage_in_bytes"),
        )
        if limit is not None and limit >= 1 << 60:  # v1's "no limit" is a huge number
            limit = None
    if limit is None or used is None:
        return None
    return max(0, limit - used)


def host_available() -> int | None:
    """Bytes this process can still get: the smaller of the machine's available memory and its cgroup's room."""
    values = [v for v in (meminfo_available(), cgroup_available()) if v is not None]
    return min(values) if values else None


def device_available(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    index = torch.device(device).index
    free, _ = torch.cuda.mem_get_info(index if index is not None else torch.cuda.current_device())
    return int(free)


def check_memory(need: MemoryNeed, *, device: str, what: str) -> None:
    """MemoryShortError when `need` is more than is free; nothing where free memory cannot be read.
    JUKEBOX_SKIP_MEMORY_CHECK=1 skips it (for a machine whose swap the numbers do not count)."""
    if os.environ.get("JUKEBOX_SKIP_MEMORY_CHECK") == "1":
        return
    free = host_available()
    if free is not None and need.host_bytes > free:
        raise MemoryShortError(
            f"{what} needs about {need.host_bytes / GIB:.1f} GiB of memory to load, but only {free / GIB:.1f} GiB is "
            "free; close other programs, raise the memory limit, or load a smaller bundle"
        )
    if need.device_bytes:
        free_device = device_available(device)
        if free_device is not None and need.device_bytes > free_device:
            raise MemoryShortError(
                f"{what} needs about {need.device_bytes / GIB:.1f} GiB on {device}, but only "
                f"{free_device / GIB:.1f} GiB is free there; use --precision bfloat16, free the GPU, or load on the CPU"
            )
