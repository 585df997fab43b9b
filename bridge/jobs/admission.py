"""What the bridge refuses before queueing: the settings' limits and the model's own minimum."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import CommandError
from bridge.settings import BridgeSettings
from jukebox_model.api import Mode, ModelInfo, TakeRequest


@dataclass(frozen=True)
class JobLimits:
    """The settings' limits on what one job may compute, applied where every job is admitted."""

    max_takes: int
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: BridgeSettings) -> JobLimits:
        return cls(max_takes=settings.max_takes, max_seconds=settings.max_seconds)


def check_admission(limits: JobLimits, request: TakeRequest, levels: int, info: ModelInfo | None) -> None:
    """The one admission check, for the request as the model will run it, whatever made it (OSC, MIDI, the
    inbox, a sidecar, a journal record): its takes and new audio within the limits, and long enough for the
    model to upsample when more than the preview is asked for. `info` None (no model yet) checks the
    takes only; the worker checks such a job again once the model is loaded."""
    if request.n_takes > limits.max_takes:
        raise CommandError(f"n_takes {request.n_takes} is over the limit of {limits.max_takes}")
    if info is None or request.mode is Mode.UPSAMPLE:
        return
    seconds = request.new_samples / info.sr
    if seconds > limits.max_seconds + 1.0 / info.sr:  # new_samples is the length rounded to a sample
        raise CommandError(f"length {seconds:.1f} s is over the limit of {limits.max_seconds:g} s")
    minimum = info.upsample_min_seconds
    with_prime = seconds + (request.prime_samples / info.sr if request.mode is Mode.PRIMED else 0.0)
    if levels > 1 and minimum and with_prime < minimum:
        raise CommandError(
            f"this model upsamples takes of at least {minimum:.2f} s; make the take longer or set levels 1 (preview only)"
        )
