"""The bridge's own folders (presets/, <project>/.jukebox/) hold only what it wrote: a symlink put
there by someone else is not followed, a kept prime is used only while it holds its hash, and the
temp files of a killed run are gone at the next start (issue 22, breaks 3, 5 and 6)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.jobs.journal import JobJournal
from bridge.session.presets import ERROR, PresetLibrary
from bridge.takes.prime_store import PrimeStore
from tests.bridge.test_presets import Events

SR = 22050


def _clip(path: Path, freq: float) -> Path:
    t = np.arange(SR) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- presets/ ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["outside.toml", "/proc/self/environ"])
def test_a_preset_that_links_outside_the_folder_is_logged_and_skipped(tmp_path: Path, target: str) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    outside = tmp_path / "outside.toml"
    outside.write_text("length = 3\n", encoding="utf-8")
    (folder / "linked.toml").symlink_to(outside if target == "outside.toml" else target)
    (folder / "plain.toml").write_text("length = 5\n", encoding="utf-8")
    events = Events()
    library = PresetLibrary(folder, on_event=events)
    errors = library.reload()
    assert library.names() == ["plain"]
    assert "symlink" in errors["linked"] and "symlink" in events.of(ERROR, "linked")[0]


def test_links_in_the_presets_folder_are_followed_when_the_setting_allows_them(tmp_path: Path) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    outside = tmp_path / "outside.toml"
    outside.write_text("length = 3\n", encoding="utf-8")
    (folder / "linked.toml").symlink_to(outside)
    library = PresetLibrary(folder, follow_links=True)
    assert library.reload() == {} and library.get("linked").values["length"] == 3.0


# --- .jukebox/jobs ---------------------------------------------------------------------------------


def test_a_journal_record_that_is_a_symlink_is_not_read(tmp_path: Path, caplog) -> None:
    journal = JobJournal(tmp_path / "jobs")
    outside = tmp_path / "record.json"
    outside.write_text(json.dumps({"id": "jbbbbbbb"}), encoding="utf-8")
    (tmp_path / "jobs" / "jbbbbbbb.json").symlink_to(outside)
    assert journal.unfinished() == []
    assert "symlink" in caplog.text


# --- .jukebox/primes -------------------------------------------------------------------------------


def test_a_link_planted_under_the_next_clips_hash_gives_way_to_the_clips_own_copy(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clip.wav", 220.0)
    outside = _clip(tmp_path / "secret.wav", 880.0)
    store = PrimeStore(tmp_path / "primes")
    store.folder.mkdir()
    planted = store.folder / f"{_sha(clip)}.wav"
    planted.symlink_to(outside)
    copy, sha = store.keep(clip)
    assert copy == planted and not copy.is_symlink() and copy.read_bytes() == clip.read_bytes()
    assert sha == _sha(clip) and outside.read_bytes() != clip.read_bytes()  # the outside file is untouched
    audio, sr, _ = store.tail(copy, 0.5)
    assert sr == SR and np.allclose(audio, sf.read(clip, dtype="float32")[0][-len(audio) :], atol=1e-4)


def test_a_kept_prime_is_used_again_only_while_it_holds_its_hash(tmp_path: Path) -> None:
    store = PrimeStore(tmp_path / "primes")
    copy, sha = store.keep(_clip(tmp_path / "clip.wav", 220.0))
    assert store.verified(copy) == copy and store.keep(copy) == (copy, sha)  # a regenerate keeps it again
    _clip(copy, 440.0)  # edited in place after it was kept
    for use in (store.verified, store.keep):
        with pytest.raises(ValueError, match="no longer holds the audio it was kept with"):
            use(copy)


def test_a_kept_prime_that_became_a_link_is_refused(tmp_path: Path) -> None:
    store = PrimeStore(tmp_path / "primes")
    clip = _clip(tmp_path / "clip.wav", 220.0)
    copy, _ = store.keep(clip)
    copy.unlink()
    copy.symlink_to(clip)  # the same audio, but through a link
    for use in (store.verified, store.keep):
        with pytest.raises(ValueError, match="symlink"):
            use(copy)
    with pytest.raises(ValueError, match="not one of this project's kept primes"):
        store.verified(clip)


def test_the_temp_files_of_a_killed_run_are_removed_at_the_next_start(make_bridge, tmp_path: Path) -> None:
    project = tmp_path / "project"
    primes = project / ".jukebox" / "primes"
    primes.mkdir(parents=True)
    leftovers = [primes / ".prime.abc123.part", project / ".jukebox" / "jobs" / ".jbbbbbbb.json.x1.part"]
    leftovers[1].parent.mkdir(parents=True)
    for path in leftovers:
        path.write_bytes(b"half a copy")
    kept = primes / "keep-me.wav"
    kept.write_bytes(b"not a temp file")
    make_bridge(project_dir=project)
    assert not any(os.path.lexists(p) for p in leftovers) and kept.exists()


# --- growth ------------------------------------------------------------------------------------------


def test_kept_primes_beyond_the_budget_are_removed_oldest_first_except_those_in_use(tmp_path: Path) -> None:
    store = PrimeStore(tmp_path / "primes")
    copies = []
    for i, freq in enumerate((110.0, 220.0, 330.0, 440.0)):
        copy, _ = store.keep(_clip(tmp_path / f"c{i}.wav", freq))
        os.utime(copy, (1000 + i, 1000 + i))  # kept in this order
        copies.append(copy)
    size = copies[0].stat().st_size
    freed = store.collect(2 * size, in_use={copies[0].name})
    assert freed == 2 * size
    assert [c.exists() for c in copies] == [True, False, False, True]  # the oldest is in use, so 2 and 3 went
    assert store.collect(10 * size, in_use=set()) == 0  # within the budget: nothing more


def test_the_bridge_keeps_its_primes_within_the_budget_from_the_start(make_bridge, tmp_path: Path) -> None:
    project = tmp_path / "project"
    primes = project / ".jukebox" / "primes"
    primes.mkdir(parents=True)
    for i in range(5):
        (primes / f"{i:064x}.wav").write_bytes(b"\0" * 400_000)
        os.utime(primes / f"{i:064x}.wav", (1000 + i, 1000 + i))
    make_bridge(project_dir=project, primes_budget_mb=1.0)
    left = sorted(p.name for p in primes.iterdir())
    assert left == [f"{3:064x}.wav", f"{4:064x}.wav"]  # the two newest fit in 1 MB


# --- the inbox root ----------------------------------------------------------------------------------


def test_an_inbox_replaced_by_a_symlink_does_not_move_where_primes_come_from(tmp_path: Path) -> None:
    from bridge.commands import Origin
    from bridge.errors import CommandError
    from tests.bridge.harness import wait_until
    from tests.bridge.test_untrusted_files import _inbox
    from tests.bridge.test_untrusted_records import _controller
    from tests.bridge.test_watch import RecordingControls, wav_bytes

    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (outside / "secret.wav").write_bytes(wav_bytes())
    c = _controller(tmp_path / "project", inbox_dir=inbox)
    controls = RecordingControls()
    with _inbox(inbox, controls):
        inbox.rmdir()
        inbox.symlink_to(outside, target_is_directory=True)  # the inbox swapped for a link, after start
        wait_until(lambda: any("is gone" in m for m in controls.messages()))
        (outside / "new.wav").write_bytes(wav_bytes(seed=3))
        with pytest.raises(CommandError, match="outside the folders"):
            c.state.set_prime(inbox / "secret.wav", origin=Origin("osc", address="/jb/prime/file"))
    assert controls.primed() == []
