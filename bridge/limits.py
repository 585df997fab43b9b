"""What the bridge refuses before queueing: the settings' limits and the model's own minimum."""

from __future__ import annotations

from jukebox_model.api import Mode, ModelInfo

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
