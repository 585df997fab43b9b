"""How the bridge shares a machine with a DAW: few threads, low priority, no spinning.

A DAW's audio thread must never wait. On a loaded 2-core machine, torch's default of one thread per
core made takes 11-25x slower than one thread (the threads fight the DAW and each other) and made
the DAW stutter. So the model runs on `threads` threads (default: every core but one), the worker
thread and the threads torch starts from it run at a lower scheduling priority (`nice`), and idle
OpenMP threads sleep instead of spinning.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

DEFAULT_NICE = 10  # Unix niceness added to the worker; 0 leaves it at the DAW's priority


def default_threads() -> int:
    """Every core but one (the DAW's), at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def quiet_idle_threads() -> None:
    """Idle OpenMP threads sleep at once rather than spin for a while (they would take a core from the DAW).
    Read by the OpenMP runtime when torch loads it: call before torch is imported. A value the user set wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # GNU libgomp (Linux torch wheels), LLVM libomp
    os.environ.setdefault("KMP_BLOCKTIME", "0")  # Intel/LLVM OpenMP: ms a thread spins before sleeping


def lower_this_thread(nice: int) -> int | None:
    """Add `nice` to this thread's niceness (Linux: per thread; threads it starts later inherit it).
    Returns the niceness now, or None where a thread's priority cannot be set."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return None
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as e:  # not permitted, or not a thread id on this system
        log.warning("could not lower the model worker's priority: %s", e)
        return None


def use_threads(threads: int) -> None:
    """The model's intra-op threads; one inter-op thread (the sampler runs one step at a time)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already started (a second bridge in one process, the tests): keep what it has
        pass
