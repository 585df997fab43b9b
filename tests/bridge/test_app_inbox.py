"""The inbox through the whole bridge: a clip exported into the folder (in pieces, as a DAW writes)
becomes the prime only once complete, and with auto-generate it starts a primed job."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def _wav_bytes(seconds: float, sr: int = 48000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(
        buf,
        np.stack([np.sin(2 * np.pi * 330 * t), np.sin(2 * np.pi * 440 * t)], axis=1).astype(np.float32) * 0.3,
        sr,
        format="WAV",
        subtype="PCM_24",
    )
    return buf.getvalue()


def test_a_clip_exported_into_the_inbox_becomes_the_prime_and_starts_a_primed_job(make_bridge, tmp_path):
    inbox = tmp_path / "inbox"
    bridge, c = make_bridge(inbox_dir=inbox, inbox_quiet_s=0.3, inbox_auto_generate=True)
    c.ask("/jb/subscribe")
    c.ask("/jb/set/length", 0.1)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/prime_s", 0.1)
    data = _wav_bytes(0.25)  # stereo 48 kHz: resampled and mixed down for the model
    clip = inbox / "bounce.wav"
    with open(clip, "wb") as f:  # written in three pieces with pauses shorter than the quiet period
        for piece in (data[:1000], data[1000 : len(data) // 2], data[len(data) // 2 :]):
            f.write(piece)
            f.flush()
            time.sleep(0.1)
            assert bridge.controller.prime is None  # never taken while incomplete
    primed = c.wait_for(lambda m: m.address == "/jb/prime", timeout=15)
    assert primed.args == [str(clip.resolve())]
    queued = c.wait_for(lambda m: m.address == "/jb/job/queued" and m.args[3] == "primed", timeout=10)
    assert c.wait_job(queued.args[0]).address == "/jb/job/done"
    take = c.wait_for(lambda m: m.address == "/jb/job/take" and m.args[0] == queued.args[0])
    sidecar = json.loads(Path(take.args[3]).with_suffix(".json").read_text())
    assert sidecar["prime"]["path"] == str(clip.resolve())
    assert c.ask("/jb/prime/inbox").args == [str(clip.resolve())]  # the newest inbox clip, on request


def test_an_inbox_deleted_and_made_again_is_reported_over_osc_and_keeps_taking_clips(make_bridge, tmp_path):
    import shutil

    inbox = tmp_path / "inbox"
    bridge, c = make_bridge(inbox_dir=inbox, inbox_quiet_s=0.3)
    c.ask("/jb/subscribe")
    shutil.rmtree(inbox)
    gone = c.wait_for(lambda m: any("inbox folder" in str(a) and "is gone" in str(a) for a in m.args), timeout=10)
    assert any(str(inbox) in str(a) for a in gone.args)
    inbox.mkdir()
    c.wait_for(lambda m: any("inbox folder" in str(a) and "there again" in str(a) for a in m.args), timeout=10)
    clip = inbox / "after.wav"
    clip.write_bytes(_wav_bytes(0.25))
    primed = c.wait_for(lambda m: m.address == "/jb/prime", timeout=15)
    assert primed.args == [str(clip.resolve())]
    assert bridge.controller.prime is not None
