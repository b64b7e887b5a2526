"""The shape of a stream of audio frames: sample rate, channels and sample type, as one value.

The rate used to cross module boundaries as a bare ``int`` under four names (``sample_rate``,
``rate``, ``samplerate``, ``in_rate``), with the channel count travelling beside it when it
travelled at all.  :class:`AudioFormat` carries them together and checks them once; the
functions that take a rate accept either it or a plain ``int`` (Hertz, mono float32), so
callers written against the ``int`` keep working.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["AudioFormat", "SAMPLE_DTYPES", "as_format"]

SAMPLE_DTYPES = ("float32", "int16", "int32", "uint8", "float64")
"""Sample types a source may deliver (numpy dtype names); the pipeline works on float32."""


@dataclass(frozen=True)
class AudioFormat:
    """Frames of ``channels`` samples of ``dtype``, ``sample_rate`` frames per second.

    Attributes:
        sample_rate: frames per second, Hertz.
        channels: samples per frame (1 = mono).
        dtype: numpy dtype name of one sample.
    """

    sample_rate: int
    channels: int = 1
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be a positive integer (Hertz). Received: {self.sample_rate!r}")
        if isinstance(self.channels, bool) or not isinstance(self.channels, int) or self.channels < 1:
            raise ConfigError(f"channels must be a positive integer. Received: {self.channels!r}")
        if self.dtype not in SAMPLE_DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(SAMPLE_DTYPES)}. Received: {self.dtype!r}")

    def frames(self, seconds: float) -> int:
        """Frames in ``seconds`` of audio, rounded to the nearest frame."""
        return int(round(seconds * self.sample_rate))

    def seconds(self, frames: int) -> float:
        """Duration of ``frames`` frames, seconds."""
        return frames / self.sample_rate

    def mono(self) -> AudioFormat:
        """The same rate and sample type, one channel (what a downmix delivers)."""
        return AudioFormat(self.sample_rate, 1, self.dtype)


def as_format(value: AudioFormat | int) -> AudioFormat:
    """``value`` itself, or mono float32 at ``value`` Hertz (the form a bare rate always meant)."""
    if isinstance(value, AudioFormat):
        return value
    if isinstance(value, bool):
        raise ConfigError(f"a sample rate (Hertz) or an AudioFormat is needed. Received: {value!r}")
    if not isinstance(value, int):  # numpy integers, as scipy's wavfile returns them
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"a sample rate (Hertz) or an AudioFormat is needed. Received: {value!r}") from None
        if as_int != value:
            raise ConfigError(f"sample rate must be a whole number of Hertz. Received: {value!r}")
        value = as_int
    return AudioFormat(value)
