"""Where audio comes from: a sound device, or a WAV file replayed like one.

Both write captured blocks into an :class:`~ser_daemon.ringbuffer.AudioRing`
with their arrival time and wake the processing thread; the processing side
cannot tell them apart.  The device callback only copies and notes the time:
no allocation beyond that, no logging, no blocking.

sounddevice (and so PortAudio) is imported only when a device is used, so
files replay on machines without PortAudio.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import AudioInputError, PortAudioMissing
from .ringbuffer import AudioRing

__all__ = [
    "read_wav",
    "FileSource",
    "DeviceSource",
    "import_sounddevice",
    "list_input_devices",
    "resolve_device",
]

log = logging.getLogger(__name__)

MAX_FILE_SECONDS = 6 * 3600  # refuse to load more than this into memory at once


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Load a WAV file as float32 ``(n, channels)`` in [-1, 1] and its rate.

    Raises:
        AudioInputError: the file is missing, not a WAV, empty, truncated
            beyond use, of an unsupported sample format, or holds NaN/inf.
    """
    import warnings

    from scipy.io import wavfile

    p = Path(path)
    if not p.is_file():
        raise AudioInputError(f"input file not found: {p}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(str(p), mmap=False)
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
    if kind == np.uint8:
        x = (data.astype(np.float32) - 128.0) / 128.0
    elif kind == np.int16:
        x = data.astype(np.float32) / 32768.0
    elif kind == np.int32:
        x = (data.astype(np.float64) / 2147483648.0).astype(np.float32)
    elif kind in (np.float32, np.float64):
        x = data.astype(np.float32)
        if not np.all(np.isfinite(x)):
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise AudioInputError(f"{p}: {bad} samples are NaN or infinite")
        peak = float(np.max(np.abs(x)))
        if peak > 1.0:
            log.warning("%s: float samples exceed 1.0 (peak %.2f); clipping", p, peak)
            np.clip(x, -1.0, 1.0, out=x)
    else:
        raise AudioInputError(f"{p}: unsupported sample format {kind}")
    return np.ascontiguousarray(x), int(rate)


class FileSource:
    """Replays a recording into a ring, paced at real time (or as fast as asked).

    In paced mode a thread writes one block every ``block_s`` on an absolute
    schedule, as a sound card would.  In fast mode nothing runs in the
    background: the consumer calls :meth:`pump` before each read, so no block
    can be lost however slow processing is.
    """

    def __init__(
        self,
        samples: np.ndarray,
        rate: int,
        ring: AudioRing,
        block_frames: int,
        wake: Callable[[], None],
        *,
        paced: bool = True,
        loop: bool = False,
        name: str = "file",
    ) -> None:
        self.samples = samples
        self.rate = rate
        self.ring = ring
        self.block_frames = max(1, int(block_frames))
        self.wake = wake
        self.paced = paced
        self.loop = loop
        self.name = name
        self.channels = samples.shape[1]
        self._pos = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()

    def start(self) -> None:
        if self.paced:
            self._thread = threading.Thread(target=self._run, name=f"replay-{self.name}", daemon=True)
            self._thread.start()

    def _next_block(self) -> np.ndarray | None:
        if self._pos >= len(self.samples):
            if not self.loop:
                return None
            self._pos = 0
        block = self.samples[self._pos : self._pos + self.block_frames]
        self._pos += len(block)
        return block

    def pump(self, max_blocks: int = 1) -> bool:
        """Fast mode: write up to ``max_blocks`` blocks now; False once the file is done."""
        for _ in range(max_blocks):
            block = self._next_block()
            if block is None:
                self.finished.set()
                return False
            self.ring.write(block, time.monotonic())
        return True

    def _run(self) -> None:
        block_s = self.block_frames / self.rate
        t0 = time.monotonic()
        k = 0
        while not self._stop.is_set():
            due = t0 + (k + 1) * block_s  # a block is available once it has been "recorded"
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            block = self._next_block()
            if block is None:
                break
            self.ring.write(block, time.monotonic())
            self.wake()
            k += 1
        self.finished.set()
        self.wake()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


def import_sounddevice() -> Any:
    """Import sounddevice, turning a missing PortAudio into a one-line hint."""
    try:
        import sounddevice
    except OSError as exc:
        raise PortAudioMissing(
            "PortAudio library not found: install it with 'sudo apt install libportaudio2' "
            "(Debian/Ubuntu) to use sound devices; --input FILE.wav works without it"
        ) from exc
    except ImportError as exc:
        raise PortAudioMissing("the sounddevice package is missing: pip install sounddevice") from exc
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    """An input device as PortAudio lists it."""

    index: int
    name: str
    channels: int
    default_samplerate: float
    hostapi: str


def list_input_devices() -> list[InputDevice]:
    """Input-capable devices."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except Exception as exc:  # PortAudioError
        raise AudioInputError(f"cannot list audio devices: {exc}") from None
    out = []
    for d in devices:
        if d["max_input_channels"] > 0:
            out.append(
                InputDevice(
                    index=int(d["index"]),
                    name=str(d["name"]),
                    channels=int(d["max_input_channels"]),
                    default_samplerate=float(d["default_samplerate"]),
                    hostapi=str(hostapis[d["hostapi"]]["name"]),
                )
            )
    return out


def resolve_device(device: int | str | None) -> InputDevice:
    """Find the input device by index or case-insensitive name substring.

    Raises:
        AudioInputError: no such input device, or the name matches several.
    """
    devices = list_input_devices()
    if not devices:
        raise AudioInputError("no audio input devices found (is a microphone connected, and PulseAudio/PipeWire running?)")
    if device is None:
        sd = import_sounddevice()
        try:
            idx = sd.default.device[0]
        except Exception:
            idx = -1
        for d in devices:
            if d.index == idx:
                return d
        return devices[0]
    if isinstance(device, int) or (isinstance(device, str) and device.strip().isdigit()):
        idx = int(device)
        for d in devices:
            if d.index == idx:
                return d
        raise AudioInputError(f"no input device with index {idx}; run 'ser-daemon --list-devices'")
    want = str(device).lower()
    exact = [d for d in devices if d.name.lower() == want]
    matches = exact or [d for d in devices if want in d.name.lower()]
    if not matches:
        raise AudioInputError(f"no input device matches {device!r}; run 'ser-daemon --list-devices'")
    if len(matches) > 1:
        names = ", ".join(f"{d.index}: {d.name}" for d in matches)
        raise AudioInputError(f"{device!r} matches several input devices ({names}); give the index")
    return matches[0]


class DeviceSource:
    """Captures a sound device into a ring through a PortAudio callback."""

    def __init__(
        self,
        device: InputDevice,
        ring_seconds: float,
        wake: Callable[[], None],
        *,
        samplerate: int | None = None,
        channels: int | None = None,
        block_ms: float = 20.0,
    ) -> None:
        self.device = device
        self.rate = int(samplerate or round(device.default_samplerate))
        self.channels = int(channels or min(device.channels, 2))
        if self.channels > device.channels:
            raise AudioInputError(f"device {device.name!r} has {device.channels} input channels, {self.channels} asked")
        self.block_frames = max(16, int(round(self.rate * block_ms / 1000.0)))
        self.ring = AudioRing(int(math.ceil(self.rate * ring_seconds)), self.channels)
        self.wake = wake
        self.name = device.name
        self.status_flags = 0  # callbacks that reported an input overflow/underflow
        self._stream: Any = None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Real-time thread: copy, note the time, wake the consumer. Nothing else.
        if status:
            self.status_flags += 1
        self.ring.write(indata, time.monotonic())
        self.wake()

    def start(self) -> None:
        sd = import_sounddevice()
        try:
            self._stream = sd.InputStream(
                device=self.device.index,
                samplerate=self.rate,
                channels=self.channels,
                blocksize=self.block_frames,
                dtype="float32",
                callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:  # sd.PortAudioError and ValueError for bad settings
            self._stream = None
            raise AudioInputError(
                f"cannot open input device {self.device.index} ({self.device.name}) at {self.rate} Hz, "
                f"{self.channels} ch: {exc}"
            ) from None

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as exc:
                log.debug("closing the input stream: %s", exc)
