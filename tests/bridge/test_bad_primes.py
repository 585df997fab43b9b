"""Bad primes and bad preset files through the running bridge (inbox set, real files in a temp folder).

Every unusable clip gets an error reply on /jb/prime/file naming the file and the reason, the
prime stays as it was and the server keeps serving; clips at other rates or in stereo are taken
and a primed job made from them succeeds (resampled to the model's rate). Confinement beyond
test_osc_bridge.py: symlinked folders, `~`, long `..` chains, NULs. A preset file broken while the
bridge runs is reported naming the file, and the last good version keeps loading.
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.untrusted.clip_check import MAX_CLIP_SAMPLES
from tests.bridge.harness import OscClient

SR = 44100
SHORT = 0.1
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fe"
    "a7d6a4d80000000049454e44ae426082"
)


def _wav(seconds: float = 0.2, sr: int = SR, channels: int = 1, subtype: str = "PCM_16") -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    buf = io.BytesIO()
    sf.write(buf, data, sr, subtype=subtype, format="WAV")
    return buf.getvalue()


def _header(data_size: int, *, sr: int = SR, channels: int = 1, fmt: int = 1) -> bytes:
    """A 44-byte PCM-16 WAV header declaring `data_size` bytes of audio."""
    block = 2 * channels
    return (
        b"RIFF"
        + struct.pack("<I", min(36 + data_size, 0xFFFFFFFF))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, fmt, channels, sr, sr * block, block, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


def _refused(c: OscClient, path: Path | str) -> str:
    reply = c.ask("/jb/prime/file", str(path))
    assert reply.args[0] == "error", (path, reply.args)
    assert c.wait_for(lambda m: m.address == "/jb/error" and m.args == ["/jb/prime/file", reply.args[1]], 5)
    return reply.args[1]


@pytest.fixture
def primed_bridge(make_bridge, tmp_path):
    """(bridge, client, clips): `clips` is a prime root the inbox watcher does not look at (it would prime by itself)."""
    inbox, clips = tmp_path / "inbox", tmp_path / "clips"
    inbox.mkdir()
    clips.mkdir()
    (clips / "good.wav").write_bytes(_wav())
    bridge, c = make_bridge(inbox_dir=inbox, inbox_quiet_s=0.05, prime_roots=(clips,))
    assert bridge.controller.model_state == "ready"
    assert c.ask("/jb/prime/file", str(clips / "good.wav")).args == [str(clips / "good.wav")]
    return bridge, c, clips


def test_corrupt_truncated_empty_huge_and_non_audio_clips_are_refused_naming_the_file_and_why(primed_bridge):
    bridge, c, clips = primed_bridge
    good = _wav()
    huge_data = 0x7FFF0000  # 2 GiB of 16-bit mono: 6.8 hours
    cases: dict[str, tuple[bytes | None, tuple[str, ...]]] = {
        "empty.wav": (b"", ("empty", "0 bytes")),
        "truncated.wav": (good[: len(good) // 2], ("incomplete",)),
        "cut-in-header.wav": (good[:30], ("truncated",)),
        "bad-format-code.wav": (good[:20] + struct.pack("<H", 0xBEEF) + good[22:], ("not a readable audio file",)),
        "zero-channels.wav": (good[:22] + struct.pack("<H", 0) + good[24:], ("not a readable audio file",)),
        "garbage-after-riff.wav": (b"RIFF" + os.urandom(4) + b"WAVE" + bytes(range(256)) * 4, ("truncated", "chunk")),
        "placeholder-sizes.wav": (_header(0xFFFFFFFF) + good[44:], ("not filled in",)),
        "claims-2GiB.wav": (_header(huge_data) + good[44:], ("incomplete", str(huge_data))),
        "text.wav": (b"this is not audio, it is a note to self\n" * 20, ("not a readable audio file",)),
        "image.wav": (PNG, ("not a readable audio file",)),
        "image.png": (PNG, ("not a readable audio file",)),
        "random.flac": (bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)), ("not a readable",)),
    }
    for name, (data, _) in cases.items():
        (clips / name).write_bytes(data)
    sparse = clips / "sparse-6h.wav"  # really that long: a sparse file, only the header is written to disk
    with sparse.open("wb") as f:
        f.write(_header(huge_data))
        f.truncate(44 + huge_data)
    cases[sparse.name] = (None, ("too long for a prime", str(MAX_CLIP_SAMPLES)))
    (clips / "folder.wav").mkdir()
    cases["folder.wav"] = (None, ("not a file",))

    for name, (_, needles) in cases.items():
        message = _refused(c, clips / name)
        assert name in message, message
        assert any(n in message for n in needles), (name, message)
        assert bridge.controller.prime == clips / "good.wav"  # the earlier prime is kept
    assert c.ask("/jb/status").args[5] == str(clips / "good.wav")
    assert c.ask("/jb/ping").args[0] == "ok" and bridge.worker.alive
    print(f"\nbad primes refused: {len(cases)}")


def test_clips_at_other_rates_and_in_stereo_are_taken_and_primed_jobs_from_them_succeed_resampled(primed_bridge):
    _, c, clips = primed_bridge
    files = {
        "48k.wav": _wav(0.2, 48000),
        "8k.wav": _wav(0.2, 8000),
        "stereo.wav": _wav(0.2, SR, 2),
        "48k-stereo-float.wav": _wav(0.2, 48000, 2, "FLOAT"),
        "96k-24bit.wav": _wav(0.2, 96000, 1, "PCM_24"),
    }
    for name, data in files.items():
        (clips / name).write_bytes(data)
        assert c.ask("/jb/prime/file", str(clips / name)).args == [str(clips / name)]
    c.ask("/jb/set/prime_s", 0.1)
    c.ask("/jb/set/length", SHORT)
    c.ask("/jb/set/levels", 1)
    kept = int(0.1 * SR) // 128 * 128
    for name in ("8k.wav", "48k-stereo-float.wav"):
        c.ask("/jb/prime/file", str(clips / name))
        job = c.ask("/jb/generate").args
        assert job[4] == "primed"
        assert c.wait_job(job[0]).address == "/jb/job/done", name
        take = next(m for m in c.messages("/jb/job/take") if m.args[0] == job[0])
        assert sf.info(take.args[3]).frames == kept + round(SHORT * SR)
        assert json.loads(Path(take.args[3]).with_suffix(".json").read_text())["prime"]["path"] == str(clips / name)


def test_prime_paths_that_leave_the_allowed_folders_by_any_route_are_refused(primed_bridge, tmp_path):
    bridge, c, _ = primed_bridge
    inbox = bridge.settings.inbox_dir  # relative paths are relative to the inbox
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.wav").write_bytes(_wav())
    (inbox / "linked-folder").symlink_to(outside, target_is_directory=True)
    (inbox / "chain").symlink_to(inbox / "linked-folder" / "secret.wav")  # a link to a link that leads out
    project_take = bridge.settings.project_dir / "earlier-take.wav"
    project_take.write_bytes(_wav())
    (inbox / "to-project.wav").symlink_to(project_take)  # leads into another allowed root: fine

    for path in [
        "linked-folder/secret.wav",
        str(inbox / "linked-folder" / "secret.wav"),
        "chain",
        "../outside/secret.wav",
        "./../../" * 20 + str(outside / "secret.wav").lstrip("/"),
        str(outside / "secret.wav"),
        "~/secret.wav",
        "/etc/passwd",
        "/dev/zero",
        "/proc/self/environ",
    ]:
        message = _refused(c, path)
        assert "outside the folders primes may come from" in message, (path, message)
    # a NUL ends an OSC string, so nothing can ride behind one: the server sees 'good.wav' (none in the inbox)
    assert "not a file" in _refused(c, "good.wav\x00/../../etc/passwd")
    start = len(c.messages())
    bridge.surface.handle("/jb/prime/file", ["good.wav\x00/../../etc/passwd"], ("127.0.0.1", c.port))  # in process
    reply = c.wait_for(lambda m: m.address == "/jb/prime/file", 5, since=start)
    assert reply.args[0] == "error" and "NUL" in reply.args[1]
    assert "not a file" in _refused(c, str(inbox))
    assert outside not in Path(c.ask("/jb/get/prime").args[0]).parents  # nothing refused became the prime
    assert c.ask("/jb/prime/file", "to-project.wav").args == [str(project_take)]
    assert bridge.controller.prime == project_take


def test_a_prime_name_longer_than_the_file_system_allows_gets_a_clear_error_not_an_internal_one(primed_bridge):
    _, c, _ = primed_bridge
    message = _refused(c, "x" * 300 + ".wav")
    assert "internal error" not in message and "x" * 20 in message


def test_a_prime_that_is_a_symlink_loop_gets_a_clear_error_not_an_internal_one(primed_bridge):
    bridge, c, _ = primed_bridge
    inbox = bridge.settings.inbox_dir
    (inbox / "loop.wav").symlink_to(inbox / "loop.wav")
    message = _refused(c, "loop.wav")
    assert "internal error" not in message and "loop.wav" in message


def test_a_clip_whose_name_is_not_utf8_is_reported_by_the_inbox_and_replies_stay_sendable(primed_bridge):
    bridge, c, clips = primed_bridge
    inbox = bridge.settings.inbox_dir
    c.ask("/jb/subscribe")  # inbox reports have no requester: subscribers hear them
    raw = os.fsencode(inbox) + b"/caf\xe9-latin1.wav"
    try:
        with open(raw, "wb") as f:
            f.write(_wav())
    except OSError as e:  # file systems that only take UTF-8 names (ZFS utf8only, some mounts) cannot hold one
        pytest.skip(f"this file system refuses a name that is not UTF-8: {e}")
    report = c.wait_for(lambda m: m.address == "/jb/error" and "latin1" in str(m.args), timeout=15)
    assert "not valid UTF-8" in report.args[1] and "caf\\udce9-latin1.wav" in report.args[1]
    assert bridge.controller.prime == clips / "good.wav"
    assert c.ask("/jb/status").args[0] == "ready"


def _preset_events(c: OscClient, since: int, needle: str, timeout: float = 10.0):
    return c.wait_for(
        lambda m: m.address in ("/jb/error", "/jb/info") and needle in str(m.args), timeout, needle, since=since
    )


def test_preset_files_broken_while_the_bridge_runs_are_reported_and_the_last_good_version_keeps_loading(
    make_bridge, tmp_path
):
    presets = tmp_path / "presets"
    presets.mkdir()
    warm = presets / "warm.toml"
    warm.write_text('description = "ok"\nartist = "Alan Jackson"\ntemperature = 0.95\n')
    bridge, c = make_bridge(presets_dir=presets)
    c.ask("/jb/subscribe")
    assert c.ask("/jb/preset/load", "warm").args == ["warm"]
    broken = {
        b'artist = "unterminated\n': "not valid TOML",
        b"temperature = 99\n": "temperature",
        b'colour = "blue"\n': "unknown key 'colour'",
        b"n_takes = 2.5\n": "whole number",
        b'[artist]\nname = "x"\n': "must be a value",
        b"\xff\xfe\x00t\x00": "not UTF-8",
        b"": "sets no parameters",
        b'lyrics = "' + b"la " * 400_000 + b'"\n': "more than the limit",
        b"temperature = nan\n": "finite",
        b"seed = 99999999999\n": "seed",
    }
    for text, needle in broken.items():
        since = len(c.messages())
        warm.write_bytes(text)
        event = _preset_events(c, since, needle)
        assert event.address == "/jb/error" and event.args[0] == "preset warm", event
        assert str(warm) in event.args[1] and "keeping the previous version" in event.args[1], event
        c.ask("/jb/set/artist", "Someone Else")
        assert c.ask("/jb/preset/load", "warm").args == ["warm"]
        assert bridge.controller.session.artist == "Alan Jackson" and bridge.controller.preset == "warm"
    since = len(c.messages())
    (presets / "new.toml").write_text("levels = 7\n")
    assert "levels" in _preset_events(c, since, "new.toml").args[1]
    reply = c.ask("/jb/preset/load", "new")
    assert reply.args[0] == "error" and "unknown preset 'new'" in reply.args[1]
    assert c.ask("/jb/preset/list").args == ["warm"]
    assert c.ask("/jb/ping").args[0] == "ok" and bridge.presets._thread.is_alive()
    print(f"\nbroken preset edits reported: {len(broken) + 1}")


def test_a_take_lands_in_the_project_folder_whatever_the_preset_it_was_made_with_is_called(make_bridge, tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    name = "evil\\..\\..\\tmp\\☃ name"  # backslashes are plain characters in a POSIX file name
    (presets / f"{name}.toml").write_text(f"length = {SHORT}\nlevels = 1\n")
    bridge, c = make_bridge(presets_dir=presets)
    assert c.ask("/jb/preset/load", name).args == [name]
    job = c.ask("/jb/generate").args[0]
    assert c.wait_job(job, timeout=60).address == "/jb/job/done"
    take = Path(next(m for m in c.messages("/jb/job/take") if m.args[0] == job).args[3])
    project = bridge.settings.project_dir
    assert take.parent == project and take.resolve().parent == project.resolve()
    assert "\\" not in take.name and "☃" not in take.name and take.with_suffix(".json").is_file()
