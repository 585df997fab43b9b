"""Loading at the memory floor (issue #23): peak and settled resident memory, and time to ready, beside the floors.

Writes random-weight checkpoints at the official 1b_lyrics bundle's shapes (VQ-VAE, both upsamplers,
prior_1b_lyrics: 2.92 B parameters, 11.7 GB of float32; N(0, 0.02) weights from decode_setup.random_prior)
in the zip format and the legacy (pre-1.6, 2020 release) format, laid out as the download paths. `--scale`
multiplies every transformer and conditioner width (depths, contexts and tensor counts stay official) for a
quick run. Then, for each format, a fresh subprocess per measurement, each with the files evicted from the
page cache first (posix_fadvise DONTNEED, so each starts cold):

- read once: the seconds to read every file's bytes once (the I/O floor for time to ready);
- load: imports first (their resident memory is the baseline, including the ~120 MB of torch._dynamo that
  the first initialiser run on the meta device imports), then the time to a ready sampler
  (load_official_bundle at --scale 1, else load_checkpoint_bundle on the same files, which carry their
  hps; both go through materialise_prior), peak RSS over the whole process (VmHWM) and RSS after ready
  (VmRSS).

Floor: parameters (tied weights once) x 4 bytes, float32 on the CPU. The table gives (peak - baseline) /
floor and (after - baseline) / floor; the targets are <= 1.10 and <= 1.05, and ready / read-once <= 2.
`--code DIR` loads with the jukebox_model of another checkout (e.g. a `git worktree` of the old code) to
measure before and after on the same files.

    python bench/load_memory.py --scale 0.1                     # quick check: ~120 MB of files per format
    python bench/load_memory.py --scale 0.1 --code /tmp/old     # the same files, another checkout's loader
    # official size (needs ~24 GB of disk under --out and ~13 GB of free memory; builds for minutes):
    OMP_NUM_THREADS=2 python bench/load_memory.py --scale 1 --out /var/tmp/jb_load --keep
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUNDLE = "1b_lyrics"
FORMATS = ("zip", "legacy")
GB = 1e9


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _evict(files: list[Path]) -> None:
    """Drop the files' clean pages from the page cache, so the measurement reads the disk (best effort)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _files(root: Path) -> list[Path]:
    from jukebox_model import official

    spec = official.BUNDLES[BUNDLE]
    return [root / official.CHECKPOINT_PATHS[name] for name in (spec.vqvae, *spec.priors)]


def _scaled(config, scale: float):
    """Every transformer and conditioner width times `scale`, rounded so the attention heads still divide."""
    if scale == 1:
        return config

    def width(w: int, quantum: int) -> int:
        return max(quantum, round(w * scale / quantum) * quantum)

    def t(c):
        return dataclasses.replace(c, width=width(c.width, 32 * c.heads)) if c is not None else None

    cond = config.conditioner
    cond = dataclasses.replace(cond, width=width(cond.width, 32)) if cond is not None else None
    return dataclasses.replace(config, prior=t(config.prior), lyrics_encoder=t(config.lyrics_encoder), conditioner=cond)


def _build(out: Path, scale: float) -> None:
    """Write each model in both formats, one model in memory at a time (run in its own process)."""
    import torch
    from decode_setup import random_prior

    from jukebox_model import official
    from jukebox_model.hparams import prior_config_to_hparams, vqvae_config_to_hparams
    from jukebox_model.vqvae import VQVAE

    ids = out / "ids"  # one-line artist/genre tables: the labellers need a file, not its contents
    ids.mkdir(parents=True, exist_ok=True)
    for table in ("v2_artist", "v2_genre", "v3_artist", "v3_genre"):
        (ids / f"{table}_ids.txt").write_text("unknown;0\n")
    spec = official.BUNDLES[BUNDLE]
    for name in (spec.vqvae, *spec.priors):
        if name == spec.vqvae:
            torch.manual_seed(0)
            model, hps = VQVAE(official.VQVAES[name]), vqvae_config_to_hparams(official.VQVAES[name])
        else:
            config = _scaled(official.PRIORS[name], scale)
            model, hps = random_prior(config), prior_config_to_hparams(config)
        payload = {"hps": hps, "model": model.state_dict(), "step": 0}
        for fmt in FORMATS:
            path = out / fmt / official.CHECKPOINT_PATHS[name]
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as f:
                torch.save(payload, f, _use_new_zipfile_serialization=fmt == "zip")
                f.flush()
                os.fsync(f.fileno())  # clean pages, so eviction works
        print(f"  wrote {name} ({sum(v.numel() for v in payload['model'].values()) / 1e6:.0f} M values)", flush=True)
        del model, payload


def _measure_read(root: Path) -> dict:
    files = _files(root)
    _evict(files)
    buf = bytearray(16 << 20)
    view = memoryview(buf)
    start, total = time.perf_counter(), 0
    for path in files:
        with path.open("rb", buffering=0) as f:
            while n := f.readinto(view):
                total += n
    return {"read_s": time.perf_counter() - start, "bytes": total}


def _measure_load(root: Path, scale: float) -> dict:
    import torch

    import jukebox_model
    from jukebox_model.bundle import load_checkpoint_bundle, load_official_bundle

    files = _files(root)
    with torch.device("meta"):  # the one-off imports meta-device init pulls in (torch._dynamo: ~1.5 s,
        torch.nn.Embedding(2, 2)  # ~120 MB, whatever the model's size) count in the baseline, not the load
    _evict(files)
    base_kib = _proc_status_kib("VmRSS")
    ids = root.parent / "ids"
    start = time.perf_counter()
    if scale == 1:
        sampler = load_official_bundle(root, BUNDLE, ids_dir=ids, device="cpu")
    else:
        sampler = load_checkpoint_bundle(files[0], files[1:], ids_dir=ids, device="cpu")
    ready_s = time.perf_counter() - start
    unique = {id(t): t for m in (sampler.vqvae, *(lv.prior for lv in sampler.levels.values())) for t in m.parameters()}
    unique |= {id(t): t for m in (sampler.vqvae, *(lv.prior for lv in sampler.levels.values())) for t in m.buffers()}
    floor = sum(t.numel() * t.element_size() for t in unique.values())
    return {
        "ready_s": ready_s,
        "base": base_kib * 1024,
        "peak": _proc_status_kib("VmHWM") * 1024,
        "after": _proc_status_kib("VmRSS") * 1024,
        "floor": floor,
        "code": str(Path(jukebox_model.__file__).parent.parent),
        "torch_threads": torch.get_num_threads(),
    }


def _child(args: list[str], code: Path | None) -> dict:
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1, help="width factor; 1 = official shapes (11.7 GB a format)")
    parser.add_argument("--out", type=Path, help="folder for the files (default: a new one under the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the files (reused by a later run with this --out)")
    parser.add_argument("--code", type=Path, help="import jukebox_model from this checkout instead (before/after)")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--_child", nargs=3, metavar=("WHAT", "ROOT", "SCALE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._child:
        what, root, scale = args._child[0], Path(args._child[1]), float(args._child[2])
        if what == "build":
            _build(root, scale)
            print(json.dumps({}))
        else:
            print(json.dumps(_measure_read(root) if what == "read" else _measure_load(root, scale)))
        return

    out = args.out or Path(tempfile.mkdtemp(prefix="jb_load_memory_"))
    stamp = out / f"built_scale_{args.scale:g}"
    try:
        if not stamp.exists():
            print(f"writing random-weight files at scale {args.scale:g} under {out} ...", flush=True)
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--_child", "build", str(out), str(args.scale)]
            )
            if done.returncode != 0:
                raise SystemExit("building the files failed")
            stamp.touch()
        rows = []
        for fmt in args.formats:
            root = out / fmt
            read = _child(["--_child", "read", str(root), str(args.scale)], None)
            load = _child(["--_child", "load", str(root), str(args.scale)], args.code)
            rows.append((fmt, read, load))
        _table(rows, args.scale)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)


def _table(rows: list[tuple[str, dict, dict]], scale: float) -> None:
    print(f"\nscale {scale:g}, code {rows[0][2]['code']}, {rows[0][2]['torch_threads']} torch threads\n")
    print(
        "| format | files GB | floor GB | base GB | peak GB | (peak-base)/floor | after GB | (after-base)/floor"
        " | read once s | ready s | ready/read |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for fmt, read, load in rows:
        floor, base = load["floor"], load["base"]
        print(
            f"| {fmt} | {read['bytes'] / GB:.2f} | {floor / GB:.2f} | {base / GB:.2f} | {load['peak'] / GB:.2f}"
            f" | {(load['peak'] - base) / floor:.2f} | {load['after'] / GB:.2f} | {(load['after'] - base) / floor:.2f}"
            f" | {read['read_s']:.2f} | {load['ready_s']:.2f} | {load['ready_s'] / read['read_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
