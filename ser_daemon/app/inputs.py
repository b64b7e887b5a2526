"""The daemon's local inputs: WAV files replayed and sound devices, each one stream of the engine."""

from __future__ import annotations

import logging
from pathlib import Path

from ..audio.sources import DeviceSource, FileSource, PacedReplay, open_wav, resolve_device
from ..core.ringbuffer import AudioRing
from .config import InputSettings
from .engine import Engine, Stream

__all__ = ["RING_SECONDS", "add_local_inputs", "start_inputs", "stop_inputs"]

log = logging.getLogger(__name__)

RING_SECONDS = 4.0  # capture buffered before an overrun is counted


def add_local_inputs(cfg: InputSettings, engine: Engine) -> PacedReplay | None:
    """Add a stream per ``--input`` file and per device; return the clock of paced replays (or None).

    ``cfg`` is the config's inputs part (``DaemonConfig.parts.inputs``; a whole DaemonConfig also works).
    """
    names: set[str] = set()

    def unique(name: str) -> str:
        base, k = name, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.add(name)
        return name

    files: list[FileSource] = []
    for path in cfg.inputs:
        samples, rate = open_wav(path)  # read a block at a time while it replays
        ring = AudioRing(int(rate * RING_SECONDS), samples.shape[1])
        block = int(round(rate * cfg.block_ms / 1000.0))
        name = unique(Path(path).stem or "file")
        src = FileSource(samples, rate, ring, block, loop=cfg.loop, name=name)
        files.append(src)
        engine.add(name, src, ring, src.format, fast=cfg.fast)
        log.info("input %s: %.2f s, %d Hz, %d ch", path, len(samples) / rate, rate, samples.shape[1])
    # All paced files share one clock thread, as the channels of one sound card would.
    replay = PacedReplay(files, cfg.block_ms / 1000.0, engine.wake.set) if files and not cfg.fast else None
    if isinstance(cfg.device, tuple):
        devices: tuple = cfg.device
    else:
        devices = (cfg.device,) if not cfg.inputs and cfg.ingest is None else ()
    for wanted in devices:
        dev = resolve_device(wanted, cfg.host_api)
        name = unique("mic")
        src = DeviceSource(
            dev, RING_SECONDS, engine.wake.set, samplerate=cfg.samplerate, channels=cfg.channels,
            block_ms=cfg.block_ms,
            on_status=lambda status, detail, n=name: engine.report_status(n, status, detail),
        )
        engine.add(name, src, src.ring, src.format)
        log.info("input device %d (%s): %d Hz, %d ch", dev.index, dev.label, src.rate, src.channels)
    return replay


def start_inputs(streams: list[Stream], replay: PacedReplay | None) -> None:
    """Open the sound devices and start the paced replay (files replayed fast need no clock)."""
    for st in streams:
        if isinstance(st.source, DeviceSource):
            st.source.start()
    if replay is not None:
        replay.start()


def stop_inputs(streams: list[Stream], replay: PacedReplay | None) -> None:
    """Audio first, as every shutdown does: the replay clock, then each source."""
    if replay is not None:
        replay.stop()
    for st in streams:
        st.source.stop()
