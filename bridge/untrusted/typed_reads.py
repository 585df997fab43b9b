"""Typed reads of values from records the bridge reads back (journal, sidecars, codes-file meta): the
model side's readers (`jukebox_model.fields`) plus the one only the bridge knows, its job ids."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from jukebox_model.fields import integer, integers, mapping, number, numbers, one_of, optional_text, text, texts

__all__ = [
    "integer",
    "integers",
    "ip_and_port",
    "job_id",
    "mapping",
    "number",
    "numbers",
    "one_of",
    "optional_text",
    "text",
    "texts",
]

JOB_ID = re.compile(r"j[0-9a-z]{7,32}")  # what new_job_id makes: safe in a file name, never a take number


def job_id(value: Any, name: str = "job id") -> str:
    """A job id as the bridge makes them; anything else (a path, '..', a hostile name) is refused."""
    found = text(value, name, max_chars=64)
    if not JOB_ID.fullmatch(found):
        raise ValueError(f"{name} {found!r} is not a job id of this bridge")
    return found


def ip_and_port(value: Any, name: str = "client") -> tuple[str, int]:
    """[host, port] of a peer that events are sent to: an IP address (never a name to look up) and a port."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{name} must be [host, port]")
    host = text(value[0], f"{name} host", max_chars=64)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{name} host {host!r} is not an IP address") from None
    return host, integer(value[1], f"{name} port", lo=1, hi=65535)
