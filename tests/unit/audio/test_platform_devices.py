"""Platform seams with Windows and macOS simulated: PortAudio host APIs and devices, config paths (stop requests: test_platform.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser_daemon import os_defaults as platform
from ser_daemon.errors import AudioInputError
from ser_daemon.audio.sources import choose_device, format_device_list, input_devices_from

# What sounddevice's query_hostapis() / query_devices() return on a Windows 11 PC with a USB headset
# (the shape PortAudio gives: every device once per host API, MME names cut at 31 characters).
WIN_APIS = [
    {"name": "MME", "devices": [0, 1, 2], "default_input_device": 1, "default_output_device": 2},
    {"name": "Windows DirectSound", "devices": [3, 4], "default_input_device": 3, "default_output_device": 4},
    {"name": "Windows WASAPI", "devices": [5, 6, 7], "default_input_device": 6, "default_output_device": 7},
    {"name": "Windows WDM-KS", "devices": [8], "default_input_device": 8, "default_output_device": -1},
]


def _dev(i: int, name: str, api: int, ins: int = 2, rate: float = 44100.0) -> dict:
    return {"index": i, "name": name, "hostapi": api, "max_input_channels": ins, "max_output_channels": 0,
            "default_samplerate": rate}


WIN_DEVICES = [
    _dev(0, "Microsoft Sound Mapper - Input", 0),
    _dev(1, "Microphone (Arctis Nova 7 Wirel", 0),
    _dev(2, "Speakers (Arctis Nova 7)", 0, ins=0),
    _dev(3, "Microphone (Arctis Nova 7 Wireless)", 1),
    _dev(4, "Speakers (Arctis Nova 7)", 1, ins=0),
    _dev(5, "Microphone (Realtek(R) Audio)", 2, rate=48000.0),
    _dev(6, "Microphone (Arctis Nova 7 Wireless)", 2, ins=1, rate=48000.0),
    _dev(7, "Speakers (Arctis Nova 7)", 2, ins=0),
    _dev(8, "Microphone (Arctis Nova 7 Wireless)", 3, ins=1, rate=48000.0),
]
MAC_APIS = [{"name": "Core Audio", "devices": [0, 1], "default_input_device": 0, "default_output_device": 1}]
MAC_DEVICES = [_dev(0, "MacBook Pro Microphone", 0, ins=1, rate=48000.0), _dev(1, "Valve Index", 0, ins=1)]


def win(wanted, host_api=None):
    devs = input_devices_from(WIN_DEVICES, WIN_APIS)
    return choose_device(devs, wanted, host_api=host_api, preference=platform.host_api_preference("win32"),
                         portaudio_default=1)


def test_windows_name_matching_several_host_apis_prefers_wasapi() -> None:
    d = win("arctis")
    assert (d.index, d.hostapi) == (6, "Windows WASAPI")
    assert win("Arctis", host_api="mme").index == 1  # substring of the host API name, any case
    assert win("arctis", host_api="DirectSound").index == 3
    assert win("arctis", host_api="wdm-ks").index == 8
    assert win(3).index == 3  # an index is one device whatever the host API


def test_windows_default_device_comes_from_wasapi() -> None:
    assert win(None).index == 6  # WASAPI's default input, not MME's (PortAudio's own default here)
    assert win(None, host_api="MME").index == 1


def test_ambiguous_within_one_host_api_and_unknown_host_api_are_explained() -> None:
    with pytest.raises(AudioInputError, match=r"matches several input devices .*\(Windows WASAPI\)"):
        win("microphone")
    with pytest.raises(AudioInputError, match="not a host API.*MME, Windows DirectSound, Windows WASAPI"):
        win("arctis", host_api="asio")
    with pytest.raises(AudioInputError, match="matches several host APIs"):
        win("arctis", host_api="windows")
    with pytest.raises(AudioInputError, match="no input device matches 'realtek' in host API MME"):
        win("realtek", host_api="mme")


def test_list_devices_is_grouped_by_host_api_default_first() -> None:
    text = format_device_list(input_devices_from(WIN_DEVICES, WIN_APIS), platform.default_host_api("win32"))
    heads = [ln for ln in text.splitlines() if not ln.startswith(" ")]
    assert heads[0].startswith("Windows WASAPI") and "default host API" in heads[0]
    assert [h.split("  ")[0] for h in heads[1:]] == ["MME", "Windows DirectSound", "Windows WDM-KS"]
    assert "Speakers" not in text  # output-only devices are not listed
    assert "Microphone (Arctis Nova 7 Wireless)  *default" in text


def test_macos_uses_core_audio() -> None:
    assert platform.default_host_api("darwin") == "Core Audio"
    devs = input_devices_from(MAC_DEVICES, MAC_APIS)
    assert choose_device(devs, "index", preference=platform.host_api_preference("darwin")).name == "Valve Index"
    assert choose_device(devs, None, preference=platform.host_api_preference("darwin")).index == 0


def test_linux_keeps_portaudios_default() -> None:
    assert platform.default_host_api("linux") is None
    apis = [{"name": "ALSA", "default_input_device": 2}, {"name": "JACK Audio Connection Kit", "default_input_device": 3}]
    devs = input_devices_from([_dev(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", 0), _dev(1, "pulse", 0),
                               _dev(2, "default", 0), _dev(3, "system", 1)], apis)
    assert choose_device(devs, None, preference=platform.host_api_preference("linux"), portaudio_default=2).index == 2


def test_config_and_data_paths_per_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert platform.user_config_path("linux") == tmp_path / "cfg" / "ser-daemon" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")  # platformdirs honours XDG_* on macOS too
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    mac = platform.user_config_path("darwin")
    assert mac.parts[-4:] == ("Library", "Application Support", "ser-daemon", "config.toml")
    assert platform.user_data_path("darwin").parts[-3:] == ("Library", "Application Support", "ser-daemon")
    # Windows: platformdirs asks the shell for the folder; simulate that answer.
    import platformdirs.windows as pw

    monkeypatch.setattr(pw, "get_win_folder", lambda csidl: r"C:\Users\ada\AppData\Local" if "LOCAL" in csidl
                        else r"C:\Users\ada\AppData\Roaming")
    p = platform.user_config_path("win32")
    assert str(p).replace("/", "\\").endswith(r"AppData\Local\ser-daemon\config.toml")
