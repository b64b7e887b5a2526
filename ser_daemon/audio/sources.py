"""Where audio comes from: a sound device, or a WAV file replayed like one.

Both write captured blocks into an :class:`~ser_daemon.core.ringbuffer.AudioRing`
with their arrival time and wake the processing thread; the processing side
cannot tell them apart.  The device callback only copies and notes the time:
no allocation beyond that, no logging, no blocking.

sounddevice (and so PortAudio) is imported only when a device is used, so
files replay on machines without PortAudio.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..bounded import MAX_WAV_BYTES, check_regular_file
from ..core.audio_format import AudioFormat
from ..core.ringbuffer import AudioRing
from ..errors import AudioInputError, PortAudioMissing, import_failure

__all__ = [
    "read_wav",
    "open_wav",
    "WavFrames",
    "FileSource",
    "PacedReplay",
    "DeviceSource",
    "import_sounddevice",
    "list_input_devices",
    "input_devices_from",
    "format_device_list",
    "choose_device",
    "resolve_device",
]

log = logging.getLogger(__name__)

MAX_FILE_SECONDS = 6 * 3600  # refuse to load more than this into memory at once


def _to_float32(data: np.ndarray) -> np.ndarray:
    """Raw WAV samples (any supported integer or float type) as float32 in [-1, 1]."""
    kind = data.dtype
    if kind == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if kind == np.int16:
        return data.astype(np.float32) / 32768.0
    if kind == np.int32:
        return (data.astype(np.float64) / 2147483648.0).astype(np.float32)
    x = data.astype(np.float32)
    np.clip(x, -1.0, 1.0, out=x)  # float files: checked finite when opened; peaks over 1.0 warned about then
    return x


_SCAN_FRAMES = 1 << 20  # frames per step when an opened float file is checked


class WavFrames:
    """A WAV file's samples, read from disk and converted to float32 a block at a time.

    Slicing (``frames[a:b]``) returns float32 ``(b - a, channels)``: a replay of a five-hour file
    holds one block, not the file (loading it whole took 2.8 GB for 576 MB of WAV).  Files the
    header maps directly are read from an open file (one reader: the replay); the few that cannot
    be mapped (24-bit) are decoded into memory once, as before.

    Reads go ahead by ``READ_AHEAD_FRAMES``: with 256 file inputs the replay made 12,800 seeks and
    reads a second (its thread took a fifth of the daemon's CPU samples; benchmarks/RESULTS.md,
    "Many streams"); one read now serves about 50 blocks, and a file input holds about a second.
    """

    READ_AHEAD_FRAMES = 16384

    def __init__(self, path: Path, raw: np.ndarray) -> None:
        self.path = path
        self.dtype = raw.dtype
        self.shape: tuple[int, int] = (int(raw.shape[0]), int(raw.shape[1]))
        self._file: Any = None
        self._raw: np.ndarray | None = None
        self._ahead: np.ndarray | None = None  # frames read ahead, from frame _ahead_start on
        self._ahead_start = 0
        offset = getattr(raw, "offset", None)
        if isinstance(raw, np.memmap) and offset is not None and raw.flags.c_contiguous:
            self._offset = int(offset)
            self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        else:
            self._raw = np.asarray(raw)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, step = key.indices(self.shape[0])
        if step != 1:
            raise ValueError("WavFrames reads contiguous blocks only")
        return _to_float32(self.raw(start, stop))

    def raw(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` in the file's own sample type."""
        if self._raw is not None:
            return self._raw[start:stop]
        n = max(0, stop - start)
        ahead, first = self._ahead, self._ahead_start
        if ahead is not None and first <= start and start + n <= first + len(ahead):
            return ahead[start - first : start - first + n]
        frame_bytes = self.shape[1] * self.dtype.itemsize
        assert self._file is not None
        self._file.seek(self._offset + start * frame_bytes)
        data = self._file.read(max(n, min(self.READ_AHEAD_FRAMES, self.shape[0] - start)) * frame_bytes)
        usable = len(data) - len(data) % frame_bytes  # a file cut short after opening: what is there
        self._ahead = np.frombuffer(data[:usable], dtype=self.dtype).reshape(-1, self.shape[1])
        self._ahead_start = start
        return self._ahead[:n]

    def close(self) -> None:
        self._ahead = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:
        self.close()


def open_wav(path: str | Path) -> tuple[WavFrames, int]:
    """Open a WAV file for block-wise reading: its frames (see :class:`WavFrames`) and rate.

    The file must be a regular file of at most ``MAX_WAV_BYTES`` (checked before reading);
    the header is read through a memory map, so a file longer than ``MAX_FILE_SECONDS`` is
    refused before any of its audio is read.  A float file is checked for NaN/inf here, in
    steps, so a bad sample is an error at start rather than in the middle of a replay.

    Raises:
        AudioInputError: the file is missing, not a regular file, too large, not a WAV,
            empty, truncated beyond use, of an unsupported sample format, or holds NaN/inf.
    """
    import warnings

    from scipy.io import wavfile

    p = Path(path).expanduser()
    check_regular_file(p, "input file", MAX_WAV_BYTES, AudioInputError)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            try:
                rate, data = wavfile.read(str(p), mmap=True)
            except ValueError as exc:
                if "mmap" not in str(exc):
                    raise
                rate, data = wavfile.read(str(p), mmap=False)  # 24-bit and some others cannot be mapped
    except Exception as exc:  # scipy raises ValueError, struct.error, EOFError... for broken files
        raise AudioInputError(f"{p}: not a readable WAV file ({type(exc).__name__}: {exc})") from None
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioInputError(f"{p}: unexpected WAV layout {data.shape}")
    if data.shape[0] == 0:
        raise AudioInputError(f"{p}: the file holds no audio (0 samples)")
    if not 1000 <= rate <= 768000:
        raise AudioInputError(f"{p}: unsupported sample rate {rate} Hz")
    if data.shape[0] / rate > MAX_FILE_SECONDS:
        raise AudioInputError(f"{p}: longer than {MAX_FILE_SECONDS // 3600} hours; split it")
    kind = data.dtype
    if kind not in (np.uint8, np.int16, np.int32, np.float32, np.float64):
        raise AudioInputError(f"{p}: unsupported sample format {kind}")
    frames = WavFrames(p, data)
    del data  # the map is not kept: blocks are read as needed
    if kind in (np.float32, np.float64):
        bad, peak = 0, 0.0
        for start in range(0, len(frames), _SCAN_FRAMES):
            block = frames.raw(start, start + _SCAN_FRAMES)
            finite = np.isfinite(block)
            bad += int(np.count_nonzero(~finite))
            if finite.any():
                peak = max(peak, float(np.max(np.abs(block[finite]))))
        if bad:
            frames.close()
            raise AudioInputError(f"{p}: {bad} samples are NaN or infinite")
        if peak > 1.0:
            log.warning("%s: float samples exceed 1.0 (peak %.2f); clipping", p, peak)
    return frames, int(rate)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Load a whole WAV file as float32 ``(n, channels)`` in [-1, 1] and its rate (short files: takes, tests).

    Raises:
        AudioInputError: as :func:`open_wav`.
    """
    frames, rate = open_wav(path)
    try:
        return np.ascontiguousarray(frames[0:len(frames)]), rate
    finally:
        frames.close()


class FileSource:
    """Replays a recording into a ring, block by block.

    At real time a :class:`PacedReplay` clock calls :meth:`write_next` (one
    thread for any number of files, as a multichannel sound card would deliver
    them).  In fast mode nothing runs in the background: the consumer calls
    :meth:`pump` before each read, so no block can be lost however slow
    processing is.
    """

    def __init__(
        self,
        samples: np.ndarray | WavFrames,
        rate: int,
        ring: AudioRing,
        block_frames: int,
        *,
        loop: bool = False,
        name: str = "file",
    ) -> None:
        self.samples = samples
        self.rate = rate
        self.ring = ring
        self.block_frames = max(1, int(block_frames))
        self.loop = loop
        self.name = name
        self.channels = samples.shape[1]
        self._pos = 0
        self.finished = threading.Event()

    @property
    def format(self) -> AudioFormat:
        """What its ring holds: float32 frames at the file's rate and channel count."""
        return AudioFormat(int(self.rate), int(self.channels))

    def _next_block(self) -> np.ndarray | None:
        if self._pos >= len(self.samples):
            if not self.loop:
                return None
            self._pos = 0
        block = self.samples[self._pos : self._pos + self.block_frames]
        if not len(block):  # the file was cut short after it was opened: it ends here
            return None
        self._pos += len(block)
        return block

    def write_next(self, now: float) -> bool:
        """Write the next block with arrival time ``now``; False (and finished) at the end."""
        block = self._next_block()
        if block is None:
            self.finished.set()
            return False
        self.ring.write(block, now)
        return True

    def pump(self, max_blocks: int = 1) -> bool:
        """Fast mode: write up to ``max_blocks`` blocks now; False once the file is done."""
        for _ in range(max_blocks):
            if not self.write_next(time.monotonic()):
                return False
        return True

    def stop(self) -> None:
        """Nothing runs here: the replay clock is stopped by its owner."""


class PacedReplay:
    """One thread that feeds several file sources a block each per tick, at real time.

    Ticks follow an absolute schedule (no drift); a block is written once it
    would have been recorded, like a sound card's callback.
    """

    def __init__(self, sources: list[FileSource], block_s: float, wake: Callable[[], None]) -> None:
        self.sources = list(sources)
        self.block_s = block_s
        self.wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        k = 0
        active = list(self.sources)
        while active and not self._stop.is_set():
            delay = t0 + (k + 1) * self.block_s - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            now = time.monotonic()
            active = [src for src in active if src.write_next(now)]
            self.wake()
            k += 1
        for src in self.sources:
            src.finished.set()
        self.wake()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)


def import_sounddevice() -> Any:
    """Import sounddevice, turning a missing PortAudio into a one-line hint."""
    try:
        import sounddevice
    except OSError as exc:
        how = ("reinstall sounddevice, whose Windows and macOS wheels bundle PortAudio "
               "(pip install --force-reinstall sounddevice)" if sys.platform in ("win32", "darwin")
               else "install it with 'sudo apt install libportaudio2' (Debian/Ubuntu)")
        raise PortAudioMissing(
            f"PortAudio library not found: {how} to use sound devices; --input FILE.wav works without it"
        ) from exc
    except ImportError as exc:
        raise PortAudioMissing(import_failure(
            exc, "sounddevice", "the sounddevice package is missing: pip install sounddevice")) from exc
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    """An input device as PortAudio lists it (once per host API: MME, WASAPI, ... on Windows)."""

    index: int
    name: str
    channels: int
    default_samplerate: float
    hostapi: str
    hostapi_default: bool = False  # the default input device of its host API
    sound_source: str = ""  # Linux: the sound server's source recorded through this ("pulse") device

    @property
    def label(self) -> str:
        """How people know it: the source's name when it goes through the sound server."""
        return f"{self.name}: {self.sound_source}" if self.sound_source else self.name


def input_devices_from(devices: Sequence[Mapping[str, Any]], hostapis: Sequence[Mapping[str, Any]]) -> list[InputDevice]:
    """Input-capable devices from PortAudio's device and host API lists (pure: tested with simulated lists)."""
    out = []
    for i, d in enumerate(devices):
        if d["max_input_channels"] <= 0:
            continue
        api = hostapis[d["hostapi"]]
        index = int(d.get("index", i))
        out.append(
            InputDevice(
                index=index,
                name=str(d["name"]),
                channels=int(d["max_input_channels"]),
                default_samplerate=float(d["default_samplerate"]),
                hostapi=str(api["name"]),
                hostapi_default=int(api.get("default_input_device", -1)) == index,
            )
        )
    return out


def list_input_devices() -> list[InputDevice]:
    """Input-capable devices of every host API."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except Exception as exc:  # PortAudioError
        raise AudioInputError(f"cannot list audio devices: {exc}") from None
    return input_devices_from(devices, hostapis)


def format_device_list(devices: Sequence[InputDevice], preferred_api: str | None = None) -> str:
    """``--list-devices`` output: devices grouped by host API, the preferred API first."""
    if not devices:
        return "no input devices found"
    apis = list(dict.fromkeys(d.hostapi for d in devices))
    if preferred_api in apis:
        apis.remove(preferred_api)
        apis.insert(0, preferred_api)
    lines = []
    for api in apis:
        note = "  (default host API here; others need --host-api)" if api == preferred_api and len(apis) > 1 else ""
        lines.append(f"{api}{note}")
        lines.append(f"  {'index':>5}  {'channels':>8}  {'default Hz':>10}  name")
        for d in devices:
            if d.hostapi == api:
                star = "  *default" if d.hostapi_default else ""
                lines.append(f"  {d.index:>5}  {d.channels:>8}  {d.default_samplerate:>10.0f}  {d.name}{star}")
    return "\n".join(lines)


def _match_host_api(devices: Sequence[InputDevice], host_api: str) -> str:
    apis = list(dict.fromkeys(d.hostapi for d in devices))
    want = host_api.strip().lower()
    exact = [a for a in apis if a.lower() == want]
    found = exact or [a for a in apis if want in a.lower()]
    if len(found) != 1:
        what = "matches several host APIs" if found else "is not a host API with input devices here"
        raise AudioInputError(f"--host-api {host_api!r} {what}; choose one of: {', '.join(apis)}")
    return found[0]


def choose_device(
    devices: Sequence[InputDevice],
    wanted: int | str | None,
    *,
    host_api: str | None = None,
    preference: Sequence[str] = (),
    portaudio_default: int = -1,
) -> InputDevice:
    """Pick the input device for ``--device`` (pure: index, name substring or None for the default).

    A name usually matches the same microphone once per host API on Windows:
    ``host_api`` (a name substring, from ``--host-api``) restricts the search,
    otherwise the match in the most preferred host API wins (``preference``:
    WASAPI first on Windows).  Several different devices in that host API are
    still ambiguous and named in the error.

    Raises:
        AudioInputError: no such device, an unknown host API, or an ambiguous name.
    """
    if not devices:
        raise AudioInputError("no audio input devices found (is a microphone connected, and PulseAudio/PipeWire running?)")
    api = _match_host_api(devices, host_api) if host_api else None
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.strip().isdigit()):
        idx = int(wanted)
        for d in devices:
            if d.index == idx:
                return d
        raise AudioInputError(f"no input device with index {idx}; run 'ser-daemon --list-devices'")
    pool = [d for d in devices if api is None or d.hostapi == api]
    rank = {name: i for i, name in enumerate(preference)}

    def best(cands: list[InputDevice]) -> list[InputDevice]:
        top = min(rank.get(d.hostapi, len(rank)) for d in cands)
        return [d for d in cands if rank.get(d.hostapi, len(rank)) == top]

    if wanted is None:
        defaults = [d for d in pool if d.hostapi_default]
        if api is None:
            pa = [d for d in pool if d.index == portaudio_default]
            preferred = best(defaults) if defaults and rank and any(d.hostapi in rank for d in defaults) else []
            chosen = preferred or pa or defaults or pool
        else:
            chosen = defaults or pool
        return chosen[0]
    want = str(wanted).lower()
    exact = [d for d in pool if d.name.lower() == want]
    matches = exact or [d for d in pool if want in d.name.lower()]
    if not matches:
        where = f" in host API {api}" if api else ""
        raise AudioInputError(f"no input device matches {wanted!r}{where}; run 'ser-daemon --list-devices'")
    if len(matches) > 1 and api is None:
        matches = best(matches)
    if len(matches) > 1:
        names = ", ".join(f"{d.index}: {d.name} ({d.hostapi})" for d in matches)
        raise AudioInputError(f"{wanted!r} matches several input devices ({names}); give the index")
    return matches[0]


def resolve_device(device: int | str | None, host_api: str | None = None) -> InputDevice:
    """Find the input device by index or case-insensitive name substring on this machine.

    Raises:
        AudioInputError: no such input device, or the name matches several.
    """
    from ..os_defaults import host_api_preference

    devices = list_input_devices()
    if isinstance(device, str) and not device.strip().isdigit() and host_api is None:
        routed = _through_sound_server(devices, device)
        if routed is not None:
            return routed
    pa_default = -1
    if device is None:
        try:
            pa_default = int(import_sounddevice().default.device[0])
        except Exception:
            pa_default = -1
    return choose_device(devices, device, host_api=host_api,
                         preference=host_api_preference(), portaudio_default=pa_default)


def _through_sound_server(devices: Sequence[InputDevice], wanted: str) -> InputDevice | None:
    """Linux: the sound server's source ``wanted`` names, as PortAudio's ``pulse`` device recording it.

    None when this is not Linux, PortAudio has no ``pulse`` device, ``wanted`` is a
    PortAudio device's exact name (``pulse``, ``default``), or no source matches.
    """
    from .sound_server import PULSE_DEVICE, list_sources, match_source

    if not sys.platform.startswith("linux"):
        return None
    want = wanted.strip().lower()
    if any(d.name.lower() == want for d in devices):
        return None
    pulse = [d for d in devices if d.name == PULSE_DEVICE]
    if not pulse:
        return None
    source = match_source(list_sources(), wanted)
    if source is None:
        return None
    log.info("--device %r: sound server source %s (%s), through PortAudio's %r device", wanted, source.name,
             source.description, PULSE_DEVICE)
    return dataclasses.replace(pulse[0], sound_source=source.name)


_PULSE_SOURCE_LOCK = threading.Lock()  # PULSE_SOURCE is read when a stream opens: one open at a time


class DeviceSource:
    """Captures a sound device into a ring through a PortAudio callback, and survives unplugging.

    A supervisor thread watches the stream: when callbacks stop (device
    unplugged, sound server gone) it closes the stream, reports "no_audio"
    and retries with exponential backoff, re-scanning devices by name, until
    the same device is back; then it reports "capturing" again.  Each
    transition is logged once, never once per retry.

    Args:
        on_status: called from the supervisor thread with (status, detail);
            status is "capturing" or "no_audio".
    """

    STALL_S = 1.0  # no callback for this long means the device is gone
    FIRST_BLOCK_S = 3.0  # a freshly opened stream may take this long to deliver its first block
    BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0)

    def __init__(
        self,
        device: InputDevice,
        ring_seconds: float,
        wake: Callable[[], None],
        *,
        samplerate: int | None = None,
        channels: int | None = None,
        block_ms: float = 20.0,
        on_status: Callable[[str, str], None] | None = None,
    ) -> None:
        self.device = device
        self.rate = int(samplerate or round(device.default_samplerate))
        self.channels = int(channels or min(device.channels, 2))
        if self.channels > device.channels:
            raise AudioInputError(f"device {device.name!r} has {device.channels} input channels, {self.channels} asked")
        self.block_frames = max(16, int(round(self.rate * block_ms / 1000.0)))
        self.ring = AudioRing(int(math.ceil(self.rate * ring_seconds)), self.channels)
        self.format = AudioFormat(self.rate, self.channels)  # float32, as the stream is opened
        self.wake = wake
        self.name = device.name
        self.on_status = on_status or (lambda status, detail: None)
        self.status_flags = 0  # callbacks that reported an input overflow/underflow
        self.last_callback = 0.0
        self.opened_at = 0.0
        self.reconnects = 0
        self.status = "starting"
        self.finished = threading.Event()  # never set: a device does not end by itself
        self._stream: Any = None
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Real-time thread: copy, note the time, wake the consumer. Nothing else.
        if status:
            self.status_flags += 1
        now = time.monotonic()
        self.ring.write(indata, now)
        self.last_callback = now
        self.wake()

    def _open(self) -> None:
        sd = import_sounddevice()
        with _PULSE_SOURCE_LOCK:
            if self.device.sound_source:  # the ALSA pulse plugin records the source this names
                os.environ["PULSE_SOURCE"] = self.device.sound_source
            try:
                stream = sd.InputStream(
                    device=self.device.index,
                    samplerate=self.rate,
                    channels=self.channels,
                    blocksize=self.block_frames,
                    dtype="float32",
                    callback=self._callback,
                )
                self.opened_at = time.monotonic()
                self.last_callback = 0.0
                stream.start()
            except Exception as exc:  # sd.PortAudioError and ValueError for bad settings
                raise AudioInputError(
                    f"cannot open input device {self.device.index} ({self.device.label}) at {self.rate} Hz, "
                    f"{self.channels} ch: {exc}"
                ) from None
        self._stream = stream

    def start(self) -> None:
        """Open the device (errors here are the user's to see) and start supervising it."""
        self._open()
        self._set_status("capturing", f"{self.device.label} at {self.rate} Hz")
        self._supervisor = threading.Thread(target=self._supervise, name=f"mic-{self.device.index}", daemon=True)
        self._supervisor.start()

    def _set_status(self, status: str, detail: str) -> None:
        if status != self.status:
            self.status = status
            self.on_status(status, detail)

    def _healthy(self) -> bool:
        stream = self._stream
        if stream is None:
            return False
        try:
            active = bool(stream.active)
        except Exception:
            active = False
        now = time.monotonic()
        if self.last_callback < self.opened_at:  # no block yet since (re)opening
            return active and now - self.opened_at < self.FIRST_BLOCK_S
        return active and now - self.last_callback < self.STALL_S

    def _supervise(self) -> None:
        while not self._stop.wait(0.2):
            if self._healthy():
                continue
            log.warning("input device %r stopped delivering audio; retrying with backoff", self.device.name)
            self._set_status("no_audio", f"{self.device.name} stopped delivering audio")
            self._close_stream()
            attempt = 0
            while not self._stop.is_set():
                delay = self.BACKOFF_S[min(attempt, len(self.BACKOFF_S) - 1)]
                if self._stop.wait(delay):
                    return
                attempt += 1
                try:
                    self._reopen()
                    self._await_first_block()
                except AudioInputError as exc:
                    log.debug("reopen attempt %d failed: %s", attempt, exc)
                    self._close_stream()
                    continue
                self.reconnects += 1
                log.warning("input device %r is back after %d attempt(s); capturing again", self.device.name, attempt)
                self._set_status("capturing", f"{self.device.name} is back")
                break

    def _await_first_block(self) -> None:
        """Only audio that really arrives counts as "back"."""
        deadline = self.opened_at + self.FIRST_BLOCK_S
        while self.last_callback < self.opened_at:
            if time.monotonic() > deadline or self._stop.wait(0.05):
                raise AudioInputError("the reopened stream delivered no audio")

    def _reopen(self) -> None:
        """Re-scan devices (PortAudio caches the list) and open the same device by name."""
        sd = import_sounddevice()
        try:
            sd._terminate()
            sd._initialize()
        except Exception as exc:
            raise AudioInputError(f"PortAudio re-initialisation failed: {exc}") from None
        matches = [d for d in list_input_devices() if d.name == self.device.name and d.hostapi == self.device.hostapi]
        if not matches:
            raise AudioInputError(f"input device {self.device.name!r} is not there")
        self.device = dataclasses.replace(matches[0], sound_source=self.device.sound_source)
        self._open()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as exc:
                log.debug("closing the input stream: %s", exc)

    def pump(self, max_blocks: int = 1) -> bool:
        """The sound card's callback fills the ring: nothing to pump; a device never ends by itself."""
        return not self.finished.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=1.0)
        self._close_stream()
