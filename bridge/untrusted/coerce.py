"""Argument coercion shared by OSC, MIDI and presets.

Control surfaces send numbers as they like: TouchOSC sends floats even for buttons, REAPER sends
normalised floats, oscsend sends what it is told, a TOML preset has ints and floats, a MIDI CC is
an int. Every numeric argument therefore accepts int, float, bool and numeric strings; NaN and
infinities are refused everywhere (they would reach the sampler as a temperature or a length).
A switch is stricter: on or off, said as a bool (OSC T/F, TOML true/false) or as 0/1 (an int, or a
float such as a TouchOSC button's 1.0); 0.5, -1 or "yes" is an error, not a guess.
"""

from __future__ import annotations

import math
from typing import Any

from bridge.errors import CommandError


def to_float(value: Any, what: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:  # a 400-digit integer from a preset or a sidecar
            raise CommandError(f"{what}: {str(value)[:20]}… is out of range") from None
    elif isinstance(value, float):
        # OSC floats are 32-bit: 0.1 arrives as 0.10000000149; keep the 7 digits a float32 holds
        number = float(f"{value:.7g}") if math.isfinite(value) else value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise CommandError(f"{what}: expected a number, got {value!r}") from None
    else:
        raise CommandError(f"{what}: expected a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise CommandError(f"{what}: expected a finite number, got {value!r}")
    return number


def to_int(value: Any, what: str) -> int:
    """Whole numbers only: 3, 3.0, '3' and True are fine; 3.5 is an error, not a silent 3."""
    number = to_float(value, what)
    if number != int(number):
        raise CommandError(f"{what}: expected a whole number, got {value!r}")
    if abs(number) > 2**62:
        raise CommandError(f"{what}: {value!r} is out of range")
    return int(number)


def to_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    shown = repr(value) if isinstance(value, (int, float, str)) else type(value).__name__
    raise CommandError(f"{what}: expected on or off (true/false, 1/0), got {shown[:40]}")


def to_text(value: Any, what: str, *, max_chars: int) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"{what}: bytes are not UTF-8 text") from None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise CommandError(f"{what}: expected text, got {type(value).__name__}")
    text = str(value)
    if len(text) > max_chars:
        raise CommandError(f"{what}: {len(text)} characters is more than the limit of {max_chars}")
    if "\x00" in text:
        raise CommandError(f"{what}: text contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: no reply, preset or sidecar could hold them
        raise CommandError(f"{what}: text is not valid Unicode (it has lone surrogates)") from None
    return text
