"""The bridge process: builds every part from the settings, starts them in order, stops them in reverse.

Start: notifier -> journal restore -> model worker (loads the model; clients hear `warming`, then
`ready`) -> presets -> inbox -> MIDI -> DAW tempo -> OSC. Stop: OSC -> DAW tempo -> MIDI -> inbox ->
presets -> `stopping` -> worker (the running stage is interrupted, its codes kept; it resumes at the
next start) -> notifier (sends what is queued). Optional parts that fail to start (no MIDI system, a
tempo port another program holds) are reported and left out; the bridge serves without them. Events
from the controller, the job board and the worker reach OSC through `OscEvents`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.commands import Origin
from bridge.controller import Controller
from bridge.events import Event, EventBus, ModelState, Notice
from bridge.jobs.admission import JobLimits
from bridge.jobs.board import JobBoard
from bridge.jobs.journal import JobJournal
from bridge.jobs.queue import JobQueue
from bridge.jobs.worker import ModelWorker
from bridge.session.state import SessionState
from bridge.settings import BridgeSettings
from bridge.takes.renderer import Renderer, RenderSettings
from bridge.transports.notify import Notifier
from bridge.transports.osc import OscEvents, OscServer, OscSurface
from bridge.untrusted.clip_check import check_clip

if TYPE_CHECKING:
    from bridge.transports.midi import MidiControl
    from bridge.transports.watch import InboxWatcher

log = logging.getLogger(__name__)


def model_source(settings: BridgeSettings) -> Any:
    """The weights the settings name: the official release, a bundle folder, or (neither) the embedded default."""
    from jukebox_model.api import BundleSource, OfficialSource

    if settings.official_root is not None:
        return OfficialSource(
            Path(settings.official_root), settings.official_bundle, Path(settings.ids_dir) if settings.ids_dir else None
        )
    return BundleSource(Path(settings.bundle_dir)) if settings.bundle_dir is not None else None


def engine_factory(settings: BridgeSettings) -> Callable[[], Any]:
    """What the worker calls to load the model (on its own thread: torch is imported there)."""

    def load() -> Any:
        from bridge.cpu_manners import default_threads, lower_this_thread, quiet_idle_threads, use_threads

        quiet_idle_threads()  # before torch loads its OpenMP runtime (a no-op if it already has)
        nice = lower_this_thread(settings.worker_nice)  # before torch starts its threads from this one
        threads = settings.threads or default_threads()
        use_threads(threads)
        log.info("model worker: %d thread%s, niceness %s", threads, "" if threads == 1 else "s", nice)
        from jukebox_model.engine import load_engine

        return load_engine(
            model_source(settings),
            device=settings.device,
            precision=settings.precision,
            compile_steps=settings.compile_steps,
        )

    return load


def log_notice(event: Event) -> None:
    if isinstance(event, Notice):
        (log.warning if event.error else log.info)("%s: %s", event.origin.describe(), event.message)


def own_subfolders(folder: Path) -> list[Path]:
    """The real folders in `folder` (codes, jobs, primes, and any a later version adds); links are not followed."""
    try:
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def remove_stale_temp_files(folders: list[Path]) -> int:
    """Hidden `.name.*.part` files are writes an earlier run never finished (it was killed): no one
    can use them, and none of them was ever visible under a take's name."""
    count = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for tmp in folder.glob(".*.part"):
            try:
                if tmp.is_dir() and not tmp.is_symlink():  # a folder named like one is not ours
                    continue
                tmp.unlink()
                count += 1
            except OSError:
                pass
    return count


class Bridge:
    def __init__(
        self, settings: BridgeSettings, *, engine: Callable[[], Any] | None = None, midi_ports: list[Any] | None = None
    ):
        self.settings = settings
        project = Path(settings.project_dir).expanduser().resolve()
        project.mkdir(parents=True, exist_ok=True)
        self.settings = settings = settings.replace(project_dir=project)
        self.bus = EventBus()
        self.notifier = Notifier(subscribers=settings.subscribers, progress_interval_s=settings.progress_interval_s)
        self.queue = JobQueue(settings.max_queue)
        self.presets = self._presets()
        self.inbox: InboxWatcher | None = None
        self.state_dir = project / ".jukebox"
        self.journal = JobJournal(self.state_dir / "jobs", follow_links=settings.follow_links)
        self.session_state = SessionState(
            settings, self.bus, presets=self.presets, check_clip=check_clip, latest_inbox_clip=self._latest_inbox
        )
        self.board = JobBoard(self.queue, self.bus, journal=self.journal, limits=JobLimits.from_settings(settings))
        self.controller = Controller(
            settings,
            self.queue,
            self.bus,
            codes_dir=self.state_dir / "codes",
            state=self.session_state,
            board=self.board,
        )
        self.renderer = Renderer(
            RenderSettings(
                project_dir=project,
                sample_rate=settings.sample_rate,
                subtype=settings.output_format,
                prefix=settings.prefix,
            )
        )
        self.worker = ModelWorker(
            self.board,
            self.queue,
            self.renderer,
            engine or engine_factory(settings),
            state_dir=self.state_dir,
            follow_links=settings.follow_links,
            primes_budget_bytes=int(settings.primes_budget_mb * 1e6),
            preempt_upsamples=settings.preempt_upsamples,
            measure_rates_s=settings.measure_rates_s,
        )
        self.midi: MidiControl | None = None
        self.tempo: Any = None  # bridge.transports.daw_tempo.DawTempo, when following the DAW's tempo
        self._midi_ports = midi_ports
        self.surface = OscSurface(self.controller, self.notifier, allow=settings.allow)
        self.osc = OscServer(settings.host, settings.port, self.surface, allow=settings.allow)
        self.bus.subscribe(log_notice)
        self.bus.subscribe(OscEvents(self.notifier))
        self._stop_requested = threading.Event()
        self._stop_lock = threading.Lock()
        self._closed = False

    # --- optional parts ---------------------------------------------------------------------------

    def _presets(self) -> Any:
        folder = self.settings.presets_dir
        if folder is None:
            return None
        from bridge.session.presets import PresetLibrary

        return PresetLibrary(
            Path(folder).expanduser(), on_event=self._preset_event, follow_links=self.settings.follow_links
        )

    def _preset_event(self, kind: str, name: str, message: str) -> None:
        origin = Origin("app", address=f"preset {name}")
        self.controller.report(origin, message, error=kind == "error")

    def _latest_inbox(self) -> Path | None:
        return self.inbox.latest() if self.inbox is not None else None

    def _start_inbox(self) -> None:
        if self.settings.inbox_dir is None:
            return
        from bridge.transports.watch import InboxWatcher

        folder = Path(self.settings.inbox_dir).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file where the folder should be: reported, and watched until it is a folder
            self.controller.report(
                Origin("app", address="inbox"), f"inbox folder {folder} cannot be made: {e.strerror or e}"
            )
        inbox = InboxWatcher(
            folder,
            self.controller,
            quiet_s=self.settings.inbox_quiet_s,
            polling=self.settings.inbox_polling,
            auto_start_job=self.settings.inbox_auto_generate,
        )
        inbox.start()
        self.inbox = inbox

    def _start_tempo(self) -> None:
        """Follow the DAW's tempo (optional: a port another program holds is reported, and the bridge serves on)."""
        s = self.settings
        if s.tempo_follow == "off":
            return
        from bridge.transports.daw_tempo import (
            LIVE_LISTEN_PORT,
            LIVE_REPLY_PORT,
            REAPER_DEVICE_PORT,
            AbletonTempo,
            ReaperTempo,
        )

        follower: Any = None

        def on_tempo(bpm: float, numerator: int | None, source: str) -> None:
            denominator = getattr(follower, "signature_denominator", None)
            beats = numerator
            if numerator is not None and denominator:  # bars in quarter notes, as bpm counts them
                quarters = numerator * 4 / denominator
                beats = int(quarters) if quarters == int(quarters) else None
                if beats is None:
                    self.controller.report(
                        Origin("daw", address=f"{source} tempo"),
                        f"a {numerator}/{denominator} bar is not a whole number of beats; beats_per_bar is kept",
                        error=False,
                    )
            self.controller.follow_tempo(bpm, beats, source)

        try:
            if s.tempo_follow == "live":
                follower = AbletonTempo(
                    on_tempo,
                    port=s.tempo_port or LIVE_REPLY_PORT,
                    live_host=s.tempo_daw_host,
                    live_port=s.tempo_daw_port or LIVE_LISTEN_PORT,
                )
            else:
                follower = ReaperTempo(
                    on_tempo,
                    port=s.tempo_port or REAPER_DEVICE_PORT,
                    reaper_host=s.tempo_daw_host,
                    reaper_port=s.tempo_daw_port or None,
                )
            follower.start()
        except (OSError, ValueError) as e:
            self.controller.report(Origin("app", address="tempo"), f"the DAW's tempo is not followed: {e}")
            return
        self.tempo = follower

    def midi_map_path(self) -> Path | None:
        """The configured map, else presets/midi.toml when the presets folder has one."""
        if self.settings.midi_map is not None:
            return Path(self.settings.midi_map).expanduser()
        if self.settings.presets_dir is not None:
            candidate = Path(self.settings.presets_dir).expanduser() / "midi.toml"
            if candidate.is_file():
                return candidate
        return None

    def _start_midi(self) -> None:
        """MIDI is optional: a missing system (no ALSA), port or a bad map disables it, loudly, and the bridge serves on."""
        from bridge.session.midi_map import MidiMapError, load_midi_map
        from bridge.transports.midi import MidiControl, MidiUnavailable

        path = self.midi_map_path()
        try:
            mapping = load_midi_map(path, missing_ok=True) if path is not None else None
            wanted = bool(
                self._midi_ports
                or self.settings.midi_port
                or self.settings.midi_virtual
                or (mapping is not None and (mapping.input.port or mapping.input.virtual))
            )
            if not wanted:
                return
            midi = MidiControl(
                self.controller,
                mapping,
                ports=self._midi_ports,
                map_path=path,
                port_prefix=self.settings.midi_port or None,
                virtual=self.settings.midi_virtual or None,
            )
        except (MidiUnavailable, MidiMapError) as e:
            log.warning("MIDI disabled: %s", e)
            self.controller.report(Origin("app", address="midi"), f"MIDI disabled: {e}")
            return
        self.midi = self.surface.midi = midi
        self.session_state.param_listeners.append(midi.note_param_touched)

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.osc.port

    def start(self) -> None:
        removed = remove_stale_temp_files([self.settings.project_dir, self.state_dir, *own_subfolders(self.state_dir)])
        if removed:
            log.info("removed %d unfinished temp files of an earlier run", removed)
        self.notifier.start()
        # queued before the worker starts, in their old order
        resumed = self.board.restore(self.session_state.confine_prime, self.state_dir / "codes")
        if resumed:
            log.info("resuming %d unfinished jobs: %s", len(resumed), ", ".join(resumed))
        self.worker.start()
        if self.presets is not None:
            self.presets.start(polling=self.settings.inbox_polling)
        self._start_inbox()
        self._start_midi()
        self._start_tempo()
        self.osc.start()
        log.info("OSC on %s:%d; takes go to %s", self.settings.host, self.port, self.settings.project_dir)

    def request_stop(self) -> None:
        """Ask `run` to stop (what Ctrl-C does); safe from any thread or a signal handler."""
        self._stop_requested.set()

    def stop(self) -> None:
        with self._stop_lock:
            if self._closed:
                return
            self._closed = True
        self._stop_requested.set()
        self.osc.stop()
        if self.tempo is not None:
            self.tempo.stop()
        if self.midi is not None:
            self.midi.close()
        if self.inbox is not None:
            self.inbox.stop()
        if self.presets is not None:
            self.presets.stop()
        self.board.set_model_state(ModelState.STOPPING)
        self.worker.stop()
        self.notifier.stop()

    def run(self, *, after_start: Callable[[Bridge], None] | None = None) -> int:
        """Serve until SIGINT/SIGTERM (or `request_stop`); 0, or 3 when the model failed to load."""
        previous = {sig: signal.signal(sig, lambda *_: self.request_stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
        code = 0
        try:
            self.start()
            if after_start is not None:
                after_start(self)
            while not self._stop_requested.wait(0.5):
                if self.worker.ready.is_set() and self.worker.load_error:
                    log.error("the model did not load: %s", self.worker.load_error)
                    code = 3
                    break
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code
