"""What the bridge refuses before queueing: the settings' limits and the model's own minimum."""

from __future__ import annotations

from dataclasses import dataclass

from jukebox_model.api import Mode, ModelInfo, TakeRequest

from .errors import CommandError
from .params import Session
from .settings import BridgeSettings


def check_limits(settings: BridgeSettings, info: ModelInfo, session: Session, mode: Mode) -> None:
    if mode is not Mode.UPSAMPLE and session.length_s > settings.max_seconds:
        raise CommandError(f"length {session.length_s:.1f} s is over the limit of {settings.max_seconds:g} s")
    if session.n_takes > settings.max_takes:
        raise CommandError(f"n_takes {session.n_takes} is over the limit of {settings.max_takes}")
    minimum = info.upsample_min_seconds
    with_prime = session.length_s + (session.prime_s if mode is Mode.PRIMED else 0)
    if mode is not Mode.UPSAMPLE and session.levels > 1 and minimum and with_prime < minimum:
        raise CommandError(
            f"this model upsamples takes of at least {minimum:.2f} s; make the take longer or set levels 1 (preview only)"
        )


@dataclass(frozen=True)
class JobLimits:
    """The settings' limits on what one job may compute, applied where every job is admitted."""

    max_takes: int
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: BridgeSettings) -> JobLimits:
        return cls(max_takes=settings.max_takes, max_seconds=settings.max_seconds)


def check_admission(limits: JobLimits, request: TakeRequest, sr: int | None) -> None:
    """The request as the model will run it, whatever made it (OSC, MIDI, the inbox, a sidecar, a journal
    record): its takes and new audio within the limits. `sr` None (no model yet) skips the length."""
    if request.n_takes > limits.max_takes:
        raise CommandError(f"n_takes {request.n_takes} is over the limit of {limits.max_takes}")
    if request.mode is not Mode.UPSAMPLE and sr:
        seconds = request.new_samples / sr
        if seconds > limits.max_seconds + 1.0:  # a second of slack: lengths are rounded up to whole tokens
            raise CommandError(f"length {seconds:.1f} s is over the limit of {limits.max_seconds:g} s")
