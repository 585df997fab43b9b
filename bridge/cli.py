"""`jukebox-bridge` / `run_bridge.py`: settings from a TOML file, flags on top, then serve until Ctrl-C.

    jukebox-bridge --project ~/Music/Song/jukebox --inbox ~/Music/Song/inbox
    jukebox-bridge --config bridge.toml --port 9950 --subscribe 127.0.0.1:9951
    jukebox-bridge --official-root ~/jukebox --official-bundle 5b_lyrics --ids ~/jukebox/ids --device cuda

Exit codes: 0 after Ctrl-C, 2 for bad settings or missing model files (checked before anything
starts), 3 when the model fails to load.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from bridge.cpu_manners import quiet_idle_threads
from bridge.settings import PRECISIONS, BridgeSettings, SettingsError, load_settings, parse_target


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jukebox-bridge", description="Jukebox, driven from a DAW over OSC and MIDI.")
    p.add_argument("--config", type=Path, help="settings TOML (flags override it)")
    osc = p.add_argument_group("OSC")
    osc.add_argument("--host", help="bind address (default 127.0.0.1; anything wider needs --allow)")
    osc.add_argument("--port", type=int, help="OSC port to listen on (default 9950)")
    osc.add_argument("--subscribe", action="append", metavar="HOST:PORT", help="send every reply and event here too")
    osc.add_argument(
        "--allow", action="append", metavar="ADDR", help="client address or network allowed besides loopback"
    )
    folders = p.add_argument_group("folders")
    folders.add_argument("--project", type=Path, help="where takes are written (the folder the DAW watches)")
    folders.add_argument("--inbox", type=Path, help="clips dropped here become the prime")
    folders.add_argument("--presets", type=Path, help="folder of preset TOML files (default ./presets)")
    folders.add_argument("--prime-root", type=Path, action="append", help="another folder primes may be read from")
    folders.add_argument("--midi-map", type=Path, help="MIDI mapping TOML (e.g. presets/midi.toml)")
    model = p.add_argument_group("model (default: the embedded bundle)")
    model.add_argument("--bundle", type=Path, help="a bundle folder (bundle.json + checkpoints)")
    model.add_argument("--official-root", type=Path, help="folder laid out like the official download paths")
    model.add_argument("--official-bundle", choices=("5b", "5b_lyrics", "1b_lyrics"))
    model.add_argument("--ids", type=Path, help="artist/genre id tables for the official priors")
    model.add_argument(
        "--fetch",
        action="store_true",
        help="download the official bundle's checkpoints and id tables into --official-root first "
        "(resumable; $JUKEBOX_FETCH_BASE_URL for a mirror), then start on them",
    )
    model.add_argument("--accept-licence", action="store_true", help="with --fetch: accept OpenAI's licence unasked")
    model.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    model.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="priors' weights and activations (auto: bfloat16 on a GPU, float32 on a CPU)",
    )
    model.add_argument(
        "--compile",
        dest="compile_steps",
        action="store_true",
        default=None,
        help="fuse the token step with torch.compile (compiles once per level and batch size)",
    )
    model.add_argument(
        "--threads", type=int, help="the model's CPU threads (default: every core but one, leaving the DAW a core)"
    )
    model.add_argument("--nice", dest="worker_nice", type=int, help="niceness added to the model worker (default 10)")
    out = p.add_argument_group("output")
    out.add_argument("--sample-rate", type=int, help="the project's rate; takes are resampled to it")
    out.add_argument("--format", dest="output_format", choices=("pcm24", "pcm16", "float"))
    other = p.add_argument_group("inbox and MIDI")
    other.add_argument("--polling", action="store_true", default=None, help="poll folders (network drives, containers)")
    other.add_argument(
        "--auto-generate", action="store_true", default=None, help="a clip arriving in the inbox starts a primed job"
    )
    other.add_argument("--midi-port", help="MIDI input port name prefix")
    other.add_argument(
        "--midi-virtual", action="store_true", default=None, help="open a virtual MIDI input named --midi-port"
    )
    tempo = p.add_argument_group("DAW tempo")
    tempo.add_argument(
        "--follow-tempo",
        dest="tempo_follow",
        choices=("off", "live", "reaper"),
        help="the session's bpm follows Live (through AbletonOSC) or REAPER's OSC",
    )
    tempo.add_argument("--tempo-port", type=int, help="where the DAW's tempo arrives (default Live 11001, REAPER 9952)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--log-file", type=Path, help="also log to this file")
    return p


def settings_from_args(args: argparse.Namespace) -> BridgeSettings:
    overrides = dict(
        host=args.host,
        port=args.port,
        project_dir=args.project,
        inbox_dir=args.inbox,
        presets_dir=args.presets,
        midi_map=args.midi_map,
        bundle_dir=args.bundle,
        official_root=args.official_root,
        official_bundle=args.official_bundle,
        ids_dir=args.ids,
        device=args.device,
        precision=args.precision,
        compile_steps=args.compile_steps,
        threads=args.threads,
        worker_nice=args.worker_nice,
        sample_rate=args.sample_rate,
        output_format=args.output_format,
        inbox_polling=args.polling,
        inbox_auto_generate=args.auto_generate,
        midi_port=args.midi_port,
        midi_virtual=args.midi_virtual,
        subscribers=tuple(parse_target(t) for t in args.subscribe) if args.subscribe else None,
        allow=tuple(args.allow) if args.allow else None,
        prime_roots=tuple(args.prime_root) if args.prime_root else None,
        log_file=args.log_file,
        tempo_follow=args.tempo_follow,
        tempo_port=args.tempo_port,
    )
    return load_settings(args.config, **overrides)


def fetch_official(settings: BridgeSettings, *, accept_licence: bool) -> BridgeSettings:
    """--fetch: the official bundle's files under --official-root (present ones are kept), and the id
    tables' folder as --ids unless one was given."""
    from jukebox_model.fetch import IDS_FOLDER, FetchError, fetch

    if settings.official_root is None:
        raise SettingsError("--fetch needs --official-root, the folder to download into")
    root = Path(settings.official_root).expanduser()
    try:
        fetch([settings.official_bundle], root, accept_licence=accept_licence)
    except FetchError as e:
        raise SettingsError(f"--fetch: {e}") from None
    return settings if settings.ids_dir is not None else dataclasses.replace(settings, ids_dir=root / IDS_FOLDER)


def check_model_files(settings: BridgeSettings) -> None:
    """Missing model files are a clear message before anything starts, not a stack trace later."""
    from jukebox_model import official
    from jukebox_model.bundle_dir import DEFAULT_BUNDLE_DIR, read_manifest

    if settings.official_root is not None:
        spec = official.BUNDLES[settings.official_bundle]
        paths = [settings.official_root / official.CHECKPOINT_PATHS[m] for m in (spec.vqvae, *spec.priors)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise SettingsError(f"official checkpoints missing: {', '.join(missing)}")
        if settings.ids_dir is None or not Path(settings.ids_dir).is_dir():
            raise SettingsError("the official priors need --ids, the folder of artist/genre id tables")
        return
    read_manifest(settings.bundle_dir or DEFAULT_BUNDLE_DIR)  # BundleError names the folder and what is missing


def main(argv: list[str] | None = None) -> int:
    quiet_idle_threads()  # before anything imports torch
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    from jukebox_model.bundle_dir import BundleError

    try:
        settings = settings_from_args(args)
        if args.fetch:
            settings = fetch_official(settings, accept_licence=args.accept_licence)
        check_model_files(settings)
    except (SettingsError, BundleError) as e:
        print(f"jukebox-bridge: {e}", file=sys.stderr)
        return 2
    if settings.log_file is not None:  # a long-lived server's log outlives the terminal it started in
        handler = logging.FileHandler(Path(settings.log_file).expanduser(), encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
    from bridge.app import Bridge

    try:
        bridge = Bridge(settings)
    except OSError as e:  # the port is taken, the project folder cannot be made
        print(f"jukebox-bridge: cannot start: {e}", file=sys.stderr)
        return 2
    print(
        f"jukebox-bridge: OSC on {settings.host}:{bridge.port}, takes into {bridge.settings.project_dir} (Ctrl-C stops)",
        flush=True,
    )
    return bridge.run()


if __name__ == "__main__":
    sys.exit(main())
