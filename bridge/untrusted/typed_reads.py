"""Typed reads of values from records the bridge reads back (journal, sidecars, codes-file meta): the
model side's readers (`jukebox_model.fields`) plus the one only the bridge knows, its job ids."""

from __future__ import annotations

import re
from typing import Any

from jukebox_model.fields import integer, integers, mapping, number, numbers, one_of, optional_text, text, texts

__all__ = ["integer", "integers", "job_id", "mapping", "number", "numbers", "one_of", "optional_text", "text", "texts"]

JOB_ID = re.compile(r"j[0-9a-z]{7,32}")  # what new_job_id makes: safe in a file name, never a take number


def job_id(value: Any, name: str = "job id") -> str:
    """A job id as the bridge makes them; anything else (a path, '..', a hostile name) is refused."""
    found = text(value, name, max_chars=64)
    if not JOB_ID.fullmatch(found):
        raise ValueError(f"{name} {found!r} is not a job id of this bridge")
    return found
