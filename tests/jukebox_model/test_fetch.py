"""jukebox-fetch against a real HTTP server on 127.0.0.1: layout, resume, drops, lies and the licence."""

from __future__ import annotations

import hashlib
import io
import random
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jukebox_model import fetch as fetch_module
from jukebox_model import official
from jukebox_model.fetch import ID_TABLES, FetchError, fetch, main

IDS_PREFIX = "raw/jukebox/data/ids"


@dataclass
class Behaviour:
    """How the test server misbehaves; changed by a test before fetching."""

    ranges: bool = True  # honour Range with 206
    drop_after: int | None = None  # send only this many body bytes of a GET, then close
    drops: int = 10**9  # how many GETs drop
    extra_declared: int = 0  # Content-Length larger than the body by this
    range_extra: int = 0  # on 206, this many bytes past the declared range (no Content-Length)
    gets: int = 0


@dataclass
class Seen:
    method: str
    path: str
    range: str | None
    sent: int


@dataclass
class Server:
    root: Path
    url: str
    behaviour: Behaviour
    seen: list[Seen] = field(default_factory=list)

    @property
    def ids_url(self) -> str:
        return f"{self.url}{IDS_PREFIX}/"

    def gets(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "GET"]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the connection closes after each answer: a short body is a drop

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            b = server.behaviour
            path = server.root / self.path.lstrip("/")
            asked = self.headers.get("Range")
            if not path.is_file():
                self.send_error(404)
                server.seen.append(Seen(self.command, self.path, asked, 0))
                return
            data = path.read_bytes()
            start, status = 0, 200
            if asked and b.ranges:
                start = int(asked.removeprefix("bytes=").removesuffix("-"))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    server.seen.append(Seen(self.command, self.path, asked, 0))
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            if status == 206 and b.range_extra:
                body += bytes(b.range_extra)
            else:
                self.send_header("Content-Length", str(len(body) + b.extra_declared))
            self.end_headers()
            if head:
                server.seen.append(Seen(self.command, self.path, asked, 0))
                return
            b.gets += 1
            if b.drop_after is not None and b.gets <= b.drops:
                body = body[: b.drop_after]
            self.wfile.write(body)
            server.seen.append(Seen(self.command, self.path, asked, len(body)))

    return Handler


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(fetch_module.BASE_URL_ENV, raising=False)
    monkeypatch.delenv(fetch_module.IDS_URL_ENV, raising=False)


def _mirror(root: Path) -> dict[str, bytes]:
    """Random files at the official paths (5b_lyrics) and id tables; relative path under `to` -> bytes."""
    rng = random.Random(23)
    files = {}
    spec = official.BUNDLES["5b_lyrics"]
    for model in (spec.vqvae, *spec.priors):
        rel = official.CHECKPOINT_PATHS[model]
        files[rel] = rng.randbytes(rng.randrange(150_000, 300_000))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(files[rel])
    (root / IDS_PREFIX).mkdir(parents=True)
    for table in ID_TABLES:
        text = "".join(f"name {i};{i}\n" for i in range(rng.randrange(50, 500))).encode()
        files[f"ids/{table}"] = text
        (root / IDS_PREFIX / table).write_bytes(text)
    return files


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "mirror"
    root.mkdir()
    state = Server(root=root, url="", behaviour=Behaviour())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


VQVAE = official.CHECKPOINT_PATHS["vqvae"]


def _fetch(server: Server, to: Path, names: list[str], **kwargs: object) -> list[Path]:
    options: dict[str, object] = {"accept_licence": True, "backoff": 0.001, "quiet": True, "log": io.StringIO()}
    options.update(kwargs)
    return fetch(names, to, base_url=server.url, ids_url=server.ids_url, **options)  # type: ignore[arg-type]


def test_downloads_a_bundle_into_the_official_layout_and_the_ids_folder(server, tmp_path):
    files = _mirror(server.root)
    to = tmp_path / "cache"
    log = io.StringIO()
    paths = _fetch(server, to, ["5b_lyrics"], quiet=False, log=log)
    assert sorted(paths) == sorted(to / rel for rel in files)
    for rel, data in files.items():
        assert (to / rel).read_bytes() == data
    assert sorted(p.name for p in (to / "ids").iterdir()) == sorted(ID_TABLES)
    assert not list(to.rglob("*.part"))
    assert (to / ".licence-accepted").exists()
    text = log.getvalue()
    assert f"sha256 {hashlib.sha256(files[VQVAE]).hexdigest()}" in text
    assert "/s" in text and "left" in text  # progress: rate and time left


def test_single_models_and_ids_alone(server, tmp_path):
    files = _mirror(server.root)
    to = tmp_path / "cache"
    assert _fetch(server, to, ["vqvae"]) == [to / VQVAE]
    assert _fetch(server, to, ["ids"]) == [to / "ids" / table for table in ID_TABLES]
    assert (to / "ids" / "v3_genre_ids.txt").read_bytes() == files["ids/v3_genre_ids.txt"]
    assert not (to / official.CHECKPOINT_PATHS["prior_5b_lyrics"]).exists()
    with pytest.raises(FetchError, match="unknown name 'nope'"):
        _fetch(server, to, ["nope"])


def test_resumes_a_part_file_with_a_range_request(server, tmp_path):
    files = _mirror(server.root)
    to = tmp_path / "cache"
    kept = 100_000
    part = to / (VQVAE + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(files[VQVAE][:kept])
    _fetch(server, to, ["vqvae"])
    assert (to / VQVAE).read_bytes() == files[VQVAE]
    assert not part.exists()
    [get] = server.gets()
    assert get.range == f"bytes={kept}-"
    assert get.sent == len(files[VQVAE]) - kept


def test_a_dropped_connection_is_resumed(server, tmp_path):
    files = _mirror(server.root)
    server.behaviour.drop_after, server.behaviour.drops = 60_000, 2
    to = tmp_path / "cache"
    _fetch(server, to, ["vqvae"], retries=3)
    assert (to / VQVAE).read_bytes() == files[VQVAE]
    assert [g.range for g in server.gets()] == [None, "bytes=60000-", "bytes=120000-"]
    assert sum(g.sent for g in server.gets()) == len(files[VQVAE])


def test_dropped_connections_past_the_retries_fail_and_keep_the_part(server, tmp_path):
    _mirror(server.root)
    server.behaviour.drop_after = 10_000
    to = tmp_path / "cache"
    with pytest.raises(FetchError, match=r"gave up after 3 tries.*run again to resume") as error:
        _fetch(server, to, ["vqvae"], retries=2)
    assert server.url + VQVAE in str(error.value)
    assert not (to / VQVAE).exists()
    assert (to / (VQVAE + ".part")).stat().st_size == 30_000


def test_exit_code_2_when_retries_are_exhausted(server, tmp_path, capsys):
    _mirror(server.root)
    server.behaviour.drop_after = 10_000
    to = tmp_path / "cache"
    argv = ["vqvae", "--to", str(to), "--base-url", server.url, "--accept-licence", "--retries", "0", "--quiet"]
    assert main(argv) == 2
    assert "gave up after 1 tries" in capsys.readouterr().err
    assert not (to / VQVAE).exists()


def test_a_server_without_ranges_restarts_from_zero(server, tmp_path):
    files = _mirror(server.root)
    server.behaviour.ranges = False
    to = tmp_path / "cache"
    part = to / (VQVAE + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 50_000)  # garbage: must not survive a restart
    _fetch(server, to, ["vqvae"])
    assert (to / VQVAE).read_bytes() == files[VQVAE]
    [get] = server.gets()
    assert get.range == "bytes=50000-" and get.sent == len(files[VQVAE])


@pytest.mark.parametrize(("ranges", "error"), [(False, "gave up after 3 tries"), (True, "wrong length")])
def test_a_declared_length_longer_than_the_body_is_an_error(server, tmp_path, ranges, error):
    _mirror(server.root)
    server.behaviour.extra_declared = 1000  # every 200 falls 1000 bytes short of its Content-Length
    server.behaviour.ranges = ranges  # with ranges the resume's 416 reveals the real length
    to = tmp_path / "cache"
    with pytest.raises(FetchError, match=error):
        _fetch(server, to, ["vqvae"], retries=2)
    assert not (to / VQVAE).exists()


@pytest.mark.parametrize("lie", ["content_length", "body"])
def test_a_resumed_body_longer_than_declared_is_an_error(server, tmp_path, lie):
    files = _mirror(server.root)
    if lie == "content_length":
        server.behaviour.extra_declared = 500  # Content-Length disagrees with Content-Range
    else:
        server.behaviour.range_extra = 500  # no Content-Length; more bytes than the range holds
    to = tmp_path / "cache"
    part = to / (VQVAE + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(files[VQVAE][:1000])
    with pytest.raises(FetchError, match="wrong length"):
        _fetch(server, to, ["vqvae"])
    assert not (to / VQVAE).exists()
    assert not part.exists()


def test_a_present_complete_file_is_not_downloaded_again(server, tmp_path):
    files = _mirror(server.root)
    to = tmp_path / "cache"
    _fetch(server, to, ["5b_lyrics"])
    before = {rel: (to / rel).stat().st_mtime_ns for rel in files}
    server.seen.clear()
    log = io.StringIO()
    _fetch(server, to, ["5b_lyrics"], log=log)
    assert server.gets() == []
    assert {s.method for s in server.seen} == {"HEAD"}
    assert {rel: (to / rel).stat().st_mtime_ns for rel in files} == before
    assert log.getvalue().count("present, skipped") == len(files)


def test_a_present_file_of_the_wrong_size_is_replaced(server, tmp_path):
    files = _mirror(server.root)
    to = tmp_path / "cache"
    (to / VQVAE).parent.mkdir(parents=True)
    (to / VQVAE).write_bytes(b"old")
    _fetch(server, to, ["vqvae"])
    assert (to / VQVAE).read_bytes() == files[VQVAE]


def test_a_local_mirror_by_file_url(tmp_path):
    mirror = tmp_path / "mirror"
    files = _mirror(mirror)
    to = tmp_path / "cache"
    part = to / (VQVAE + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(files[VQVAE][:1000])  # no ranges on file: URLs: started again
    fetch(
        ["5b_lyrics"],
        to,
        base_url=mirror.as_uri(),
        ids_url=(mirror / IDS_PREFIX).as_uri(),
        accept_licence=True,
        quiet=True,
        log=io.StringIO(),
    )
    for rel, data in files.items():
        assert (to / rel).read_bytes() == data


def test_refuses_without_licence_acceptance_when_not_on_a_terminal(server, tmp_path, monkeypatch, capsys):
    _mirror(server.root)
    to = tmp_path / "cache"
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a TTY: the answer is not read
    assert main(["5b_lyrics", "--to", str(to), "--base-url", server.url, "--ids-url", server.ids_url]) == 2
    err = capsys.readouterr().err
    assert "--accept-licence" in err and fetch_module.LICENCE_URL in err
    assert server.gets() == []
    assert not (to / ".licence-accepted").exists()


def test_licence_is_asked_once_on_a_terminal(server, tmp_path):
    files = _mirror(server.root)
    to = tmp_path / "cache"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with pytest.raises(FetchError, match="not accepted"):
        _fetch(server, to, ["vqvae"], accept_licence=False, stdin=Terminal("n\n"))
    assert not (to / VQVAE).exists()
    _fetch(server, to, ["vqvae"], accept_licence=False, stdin=Terminal("y\n"))
    assert (to / VQVAE).read_bytes() == files[VQVAE]
    _fetch(server, to, ["ids"], accept_licence=False, stdin=Terminal(""))  # remembered: not asked again


def test_main_downloads_with_the_flag(server, tmp_path, capsys):
    files = _mirror(server.root)
    to = tmp_path / "cache"
    argv = ["ids", "--to", str(to), "--base-url", server.url, "--ids-url", server.ids_url, "--accept-licence"]
    assert main(argv) == 0
    assert (to / "ids" / "v2_artist_ids.txt").read_bytes() == files["ids/v2_artist_ids.txt"]


def test_a_known_hash_mismatch_is_an_error_and_leaves_no_file(server, tmp_path):
    files = _mirror(server.root)
    to = tmp_path / "cache"
    with pytest.raises(FetchError, match="SHA-256 mismatch"):
        _fetch(server, to, ["vqvae"], known_sha256={VQVAE: "0" * 64})
    assert not (to / VQVAE).exists()
    assert not (to / (VQVAE + ".part")).exists()
    good = hashlib.sha256(files[VQVAE]).hexdigest()
    _fetch(server, to, ["vqvae"], known_sha256={VQVAE: good})
    assert (to / VQVAE).read_bytes() == files[VQVAE]


def test_a_missing_file_names_the_url(server, tmp_path):
    to = tmp_path / "cache"
    with pytest.raises(FetchError, match=r"HTTP 404.*vqvae\.pth\.tar") as error:
        _fetch(server, to, ["vqvae"])
    assert server.url + VQVAE in str(error.value)


def test_ctrl_c_keeps_the_part_for_a_resume(server, tmp_path, monkeypatch, capsys):
    files = _mirror(server.root)
    to = tmp_path / "cache"

    def interrupt(self, done, *, force=False):  # Ctrl-C after the first chunk is written
        if not force:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(fetch_module, "_CHUNK", 10_000)
        patch.setattr(fetch_module._Progress, "update", interrupt)
        argv = ["vqvae", "--to", str(to), "--base-url", server.url, "--accept-licence"]
        assert main(argv) == 130
    assert "run again to resume" in capsys.readouterr().err
    assert not (to / VQVAE).exists()
    assert (to / (VQVAE + ".part")).read_bytes() == files[VQVAE][:10_000]
    _fetch(server, to, ["vqvae"])
    assert (to / VQVAE).read_bytes() == files[VQVAE]
    assert server.gets()[-1].range == "bytes=10000-"
