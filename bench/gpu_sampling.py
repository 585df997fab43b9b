"""Sampling speed beside its floors: the workloads of docs/perf-anchors.md §6.2 (issue #7).

Official prior architectures with random weights (seed 0), cast once to --dtype as the engine casts
them; each token step is the sampler's own (`WindowDecoder`: a CUDA graph replay on a GPU, the same
step run eagerly elsewhere). Every figure is printed beside its floor (floors.py: weight + required
KV bytes over the copy bandwidth, prefill FLOPs over the matmul rate, both measured here first) as
"× floor" (1.00 is the physical limit; the issue's target is ≤ 1.25 for a decode step at B=1).

  F   fidelity: graph replay draws the eager step's tokens; bf16 incremental logits vs fp32 teacher forcing
  G1  top-level decode, 5b_lyrics and 1b_lyrics, B ∈ --batches, window start / middle / end
  G2  upsampler decode (level-0 shapes), B ∈ --batches + 64, positions 0 and 7168
  G3  window prefill: 7,168 context (level 0), 4,096 (level 1 / top): one pass (the sampler's default),
      and at the first batch size also in the reference's 32-position chunks
  G4  full window: conditioner + prefill + decode (level 0: 7,168 + 1,024; level 1: 4,096 + 4,096)
  G5  end to end: a real Sampler run over all three levels (--e2e-seconds), and 20 s / 60 s
      extrapolated from G1–G3 with the sampler's window plan (stated as such)
  G7  memory: peak allocated per batch size, and the batch that fits
  C   the decode step fused by torch.compile before capture (opt-in: a compilation per model)
  (G6, the VQ-VAE, is bench/vqvae.py.)

    python bench/gpu_sampling.py --device cuda --markdown                     # everything, bf16
    python bench/gpu_sampling.py --device cuda --workloads F,G1,G2 --batches 1
    python bench/gpu_sampling.py --device cpu --width 64 --quick             # a CPU smoke run of every workload
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from decode_setup import narrow, random_inputs, random_prior
from floors import (
    H100_ANCHOR,
    decode_floor_s,
    lyric_prefix,
    measure_ceilings,
    median_seconds,
    prefill_floor_s,
    step_weight_bytes,
)

from jukebox_model import official
from jukebox_model.api import SamplingParams
from jukebox_model.labels import Labeller
from jukebox_model.prior.prior import DecoderInputs, Prior
from jukebox_model.sampling.decoder import NOISE_STEPS, DecoderPool, DrawSettings, WindowDecoder
from jukebox_model.sampling.precision import parse_dtype
from jukebox_model.sampling.sampler import LevelModel, Sampler
from jukebox_model.sampling.schedule import level_hop, plan_level, seconds_to_samples
from jukebox_model.sampling.window import sample_window
from jukebox_model.vqvae import VQVAE

TOPS = ["prior_5b_lyrics", "prior_1b_lyrics"]  # --tops narrows it
UPSAMPLER = "upsampler_level_0"  # level 1 has the same transformer
HOP_FRACTION = SamplingParams().hop_fraction
REFERENCE_CHUNK = 32  # the reference's prefill chunk (sample.py): one weight pass per 32 positions


class Run:
    """One benchmark run: device, dtype, widths, ceilings, and the rows every workload adds."""

    def __init__(self, args: argparse.Namespace):
        self.device = torch.device(args.device)
        self.dtype = parse_dtype(args.dtype)
        self.width, self.context = args.width, args.context
        self.quick = args.quick
        self.graph = self.device.type == "cuda" and not args.no_graphs
        self.batches = [int(b) for b in args.batches.split(",")]
        self.steps = min(args.steps, NOISE_STEPS)
        self.repeats = args.repeats
        self.ceilings = measure_ceilings(self.device, self.dtype)
        self.sections: dict[str, list[dict]] = {}
        self.measured: dict[tuple, float] = {}  # (kind, model, batch[, position]) -> seconds, for G5's extrapolation
        self._priors: dict[str, Prior] = {}

    def config(self, name: str):
        config = official.PRIORS[name]
        if self.width != "official":
            config = narrow(config, int(self.width))
        if self.context:  # smoke runs only: the official contexts make a CPU run take hours
            config = dataclasses.replace(config, n_ctx=self.context)
        return config

    def prior(self, name: str) -> Prior:
        if name not in self._priors:
            self._priors = {}  # one model resident at a time: the 5b is 11 GB in bf16
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self._priors[name] = random_prior(self.config(name), device=self.device, dtype=self.dtype).eval()
        return self._priors[name]

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed(self, fn, repeats: int | None = None) -> float:
        return median_seconds(fn, self.device, repeats or self.repeats)

    def add(self, section: str, row: dict) -> None:
        self.sections.setdefault(section, []).append(row)
        print(f"  {section}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)


def ratio(measured: float, floor: float) -> str:
    return f"{measured / floor:.2f}"


# -- F: fidelity ----------------------------------------------------------------------------------


@torch.no_grad()
def fidelity(run: Run) -> None:
    prior = run.prior(UPSAMPLER)
    length = 256 if not run.quick else 96
    inputs = random_inputs(prior, 2)
    prefix = torch.randint(0, prior.music_bins, (2, 16), device=run.device, generator=None)
    settings = {"top_k": 0, "temperature": 1.0, "chunk_size": 16}
    if run.graph:
        outs = {}
        for graph in (True, False):
            gens = [torch.Generator(device=run.device).manual_seed(s) for s in (11, 12)]
            outs[graph] = sample_window(
                prior,
                inputs,
                prefix=prefix,
                length=length,
                generator=gens,
                decoders=DecoderPool(graph=graph),
                **settings,
            )
        same = torch.equal(outs[True].tokens, outs[False].tokens)
        run.add(
            "F",
            {
                "check": "CUDA-graph replay draws the eager step's tokens (B=2, seeded, T=1)",
                "result": "equal" if same else "DIFFERENT",
            },
        )
    if run.dtype != torch.float32:
        full = random_prior(run.config(UPSAMPLER), device=run.device, dtype=torch.float32).eval()
        full_inputs = DecoderInputs(
            *(None if t is None else t.float() for t in (inputs.x_cond, inputs.y_cond, inputs.encoder_kv))
        )
        out = sample_window(prior, inputs, prefix=prefix, length=length, top_k=1, chunk_size=16, keep_logits=True)
        expected = full.prior(out.tokens, x_cond=full_inputs.x_cond, y_cond=full_inputs.y_cond)
        rel = ((out.logits - expected).norm() / expected.norm()).item()
        agree = (out.tokens[:, 16:] == expected[:, 16:].argmax(-1)).float().mean().item()
        run.add(
            "F",
            {
                "check": f"{str(run.dtype).removeprefix('torch.')} incremental logits vs fp32 teacher forcing ({length} positions)",
                "result": f"relative error {rel:.2e}, greedy picks = fp32 argmax at {100 * agree:.1f} % of positions",
            },
        )
        del full


# -- G1/G2: decode ----------------------------------------------------------------------------------


@torch.no_grad()
def decode_ms(run: Run, prior: Prior, batch: int, positions: list[int], *, compile: bool = False) -> dict[int, float]:
    """Seconds per token step at each position: `steps` consecutive steps from it, median of repeats."""
    inputs = random_inputs(prior, batch)
    decoder = WindowDecoder(prior, inputs, batch, DrawSettings(), device=run.device, graph=run.graph, compile=compile)
    if inputs.encoder_kv is not None:
        prior.prior.transformer.project_encoder(decoder.cache, inputs.encoder_kv)
    out = {}
    for p in positions:
        p = min(p, prior.prior.length - run.steps)

        def steps(p: int = p) -> None:
            decoder.position.fill_(p)
            decoder.noise_index.zero_()
            for _ in range(run.steps):
                if decoder.graph is not None:
                    decoder.graph.replay()
                else:
                    decoder._step()

        out[p] = run.timed(steps) / run.steps
    return out


def decode(run: Run, names: tuple[str, ...], batches: list[int], section: str, positions_of) -> None:
    for name in names:
        prior = run.prior(name)
        length = prior.prior.length
        for batch in batches:
            try:
                times = decode_ms(run, prior, batch, positions_of(length))
            except torch.OutOfMemoryError:
                run.add(section, {"model": name, "B": batch, "result": "out of memory"})
                continue
            for p, s in times.items():
                floor = decode_floor_s(prior, batch, p, run.ceilings)
                anchor = decode_floor_s(prior, batch, p, H100_ANCHOR)
                run.measured[("decode", name, batch, p)] = s
                run.measured[("decode floor", name, batch, p)] = floor
                run.add(
                    section,
                    {
                        "model": name,
                        "B": batch,
                        "position": p,
                        "ms/step": f"{1000 * s:.3f}",
                        "tokens/s": f"{batch / s:.0f}",
                        "floor ms": f"{1000 * floor:.3f}",
                        "× floor": ratio(s, floor),
                        "H100 floor ms": f"{1000 * anchor:.3f}",
                        "GB/s": f"{(floor * run.ceilings.bandwidth) / s / 1e9:.3g}",
                    },
                )


@torch.no_grad()
def compiled_decode(run: Run) -> None:
    """C: the same steps fused by torch.compile before capture, at the first batch size, with the compile time."""
    batch = run.batches[0]
    for name in (UPSAMPLER, *reversed(TOPS)):
        prior = run.prior(name)
        p = prior.prior.length // 2
        t0 = time.perf_counter()
        compiled = decode_ms(run, prior, batch, [p], compile=True)
        total = time.perf_counter() - t0
        plain = run.measured.get(("decode", name, batch, p)) or decode_ms(run, prior, batch, [p])[p]
        floor = decode_floor_s(prior, batch, p, run.ceilings)
        run.add(
            "C",
            {
                "model": name,
                "B": batch,
                "position": p,
                "ms/step uncompiled": f"{1000 * plain:.3f}",
                "ms/step compiled": f"{1000 * compiled[p]:.3f}",
                "floor ms": f"{1000 * floor:.3f}",
                "× floor": ratio(compiled[p], floor),
                "compile + timing s": f"{total:.0f}",
            },
        )


# -- G3: prefill ------------------------------------------------------------------------------------


@torch.no_grad()
def prefill(run: Run) -> None:
    chunk = SamplingParams().chunk_size
    for name, ctx in ((UPSAMPLER, 7168), (UPSAMPLER, 4096), *((t, 4096) for t in TOPS)):
        prior = run.prior(name)
        ctx = min(ctx, prior.n_ctx - 1) + lyric_prefix(prior.config)
        for batch in run.batches:
            inputs = random_inputs(prior, batch)
            fed = torch.randint(0, prior.music_bins, (batch, ctx), device=run.device)
            for size in (chunk, REFERENCE_CHUNK) if batch == run.batches[0] else (chunk,):
                cache = prior.empty_cache(batch, dtype=run.dtype, device=run.device)

                def go() -> None:
                    for start in range(0, ctx, size):
                        prior.prior.forward_cached(
                            fed[:, start : start + size],
                            start=start,
                            cache=cache,
                            x_cond=inputs.x_cond,
                            y_cond=inputs.y_cond,
                            encoder_kv=inputs.encoder_kv,
                        )

                try:
                    s = run.timed(go, repeats=max(1, run.repeats // 2))
                except torch.OutOfMemoryError:
                    run.add("G3", {"model": name, "context": ctx, "B": batch, "chunk": size, "result": "out of memory"})
                    continue
                floor = prefill_floor_s(prior, ctx, batch, run.ceilings)
                passes = -(-ctx // size)
                run.measured[("prefill", name, batch, size)] = s / ctx
                run.measured[("prefill floor", name, batch, size)] = floor / ctx
                run.add(
                    "G3",
                    {
                        "model": name,
                        "context": ctx,
                        "B": batch,
                        "chunk": size,
                        "s": f"{s:.3f}",
                        "tokens/s": f"{batch * ctx / s:.0f}",
                        "TFLOP/s": f"{floor * run.ceilings.matmul / s / 1e12:.3g}",
                        "floor s": f"{floor:.3f}",
                        "weight-pass floor s": f"{passes * step_weight_bytes(prior) / run.ceilings.bandwidth:.3f}",
                        "× floor": ratio(s, floor),
                    },
                )


# -- G4: a full window -------------------------------------------------------------------------------


@torch.no_grad()
def window(run: Run) -> None:
    cases = [(UPSAMPLER, 7168, "level-0 window"), (UPSAMPLER, 4096, "level-1 window")]
    if run.quick:
        cases = cases[:1]
    for name, ctx, label in cases:
        prior = run.prior(name)
        ctx = min(ctx, prior.n_ctx - NOISE_STEPS)
        for batch in run.batches:
            inputs = random_inputs(prior, batch)
            prefix = torch.randint(0, prior.music_bins, (batch, ctx), device=run.device)
            upper = torch.randint(0, prior.music_bins, (batch, prior.n_ctx // prior.cond_downsample), device=run.device)
            pool = DecoderPool(graph=run.graph)

            def go() -> None:
                prior.conditioner_blocks[0](upper)
                sample_window(
                    prior,
                    inputs,
                    prefix=prefix,
                    length=prior.n_ctx,
                    decoders=pool,
                    chunk_size=SamplingParams().chunk_size,
                )

            s = run.timed(go, repeats=max(1, run.repeats // 3))
            new = prior.n_ctx - ctx
            floor = prefill_floor_s(prior, ctx, batch, run.ceilings) + new * decode_floor_s(
                prior, batch, prior.n_ctx - 1, run.ceilings
            )
            run.add(
                "G4",
                {
                    "window": label,
                    "B": batch,
                    "context + new": f"{ctx} + {new}",
                    "s": f"{s:.2f}",
                    "windows/s": f"{1 / s:.2f}",
                    "floor s": f"{floor:.2f}",
                    "× floor": ratio(s, floor),
                },
            )


# -- G5: end to end -----------------------------------------------------------------------------------


def synthetic_id_tables(folder: Path) -> Path:
    """Random weights need no real names: every table maps 'unknown' to id 0."""
    for version in ("v2", "v3"):
        for kind in ("artist", "genre"):
            (folder / f"{version}_{kind}_ids.txt").write_text("unknown;0\n", encoding="utf-8")
    return folder


def sampler_for(run: Run, top: str, ids: Path) -> Sampler:
    torch.manual_seed(0)
    vqvae = VQVAE(official.VQVAE).to(run.device).eval()
    levels = {}
    for level, name in ((2, top), (1, "upsampler_level_1"), (0, "upsampler_level_0")):
        config = run.config(name)
        prior = random_prior(config, device=run.device, dtype=run.dtype).eval()
        labeller = Labeller.for_prior(
            config.labels, ids, n_ctx=config.n_ctx, hop_length=vqvae.hop_lengths[level], check_timing=config.is_top
        )
        levels[level] = LevelModel(prior, labeller)
    return Sampler(vqvae, levels, cuda_graphs=run.graph)


@torch.no_grad()
def end_to_end(run: Run, seconds: float) -> None:
    run._priors = {}
    top = TOPS[-1] if run.quick else TOPS[0]
    with tempfile.TemporaryDirectory() as tmp:
        sampler = sampler_for(run, top, synthetic_id_tables(Path(tmp)))
        hops = sampler.vqvae.hop_lengths
        shortest = max(
            m.prior.n_ctx * hops[lv] for lv, m in sampler.levels.items() if lv < 2
        )  # an upsampler needs a whole window
        for batch in run.batches[:1]:
            n = max(seconds_to_samples(seconds, top_hop=hops[-1]), -(-shortest // hops[-1]) * hops[-1])
            songs = [("unknown", "unknown", "la la la " * 40)] * batch
            empty = [torch.zeros(batch, 0, dtype=torch.long, device=run.device) for _ in range(3)]
            marks = [time.perf_counter()]

            def level_done(level: int, codes: torch.Tensor) -> None:
                run.sync()
                marks.append(time.perf_counter())

            result = sampler.sample(
                empty,
                n_samples=n,
                songs=songs,
                total_length=max(n, 60 * 44100),
                params=SamplingParams(max_batch_size=batch, seed=0),
                on_level_done=level_done,
            )
            sampler.decode(result.zs, 0)
            run.sync()
            marks.append(time.perf_counter())
            per_level = [b - a for a, b in itertools.pairwise(marks)]
            run.add(
                "G5",
                {
                    "run": f"measured: {n / 44100:.1f} s, {top} top, B={batch}",
                    "top s": f"{per_level[0]:.1f}",
                    "level 1 s": f"{per_level[1]:.1f}",
                    "level 0 s": f"{per_level[2]:.1f}",
                    "decode s": f"{per_level[3]:.2f}",
                    "total s": f"{marks[-1] - marks[0]:.1f}",
                },
            )
        del sampler
    if run.device.type == "cuda":
        torch.cuda.empty_cache()


def level_plan(tokens: int, n_ctx: int, hop_fraction: float) -> tuple[int, int, int]:
    """(windows, decoded tokens, prefilled context tokens) of one level, as the sampler plans it."""
    windows = plan_level(tokens, 0, n_ctx, level_hop(hop_fraction, n_ctx))
    return len(windows), sum(w.n_new for w in windows), sum(w.n_existing for w in windows)


def extrapolate(run: Run) -> None:
    """From G1–G3: each level's decoded tokens × its median step time + its context tokens × its prefill
    time per token (sampler chunks), over the sampler's own window plan; the floor likewise from floors.py."""
    chunk = SamplingParams().chunk_size
    for top in TOPS:
        for batch in run.batches:
            for seconds in (20, 60):
                n = seconds_to_samples(seconds)
                total = floor = 0.0
                for level, name in ((2, top), (1, UPSAMPLER), (0, UPSAMPLER)):
                    config = run.config(name)
                    windows, new, ctx = level_plan(
                        n // official.VQVAE.hop_lengths[level], config.n_ctx, HOP_FRACTION[level]
                    )
                    ctx += windows * lyric_prefix(config)
                    step = [v for k, v in run.measured.items() if k[:3] == ("decode", name, batch)]
                    step_floor = [v for k, v in run.measured.items() if k[:3] == ("decode floor", name, batch)]
                    pre, pre_floor = (
                        run.measured.get(("prefill", name, batch, chunk)),
                        run.measured.get(("prefill floor", name, batch, chunk)),
                    )
                    if not step or pre is None or pre_floor is None:
                        break
                    total += new * statistics.median(step) + ctx * pre
                    floor += new * statistics.median(step_floor) + ctx * pre_floor
                else:
                    row = {
                        "run": f"extrapolated: {seconds} s, {top} top, B={batch}",
                        "total s": f"{total:.0f}",
                        "per song s": f"{total / batch:.0f}",
                        "floor s": f"{floor:.0f}",
                        "× floor": ratio(total, floor),
                    }
                    if (top, seconds, batch) == ("prior_5b_lyrics", 60, 1):
                        row["target"] = f"≤ 390 s (6.5 min): {'met' if total <= 390 else 'NOT met'}"
                    run.add("G5", row)


# -- G7: memory ------------------------------------------------------------------------------------


@torch.no_grad()
def memory(run: Run) -> None:
    if run.device.type != "cuda":
        run.add("G7", {"result": "peak memory is measured on CUDA only"})
        return
    total = torch.cuda.get_device_properties(run.device).total_memory
    for name in (*TOPS, UPSAMPLER):
        prior = run.prior(name)
        weights = torch.cuda.memory_allocated(run.device)
        peaks = {}
        for batch in (1, 16):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(run.device)
            decoder = WindowDecoder(
                prior, random_inputs(prior, batch), batch, DrawSettings(), device=run.device, graph=run.graph
            )
            decoder._advance()
            run.sync()
            peaks[batch] = torch.cuda.max_memory_allocated(run.device) - weights
            del decoder
        per_sample = (peaks[16] - peaks[1]) / 15
        fits = int((0.95 * total - weights - (peaks[1] - per_sample)) // per_sample)
        run.add(
            "G7",
            {
                "model": name,
                "weights GB": f"{weights / 1e9:.2f}",
                "B=1 GB": f"{peaks[1] / 1e9:.2f}",
                "B=16 GB": f"{peaks[16] / 1e9:.2f}",
                "per sample GB": f"{per_sample / 1e9:.3f}",
                "max B (95 % of memory)": fits,
            },
        )


# -- main ----------------------------------------------------------------------------------------------


def header(run: Run) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "jukebox_model", "bench"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    device = torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "CPU"
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    c = run.ceilings
    return (
        f"{when} — {device}, torch {torch.__version__}, {str(run.dtype).removeprefix('torch.')}, width {run.width}, "
        f"{'CUDA graphs' if run.graph else 'eager steps'} — commit {commit or 'unknown'}{' (+ uncommitted changes)' if dirty else ''}\n"
        f"ceilings {c.source}: copy {c.bandwidth / 1e12:.3g} TB/s, matmul {c.matmul / 1e12:.3g} TFLOP/s"
    )


def print_tables(run: Run, markdown: bool) -> None:
    for section, rows in run.sections.items():
        cols = list(dict.fromkeys(k for r in rows for k in r))
        print(f"\n**{section}**\n" if markdown else f"\n{section}")
        if markdown:
            print("| " + " | ".join(cols) + " |")
            print("|" + "---|" * len(cols))
            for r in rows:
                print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
        else:
            for r in rows:
                print("  " + "  ".join(f"{c}={r.get(c, '')}" for c in cols))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, help="bfloat16 (default on CUDA), float16, float32 (default on CPU)")
    p.add_argument("--width", default="official", help="transformer width, or 'official'")
    p.add_argument("--context", type=int, default=0, help="replace every n_ctx (smoke runs on a CPU; 0: official)")
    p.add_argument("--workloads", default="F,G1,G2,G3,G4,G5,G7")
    p.add_argument(
        "--tops", default=",".join(TOPS), help="top-level priors to include (the 5b does not fit a 24 GB CPU in fp32)"
    )
    p.add_argument("--batches", default="1,3,16")
    p.add_argument("--steps", type=int, default=64, help=f"consecutive steps per decode timing (≤ {NOISE_STEPS})")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--e2e-seconds", type=float, default=20.0, help="audio of the measured end-to-end run (0: extrapolation only)"
    )
    p.add_argument(
        "--no-graphs", action="store_true", help="eager token steps on CUDA too (to see what the graphs save)"
    )
    p.add_argument("--quick", action="store_true", help="fewer positions and cases (a smoke run)")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--json", type=Path, help="also write every row here")
    args = p.parse_args()
    TOPS[:] = args.tops.split(",")
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    torch.set_grad_enabled(False)
    run = Run(args)
    print(header(run), flush=True)
    wanted = args.workloads.split(",")
    mid = (lambda length: [0, length // 2]) if args.quick else (lambda length: [0, length // 2, length - NOISE_STEPS])
    steps = {
        "F": lambda: fidelity(run),
        "G1": lambda: decode(run, TOPS, run.batches, "G1", mid),
        "G2": lambda: decode(
            run,
            (UPSAMPLER,),
            run.batches + ([] if args.quick else [64]),
            "G2",
            lambda length: [0, 7168 if length > 7168 + NOISE_STEPS else length // 2],
        ),
        "G3": lambda: prefill(run),
        "G4": lambda: window(run),
        "G5": lambda: (end_to_end(run, args.e2e_seconds) if args.e2e_seconds > 0 else None, extrapolate(run)),
        "G7": lambda: memory(run),
        "C": lambda: compiled_decode(run),
    }
    for w in wanted:
        print(f"\n{w} ...", flush=True)
        try:
            steps[w]()
        except Exception as e:  # noqa: BLE001 - one failing workload must not lose the others' figures on a short device lease
            traceback.print_exc()
            run.add(w, {"result": f"FAILED: {type(e).__name__}: {e}"})
    print("\n" + header(run))
    print_tables(run, args.markdown)
    if args.json:
        args.json.write_text(json.dumps({"header": header(run), "sections": run.sections}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
