"""What a transport may ask of the bridge: the whole surface the OSC, MIDI and watch-folder code uses.

Transports only parse and call these; they never block, never touch the model, and a
`CommandError` raised here is the user-facing answer to send back (or to report as an error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bridge.untrusted import typed_reads as checked
from bridge.untrusted.record_codec import on_disk

ACTIONS = ("generate", "continue", "retry", "upsample", "cancel")  # what a MIDI note (or OSC) can trigger
ORIGIN_KINDS = ("osc", "midi", "watch", "daw", "app")


@dataclass(frozen=True)
class Origin:
    """Where a request came from, so replies and job events find their way back (a journal keeps it: a
    resumed job's events go there, so its client must be an IP address and a port)."""

    kind: str = field(metadata=on_disk(choices=ORIGIN_KINDS, absent="app"))  # one of ORIGIN_KINDS ("daw": its tempo)
    client: tuple[str, int] | None = field(default=None, metadata=on_disk(read=checked.ip_and_port))  # OSC sender's
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
