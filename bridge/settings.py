"""Server settings: a TOML file, then command-line flags on top. Frozen once built.

    [osc]     host = "127.0.0.1"  port = 9950  subscribers = ["127.0.0.1:9951"]  allow = ["192.168.1.20"]
    [folders] project = "~/Music/MySong/jukebox"  inbox = "~/Music/MySong/inbox"  presets = "presets"
              prime_roots = ["~/Music"]  midi_map = "presets/midi.toml"
              follow_links = false  (symlinks in presets/, <project>/.jukebox/ and the inbox root are skipped)
    [model]   bundle = "path/to/bundle"  (or)  official_root = "~/jukebox"  official_bundle = "5b_lyrics"
              ids = "~/jukebox/ids"  device = "auto"  precision = "auto"  (bfloat16 on a GPU, float32 on a CPU)
              threads = 0  (0: every core but one, left to the DAW)  nice = 10  (the worker's lower priority)
              compile = false  (torch.compile the token step: minutes of compiling, then faster steps)
              measure_rates_s = 1.0  (per level, sampled while warming where no token rates are kept: first ETAs)
    [output]  sample_rate = 48000  format = "pcm24"  prefix = "jb"
    [limits]  max_queue = 32  max_takes = 16  max_seconds = 600  progress_interval_s = 0.25
              primes_budget_mb = 2048  (disk kept for copies of primes; the oldest no job needs go first)
              preempt_upsamples = true  (a new preview interrupts a running upsample, which resumes after)
    [inbox]   quiet_s = 1.0  polling = false  auto_generate = false
    [midi]    port = "Launchkey"  virtual = false
    [tempo]   follow = "live"  (or "reaper", "off")  port = 11001  daw_host = "127.0.0.1"  daw_port = 11000

Relative folders in the file are relative to the file. The default OSC port, 9950, is clear of
REAPER's 8000/9000, AbletonOSC's 11000/11001, Magenta Studio's 3333 and the usual web ports.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PORT = 9950
RESERVED_PORTS = {3333, 5000, 7860, 8000, 8080, 9000, 11000, 11001}
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
TEMPO_SOURCES = ("off", "live", "reaper")
# the presets folder beside the package (a checkout or an editable install), for the embedded model's names
DEFAULT_PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


class SettingsError(ValueError):
    """A settings file or flag that cannot be used; the message names the file/flag and the key."""


@dataclass(frozen=True, kw_only=True)
class BridgeSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    subscribers: tuple[tuple[str, int], ...] = ()
    allow: tuple[str, ...] = ()  # client addresses accepted besides loopback (needed when bound wider)
    project_dir: Path = Path("jukebox_project")
    inbox_dir: Path | None = None
    presets_dir: Path | None = DEFAULT_PRESETS_DIR  # the shipped presets, wherever the bridge is started from
    prime_roots: tuple[Path, ...] = ()  # besides the inbox and the project folder
    midi_map: Path | None = None
    # the bridge's own folders hold what it (or the user, for presets) wrote: a symlink there is someone
    # else's and is skipped, so a link cannot make the bridge read a file from outside; true allows them
    follow_links: bool = False
    bundle_dir: Path | None = None  # None and no official_root: the embedded default
    official_root: Path | None = None
    official_bundle: str = "5b_lyrics"
    ids_dir: Path | None = None
    device: str = "auto"
    precision: str = "auto"  # the priors' weights and activations: auto, float32, bfloat16, float16
    compile_steps: bool = False  # fuse the token step with torch.compile (a compilation per level and batch size)
    threads: int = 0  # the model's CPU threads; 0: every core but one (bridge.cpu_manners)
    measure_rates_s: float = 1.0  # per level, sampled while warming with no kept rates (0: the first ETA is -1)
    worker_nice: int = 10  # niceness added to the model worker, so the DAW wins the CPU
    sample_rate: int = 44100
    output_format: str = "pcm24"
    prefix: str = "jb"
    max_queue: int = 32
    max_takes: int = 16
    max_seconds: float = 600.0
    primes_budget_mb: float = 2048.0  # <project>/.jukebox/primes: copies of clips, kept for regenerate
    preempt_upsamples: bool = True  # a new idea's preview interrupts a running upsample (which goes on after it)
    progress_interval_s: float = 0.25
    inbox_quiet_s: float = 1.0
    inbox_polling: bool = False
    inbox_auto_generate: bool = False
    midi_port: str = ""
    midi_virtual: bool = False
    log_file: Path | None = None
    tempo_follow: str = "off"  # off | live (AbletonOSC) | reaper (REAPER's OSC): the session's bpm follows the DAW
    tempo_port: int = 0  # where the DAW's tempo arrives; 0: its usual reply port (Live 11001, REAPER 9952)
    tempo_daw_host: str = "127.0.0.1"  # the DAW's machine: only its datagrams are read
    tempo_daw_port: int = 0  # where the DAW listens; 0: AbletonOSC's 11000 (REAPER: none, just listen)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"OSC port {self.port} is not a port number")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            if self.host != "localhost":
                raise SettingsError(f"OSC host {self.host!r} must be an IP address (or localhost)") from None
        for entry in self.allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingsError(
                    f"allow entry {entry!r} is not an IP address or network (e.g. 192.168.1.0/24)"
                ) from None
        if not 0 <= self.measure_rates_s <= 60:
            raise SettingsError(f"measure_rates_s must be 0 (off) to 60 seconds, got {self.measure_rates_s}")
        if not 0 <= self.threads <= 1024:
            raise SettingsError(f"threads must be 0 (every core but one) or a count up to 1024, got {self.threads}")
        if not 0 <= self.worker_nice <= 19:
            raise SettingsError(f"nice must be 0-19, got {self.worker_nice}")
        for name in ("max_queue", "max_takes"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive")
        if not 0 <= self.primes_budget_mb < 1 << 30:
            raise SettingsError(f"primes_budget_mb must be 0 or more, got {self.primes_budget_mb}")
        if self.max_seconds <= 0 or self.progress_interval_s < 0 or self.inbox_quiet_s < 0:
            raise SettingsError("max_seconds must be positive, progress_interval_s and inbox quiet_s not negative")
        if self.precision not in PRECISIONS:
            raise SettingsError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.output_format not in ("pcm24", "pcm16", "float"):
            raise SettingsError(f"output format must be pcm24, pcm16 or float, got {self.output_format!r}")
        if self.tempo_follow not in TEMPO_SOURCES:
            raise SettingsError(f"tempo follow must be one of {', '.join(TEMPO_SOURCES)}, got {self.tempo_follow!r}")
        if not 0 <= self.tempo_port <= 65535 or not 0 <= self.tempo_daw_port <= 65535:
            raise SettingsError("tempo port and daw_port must be port numbers")
        if self.tempo_follow != "off" and self.tempo_port and self.tempo_port == self.port:
            raise SettingsError(f"the tempo port {self.tempo_port} is the bridge's own OSC port")
        if not 8000 <= self.sample_rate <= 384000:
            raise SettingsError(f"output sample_rate {self.sample_rate} is not a usable audio rate")

    def replace(self, **changes: Any) -> BridgeSettings:
        return dataclasses.replace(self, **changes)


# TOML [section] key -> field name and converter
def _path(base: Path):
    return lambda v: (
        (base / Path(str(v)).expanduser()).resolve()
        if not Path(str(v)).expanduser().is_absolute()
        else Path(str(v)).expanduser()
    )


def parse_target(text: str, what: str = "subscriber") -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{what} {text!r} must be host:port")
    return host, int(port)


def _table(base: Path) -> dict[str, dict[str, tuple[str, Any]]]:
    p = _path(base)
    return {
        "osc": {
            "host": ("host", str),
            "port": ("port", int),
            "allow": ("allow", lambda v: tuple(map(str, v))),
            "subscribers": ("subscribers", lambda v: tuple(parse_target(t) for t in v)),
        },
        "folders": {
            "project": ("project_dir", p),
            "inbox": ("inbox_dir", p),
            "presets": ("presets_dir", p),
            "prime_roots": ("prime_roots", lambda v: tuple(p(x) for x in v)),
            "midi_map": ("midi_map", p),
            "follow_links": ("follow_links", bool),
        },
        "model": {
            "bundle": ("bundle_dir", p),
            "official_root": ("official_root", p),
            "official_bundle": ("official_bundle", str),
            "ids": ("ids_dir", p),
            "device": ("device", str),
            "precision": ("precision", str),
            "compile": ("compile_steps", bool),
            "threads": ("threads", int),
            "measure_rates_s": ("measure_rates_s", float),
            "nice": ("worker_nice", int),
        },
        "output": {"sample_rate": ("sample_rate", int), "format": ("output_format", str), "prefix": ("prefix", str)},
        "limits": {
            "max_queue": ("max_queue", int),
            "max_takes": ("max_takes", int),
            "max_seconds": ("max_seconds", float),
            "progress_interval_s": ("progress_interval_s", float),
            "primes_budget_mb": ("primes_budget_mb", float),
            "preempt_upsamples": ("preempt_upsamples", bool),
        },
        "inbox": {
            "quiet_s": ("inbox_quiet_s", float),
            "polling": ("inbox_polling", bool),
            "auto_generate": ("inbox_auto_generate", bool),
        },
        "midi": {"port": ("midi_port", str), "virtual": ("midi_virtual", bool)},
        "log": {"file": ("log_file", p)},
        "tempo": {
            "follow": ("tempo_follow", str),
            "port": ("tempo_port", int),
            "daw_host": ("tempo_daw_host", str),
            "daw_port": ("tempo_daw_port", int),
        },
    }


def values_from_toml(data: Mapping[str, Any], *, base: Path, source: str) -> dict[str, Any]:
    table = _table(base)
    values: dict[str, Any] = {}
    for section, content in data.items():
        if section not in table or not isinstance(content, dict):
            raise SettingsError(f"{source}: unknown section [{section}]; known: {', '.join(table)}")
        for key, raw in content.items():
            if key not in table[section]:
                raise SettingsError(f"{source}: unknown key {key!r} in [{section}]; known: {', '.join(table[section])}")
            name, convert = table[section][key]
            if convert is bool and not isinstance(raw, bool):
                raise SettingsError(f"{source}: [{section}] {key} must be true or false")
            try:
                values[name] = convert(raw)
            except (TypeError, ValueError) as e:
                raise SettingsError(f"{source}: [{section}] {key} = {raw!r}: {e}") from None
    return values


def load_settings(path: Path | None = None, **overrides: Any) -> BridgeSettings:
    """Defaults, then the TOML file (if given), then `overrides` (the command line; None = not given)."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path).expanduser()
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise SettingsError(f"settings file not found: {path}") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise SettingsError(f"{path}: {e}") from None
        values = values_from_toml(data, base=path.resolve().parent, source=str(path))
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(BridgeSettings)}
    unknown = set(values) - known
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
    try:
        return BridgeSettings(**values)
    except TypeError as e:
        raise SettingsError(str(e)) from None
