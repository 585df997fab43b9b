"""What a transport may ask of the bridge: the whole surface the OSC, MIDI and watch-folder code uses.

Transports only parse and call these; they never block, never touch the model, and a
`CommandError` raised here is the user-facing answer to send back (or to report as an error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ACTIONS = ("generate", "continue", "retry", "upsample", "cancel")  # what a MIDI note (or OSC) can trigger


@dataclass(frozen=True)
class Origin:
    """Where a request came from, so replies and job events find their way back."""

    kind: str  # "osc" | "midi" | "watch" | "daw" (its tempo) | "app"
    client: tuple[str, int] | None = None  # the OSC sender's (host, port)
    address: str = ""  # the OSC address, MIDI message or file that caused the request

    def describe(self) -> str:
        where = f" from {self.client[0]}:{self.client[1]}" if self.client else ""
        return f"{self.kind}{where} {self.address}".strip()


class Controls(Protocol):
    def set_param(self, name: str, args: Sequence[Any], *, origin: Origin) -> Any:
        """Set a session parameter (see bridge.session.params.PARAMS) from raw arguments; returns the new value."""

    def load_preset(self, name: str, *, origin: Origin) -> None:
        """Make the named preset's values the session's."""

    def trigger(self, action: str, *, origin: Origin) -> str | None:
        """Run one of ACTIONS with the current session; returns the job id for job-making actions."""

    def set_prime(self, path: Path, *, origin: Origin, start_job: bool = False) -> str | None:
        """Make a complete, decodable clip the prime; optionally start a primed job (its id is returned)."""

    def report(self, origin: Origin, message: str, *, error: bool = True) -> None:
        """Tell the clients about something that happened outside a request (a bad preset, a bad clip)."""
