"""Reading back files the bridge did not just write itself: journal records, sidecars, presets, MIDI maps,
codes files, clips. Any of them may have been edited, replaced by a FIFO or a device, or grown huge.

Only regular files are read, up to a size limit, and opening never blocks (a FIFO is opened
non-blocking and refused before a byte is read). Every refusal is an `UntrustedFileError` whose
message names the file and the reason, so a caller logs it and skips the file.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any, BinaryIO

KIB, MIB = 1024, 1024 * 1024
MAX_RECORD_BYTES = 4 * MIB  # a journal record, sidecar, preset or MIDI map is a few KiB; lyrics fit easily


class UntrustedFileError(ValueError):
    """A file that cannot be used as what it claims to be; `str(e)` names the file and why."""


def describe_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(
    path: str | Path, *, what: str = "file", max_bytes: int | None = None, follow_links: bool = True
) -> os.stat_result:
    """The file's stat if it is a regular file within `max_bytes`; else UntrustedFileError.

    `follow_links=False` is for the bridge's own folders, which hold only what it wrote: a symlink
    there was put by someone else and is refused (a link's target is not followed)."""
    try:
        st = os.stat(path, follow_symlinks=follow_links)
    except FileNotFoundError:
        raise UntrustedFileError(f"{what} {str(path)!r} does not exist") from None
    except (OSError, ValueError) as e:  # ENAMETOOLONG, ELOOP, a NUL byte
        raise UntrustedFileError(f"{what} {str(path)!r} cannot be read ({getattr(e, 'strerror', None) or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UntrustedFileError(f"{what} {str(path)!r} is {describe_kind(st.st_mode)}, not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise UntrustedFileError(f"{what} {str(path)!r} is {st.st_size} bytes, over the limit of {max_bytes}")
    return st


def _open_flags(follow_links: bool) -> int:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    return flags if follow_links else flags | getattr(os, "O_NOFOLLOW", 0)


def _open_fd(path: str | Path, what: str, follow_links: bool) -> int:
    """A descriptor opened without blocking; with `follow_links=False` a symlink is refused by name."""
    try:
        return os.open(path, _open_flags(follow_links))
    except FileNotFoundError:
        raise UntrustedFileError(f"{what} {str(path)!r} does not exist") from None
    except (OSError, ValueError) as e:
        if not follow_links and os.path.islink(path):  # O_NOFOLLOW's ELOOP
            raise UntrustedFileError(f"{what} {str(path)!r} is a symlink, which is not followed here") from None
        raise UntrustedFileError(f"{what} {str(path)!r} cannot be read ({getattr(e, 'strerror', None) or e})") from None


def read_bytes(
    path: str | Path, *, max_bytes: int = MAX_RECORD_BYTES, what: str = "file", follow_links: bool = True
) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; never blocks on a FIFO or device."""
    fd = _open_fd(path, what, follow_links)
    try:
        st = os.fstat(fd)  # of what was opened, not of what the name points to now
        if not stat.S_ISREG(st.st_mode):
            raise UntrustedFileError(f"{what} {str(path)!r} is {describe_kind(st.st_mode)}, not a regular file")
        if st.st_size > max_bytes:
            raise UntrustedFileError(f"{what} {str(path)!r} is {st.st_size} bytes, over the limit of {max_bytes}")
        chunks, total = [], 0
        while True:
            try:
                chunk = os.read(fd, min(1 * MIB, max_bytes + 1 - total))
            except OSError as e:
                raise UntrustedFileError(f"{what} {str(path)!r} cannot be read ({e.strerror or e})") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # it grew while being read
                raise UntrustedFileError(f"{what} {str(path)!r} is over the limit of {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(
    path: str | Path, *, max_bytes: int = MAX_RECORD_BYTES, what: str = "file", follow_links: bool = True
) -> str:
    data = read_bytes(path, max_bytes=max_bytes, what=what, follow_links=follow_links)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UntrustedFileError(f"{what} {str(path)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_json_object(
    path: str | Path, *, max_bytes: int = MAX_RECORD_BYTES, what: str = "file", follow_links: bool = True
) -> dict[str, Any]:
    """A JSON file whose top level is an object; any other shape is an UntrustedFileError."""
    text = read_text(path, max_bytes=max_bytes, what=what, follow_links=follow_links)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise UntrustedFileError(f"{what} {str(path)!r} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UntrustedFileError(f"{what} {str(path)!r} holds a JSON {type(data).__name__}, not an object")
    return data


def open_regular(
    path: str | Path, *, what: str = "file", max_bytes: int | None = None, follow_links: bool = True
) -> BinaryIO:
    """The file opened for reading, as a binary file object, if it is a regular file within `max_bytes`.

    For readers that need a file object (libsndfile): the name is stat'ed first, so a FIFO or device
    is refused before it is opened at all, then opened non-blocking and checked again through the
    descriptor, since the name may have been swapped for a FIFO in between."""
    check_regular(path, what=what, max_bytes=max_bytes, follow_links=follow_links)
    fd = _open_fd(path, what, follow_links)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UntrustedFileError(f"{what} {str(path)!r} is {describe_kind(st.st_mode)}, not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise UntrustedFileError(f"{what} {str(path)!r} is {st.st_size} bytes, over the limit of {max_bytes}")
        os.set_blocking(fd, True)  # a regular file: reads never wait anyway, and buffered reads expect it
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_toml_table(
    path: str | Path, *, max_bytes: int = MAX_RECORD_BYTES, what: str = "file", follow_links: bool = True
) -> dict[str, Any]:
    """A TOML file as its top-level table; unreadable, non-UTF-8 or invalid TOML is an UntrustedFileError."""
    text = read_text(path, max_bytes=max_bytes, what=what, follow_links=follow_links)
    try:
        return tomllib.loads(text)
    except (ValueError, RecursionError) as e:  # TOMLDecodeError is a ValueError; so is an int of 5000 digits
        raise UntrustedFileError(f"{what} {str(path)!r} is not valid TOML ({e})") from None
