"""Takes a producer can drop into a loop: a primed take joins the prime's own audio sample-exactly, the
prime is kept by content so regenerate survives a re-export, names and records carry lineage, lengths in
bars stay whole bars after a continue, job ids sort by time, and the finishing options do what they say.

The alignment tests run the tiny real model; the rest run the fake engine (tests/bridge/fake_engine.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from bridge.jobs.spec import new_job_id
from tests.bridge.fake_engine import FakeEngine
from tests.bridge.harness import OscClient

MODEL_SR = 44100
TOP_HOP = 128  # the tiny reference VQ-VAE's top-level hop (the fixture's, as the official one)


def _noise_clip(path: Path, seconds: float, sr: int, seed: int) -> np.ndarray:
    clip = (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)
    sf.write(path, clip, sr, subtype="FLOAT")
    return clip


def _primed_take(c: OscClient, clip: Path) -> tuple[np.ndarray, dict]:
    c.ask("/jb/prime/file", str(clip))
    job = c.ask("/jb/generate/primed").args[0]
    assert c.wait_job(job, timeout=120).address == "/jb/job/done"
    take = c.wait_for(lambda m: m.address == "/jb/job/take" and m.args[0] == job)
    audio, _ = sf.read(take.args[3], dtype="float32")
    return audio, json.loads(Path(take.args[3]).with_suffix(".json").read_text())


def _setup_primed(c: OscClient) -> int:
    c.ask("/jb/set/prime_s", 0.2)
    c.ask("/jb/set/length", 0.1)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/seed", 5)
    return int(0.2 * MODEL_SR) // TOP_HOP * TOP_HOP  # what the model keeps: whole top-level tokens from the end


@pytest.mark.parametrize("clip_sr", [44100, 48000])
def test_a_primed_take_opens_with_the_clips_own_last_samples_and_the_new_material_follows_at_once(
    make_bridge, tmp_path, clip_sr
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clip = _noise_clip(inbox / "loop.wav", 1.0, clip_sr, seed=1)
    _, c = make_bridge(inbox_dir=inbox, output_format="float", sample_rate=clip_sr)
    kept = _setup_primed(c)
    audio, record = _primed_take(c, inbox / "loop.wav")
    head = round(kept / MODEL_SR * clip_sr)
    assert record["prime_frames"] == head
    np.testing.assert_array_equal(audio[:head], clip[-head:])  # bit for bit: the original, not a reconstruction
    assert len(audio) == head + round(round(0.1 * MODEL_SR) / MODEL_SR * clip_sr)
    assert record["span"]["start_sample"] == kept and record["prime"]["kept_samples"] == kept

    c.ask("/jb/set/keep_prime", 0)
    new_only, record = _primed_take(c, inbox / "loop.wav")
    assert record["prime_frames"] == 0 and len(new_only) == len(audio) - head
    np.testing.assert_allclose(new_only, audio[head:], atol=1e-6)  # the same seed: the same new material, at once


def test_regenerate_reads_the_kept_copy_of_the_prime_so_a_re_export_changes_nothing_and_is_reported(
    make_bridge, tmp_path
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _noise_clip(inbox / "loop.wav", 1.0, MODEL_SR, seed=2)
    bridge, c = make_bridge(inbox_dir=inbox, output_format="float")
    _setup_primed(c)
    first, record = _primed_take(c, inbox / "loop.wav")
    copy = Path(record["prime"]["copy"])
    assert copy.parent == bridge.settings.project_dir / ".jukebox/primes" and copy.stem == record["prime"]["sha256"]
    sidecar = next(bridge.settings.project_dir.glob(f"*{record['job']}*.json"))
    same = c.ask("/jb/regenerate", str(sidecar)).args[0]
    assert c.wait_job(same, timeout=120).address == "/jb/job/done"
    assert not [m for m in c.messages("/jb/job/warning") if m.args[0] == same]  # nothing changed: nothing to say
    _noise_clip(inbox / "loop.wav", 1.0, MODEL_SR, seed=3)  # the producer re-exports over the clip
    again = c.ask("/jb/regenerate", str(sidecar)).args[0]
    assert c.wait_job(again, timeout=120).address == "/jb/job/done"
    take = c.wait_for(lambda m: m.address == "/jb/job/take" and m.args[0] == again)
    np.testing.assert_array_equal(sf.read(take.args[3], dtype="float32")[0], first)
    (notice,) = [m for m in c.messages("/jb/job/warning") if m.args[0] == again]  # the producer is told
    assert "loop.wav has changed since the take was made" in notice.args[-1] and "copy kept" in notice.args[-1]


# --- the fake engine from here on --------------------------------------------------------------------


def _job(c: OscClient, *args) -> tuple[str, list]:
    job = c.ask(*args).args[0]
    assert c.wait_job(job, timeout=30).address == "/jb/job/done"
    return job, [m for m in c.messages("/jb/job/take") if m.args[0] == job]


def test_a_continued_take_in_bars_is_whole_bars_of_the_earlier_take_plus_the_new_bars(make_bridge):
    _, c = make_bridge(engine=FakeEngine)
    c.ask("/jb/set/length", 1, "bars", 120)  # 2 s: not a whole number of top-level tokens (88200 / 128)
    c.ask("/jb/set/levels", 1)
    first, takes = _job(c, "/jb/generate")
    assert sf.info(takes[0].args[3]).frames == 88200 and "_120bpm-1bars_" in Path(takes[0].args[3]).name
    _, takes = _job(c, "/jb/generate/continue", first)
    path = Path(takes[0].args[3])
    assert sf.info(str(path)).frames == 2 * 88200 and "_120bpm-2bars_" in path.name
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["bars"] == 2.0 and record["lineage"] == {"relation": "continue", "job": first, "take": 1}


def test_take_names_carry_the_real_take_number_seed_and_parent(make_bridge):
    _, c = make_bridge(engine=FakeEngine)
    c.ask("/jb/set/length", 0.05)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/n_takes", 3)
    c.ask("/jb/set/seed", 70)
    first, takes = _job(c, "/jb/generate")
    assert [m.args[1] for m in takes] == [1, 2, 3]
    second, cont = _job(c, "/jb/generate/continue", first, 3)
    name = Path(cont[0].args[3]).name
    assert f"_{second}_t01_s" in name and f"_continue-{first}-t03_" in name
    again, regen = _job(c, "/jb/regenerate", str(Path(takes[1].args[3]).with_suffix(".json")))
    name = Path(regen[0].args[3]).name
    assert regen[0].args[1] == 2 and f"_{again}_t02_s71_" in name and f"_regenerate-{first}-t02_" in name
    record = json.loads(Path(regen[0].args[3]).with_suffix(".json").read_text())
    assert record["take"] == 2 and record["seed"] == 71 and record["lineage"]["job"] == first


def test_job_ids_and_so_take_names_sort_by_the_time_they_were_asked_for():
    ids = []
    for _ in range(50):
        ids.append(new_job_id())
        time.sleep(0.0005)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i.startswith("j") and len(i) == 11 and not i[1:].isdigit() for i in ids)


def test_loudness_fades_dc_and_bar_trim_are_applied_and_recorded_when_asked(make_bridge):
    _, c = make_bridge(engine=FakeEngine, output_format="float")
    c.ask("/jb/set/length", 2.3)  # 1.15 bars at 120 bpm: the trim keeps one
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/loudness_lufs", -16)
    c.ask("/jb/set/fade_ms", 10)
    c.ask("/jb/set/dc_remove", 1)
    c.ask("/jb/set/trim_bars", 1)
    _, takes = _job(c, "/jb/generate")
    audio, sr = sf.read(takes[0].args[3], dtype="float32")
    assert len(audio) == 88200 and audio[0] == 0.0 and audio[-1] == 0.0
    assert pyloudnorm.Meter(sr).integrated_loudness(audio.astype(np.float64)) == pytest.approx(-16, abs=0.3)
    assert abs(float(audio.mean())) < 1e-4
    finish = json.loads(Path(takes[0].args[3]).with_suffix(".json").read_text())["finish"]
    assert finish["bars"] == 1 and finish["loudness_after_lufs"] == pytest.approx(-16, abs=0.3)


def test_by_default_a_take_is_the_models_output_unchanged(make_bridge):
    _, c = make_bridge(engine=FakeEngine, output_format="float")
    c.ask("/jb/set/length", 0.5)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/seed", 3)
    _, takes = _job(c, "/jb/generate")
    audio, _ = sf.read(takes[0].args[3], dtype="float32")
    expected = FakeEngine().decode([np.full((1, len(audio) // 128 + 1), 3, dtype=np.int64)] * 3, 2)[0][: len(audio)]
    np.testing.assert_allclose(audio, expected, atol=1e-7)


def test_a_take_trimmed_to_whole_bars_is_named_for_the_bars_it_holds(make_bridge):
    _, c = make_bridge(engine=FakeEngine)
    c.ask("/jb/set/length", 1.5, "bars", 120)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/trim_bars", 1)
    _, takes = _job(c, "/jb/generate")
    path = Path(takes[0].args[3])
    assert sf.info(str(path)).frames == 88200 and "_120bpm-1bars_" in path.name  # not the 1.5 asked for
    assert json.loads(path.with_suffix(".json").read_text())["bars"] == 1.0


def test_loop_clean_takes_wrap_without_a_click_at_the_length_asked_for(make_bridge):
    _, c = make_bridge(engine=FakeEngine, output_format="float")
    c.ask("/jb/set/length", 1, "bars", 117)  # a bar of 90461.5 samples: the codes run on past it
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/seed", 4)
    c.ask("/jb/set/trim_bars", 1)
    _, plain = _job(c, "/jb/generate")
    c.ask("/jb/set/loop_clean", 1)
    _, clean = _job(c, "/jb/generate")
    before, _ = sf.read(plain[0].args[3], dtype="float64")
    after, _ = sf.read(clean[0].args[3], dtype="float64")
    steps = np.abs(np.diff(after))
    assert len(after) == len(before) == 90462
    assert abs(before[0] - before[-1]) > 10 * float(np.max(steps))  # the plain cut steps when it wraps
    assert abs(after[0] - after[-1]) <= float(np.quantile(steps, 0.99))  # no larger than its own steps
    assert np.array_equal(after[441:], before[441:])  # only the first 10 ms are changed
    record = json.loads(Path(clean[0].args[3]).with_suffix(".json").read_text())
    assert record["finish"]["loop_join"] == "start" and record["finish"]["loop_crossfade_samples"] == 441
    assert record["regenerate"]["request"]["run_on_samples"] == 882 and record["session"]["loop_clean"] is True


def test_a_loudness_target_is_reached_under_a_minus_1_dbtp_ceiling_and_a_miss_is_reported_over_osc(make_bridge):
    _, c = make_bridge(engine=FakeEngine, output_format="float")
    c.ask("/jb/set/length", 2.0)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/loudness_lufs", -6)  # the fake model's tone, 12 dB up: its peak near the ceiling
    job, takes = _job(c, "/jb/generate")
    audio, sr = sf.read(takes[0].args[3], dtype="float64")
    assert pyloudnorm.Meter(sr).integrated_loudness(audio) == pytest.approx(-6, abs=0.3)
    finish = json.loads(Path(takes[0].args[3]).with_suffix(".json").read_text())["finish"]
    assert finish["true_peak_dbtp"] <= -1.0 + 1e-6 and finish["loudness_after_lufs"] == pytest.approx(-6, abs=0.1)
    assert not [m for m in c.messages("/jb/job/warning") if m.args[0] == job]
    c.ask("/jb/set/loudness_lufs", -1)  # a steady tone cannot be this loud under the ceiling
    job, _ = _job(c, "/jb/generate")
    warning = c.wait_for(lambda m: m.address == "/jb/job/warning" and m.args[0] == job)
    assert "take 1, level 2" in warning.args[-1] and "not reached" in warning.args[-1]


def test_a_continue_gets_its_parents_gain_and_an_upsample_its_parents_loudness_so_a_chain_keeps_one_level(
    make_bridge,
):
    _, c = make_bridge(engine=FakeEngine, output_format="float")
    c.ask("/jb/set/length", 2.0)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/loudness_lufs", -20)
    c.ask("/jb/set/n_takes", 2)
    parent, takes = _job(c, "/jb/generate")

    def finish_of(message) -> dict:
        return json.loads(Path(message.args[3]).with_suffix(".json").read_text())["finish"]

    gains = {m.args[1]: finish_of(m)["gain_db"] for m in takes}
    loudness = {m.args[1]: finish_of(m)["loudness_after_lufs"] for m in takes}
    c.ask("/jb/set/length", 1.0)
    c.ask("/jb/set/n_takes", 1)
    _, grown = _job(c, "/jb/generate/continue", parent, 2)
    child = finish_of(grown[0])
    assert child["gain_fixed"] and child["gain_db"] == gains[2] and child["loudness_before_lufs"] is not None
    before, _ = sf.read(takes[1].args[3] if takes[1].args[1] == 2 else takes[0].args[3], dtype="float64")
    after, _ = sf.read(grown[0].args[3], dtype="float64")
    np.testing.assert_allclose(after[: len(before)], before, atol=1e-6)  # the earlier take, at its own level
    _, upsampled = _job(c, "/jb/generate/upsample", parent, 1)
    for m in upsampled:  # brought to the preview's delivered loudness, measured at its own level
        finish = finish_of(m)
        assert not finish["gain_fixed"] and finish["loudness_after_lufs"] == pytest.approx(loudness[1], abs=0.1)


def test_a_primed_job_reads_its_clip_at_most_three_times_checked_kept_and_decoded(make_bridge, tmp_path, monkeypatch):
    import builtins
    import os

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _noise_clip(inbox / "loop.wav", 1.0, 44100, seed=1)
    _, c = make_bridge(inbox_dir=inbox, output_format="float")
    _setup_primed(c)
    opened: list[str] = []

    def counting(real, first_arg_is_path=True):
        def wrapper(*args, **kwargs):
            target = args[0] if args else kwargs.get("file")
            if isinstance(target, (str, os.PathLike)):
                name = Path(os.fspath(target)).name
                if name == "loop.wav" or (".jukebox" in os.fspath(target) and "primes" in os.fspath(target)):
                    opened.append(name)
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(os, "open", counting(os.open))
    monkeypatch.setattr(builtins, "open", counting(builtins.open))
    monkeypatch.setattr(sf, "info", counting(sf.info))
    monkeypatch.setattr(sf, "read", counting(sf.read))
    _, record = _primed_take(c, inbox / "loop.wav")
    copies = [name for name in opened if name != "loop.wav" and not name.startswith(".prime.")]
    clip_reads = [name for name in opened if name == "loop.wav"]
    # the clip: checked when it is set, then read once to keep it; the kept copy: decoded once, for the model
    # and the take's opening both
    assert len(clip_reads) + len(copies) <= 3, opened
    assert len(copies) == 1 and copies[0] == Path(record["prime"]["copy"]).name


def test_the_engine_primes_from_audio_it_is_handed_as_from_the_file_and_names_the_clip_in_its_errors(
    tiny_engine_factory, tmp_path
):
    from jukebox_model.api import PRIME_MARGIN_S, Mode, PrimeAudio, TakeRequest

    engine = tiny_engine_factory()
    sr = engine.info().sr
    clip = _noise_clip(tmp_path / "clip.wav", 1.0, 48000, seed=3)
    request = TakeRequest(
        mode=Mode.PRIMED,
        new_samples=sr // 10,
        total_samples=60 * sr,
        prime_path=str(tmp_path / "clip.wav"),
        prime_samples=sr // 5,
    )
    from_file = engine.start(request)
    tail = clip[-round((0.2 + PRIME_MARGIN_S) * 48000) :]
    handed = engine.start(
        request.replace(prime_path="/nowhere/copy.wav"), PrimeAudio(tail, 48000, "ab" * 32, "loop.wav")
    )
    assert handed.start_samples == from_file.start_samples and handed.prime_sha256 == "ab" * 32
    assert all(np.array_equal(a.cpu().numpy(), b.cpu().numpy()) for a, b in zip(from_file.codes, handed.codes))
    with pytest.raises(ValueError, match=r"^loop\.wav: the prime is shorter"):
        engine.start(request, PrimeAudio(tail[:10], 48000, "ab" * 32, "loop.wav"))


def test_a_keep_prime_continue_opens_with_its_parents_delivered_file_sample_for_sample(make_bridge):
    _, c = make_bridge(output_format="float")  # the tiny real model: decoding the parent again would differ
    c.ask("/jb/set/length", 0.2)
    c.ask("/jb/set/levels", 1)
    c.ask("/jb/set/loudness_lufs", -20)
    c.ask("/jb/set/seed", 9)
    parent, takes = _job(c, "/jb/generate")
    before, _ = sf.read(takes[0].args[3], dtype="float32")
    c.ask("/jb/set/length", 0.1)
    _, grown = _job(c, "/jb/generate/continue", parent)
    after, _ = sf.read(grown[0].args[3], dtype="float32")
    assert len(after) == len(before) + round(0.1 * 44100)
    np.testing.assert_array_equal(after[: len(before)], before)  # the parent's own file, as delivered
    assert np.abs(after[len(before) :]).max() > 0  # then the new material, at the parent's gain
    record = json.loads(Path(grown[0].args[3]).with_suffix(".json").read_text())
    assert record["prime_frames"] == len(before) and record["finish"]["gain_db"] == pytest.approx(
        json.loads(Path(takes[0].args[3]).with_suffix(".json").read_text())["finish"]["gain_db"]
    )

    c.ask("/jb/set/keep_prime", 0)
    _, alone = _job(c, "/jb/generate/continue", parent)
    assert len(sf.read(alone[0].args[3])[0]) == round(0.1 * 44100)  # without it: the new material alone
