"""Takes into the project folder: never half-written, never overwritten, each with a sidecar.

A DAW references delivered files in place (Live's clips, REAPER's items), so a take is written
under a hidden temp name no watcher matches, fsynced, then hard-linked to a new unique name (a
link fails if the name exists, so two deliveries can never claim one name) and the folder is
fsynced. The JSON sidecar beside it (`bridge.takes.record.TakeRecord`) holds everything needed to make the take again.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bridge.takes.finishing import FinishOptions, FinishReport, bar_length, finish
from bridge.takes.record import AudioWritten, TakeRecord
from bridge.untrusted.files import UntrustedFileError, open_regular
from jukebox_model.atomic import fsync_folder

log = logging.getLogger(__name__)

SUBTYPES = {"pcm24": "PCM_24", "pcm16": "PCM_16", "float": "FLOAT"}
MAX_TAKE_BYTES = 1 << 31  # a take read back (a continue's opening): far beyond any take the bridge writes
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_token(text: str, *, limit: int = 40) -> str:
    """A file-name-safe piece of a name: ASCII letters, digits, '.', '_', '-'."""
    token = _UNSAFE.sub("-", text).strip("-._")
    return token[:limit] or "x"


def delivered_files(files: list[str] | tuple[str, ...], job: str, take: int) -> dict[int, str]:
    """Per level, the last file delivered for take `take` of `job`, found by the name `Renderer.take_stem` gave
    it (`…_<job>_t<take>_…_L<level>`, then `-n` when the name was taken, then `.wav`)."""
    found: dict[int, str] = {}
    pattern = re.compile(rf"_{re.escape(job)}_t{take:02d}_.*_L(\d)(?:-\d+)?\.wav$")
    for path in files:
        match = pattern.search(path.rsplit("/", 1)[-1])
        if match:
            found[int(match.group(1))] = path
    return found


@dataclass(frozen=True)
class RenderSettings:
    project_dir: Path
    sample_rate: int = 44100  # the project's rate; takes are resampled to it
    subtype: str = "pcm24"  # pcm24 | pcm16 | float
    prefix: str = "jb"

    def __post_init__(self) -> None:
        if self.subtype not in SUBTYPES:
            raise ValueError(f"output format must be one of {', '.join(SUBTYPES)}, got {self.subtype!r}")
        if not 8000 <= self.sample_rate <= 384000:
            raise ValueError(f"project sample rate {self.sample_rate} is not a usable audio rate")


def _link_new(tmp: Path, final: Path) -> bool:
    """Give `tmp` the name `final` unless that name exists; never replaces a file."""
    try:
        os.link(tmp, final)
        return True
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links: check, then rename (not race-free, never clobbers a known file)
        if final.exists():
            return False
        os.rename(tmp, final)
        return True


def _temp_file(folder: Path, stem: str, write: Any) -> Path:
    """Write through `write(file)` to a hidden `.stem.*.part` file in `folder` and fsync it."""
    fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part", dir=folder)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_new_pair(folder: Path, stem: str, write_wav: Any, write_sidecar: Any) -> tuple[Path, Path]:
    """`stem[-n].json` then `stem[-n].wav` under the first n free for both: the sidecar is in place
    before the WAV appears, and the two always share a name."""
    folder.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        temps.append(_temp_file(folder, stem, write_wav))  # one at a time: a failed sidecar still removes the audio
        temps.append(_temp_file(folder, stem, write_sidecar))
        wav_tmp, side_tmp = temps
        for n in range(1, 10_000):
            base = stem if n == 1 else f"{stem}-{n}"
            wav, side = folder / f"{base}.wav", folder / f"{base}.json"
            if wav.exists() or not _link_new(side_tmp, side):
                continue
            if not _link_new(wav_tmp, wav):
                side.unlink(missing_ok=True)
                continue
            fsync_folder(folder)
            return wav, side
        raise OSError(f"no free file name for {stem} in {folder}")
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Head:
    """Audio that opens a take as it is (the prime's own samples), at its own rate: its last `seconds`;
    any samples before them are context for the resampler, not part of the take."""

    audio: np.ndarray
    sr: int
    seconds: float
    as_delivered: bool = False  # already finished (an earlier take's file): finishing leaves it as it is


@dataclass(frozen=True)
class TakeName:
    """What a take's file name says, but its length: the renderer adds the bars it actually holds."""

    label: str
    job_id: str
    take: int  # 1-based, the real number
    seed: int
    level: int
    parent: str = ""  # `<relation>-<parent job>-t<take>`, or ""


@dataclass(frozen=True)
class Finishing:
    options: FinishOptions
    bpm: float
    beats_per_bar: int
    in_bars: bool  # the session counts in bars: the record says how many the take holds


def _checked(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"a take is mono (T,), got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("the decoded take contains NaN or infinite samples")
    return samples


class Renderer:
    def __init__(self, settings: RenderSettings):
        self.settings = settings

    def read_delivered(self, path: str) -> Head | None:
        """A take this renderer delivered, read back as untrusted (a regular file in the project folder, a mono
        WAV at the project's rate), to open a continue with; None, with the reason logged, otherwise."""
        project = self.settings.project_dir
        try:
            if Path(os.path.abspath(path)).parent.resolve() != Path(project).resolve():  # takes lie at its top
                raise ValueError(f"{path} is not in the project folder {project}")
            with open_regular(path, what="delivered take", max_bytes=MAX_TAKE_BYTES, follow_links=False) as f:
                audio, sr = sf.read(f, dtype="float32", always_2d=True)
            if sr != self.settings.sample_rate or audio.shape[1] != 1 or audio.shape[0] == 0:
                raise ValueError(f"{path} is not a mono take at the project's rate ({sr} Hz, {audio.shape[1]} ch)")
        except (OSError, ValueError, UntrustedFileError, sf.LibsndfileError, RuntimeError) as e:
            log.warning("the continue opens with its parent decoded again, not its file: %s", e)
            return None
        return Head(audio[:, 0], sr, audio.shape[0] / sr, as_delivered=True)

    def take_stem(
        self, *, label: str, job_id: str, take: int, seed: int, level: int, extra: str = "", parent: str = ""
    ) -> str:
        """`<prefix>_<label>_<job>_t<take>_s<seed>[_<tempo and bars>][_<relation>-<parent job>-t<take>]_L<level>`:
        the take number is the real one (1-based), and a take grown from another names it."""
        parts = [self.settings.prefix, safe_token(label), job_id, f"t{take:02d}", f"s{seed}"]
        if extra:
            parts.append(safe_token(extra))
        if parent:
            parts.append(safe_token(parent))
        parts.append(f"L{level}")
        return "_".join(parts)

    def deliver(
        self,
        audio: np.ndarray,
        *,
        source_sr: int,
        stem: str | TakeName,
        record: TakeRecord,
        body_from: int = 0,
        head: Head | None = None,
        finishing: Finishing | None = None,
        run_on: np.ndarray | None = None,
        on_finish: Callable[[FinishReport], None] | None = None,
    ) -> Path:
        """Write one take and its record as the sidecar; returns the WAV's path.

        `audio` is the model's mono output at `source_sr`; the take is `audio[body_from:]`, after `head`
        (the prime's own audio) when given. The whole output is resampled to the project rate before it
        is cut, so the resampler has real context at the seam and the head joins it sample-exactly.
        `run_on` is the model's output after the take's end: never written, only what finishing may
        join to the take's start so that it loops without a click. `on_finish` hears what finishing did (its
        gain, and notes on any step that did not do what was asked). A `TakeName` is turned into the file name here, once finishing has fixed the take's length in bars."""
        from jukebox_model.audio import resample  # torch: the renderer runs on the worker thread

        samples = _checked(audio)
        n_take = samples.shape[0]
        if run_on is not None:
            samples = np.concatenate([samples, _checked(run_on)])
        rate = self.settings.sample_rate
        if rate != source_sr:
            import torch

            samples = resample(torch.from_numpy(samples), source_sr, rate).numpy()
            n_take = round(n_take * rate / source_sr)
        samples, after = samples[round(body_from * rate / source_sr) : n_take], samples[n_take:]
        prime_frames = 0
        head_kept = None
        if head is not None:
            original = _checked(head.audio)
            if head.sr != rate:  # resampled with its context, then cut so that it ends where the clip ends
                import torch

                wanted = min(round(head.seconds * rate), round(len(original) * rate / head.sr))
                original = resample(torch.from_numpy(original), head.sr, rate).numpy()
                original = original[len(original) - wanted :]
            else:
                original = original[len(original) - min(len(original), round(head.seconds * rate)) :]
            prime_frames = int(original.shape[0])
            samples = np.concatenate([original.astype(np.float32), samples])
            head_kept = original.astype(np.float32) if head.as_delivered else None
        report = None
        bars = None
        if finishing is not None:
            samples, done = finish(
                samples,
                rate,
                finishing.options,
                bpm=finishing.bpm,
                beats_per_bar=finishing.beats_per_bar,
                after=after,
            )
            report = done.as_dict()
            if head_kept is not None and samples.shape[0] >= prime_frames:  # it was finished when delivered
                samples = np.concatenate([head_kept, samples[prime_frames:].astype(np.float32)])
            if on_finish is not None:
                on_finish(done)
            if finishing.in_bars:
                bars = round(samples.shape[0] / float(bar_length(rate, finishing.bpm, finishing.beats_per_bar)), 3)
        if isinstance(stem, TakeName):
            tempo = f"{finishing.bpm:g}bpm-{bars:g}bars" if finishing is not None and bars is not None else ""
            stem = self.take_stem(**dataclasses.asdict(stem), extra=tempo)
        subtype = SUBTYPES[self.settings.subtype]
        if subtype != "FLOAT":
            samples = np.clip(samples, -1.0, 1.0)
        written = record.with_audio(
            AudioWritten(
                sample_rate=rate,
                frames=int(samples.shape[0]),
                format=self.settings.subtype,
                prime_frames=prime_frames,
                bars=bars,
                finish=report,
            )
        )
        text = json.dumps(written.to_dict(), indent=2, default=str) + "\n"
        # encoded in memory, then written as plain bytes: libsndfile writing to a full disk itself
        # loses the system's error (soundfile asserts instead), a plain write raises ENOSPC with its words
        encoded = io.BytesIO()
        sf.write(encoded, samples, rate, subtype=subtype, format="WAV")
        wav, _ = write_new_pair(
            self.settings.project_dir, stem, lambda f: f.write(encoded.getbuffer()), lambda f: f.write(text.encode())
        )
        return wav
