"""Artist and genre id tables (spec §5.1–5.2).

The tables belong to OpenAI's noncommercial release and are not shipped: the user points us at a
folder holding `v2_artist_ids.txt`, `v2_genre_ids.txt`, `v3_artist_ids.txt`, `v3_genre_ids.txt`
(one `name;id` per line). Their odd entries (duplicate names, the empty v2 artist, invisible
marks in v3 genres) are kept exactly: they decide which embedding rows a name reaches.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

_ID = re.compile(r"\s*[0-9]+\s*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # universal newlines only: names may hold other separators


@dataclass(frozen=True)
class IdTable:
    ids: dict[str, int]  # lower-cased name -> id; later lines win
    names: dict[int, str]  # id -> its names, sorted, joined by '_'

    def lookup(self, name: str) -> int | None:
        return self.ids.get(name)

    def name(self, value: int) -> str:
        """The names of an id ('<id>' for one no name reaches, e.g. v3 3675 after `speaker` moved on)."""
        return self.names.get(value, f"<{value}>")

    @property
    def max_id(self) -> int:
        return max(self.ids.values(), default=0)


def read_id_table(path: Path) -> IdTable:
    ids: dict[str, int] = {}
    for number, line in enumerate(_LINE_BREAK.split(path.read_text(encoding="utf-8")), start=1):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(";")
        if not sep or not _ID.fullmatch(value):
            raise ValueError(f"{path}:{number}: expected 'name;id' with a non-negative id, got {line!r}")
        ids[name.lower()] = int(value)  # names kept as written (trailing spaces, invisible marks)
    grouped: dict[int, list[str]] = defaultdict(list)
    for name, value in ids.items():
        grouped[value].append(name)
    return IdTable(ids=ids, names={value: "_".join(sorted(names)) for value, names in grouped.items()})


@dataclass(frozen=True)
class IdTables:
    version: str  # 'v2' or 'v3'
    artists: IdTable
    genres: IdTable

    @property
    def v3(self) -> bool:
        return self.version == "v3"


def load_id_tables(folder: str | Path, *, v3: bool) -> IdTables:
    """The v2 or v3 tables from a user-given folder; a clear error says what is missing and why."""
    folder = Path(folder)
    version = "v3" if v3 else "v2"
    paths = [folder / f"{version}_{kind}_ids.txt" for kind in ("artist", "genre")]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"id tables {', '.join(missing)} not found in {folder}: copy them from OpenAI's Jukebox release "
            "(jukebox/data/ids/, noncommercial licence) and pass that folder"
        )
    return IdTables(version=version, artists=read_id_table(paths[0]), genres=read_id_table(paths[1]))


_NOT_V2 = re.compile(r"[^a-z0-9]+")


def normalise_v2(name: str) -> str:
    """Lower-case; every run of characters outside ASCII [a-z0-9] becomes one '_'; no '_' at the ends."""
    return _NOT_V2.sub("_", name.lower()).strip("_")
