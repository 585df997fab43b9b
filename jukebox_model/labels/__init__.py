"""Artist/genre ids, lyrics tokens and the label rows the priors condition on (spec §5)."""

from .labeller import LabelError, Labeller, LabelRow
from .tables import IdTables, load_id_tables

__all__ = ["IdTables", "LabelError", "LabelRow", "Labeller", "load_id_tables"]
