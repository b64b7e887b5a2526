"""Every file the daemon reads is bounded: real FIFOs, devices, directories, sparse files, deep nesting.

Each case is provoked for real and must end at once with one line and exit 2 (or the
error type the library raises), never by reading without end, blocking on a FIFO, or a
RecursionError traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd
from ser_daemon import bounded
from ser_daemon.cli import main
from ser_daemon.errors import AudioInputError, ConfigError, ModelError
from ser_daemon.model.bundle import default_model_dir, load_bundle
from ser_daemon.audio.sources import MAX_FILE_SECONDS, read_wav

DEEP = 5000  # far beyond Python's recursion limit


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "pipe.toml"
    os.mkfifo(p)
    return p


@pytest.fixture
def sparse(tmp_path: Path) -> Path:
    p = tmp_path / "huge.toml"
    with open(p, "wb") as f:
        f.truncate(8 * 1024**3)  # 8 GiB that take no disk
    return p


def run_main(capsys, *argv: str) -> tuple[int, str]:
    t0 = time.monotonic()
    code = main(list(argv))
    assert time.monotonic() - t0 < timeout(2.0)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("flag", ["--config", "--mapping", "--ws-token-file"])
@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "sparse"])
def test_config_like_files_must_be_small_regular_files(capsys, request, tmp_path, flag, kind) -> None:
    path = {"fifo": lambda: request.getfixturevalue("fifo"), "device": lambda: Path("/dev/zero"),
            "directory": lambda: tmp_path, "sparse": lambda: request.getfixturevalue("sparse")}[kind]()
    argv = [flag, str(path), "--no-osc", "--no-ws", "--quiet"]
    if flag == "--mapping":  # the mapping is read when the daemon is built: run it on a tiny input
        argv += ["--input", str(REPO / "ser_daemon" / "data" / "demo.wav"), "--fast"]
    code, err = run_main(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    want = "too large" if kind == "sparse" else "is not a regular file"
    assert want in err, err


@pytest.mark.slow  # starts a process
def test_dev_zero_config_is_refused_at_once_by_the_real_cli() -> None:
    t0 = time.monotonic()
    r = subprocess.run(daemon_cmd("--config", "/dev/zero"), capture_output=True, text=True,
                       timeout=timeout(30), cwd=REPO)
    assert r.returncode == 2 and "not a regular file: it is a device" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert time.monotonic() - t0 < timeout(10)  # start-up of Python only: nothing was read


def test_read_bounded_stops_at_the_limit_even_if_the_file_grows(tmp_path) -> None:
    p = tmp_path / "grows.toml"
    p.write_bytes(b"#" * 100)
    assert bounded.read_bounded(p, "config file", 100) == b"#" * 100
    with pytest.raises(ConfigError, match="too large"):
        bounded.read_bounded(p, "config file", 99)
    with pytest.raises(ConfigError, match="not found"):
        bounded.read_bounded(tmp_path / "missing.toml", "config file", 99)


def test_check_regular_file_names_what_it_is(tmp_path, fifo) -> None:
    with pytest.raises(AudioInputError, match="FIFO"):
        bounded.check_regular_file(fifo, "input file", 10, AudioInputError)
    with pytest.raises(AudioInputError, match="directory"):
        bounded.check_regular_file(tmp_path, "input file", 10, AudioInputError)
    with pytest.raises(AudioInputError, match="device"):
        bounded.check_regular_file("/dev/null", "input file", 10, AudioInputError)


def test_deeply_nested_toml_is_exit_2_not_a_recursion_error(capsys, tmp_path) -> None:
    p = tmp_path / "deep.toml"
    p.write_text("a = " + "[" * DEEP + "]" * DEEP + "\n")
    code, err = run_main(capsys, "--config", str(p))
    assert code == 2 and "nested too deeply" in err and "Traceback" not in err, err
    q = tmp_path / "deep_inline.toml"
    q.write_text("a = " + "{b = " * DEEP + "1" + "}" * DEEP + "\n")
    code, err = run_main(capsys, "--config", str(q))
    assert code == 2 and "Traceback" not in err, err


def test_deeply_nested_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        bounded.loads_json("[" * DEEP + "]" * DEEP)


def test_config_with_a_utf8_byte_order_mark_is_read(capsys, tmp_path) -> None:
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + b"hop_ms = 500\nno_osc = true\nno_ws = true\nquiet = true\n")
    code, err = run_main(capsys, "--config", str(p), "--input", str(REPO / "ser_daemon/data/demo.wav"), "--fast")
    assert code == 0, err


def _wav_header(frames: int, rate: int = 8000, channels: int = 1, bits: int = 8) -> bytes:
    block = channels * bits // 8
    data_bytes = frames * block
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
            + b"data" + struct.pack("<I", data_bytes))


def test_long_wav_is_refused_from_its_header_before_its_audio_is_read(tmp_path) -> None:
    """A valid header and 7 hours of (sparse) audio: refused without reading the audio."""
    frames = (MAX_FILE_SECONDS + 3600) * 8000
    p = tmp_path / "long.wav"
    with open(p, "wb") as f:
        f.write(_wav_header(frames))
        f.truncate(44 + frames)  # sparse: the audio takes no disk and reads as zeros
    t0 = time.monotonic()
    with pytest.raises(AudioInputError, match="longer than"):
        read_wav(p)
    assert time.monotonic() - t0 < timeout(1.0)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "sparse"])
def test_wav_inputs_must_be_bounded_regular_files(request, tmp_path, kind) -> None:
    if kind == "sparse":
        path = tmp_path / "huge.wav"
        with open(path, "wb") as f:
            f.truncate(bounded.MAX_WAV_BYTES + 1)
    else:
        path = {"fifo": lambda: request.getfixturevalue("fifo"), "device": lambda: Path("/dev/zero"),
                "directory": lambda: tmp_path}[kind]()
    with pytest.raises(AudioInputError, match="too large" if kind == "sparse" else "not a regular file"):
        read_wav(path)


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    src = default_model_dir()
    if src is None:
        pytest.skip("the shipped model is not installed")
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    return dst


def _edit_meta(bundle: Path, **changes) -> None:
    meta_path = bundle / "ser_model.json"
    meta = json.loads(meta_path.read_text())
    meta.update(changes)
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("name", ["../other/model.tflite", "/etc/passwd", "sub/../../other/model.tflite"])
def test_bundle_file_names_cannot_leave_the_bundle(bundle_copy, tmp_path, name) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(bundle_copy / "model.tflite", other / "model.tflite")
    _edit_meta(bundle_copy, files={"tflite": name, "keras": None})
    with pytest.raises(ModelError, match="bundle folder"):
        load_bundle(bundle_copy)


def test_bundle_symlink_out_of_the_bundle_is_refused(bundle_copy, tmp_path) -> None:
    other = tmp_path / "elsewhere.tflite"
    shutil.copy(bundle_copy / "model.tflite", other)
    (bundle_copy / "link.tflite").symlink_to(other)
    _edit_meta(bundle_copy, files={"tflite": "link.tflite", "keras": None})
    with pytest.raises(ModelError, match="outside the bundle folder"):
        load_bundle(bundle_copy)


def test_model_json_and_files_are_bounded(bundle_copy) -> None:
    meta = bundle_copy / "ser_model.json"
    text = meta.read_text()
    meta.unlink()
    os.mkfifo(meta)
    with pytest.raises(ModelError, match="not a regular file"):
        load_bundle(bundle_copy)
    meta.unlink()
    meta.write_text("[" * DEEP + "]" * DEEP)
    with pytest.raises(ModelError, match="nested too deeply"):
        load_bundle(bundle_copy)
    meta.write_text(text)
    (bundle_copy / "model.tflite").unlink()
    os.mkfifo(bundle_copy / "model.tflite")
    with pytest.raises(ModelError, match="not a regular file"):
        load_bundle(bundle_copy)
    (bundle_copy / "model.tflite").unlink()
    with open(bundle_copy / "model.tflite", "wb") as f:
        f.truncate(bounded.MAX_MODEL_FILE_BYTES + 1)
    with pytest.raises(ModelError, match="too large"):
        load_bundle(bundle_copy)


def test_profile_sized_reads_use_the_same_helper(tmp_path) -> None:
    """The future profile files read through read_bounded with their own limit."""
    p = tmp_path / "me.serprofile"
    p.write_bytes(b"x" * 10)
    assert bounded.read_bounded(p, "profile", bounded.MAX_PROFILE_BYTES) == b"x" * 10


@pytest.mark.parametrize("dtype", ["int16", "uint8", "int32", "float32"])
def test_wav_frames_read_in_blocks_equal_the_whole_file(tmp_path, dtype) -> None:
    """open_wav reads a block at a time (issue 32: a long file was converted whole); the blocks are the file."""
    from scipy.io import wavfile

    from ser_daemon.audio.sources import open_wav

    rng = np.random.default_rng(1)
    x = rng.uniform(-0.9, 0.9, size=(5000, 2))
    data = {"int16": (x * 32767).astype(np.int16), "uint8": (x * 127 + 128).astype(np.uint8),
            "int32": (x * 2**31).astype(np.int32), "float32": x.astype(np.float32)}[dtype]
    p = tmp_path / "x.wav"
    wavfile.write(p, 16000, data)
    whole, rate = read_wav(p)
    frames, rate2 = open_wav(p)
    blocks = np.concatenate([frames[i:i + 333] for i in range(0, len(frames), 333)])
    frames.close()
    assert rate == rate2 == 16000 and whole.shape == (5000, 2) and whole.dtype == np.float32
    np.testing.assert_array_equal(blocks, whole)
    # Reads go ahead by READ_AHEAD_FRAMES: blocks that straddle its edges, a jump back (a loop) and a
    # block larger than the read-ahead are still the file.
    frames, _ = open_wav(p)
    frames.READ_AHEAD_FRAMES = 1000
    again = np.concatenate([frames[i:i + 333] for i in range(0, len(frames), 333)])
    np.testing.assert_array_equal(again, whole)
    np.testing.assert_array_equal(frames[0:333], whole[:333])
    np.testing.assert_array_equal(frames[100:2600], whole[100:2600])
    assert frames[5000:5333].shape == (0, 2)
    frames.close()
