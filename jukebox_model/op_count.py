"""Counting what one forward step dispatches: aten ops, fresh tensor allocations, host syncs.

A static-cache decode step should do the same work at every window position (docs/perf-anchors.md
§6.3): counts, unlike CPU timings, are exact and independent of machine load, so they can be asserted
in tests and compared across commits. Counted below autograd, so composite ops show as what they
decompose into (e.g. matmul -> bmm + views); allocations inside a kernel are not seen here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

# ops that make the host wait for the device (a scalar read, or an output shape that depends on values)
SYNC_OPS = frozenset(
    {
        "_local_scalar_dense",
        "is_nonzero",
        "nonzero",
        "equal",
        "masked_select",
        "_unique2",
        "unique_dim",
        "unique_consecutive",
        "repeat_interleave",
        "bincount",
        "histc",
    }
)


def _storages(tree: Any) -> list[torch.UntypedStorage]:
    return [t.untyped_storage() for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


@dataclass
class OpCounts:
    """What one counted region dispatched."""

    ops: Counter[str] = field(default_factory=Counter)  # aten op name -> calls
    allocations: int = 0  # outputs on a storage that no input holds (views and in-place writes are not)
    bytes: int = 0  # nbytes of those storages
    bytes_by_op: Counter[str] = field(default_factory=Counter)  # aten op name -> bytes it allocated
    syncs: int = 0  # calls of SYNC_OPS

    @property
    def n_ops(self) -> int:
        return sum(self.ops.values())


class OpCounter(TorchDispatchMode):
    """`with OpCounter() as c: f()` leaves f's OpCounts in `c.counts`."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = OpCounts()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        c = self.counts
        c.ops[name] += 1
        if name in SYNC_OPS:
            c.syncs += 1
        held = {s.data_ptr() for s in _storages((args, kwargs))}
        seen: set[int] = set()
        for s in _storages(out):
            ptr = s.data_ptr()
            if s.nbytes() and ptr not in held and ptr not in seen:
                seen.add(ptr)
                c.allocations += 1
                c.bytes += s.nbytes()
                c.bytes_by_op[name] += s.nbytes()
        return out


def count_ops(fn, *args: Any, **kwargs: Any) -> OpCounts:
    """Run fn(*args, **kwargs) once under an OpCounter."""
    with OpCounter() as counter:
        fn(*args, **kwargs)
    return counter.counts
