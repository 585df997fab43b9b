"""Typed reads of values from records the bridge reads back (journal, sidecars): each returns the value
or raises ValueError naming the field, so a hand-edited or hostile file is refused, never half-used."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

JOB_ID = re.compile(r"j[0-9a-z]{7,32}")  # what new_job_id makes: safe in a file name, never a take number


def mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be an object, got {type(value).__name__}")
    return value


def text(value: Any, name: str, *, max_chars: int = 4096) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > max_chars:
        raise ValueError(f"{name} is over {max_chars} characters")
    return value


def optional_text(value: Any, name: str, *, max_chars: int = 4096) -> str | None:
    return None if value is None else text(value, name, max_chars=max_chars)


def integer(value: Any, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} {value} is outside [{lo}, {hi}]")
    return value


def number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def integers(
    value: Any, name: str, *, lo: int | None = None, hi: int | None = None, max_items: int = 1024
) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list, got {type(value).__name__}")
    if len(value) > max_items:
        raise ValueError(f"{name} has over {max_items} items")
    return tuple(integer(v, f"{name}[{i}]", lo=lo, hi=hi) for i, v in enumerate(value))


def texts(value: Any, name: str, *, max_items: int = 10_000) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list, got {type(value).__name__}")
    if len(value) > max_items:
        raise ValueError(f"{name} has over {max_items} items")
    return tuple(text(v, f"{name}[{i}]") for i, v in enumerate(value))


def one_of(value: Any, name: str, choices: tuple[str, ...]) -> str:
    found = text(value, name, max_chars=64)
    if found not in choices:
        raise ValueError(f"{name} {found!r} is not one of {', '.join(choices)}")
    return found


def job_id(value: Any, name: str = "job id") -> str:
    """A job id as the bridge makes them; anything else (a path, '..', a hostile name) is refused."""
    found = text(value, name, max_chars=64)
    if not JOB_ID.fullmatch(found):
        raise ValueError(f"{name} {found!r} is not a job id of this bridge")
    return found
