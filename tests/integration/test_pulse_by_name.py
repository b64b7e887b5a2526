"""A microphone by name on Linux: the sound server's sources, through a real PulseAudio.

The test starts its own PulseAudio (private runtime dir and home, as test_capture_pulse does) with
a null sink "vmic" described as "USB-Headset-Mic" (its monitor is the "microphone" the test plays
into) and a silent null source made the default, so a daemon that records the default hears
nothing.  ``--device Headset`` must find the source by its description and record it through
PortAudio's ``pulse`` device, with no PULSE_SOURCE in the environment.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle

from conftest import timeout
from helpers import REPO, UdpReceiver, daemon_cmd
from test_capture_pulse import _start_pulse, _stop_pulse, private_pulse_env
from tiny_model import tone, write_wav

from ser_daemon.errors import AudioInputError
from ser_daemon.audio.sound_server import format_sources, match_source, parse_sources

PACTL_LIST = """Source #0
\tState: IDLE
\tName: alsa_output.pci-0000_00_1f.3.analog-stereo.monitor
\tDescription: Monitor of Built-in Audio Analog Stereo
\tSample Specification: s16le 2ch 48000Hz
\tMonitor of Sink: alsa_output.pci-0000_00_1f.3.analog-stereo
\tProperties:
\t\tdevice.description = "Monitor of Built-in Audio Analog Stereo"

Source #1
\tState: RUNNING
\tName: alsa_input.usb-Logitech_USB_Headset-00.mono-fallback
\tDescription: USB Headset Mono
\tSample Specification: s16le 1ch 48000Hz
\tMonitor of Sink: n/a

Source #2
\tState: SUSPENDED
\tName: alsa_input.pci-0000_00_1f.3.analog-stereo
\tDescription: Built-in Audio Analog Stereo
\tSample Specification: s32le 2ch 44100Hz
\tMonitor of Sink: n/a
"""


def test_sources_parsed_and_matched_by_name_or_description() -> None:
    sources = parse_sources(PACTL_LIST, default_name="alsa_input.pci-0000_00_1f.3.analog-stereo")
    assert [s.name for s in sources] == ["alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
                                         "alsa_input.usb-Logitech_USB_Headset-00.mono-fallback",
                                         "alsa_input.pci-0000_00_1f.3.analog-stereo"]
    mon, usb, built_in = sources
    assert mon.monitor and not usb.monitor and built_in.default and (usb.channels, usb.rate_hz) == (1, 48000)
    assert match_source(sources, "headset") == usb  # part of the description, any case
    assert match_source(sources, "Logitech") == usb  # part of the name
    assert match_source(sources, "built-in") == built_in  # the microphone, not the speakers' monitor
    assert match_source(sources, "nothing like it") is None
    with pytest.raises(AudioInputError, match="matches several sound server sources"):
        match_source(sources, "alsa_input")
    listing = format_sources(sources)
    assert "USB Headset Mono  [alsa_input.usb-Logitech_USB_Headset-00.mono-fallback]  1 ch 48000 Hz" in listing
    assert "(default)" in listing and "(monitor of an output)" in listing


@pytest.fixture
def pulse_env(tmp_path: Path):
    env = private_pulse_env(tmp_path)
    env.pop("PULSE_SOURCE", None)  # the daemon must pick the source itself
    headset = "sink_name=vmic rate=48000 channels=2 sink_properties=device.description=USB-Headset-Mic"
    daemon = _start_pulse(env, sink=headset,
                          more=("module-null-source source_name=quiet description=Silent-Mic",), wait_for="quiet")
    try:
        subprocess.run(["pactl", "set-default-source", "quiet"], env=env, check=True, timeout=timeout(10))
        yield env
    finally:
        _stop_pulse(daemon)


@pytest.mark.slow
def test_list_devices_names_the_sound_servers_sources(pulse_env) -> None:
    r = subprocess.run(daemon_cmd("--list-devices"), capture_output=True, text=True, env=pulse_env,
                       timeout=timeout(30), cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "Sound server (PulseAudio/PipeWire) sources" in r.stdout
    assert "Monitor of USB-Headset-Mic  [vmic.monitor]" in r.stdout
    assert "Silent-Mic  [quiet]" in r.stdout and "(default)" in r.stdout


@pytest.mark.slow
@pytest.mark.needs_tf
def test_device_by_name_records_that_source_not_the_default(pulse_env, tiny_bundle, tmp_path) -> None:
    wav = write_wav(tmp_path / "angry_tone.wav", np.concatenate([tone(3000, 2.5), np.zeros(8000, np.float32)]))
    rx = UdpReceiver()
    proc = subprocess.Popen(
        daemon_cmd("--device", "Headset", "--osc", f"127.0.0.1:{rx.port}", "--no-ws", "--quiet", "--log-level", "info"),
        env={**pulse_env, "SER_MODEL_DIR": str(tiny_bundle)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=REPO,
    )
    bundles = lambda: [list(OscBundle(d)) for _, d in rx.packets if OscBundle.dgram_is_bundle(d)]  # noqa: E731
    try:
        deadline = time.monotonic() + timeout(20)
        while len(bundles()) < 3 and time.monotonic() < deadline and proc.poll() is None:
            rx.collect(time.monotonic() + 0.2)
        assert len(bundles()) >= 3, proc.communicate(timeout=5)[1][-2000:]
        before = len(bundles())
        play = subprocess.run(["paplay", "--device=vmic", str(wav)], env=pulse_env, capture_output=True,
                              timeout=timeout(20))
        assert play.returncode == 0, play.stderr
        rx.collect(time.monotonic() + 1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=timeout(10))
    finally:
        proc.kill()
        rx.close()
    assert proc.returncode == 0, err[-2000:]
    assert "sound server source vmic.monitor (Monitor of USB-Headset-Mic)" in err
    labels = [b[0].params[0] for b in bundles()[before:]]
    assert "angry" in labels, labels  # the default source (silent) would never say angry
