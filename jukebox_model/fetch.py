"""`jukebox-fetch`: download the official Jukebox checkpoints and id tables into the official layout.

The release is about 10 GB of files on one HTTP server, so a download has to survive a dropped
connection (it resumes its `.part` file with a Range request), must never leave a half file under
a final name (it renames a complete, synced `.part`) and must say what it is doing. It uses only
the standard library so that it works before anything else is set up.

The layout is the one `bundle.load_official_bundle(root, name, ...)` reads (root/jukebox/models/…)
and the id tables go to root/ids/, the folder `labels/tables.py` reads:

    jukebox-fetch 5b_lyrics --to ~/.cache/jukebox
    jukebox-bridge --official-root ~/.cache/jukebox --official-bundle 5b_lyrics --ids ~/.cache/jukebox/ids

The files are OpenAI's, under a noncommercial licence: the user accepts it once per folder.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from . import official
from .atomic import fsync_folder

DEFAULT_BASE_URL = "https://openaipublic.azureedge.net/"
DEFAULT_IDS_URL = "https://raw.githubusercontent.com/openai/jukebox/master/jukebox/data/ids/"
BASE_URL_ENV = "JUKEBOX_FETCH_BASE_URL"
IDS_URL_ENV = "JUKEBOX_FETCH_IDS_URL"
DEFAULT_TO = Path("~/.cache/jukebox")

LICENCE_URL = "https://github.com/openai/jukebox/blob/master/LICENSE"
LICENCE_MARKER = ".licence-accepted"
LICENCE_NOTICE = f"""\
The Jukebox weights and id tables are OpenAI's, released under a noncommercial licence:
  {LICENCE_URL}
You may use them for noncommercial purposes only. Downloading them means accepting its terms.
"""

IDS_FOLDER = "ids"
ID_TABLES = ("v2_artist_ids.txt", "v2_genre_ids.txt", "v3_artist_ids.txt", "v3_genre_ids.txt")

# SHA-256 of released files, by path under the destination folder. OpenAI publishes none, so this
# is empty: fill it (or pass `known_sha256`) from a copy you trust and later downloads are checked.
KNOWN_SHA256: dict[str, str] = {}

_CHUNK = 1 << 20
_MAX_BACKOFF = 30.0
_USER_AGENT = "jukebox-fetch (jukebox-bridge)"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


class FetchError(Exception):
    """A download that cannot complete; the message names the URL and the file."""


class LicenceNotAccepted(FetchError):
    """The licence was declined, or could not be asked about (no terminal, no --accept-licence)."""


class _Retry(Exception):
    """A failure another try may get past: dropped connection, timeout, server error."""


@dataclass(frozen=True)
class Target:
    """One file to fetch: where it comes from and its path under the destination folder."""

    url: str
    relative: str  # posix path under the destination; also the key of the known hashes


def _join(base: str, relative: str) -> str:
    """A base URL (or a local folder, taken as a file:// mirror) joined with a relative path."""
    if "://" not in base:
        base = Path(base).expanduser().resolve().as_uri()
    return (base if base.endswith("/") else base + "/") + relative


def names_choices() -> tuple[str, ...]:
    """Everything `fetch` accepts: bundles, single models, and 'ids'."""
    return (*official.BUNDLES, *official.CHECKPOINT_PATHS, IDS_FOLDER)


def targets(names: Iterable[str], *, base_url: str, ids_url: str) -> list[Target]:
    """The files behind bundle, model and 'ids' names, each once, in order; a bundle brings the id
    tables too since its priors need them."""
    models: list[str] = []
    ids = False
    for name in names:
        if name == IDS_FOLDER:
            ids = True
        elif name in official.BUNDLES:
            spec = official.BUNDLES[name]
            models += [spec.vqvae, *spec.priors]
            ids = True
        elif name in official.CHECKPOINT_PATHS:
            models.append(name)
        else:
            raise FetchError(f"unknown name {name!r}; choose from {', '.join(names_choices())}")
    found = [Target(_join(base_url, official.CHECKPOINT_PATHS[m]), official.CHECKPOINT_PATHS[m]) for m in models]
    if ids:
        found += [Target(_join(ids_url, table), f"{IDS_FOLDER}/{table}") for table in ID_TABLES]
    unique: dict[str, Target] = {}
    for target in found:
        unique.setdefault(target.relative, target)
    return list(unique.values())


# --- licence ------------------------------------------------------------------------------------


class _Licence:
    """Asks once per destination folder, and only when something is about to be downloaded."""

    def __init__(self, to: Path, *, accepted: bool, stdin: TextIO, log: TextIO) -> None:
        self.marker = to / LICENCE_MARKER
        self.accepted = accepted
        self.stdin = stdin
        self.log = log
        self.done = False

    def ensure(self) -> None:
        if self.done or self.marker.exists():
            self.done = True
            return
        self.log.write(LICENCE_NOTICE)
        if not self.accepted:
            if not _isatty(self.stdin):
                raise LicenceNotAccepted(
                    "the licence has not been accepted and there is no terminal to ask on: "
                    "read it, then run again with --accept-licence (accept_licence=True)"
                )
            self.log.write("Accept the licence and download? [y/N] ")
            self.log.flush()
            if self.stdin.readline().strip().lower() not in ("y", "yes"):
                raise LicenceNotAccepted("licence not accepted; nothing downloaded")
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(f"accepted {datetime.now(UTC).isoformat(timespec='seconds')} {LICENCE_URL}\n")
        self.done = True


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


# --- progress -----------------------------------------------------------------------------------


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class _Progress:
    """Bytes done/total, rate and time left on a stream: redrawn in place at most 4 times a second
    on a terminal, one plain line every 5 s otherwise (logs stay short)."""

    def __init__(self, label: str, stream: TextIO, *, enabled: bool, clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.stream = stream
        self.enabled = enabled
        self.clock = clock
        self.tty = _isatty(stream)
        self.interval = 0.25 if self.tty else 5.0
        self.width = 0
        self.begin(0, None)

    def begin(self, done: int, total: int | None) -> None:
        self.t0 = self.last = self.clock()
        self.d0 = done
        self.total = total

    def update(self, done: int, *, force: bool = False) -> None:
        now = self.clock()
        if not self.enabled or (not force and now - self.last < self.interval):
            return
        self.last = now
        rate = (done - self.d0) / max(now - self.t0, 1e-6)
        total = _size(self.total) if self.total is not None else "?"
        left = _duration((self.total - done) / rate) if self.total is not None and rate > 0 else "?"
        text = f"{self.label}: {_size(done)} / {total}  {_size(rate)}/s  {left} left"
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
        self.width = 0


# --- one file -----------------------------------------------------------------------------------


def _content_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Content-Length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _open(request: urllib.request.Request, *, timeout: float, url: str) -> http.client.HTTPResponse:
    """urlopen, with failures sorted into worth-retrying (`_Retry`) and not (`FetchError`)."""
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code >= 500 or e.code in (408, 429):
            raise _Retry(f"HTTP {e.code} {e.reason}") from e
        raise
    except urllib.error.URLError as e:
        if isinstance(e.reason, FileNotFoundError | PermissionError | IsADirectoryError):
            raise FetchError(f"{url}: {e.reason}") from e
        raise _Retry(str(e.reason)) from e
    except (OSError, http.client.HTTPException) as e:  # timeouts, resets, TLS errors
        raise _Retry(f"{type(e).__name__}: {e}") from e


def remote_size(url: str, *, timeout: float = 30.0) -> int | None:
    """The file's length by a HEAD request, or from the first response where HEAD is refused."""
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(url, method=method, headers={"User-Agent": _USER_AGENT})
        try:
            with _open(request, timeout=timeout, url=url) as response:
                size = _content_length(response.headers)
        except urllib.error.HTTPError as e:
            if method == "HEAD" and e.code in (403, 405, 501):
                continue
            raise FetchError(f"{url}: HTTP {e.code} {e.reason}") from e
        if size is not None or method == "GET":
            return size
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class FetchSettings:
    """How hard to try: a 5 GB file over a flaky link drops now and then; a rerun resumes anyway."""

    retries: int = 5  # further tries of one file after the first
    backoff: float = 1.0  # seconds before the first retry, doubled each time up to 30 s
    timeout: float = 30.0  # socket timeout: connecting and each read
    quiet: bool = False  # no progress meter


class _Download:
    """One file: `.part` beside the final name, resumed by Range, renamed when complete and checked."""

    def __init__(self, url: str, dest: Path, settings: FetchSettings, progress: _Progress, log: TextIO) -> None:
        self.url = url
        self.dest = dest
        self.part = dest.with_name(dest.name + ".part")
        self.settings = settings
        self.progress = progress
        self.log = log
        self.total: int | None = None  # learned from the first response of this run

    def run(self, sha256: str | None) -> str:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(self.settings.retries + 1):
            try:
                self._attempt()
                break
            except _Retry as e:
                kept = self.part.stat().st_size if self.part.exists() else 0
                if attempt == self.settings.retries:
                    raise FetchError(
                        f"{self.url}: {e}; gave up after {attempt + 1} tries. {kept} bytes are kept in "
                        f"{self.part}: run again to resume"
                    ) from e
                wait = min(self.settings.backoff * 2**attempt, _MAX_BACKOFF)
                self.log.write(f"{self.dest.name}: {e}; retrying in {wait:.1f} s ({kept} bytes kept)\n")
                time.sleep(wait)
        return self._finish(sha256)

    def _attempt(self) -> None:
        offset = self.part.stat().st_size if self.part.exists() else 0
        headers = {"User-Agent": _USER_AGENT}
        ranged = offset > 0 and not self.url.startswith("file:")  # urllib's file: handler ignores ranges
        if ranged:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = _open(
                urllib.request.Request(self.url, headers=headers), timeout=self.settings.timeout, url=self.url
            )
        except urllib.error.HTTPError as e:
            if e.code == 416 and ranged:
                self._unsatisfiable(offset, e.headers.get("Content-Range", ""))
                return
            raise FetchError(f"{self.url}: HTTP {e.code} {e.reason} (for {self.dest})") from e
        with response:
            status = response.status or 200  # file: responses have no status
            if status == 206:
                start, expected_end = self._check_partial(response.headers, offset)
                mode = "ab"
            elif status == 200:
                if offset:
                    self.log.write(f"{self.dest.name}: the server does not resume; downloading from the start\n")
                start, mode = 0, "wb"
                self.total = _content_length(response.headers)
                expected_end = self.total
            else:
                raise FetchError(f"{self.url}: unexpected HTTP status {status} (for {self.dest})")
            self._receive(response, start, expected_end, mode)

    def _unsatisfiable(self, offset: int, content_range: str) -> None:
        """416 on a resume: the .part is already whole, or longer than the file (then start again)."""
        match = _UNSATISFIED_RANGE.fullmatch(content_range.strip())
        total = int(match.group(1)) if match else None
        if total is not None and self.total is not None and total != self.total:
            self._wrong_length(f"the file's length changed from {self.total} to {total} bytes between requests")
        if total == offset:
            self.total = total
            return
        self.part.unlink(missing_ok=True)
        raise _Retry(f"the server cannot resume from byte {offset}; starting again")

    def _check_partial(self, headers: Mapping[str, str], offset: int) -> tuple[int, int]:
        """Start and end (exclusive) of a 206 body, checked against what was asked and known."""
        match = _CONTENT_RANGE.fullmatch((headers.get("Content-Range") or "").strip())
        if not match:
            raise FetchError(f"{self.url}: a 206 answer without a usable Content-Range (for {self.dest})")
        start, end = int(match.group(1)), int(match.group(2)) + 1
        total = None if match.group(3) == "*" else int(match.group(3))
        if start != offset:
            self.part.unlink(missing_ok=True)
            raise FetchError(
                f"{self.url}: asked to resume at byte {offset}, the server sent from byte {start}; "
                f"the partial file is discarded (for {self.dest})"
            )
        length = _content_length(headers)
        if length is not None and length != end - start:
            self._wrong_length(f"Content-Length {length} disagrees with Content-Range {start}-{end - 1}")
        if total is not None and self.total is not None and total != self.total:
            self._wrong_length(f"the file's length changed from {self.total} to {total} bytes between requests")
        if total is not None and end > total:
            self._wrong_length(f"Content-Range {start}-{end - 1} runs past the length {total}")
        self.total = total
        return start, end

    def _wrong_length(self, what: str) -> None:
        self.part.unlink(missing_ok=True)
        raise FetchError(f"{self.url}: wrong length: {what}; the partial file is discarded (for {self.dest})")

    def _receive(self, response: http.client.HTTPResponse, start: int, end: int | None, mode: str) -> None:
        done = start
        self.progress.begin(done, self.total)
        try:
            with self.part.open(mode) as f:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as e:  # timeouts, resets, TLS errors
                        raise _Retry(
                            f"connection lost after {done} of {self.total or '?'} bytes ({type(e).__name__})"
                        ) from e
                    if not chunk:
                        break
                    f.write(chunk)
                    done += len(chunk)
                    if end is not None and done > end:
                        f.close()
                        self._wrong_length(f"more than the {end - start} bytes declared")
                    self.progress.update(done)
                f.flush()
                os.fsync(f.fileno())
        finally:
            self.progress.update(done, force=True)
            self.progress.end()
        if end is not None and done < end:
            raise _Retry(f"connection closed after {done} of {self.total or end} bytes")
        if self.total is None:
            self.log.write(f"{self.dest.name}: the server gave no length; completeness cannot be checked\n")
            self.total = done
        elif done < self.total:  # a 206 that stopped short of the end: ask for the rest
            raise _Retry(f"the server sent bytes up to {done} of {self.total}")

    def _finish(self, sha256: str | None) -> str:
        """Check, sync and rename: the final name only ever holds a complete, checked file."""
        size = self.part.stat().st_size
        if self.total is not None and size != self.total:
            self._wrong_length(f"{size} bytes received, {self.total} expected")
        digest = _sha256(self.part)
        if sha256 is not None and digest != sha256.lower():
            self.part.unlink(missing_ok=True)
            raise FetchError(
                f"{self.url}: SHA-256 mismatch for {self.dest}: got {digest}, expected {sha256}; "
                "the download is discarded"
            )
        with self.part.open("r+b") as f:
            os.fsync(f.fileno())
        os.replace(self.part, self.dest)
        fsync_folder(self.dest.parent)
        return digest


def download_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    settings: FetchSettings | None = None,
    log: TextIO | None = None,
    label: str | None = None,
    before_download: Callable[[], None] = lambda: None,
) -> str | None:
    """Fetch one file to `dest` unless a file of the server's length is already there.

    Returns the SHA-256 of what was downloaded, or None when the file was present. `before_download`
    runs only when bytes are about to be fetched (the licence question)."""
    log = log if log is not None else sys.stderr
    settings = settings if settings is not None else FetchSettings()
    dest = Path(dest)
    if dest.exists():
        size = _with_retries(lambda: remote_size(url, timeout=settings.timeout), url, settings, log)
        if size is not None and dest.stat().st_size == size:
            if sha256 is not None and _sha256(dest) != sha256.lower():
                raise FetchError(f"{dest} is present but its SHA-256 is not {sha256}: remove it to download it again")
            return None
        log.write(f"{dest.name}: present with {dest.stat().st_size} bytes, the server has {size}: downloading again\n")
    before_download()
    progress = _Progress(label or dest.name, log, enabled=not settings.quiet)
    try:
        return _Download(url, dest, settings, progress, log).run(sha256)
    except OSError as e:  # the local side: disk full, permissions
        raise FetchError(f"{url}: cannot write {dest}: {e}") from e


def _with_retries(call: Callable[[], int | None], url: str, settings: FetchSettings, log: TextIO) -> int | None:
    for attempt in range(settings.retries + 1):
        try:
            return call()
        except _Retry as e:
            if attempt == settings.retries:
                raise FetchError(f"{url}: {e}; gave up after {attempt + 1} tries") from e
            time.sleep(min(settings.backoff * 2**attempt, _MAX_BACKOFF))
    raise AssertionError


# --- many files ---------------------------------------------------------------------------------


def fetch(
    names: Iterable[str],
    to: Path | str,
    *,
    base_url: str | None = None,
    ids_url: str | None = None,
    accept_licence: bool = False,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 30.0,
    quiet: bool = False,
    known_sha256: Mapping[str, str] | None = None,
    log: TextIO | None = None,
    stdin: TextIO | None = None,
) -> list[Path]:
    """Download bundles ('5b_lyrics'), models ('vqvae') or 'ids' under `to` in the official layout;
    returns the final paths, present ones included. URLs default to $JUKEBOX_FETCH_BASE_URL /
    $JUKEBOX_FETCH_IDS_URL, then to OpenAI's."""
    to = Path(to).expanduser()
    log = log if log is not None else sys.stderr
    base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    ids_url = ids_url or os.environ.get(IDS_URL_ENV) or DEFAULT_IDS_URL
    hashes = KNOWN_SHA256 if known_sha256 is None else known_sha256
    settings = FetchSettings(retries=retries, backoff=backoff, timeout=timeout, quiet=quiet)
    licence = _Licence(to, accepted=accept_licence, stdin=stdin if stdin is not None else sys.stdin, log=log)
    paths = []
    for target in targets(names, base_url=base_url, ids_url=ids_url):
        dest = to.joinpath(*target.relative.split("/"))
        digest = download_file(
            target.url,
            dest,
            sha256=hashes.get(target.relative),
            settings=settings,
            log=log,
            label=target.relative,
            before_download=licence.ensure,
        )
        if digest is None:
            log.write(f"{target.relative}: present, skipped\n")
        else:
            log.write(f"{target.relative}: downloaded, sha256 {digest}\n")
        paths.append(dest)
    return paths


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jukebox-fetch",
        description="Download the official Jukebox checkpoints and artist/genre id tables (OpenAI's "
        f"noncommercial licence: {LICENCE_URL}) into the layout jukebox-bridge --official-root reads.",
    )
    parser.add_argument(
        "names",
        nargs="+",
        choices=names_choices(),
        metavar="NAME",
        help=f"a bundle ({', '.join(official.BUNDLES)}; with the id tables), a model "
        f"({', '.join(official.CHECKPOINT_PATHS)}) or 'ids'",
    )
    parser.add_argument("--to", type=Path, default=DEFAULT_TO, help="destination folder (default: %(default)s)")
    parser.add_argument(
        "--base-url",
        default=os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
        help=f"where the checkpoints are (a URL, file:// or a local folder; ${BASE_URL_ENV}; default: %(default)s)",
    )
    parser.add_argument(
        "--ids-url",
        default=os.environ.get(IDS_URL_ENV) or DEFAULT_IDS_URL,
        help=f"where the id tables are (${IDS_URL_ENV}; default: %(default)s)",
    )
    parser.add_argument("--accept-licence", action="store_true", help="accept the licence without being asked")
    parser.add_argument("--retries", type=int, default=5, help="further tries per file after a failure (default: 5)")
    parser.add_argument("--timeout", type=float, default=30.0, help="socket timeout in seconds (default: 30)")
    parser.add_argument("--quiet", action="store_true", help="no progress meter")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        fetch(
            args.names,
            args.to,
            base_url=args.base_url,
            ids_url=args.ids_url,
            accept_licence=args.accept_licence,
            retries=max(args.retries, 0),
            timeout=args.timeout,
            quiet=args.quiet,
        )
    except FetchError as e:
        print(f"jukebox-fetch: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\njukebox-fetch: interrupted; partial files (*.part) are kept: run again to resume", file=sys.stderr)
        return 130
    bundles = [name for name in args.names if name in official.BUNDLES]
    if bundles:
        to = args.to.expanduser()
        print(
            f"jukebox-fetch: done. Use it with: jukebox-bridge --official-root {to} "
            f"--official-bundle {bundles[0]} --ids {to / IDS_FOLDER}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
