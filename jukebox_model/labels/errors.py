"""The error every bad label input raises (spec §5, §8.12, §8.19).

A `ValueError` subclass, so a caller catches one type for bad user input; the reference only
asserts, which says nothing about what was wrong.
"""

from __future__ import annotations


class LabelError(ValueError):
    """Label input that cannot become a row: too many genre words, a window outside the song, a
    song length outside the prior's timing range, …"""
