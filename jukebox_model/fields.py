"""Typed reads of values from files read back as untrusted input (take requests, journal records, sidecars):
each returns the value or raises ValueError naming the field, so a hand-edited or hostile file is refused,
never half-used. Torch-free: the job API (`jukebox_model.api`) and the bridge's records share them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be an object, got {type(value).__name__}")
    return value


def text(value: Any, name: str, *, max_chars: int | None = 4096) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    if max_chars is not None and len(value) > max_chars:
        raise ValueError(f"{name} is over {max_chars} characters")
    return value


def optional_text(value: Any, name: str, *, max_chars: int | None = 4096) -> str | None:
    return None if value is None else text(value, name, max_chars=max_chars)


def integer(value: Any, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} {value} is outside [{lo}, {hi}]")
    return value


def number(value: Any, name: str, *, finite: bool = True) -> float:
    """`finite=False` leaves NaN and infinities to the caller's own range check (and its message)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (finite and not math.isfinite(value)):
        raise ValueError(f"{name} must be a{' finite' if finite else ''} number, got {value!r}")
    return float(value)


def _items(value: Any, name: str, max_items: int) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list, got {type(value).__name__}")
    if len(value) > max_items:
        raise ValueError(f"{name} has over {max_items} items")
    return list(value)


def integers(
    value: Any, name: str, *, lo: int | None = None, hi: int | None = None, max_items: int = 1024
) -> tuple[int, ...]:
    return tuple(integer(v, f"{name}[{i}]", lo=lo, hi=hi) for i, v in enumerate(_items(value, name, max_items)))


def numbers(value: Any, name: str, *, finite: bool = True, max_items: int = 1024) -> tuple[float, ...]:
    return tuple(number(v, f"{name}[{i}]", finite=finite) for i, v in enumerate(_items(value, name, max_items)))


def texts(value: Any, name: str, *, max_items: int = 10_000) -> tuple[str, ...]:
    return tuple(text(v, f"{name}[{i}]") for i, v in enumerate(_items(value, name, max_items)))


def one_of(value: Any, name: str, choices: tuple[str, ...]) -> str:
    found = text(value, name, max_chars=64)
    if found not in choices:
        raise ValueError(f"{name} {found!r} is not one of {', '.join(choices)}")
    return found
