"""Example take requests, job specs and take records for every mode, as the bridge makes them."""

from __future__ import annotations

from bridge.commands import Origin
from bridge.events import JobPlanned, JobQueued, JobStarted, LevelDone, Stage, TakeDelivered
from bridge.jobs.record import JobRecord
from bridge.jobs.spec import JobSpec, Lineage
from bridge.session.params import Session
from bridge.takes.record import AudioWritten, PrimeUsed, SourceUsed, TakeRecord
from jukebox_model.api import Mode, SamplingParams, TakeRequest

SR = 44100


def example_request(mode: Mode, *, seed: int = 1234, n_takes: int = 2) -> TakeRequest:
    params = SamplingParams(temperature=(0.9, 0.95, 0.99), top_k=7, top_p=0.5, hop_fraction=(0.5, 0.5, 0.25), seed=seed)
    return TakeRequest(
        mode=mode,
        artist="Alan Jackson",
        genre="Country",
        lyrics="a line\nanother ☃",
        new_samples=0 if mode is Mode.UPSAMPLE else 2 * SR,
        total_samples=180 * SR,
        offset_samples=SR,
        n_takes=n_takes,
        params=params,
        prime_path="/music/inbox/clip.wav" if mode is Mode.PRIMED else None,
        prime_samples=4 * SR if mode is Mode.PRIMED else 0,
        codes_path="/music/p/.jukebox/codes/jaaaaaaa.pt" if mode.extends_codes else None,
        codes_takes=(1, 0)[:n_takes] if mode.extends_codes else None,
    )


def example_spec(mode: Mode, *, job_id: str = "jbbbbbbb") -> JobSpec:
    session = Session(artist="Alan Jackson", genre="Country", length=4, length_unit="bars", bpm=93.5, n_takes=2)
    return JobSpec(
        id=job_id,
        request=example_request(mode),
        session=session,
        origin=Origin("osc", client=("127.0.0.1", 5555), address="/jb/generate"),
        preset="verse",
        source_job="jaaaaaaa" if mode.extends_codes else None,
        created=1_790_000_000.5,
        lineage=Lineage(mode.value, "jaaaaaaa", (2, 1)) if mode.extends_codes else None,
        take_numbers=(3, 4) if mode is Mode.PRIMED else None,
        expect_prime_sha256="ab" * 32 if mode is Mode.PRIMED else None,
    )


def example_take_record(mode: Mode = Mode.ANCESTRAL, *, take: int = 2) -> TakeRecord:
    spec = example_spec(mode)
    request = spec.request.one_take(take - 1, spec.seed + take - 1)
    return TakeRecord(
        job=spec.id,
        take=take,
        level=1,
        seed=spec.seed + take - 1,
        job_seed=spec.seed,
        created="2026-12-03T10:00:00+0000",
        preset=spec.preset,
        session=spec.session,
        request=request,
        levels=(2, 1, 0),
        model={"bundle": "tiny", "sr": SR},
        prime=PrimeUsed("/music/inbox/clip.wav", "ab" * 32, 4 * SR, copy="/music/p/.jukebox/primes/ab.wav")
        if mode is Mode.PRIMED
        else None,
        source=SourceUsed("jaaaaaaa", request.codes_path, "cd" * 32, request.codes_takes)
        if mode.extends_codes
        else None,
        start_sample=0,
        end_sample=6 * SR,
        model_sr=SR,
        codes_path="/music/p/.jukebox/codes/jbbbbbbb.pt",
        take_index=take - 1,
        generator={"software": "jukebox-bridge", "version": "test"},
        lineage=Lineage(mode.value, "jaaaaaaa", (2,)) if mode.extends_codes else None,
        audio=AudioWritten(
            sample_rate=48000,
            frames=96000,
            format="pcm24",
            prime_frames=4800 if mode is Mode.PRIMED else 0,
            bars=1.0,
            finish={"gain_db": -1.5, "notes": ["x"]},
        ),
    )


def example_journaled_job(mode: Mode) -> JobRecord:
    """A job part-way through: its preview level delivered (take 1 with a loudness gain), the rest to come."""
    spec = example_spec(mode)
    record = JobRecord(spec)
    for event in (
        JobQueued(spec.id, spec.origin, 1, -1.0, mode.value, spec.seed),
        JobStarted(spec.id, spec.origin, Stage.PREVIEW),
        JobPlanned(spec.id, spec.origin, (2, 1, 0), "/p/.jukebox/codes/jbbbbbbb.pt"),
        TakeDelivered(spec.id, spec.origin, 1, 2, "/p/take.wav", spec.seed, -3.25, -14.5),
        LevelDone(spec.id, spec.origin, 2),
    ):
        assert record.apply(event)
    return record
