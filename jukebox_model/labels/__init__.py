"""Artist/genre ids, lyrics tokens and the label rows the priors condition on (spec §5)."""

from .errors import LabelError
from .labeller import Labeller, LabelRow
from .tables import IdTables, load_id_tables
from .timing import TimingRanges

__all__ = ["IdTables", "LabelError", "LabelRow", "Labeller", "TimingRanges", "load_id_tables"]
