"""The one error type the control paths raise for bad input: its message goes back to the client as is."""

from __future__ import annotations


class CommandError(ValueError):
    """A request that cannot be carried out; `str(e)` is a complete, user-facing sentence."""
