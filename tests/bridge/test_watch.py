"""bridge.transports.watch: a clip becomes the prime only once complete; bad, ignored and vanished files are handled."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from watchdog.observers.polling import PollingEmitter

from bridge.commands import Origin
from bridge.errors import CommandError
from bridge.transports.watch import InboxWatcher, is_inbox_clip
from tests.bridge.harness import wait_until

SR = 44100
QUIET_S = 0.2


pytestmark = pytest.mark.usefixtures("no_new_threads")


class RecordingControls:
    """The Controls surface, recording every call; set_prime can be told to refuse."""

    def __init__(self, refuse: str | None = None) -> None:
        self._lock = threading.Lock()
        self.primes: list[tuple[Path, Origin, bool]] = []
        self.reports: list[tuple[Origin, str, bool]] = []
        self.other: list[tuple[str, Any]] = []
        self.refuse = refuse

    def set_param(self, name: str, args: Sequence[Any], *, origin: Origin) -> Any:
        with self._lock:
            self.other.append(("set_param", (name, args)))

    def load_preset(self, name: str, *, origin: Origin) -> None:
        with self._lock:
            self.other.append(("load_preset", name))

    def trigger(self, action: str, *, origin: Origin) -> str | None:
        with self._lock:
            self.other.append(("trigger", action))
        return None

    def set_prime(self, path: Path, *, origin: Origin, start_job: bool = False) -> str | None:
        with self._lock:
            self.primes.append((path, origin, start_job))
        if self.refuse:
            raise CommandError(self.refuse)
        return "job-1" if start_job else None

    def report(self, origin: Origin, message: str, *, error: bool = True) -> None:
        with self._lock:
            self.reports.append((origin, message, error))

    def primed(self) -> list[Path]:
        with self._lock:
            return [p for p, _, _ in self.primes]

    def messages(self) -> list[str]:
        with self._lock:
            return [m for _, m, _ in self.reports]


def wav_bytes(frames: int = SR // 2, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    audio = (np.random.default_rng(seed).random((frames, 1), dtype=np.float32) - 0.5) * 0.5
    sf.write(buf, audio, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def watcher(folder: Path, controls: RecordingControls, **kw: Any) -> InboxWatcher:
    kw.setdefault("quiet_s", QUIET_S)
    kw.setdefault("poll_interval_s", 0.05)
    return InboxWatcher(folder, controls, **kw)


POLLING = pytest.mark.parametrize("polling", [False, True], ids=["observer", "polling"])


# --- complete files only ---------------------------------------------------------------------------


@POLLING
def test_wav_written_in_chunks_is_primed_only_once_complete(tmp_path: Path, polling: bool) -> None:
    controls = RecordingControls()
    data = wav_bytes(SR)
    path = tmp_path / "export.wav"
    with watcher(tmp_path, controls, polling=polling, quiet_s=0.3, stable_checks=1, check_interval_s=0.01):
        assert any(isinstance(t, PollingEmitter) for t in threading.enumerate()) == polling
        with path.open("wb") as f:
            for start in range(0, len(data), len(data) // 8):
                f.write(data[start : start + len(data) // 8])
                f.flush()
                time.sleep(0.05)  # pauses inside the quiet period, long enough for several checks
                assert controls.primed() == [] and controls.reports == []
        wait_until(controls.primed)
        time.sleep(2 * QUIET_S)  # no second prime for the same file
    assert controls.primes == [(path, Origin("watch", address=str(path)), False)]
    assert controls.reports == []


def test_size_must_hold_still_for_stable_checks_even_without_a_quiet_period(tmp_path: Path) -> None:
    controls = RecordingControls()
    data = wav_bytes(SR)
    path = tmp_path / "steady.wav"
    with watcher(tmp_path, controls, quiet_s=0.0, stable_checks=10, check_interval_s=0.02):
        with path.open("wb") as f:
            for start in range(0, len(data), len(data) // 8):
                f.write(data[start : start + len(data) // 8])
                f.flush()
                time.sleep(0.03)  # the size changes faster than ten checks
                assert controls.primed() == [] and controls.reports == []
        wait_until(controls.primed)
    assert controls.primed() == [path] and controls.reports == []


def test_reopening_a_primed_clip_without_changing_it_does_not_prime_it_again(tmp_path: Path) -> None:
    controls = RecordingControls()
    path = tmp_path / "once.wav"
    with watcher(tmp_path, controls):
        path.write_bytes(wav_bytes())
        wait_until(controls.primed)
        for _ in range(3):
            with path.open("ab"):  # opened for writing and closed: a 'closed' event, same bytes and mtime
                pass
            sf.info(str(path))  # a reader, as the DAW's browser would be
        time.sleep(3 * QUIET_S)
    assert controls.primed() == [path] and controls.reports == []


def test_writer_that_stalls_mid_file_gets_one_notice_that_it_waits_then_is_taken_when_finished(tmp_path: Path) -> None:
    controls = RecordingControls()
    path = tmp_path / "stalled.wav"
    audio = np.zeros((SR, 1), dtype=np.float32)
    with watcher(tmp_path, controls):
        f = sf.SoundFile(path, "w", SR, 1, format="WAV")  # header sizes are placeholders until close
        try:
            f.write(audio[: SR // 2])
            f.flush()
            wait_until(lambda: controls.reports)  # quiet and stable for a while, but not a finished file
            time.sleep(3 * QUIET_S)  # and not reported again while nothing changes
            (report,) = controls.reports
            assert report[0] == Origin("watch", address=str(path)) and report[2] is False  # a notice, not an error
            assert str(path) in report[1] and "still being written" in report[1] and "primed once it is" in report[1]
            assert controls.primed() == []
            f.write(audio[SR // 2 :])
        finally:
            f.close()
        wait_until(controls.primed)
    assert controls.primed() == [path] and len(controls.reports) == 1


@POLLING
def test_atomic_rename_into_the_inbox_is_primed(tmp_path: Path, polling: bool) -> None:
    controls = RecordingControls()
    with watcher(tmp_path, controls, polling=polling):
        part = tmp_path / ".take.wav.part"
        part.write_bytes(wav_bytes())
        time.sleep(2 * QUIET_S)
        assert controls.primed() == []  # the hidden temp name is never a candidate
        os.replace(part, tmp_path / "take.wav")
        wait_until(controls.primed)
    assert controls.primed() == [tmp_path / "take.wav"] and controls.reports == []


def test_clip_moved_in_from_a_staging_subfolder_is_primed(tmp_path: Path) -> None:
    controls = RecordingControls()
    staging = tmp_path / "staging"
    staging.mkdir()
    with watcher(tmp_path, controls):
        (staging / "bounce.wav").write_bytes(wav_bytes())
        time.sleep(2 * QUIET_S)
        assert controls.primed() == []  # subfolders are not watched
        os.replace(staging / "bounce.wav", tmp_path / "bounce.wav")
        wait_until(controls.primed)
    assert controls.primed() == [tmp_path / "bounce.wav"]


def test_ignored_names_are_never_primed(tmp_path: Path) -> None:
    controls = RecordingControls()
    (tmp_path / "sub").mkdir()
    ignored = [
        ".hidden.wav",
        "take.wav.part",
        "take.tmp",
        "take.wav.asd",
        "take.reapeaks",
        "~lock.wav",
        "notes.txt",
        "sub/inner.wav",
    ]
    with watcher(tmp_path, controls):
        for name in ignored:
            (tmp_path / name).write_bytes(wav_bytes())
        (tmp_path / "sentinel.flac").write_bytes(b"")  # written last; once it is handled, the others were seen
        sf.write(tmp_path / "sentinel.flac", np.zeros((1000, 1), dtype=np.float32), SR, format="FLAC")
        wait_until(controls.primed)
        time.sleep(2 * QUIET_S)
    assert controls.primed() == [tmp_path / "sentinel.flac"] and controls.reports == []
    assert not any(is_inbox_clip(tmp_path / name) for name in ignored if "/" not in name)
    assert all(is_inbox_clip(Path(n)) for n in ("a.wav", "a.WAV", "a.aif", "a.aiff", "a.flac", "a.ogg", "a.mp3"))


# --- unusable files ----------------------------------------------------------------------------------


def test_truncated_clip_is_reported_once_and_retried_only_after_it_changes(tmp_path: Path) -> None:
    controls = RecordingControls()
    data = wav_bytes(SR)
    path = tmp_path / "cut.wav"
    with watcher(tmp_path, controls):
        path.write_bytes(data[: len(data) // 2])
        wait_until(lambda: controls.reports)
        time.sleep(3 * QUIET_S)
        assert len(controls.reports) == 1 and controls.primed() == []
        origin, message, error = controls.reports[0]
        assert not error and origin.kind == "watch" and str(path) in message and "incomplete" in message
        assert "primed once it is" in message  # and it is, once the copy is redone (below)
        path.write_bytes(data[: len(data) // 2])  # a second attempt that fails the same way is a new report
        wait_until(lambda: len(controls.reports) == 2)
        path.write_bytes(data)  # the copy is redone in full
        wait_until(controls.primed)
        time.sleep(2 * QUIET_S)
    assert controls.primed() == [path] and len(controls.reports) == 2


@pytest.mark.parametrize(
    "name, content, reason",
    [("zero.wav", b"", "the file is empty"), ("text.wav", b"verse chorus verse\n" * 50, "not a readable audio file")],
)
def test_empty_and_non_audio_files_are_reported_and_not_primed(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    controls = RecordingControls()
    with watcher(tmp_path, controls):
        (tmp_path / name).write_bytes(content)
        wait_until(lambda: controls.reports)
        time.sleep(2 * QUIET_S)
    ((origin, message, error),) = controls.reports
    assert error and origin == Origin("watch", address=str(tmp_path / name))
    assert reason in message and name in message
    assert controls.primed() == []


def test_clip_deleted_before_it_was_complete_is_dropped_quietly(tmp_path: Path) -> None:
    controls = RecordingControls()
    data = wav_bytes()
    with watcher(tmp_path, controls, quiet_s=0.3):
        doomed = tmp_path / "doomed.wav"
        doomed.write_bytes(data[:1000])
        time.sleep(0.05)
        doomed.unlink()
        time.sleep(2 * QUIET_S)
        (tmp_path / "after.wav").write_bytes(data)
        wait_until(controls.primed)
    assert controls.primed() == [tmp_path / "after.wav"] and controls.reports == []


def test_refused_prime_is_reported_and_the_inbox_keeps_working(tmp_path: Path) -> None:
    controls = RecordingControls(refuse="the prime is longer than the take")
    with watcher(tmp_path, controls):
        (tmp_path / "a.wav").write_bytes(wav_bytes(seed=1))
        wait_until(lambda: controls.reports)
        (tmp_path / "b.wav").write_bytes(wav_bytes(seed=2))
        wait_until(lambda: len(controls.reports) == 2)
    assert controls.primed() == [tmp_path / "a.wav", tmp_path / "b.wav"]
    assert controls.messages() == ["the prime is longer than the take"] * 2


# --- options, latest(), lifecycle --------------------------------------------------------------------


def test_auto_start_job_asks_for_a_primed_job(tmp_path: Path) -> None:
    controls = RecordingControls()
    with watcher(tmp_path, controls, auto_start_job=True):
        (tmp_path / "go.wav").write_bytes(wav_bytes())
        wait_until(controls.primed)
    assert controls.primes == [(tmp_path / "go.wav", Origin("watch", address=str(tmp_path / "go.wav")), True)]


def test_startup_scan_remembers_the_newest_good_clip_without_priming(tmp_path: Path) -> None:
    controls = RecordingControls()
    now = time.time()
    for name, age, data in [
        ("old.wav", 300, wav_bytes()),
        ("new.wav", 200, wav_bytes()),
        ("newest-but-cut.wav", 100, wav_bytes()[:2000]),
        (".hidden.wav", 10, wav_bytes()),
    ]:
        (tmp_path / name).write_bytes(data)
        os.utime(tmp_path / name, (now - age, now - age))
    inbox = watcher(tmp_path, controls)
    assert inbox.latest() is None
    with inbox:
        assert inbox.latest() == tmp_path / "new.wav"
        time.sleep(3 * QUIET_S)
        assert controls.primes == [] and controls.reports == []

        (tmp_path / "dropped.wav").write_bytes(wav_bytes())
        wait_until(controls.primed)
        assert inbox.latest() == tmp_path / "dropped.wav"

        (tmp_path / "dropped.wav").unlink()
        wait_until(lambda: inbox.latest() == tmp_path / "new.wav")

        (tmp_path / "new.wav").write_bytes(wav_bytes()[:3000])  # overwritten by an interrupted copy
        wait_until(lambda: controls.reports)
        assert inbox.latest() == tmp_path / "old.wav"
    assert controls.primed() == [tmp_path / "dropped.wav"]


def test_scan_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / "there.wav").write_bytes(wav_bytes())
    with watcher(tmp_path, RecordingControls(), scan_existing=False) as inbox:
        assert inbox.latest() is None


def test_start_creates_the_folder_and_stop_joins_every_thread(tmp_path: Path) -> None:
    folder = tmp_path / "not" / "yet"
    inbox = watcher(folder, RecordingControls())
    before = threading.active_count()
    inbox.start()
    assert folder.is_dir() and threading.active_count() > before
    with pytest.raises(RuntimeError):
        inbox.start()
    inbox.stop()
    inbox.stop()  # twice is fine
    assert threading.active_count() == before


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    for kw in ({"quiet_s": -1.0}, {"stable_checks": 0}, {"poll_interval_s": 0.0}):
        with pytest.raises(ValueError):
            InboxWatcher(tmp_path, RecordingControls(), **kw)
