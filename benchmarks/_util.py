"""Shared helpers for the benchmark scripts: statistics, machine description, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(REPO))


def stats_ms(values: Iterable[float]) -> dict[str, float]:
    """Median, p95, p99 and max of a list of milliseconds."""
    a = np.asarray(list(values), dtype=np.float64)
    if not len(a):
        return {"n": 0}
    return {
        "n": int(len(a)),
        "median": round(float(np.median(a)), 4),
        "p95": round(float(np.percentile(a, 95)), 4),
        "p99": round(float(np.percentile(a, 99)), 4),
        "max": round(float(a.max()), 4),
    }


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": os.getloadavg()[0],
    }


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return path


def default_model() -> Path:
    from ser_daemon.model.bundle import default_model_dir

    d = default_model_dir()
    if d is None:
        raise SystemExit("no model: the benchmarks use the shipped model in models/default (or $SER_MODEL_DIR)")
    return d


def demo_audio(seconds: float) -> np.ndarray:
    """The bundled speech recording, looped to ``seconds`` (16 kHz mono float32)."""
    from ser_daemon.app.options import demo_recording
    from ser_daemon.audio.sources import read_wav

    x, rate = read_wav(demo_recording())
    assert rate == 16000
    x = x[:, 0]
    reps = int(np.ceil(seconds * rate / len(x)))
    return np.tile(x, reps)[: int(seconds * rate)]


def write_demo_wav(path: Path, seconds: float) -> Path:
    from scipy.io import wavfile

    wavfile.write(str(path), 16000, (demo_audio(seconds) * 32767).astype(np.int16))
    return path


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    except OSError:
        return "?"
