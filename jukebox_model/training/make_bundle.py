"""Pack trained checkpoints into a bundle folder (bundle.json + slim checkpoints + id tables).

    python -m jukebox_model.training.make_bundle --out jukebox_model/default_bundle \\
        --vqvae runs/default/vqvae/checkpoint_latest.pth.tar \\
        --prior runs/default/top/checkpoint_latest.pth.tar --prior runs/default/up0/checkpoint_latest.pth.tar \\
        --ids runs/default/top/ids --name debian-game-music --description "..."

Checkpoints are exported without optimiser/run state (`bundle_dir.export_checkpoint`) as
`vqvae.pth.tar` and `prior_level_<L>.pth.tar`; the id tables are copied into `ids/`. Other files
already in the folder (README.md, training configs) are left as they are.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ..api import BundleSource
from ..atomic import atomic_write
from ..bundle_dir import export_checkpoint, write_manifest
from ..checkpoints import read_checkpoint
from ..engine import load_engine

ID_FILES = ("v2_artist_ids.txt", "v2_genre_ids.txt", "v3_artist_ids.txt", "v3_genre_ids.txt")


def make_bundle(
    out: Path,
    *,
    vqvae: Path,
    priors: list[Path],
    ids: Path | None,
    name: str,
    description: str = "",
    demo: tuple[str, str] | None = None,
    demo_preset: str | None = None,
    tempo_words: bool = False,
) -> Path:
    """`demo`: an (artist, genre) the bundle knows, and `demo_preset` a shipped preset made for it,
    recorded as bundle.json's "demo" entry for `make demo`."""
    out.mkdir(parents=True, exist_ok=True)
    export_checkpoint(vqvae, out / "vqvae.pth.tar")
    names = []
    for path in priors:
        level = int((read_checkpoint(path).get("hps") or {})["level"])
        target = f"prior_level_{level}.pth.tar"
        export_checkpoint(path, out / target)
        names.append(target)
    names.sort(key=lambda n: -int(n.split("_")[-1].split(".")[0]))  # top level first
    ids_name = None
    if ids is not None:
        ids_name = "ids"
        (out / ids_name).mkdir(exist_ok=True)
        copied = [f for f in ID_FILES if (ids / f).is_file()]
        if not copied:
            raise FileNotFoundError(f"{ids}: no id tables ({', '.join(ID_FILES)})")
        for f in copied:
            shutil.copyfile(ids / f, out / ids_name / f)
    manifest = write_manifest(
        out,
        name=name,
        vqvae="vqvae.pth.tar",
        priors=names,
        ids=ids_name,
        description=description,
        tempo_words=tempo_words,
    )
    if demo is not None:
        data = json.loads(manifest.read_text())
        data["demo"] = {"artist": demo[0], "genre": demo[1]}
        if demo_preset:
            data["demo"]["preset"] = demo_preset
        with atomic_write(manifest) as f:
            f.write((json.dumps(data, indent=2) + "\n").encode())
    load_engine(BundleSource(out), device="cpu")  # the folder must load as it is shipped, as every host loads it
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jukebox_model.training.make_bundle", description=__doc__.splitlines()[0]
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--vqvae", type=Path, required=True)
    p.add_argument("--prior", type=Path, action="append", required=True, help="one per level")
    p.add_argument("--ids", type=Path, default=None, help="folder of the id tables the priors were trained with")
    p.add_argument("--name", required=True)
    p.add_argument("--description", default="")
    p.add_argument("--demo-artist", default=None, help="artist for `make demo` (with --demo-genre)")
    p.add_argument("--demo-genre", default=None)
    p.add_argument("--demo-preset", default=None, help="shipped preset `make demo` loads (presets/<name>.toml)")
    p.add_argument(
        "--tempo-words",
        action="store_true",
        help="the top prior was trained with --tempo-words --align-bars: takes are given their tempo",
    )
    args = p.parse_args(argv)
    demo = (args.demo_artist, args.demo_genre) if args.demo_artist and args.demo_genre else None
    make_bundle(
        args.out,
        vqvae=args.vqvae,
        priors=args.prior,
        ids=args.ids,
        name=args.name,
        description=args.description,
        demo=demo,
        demo_preset=args.demo_preset,
        tempo_words=args.tempo_words,
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
