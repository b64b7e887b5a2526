"""The daemon's process runs BLAS on one thread unless the user set a count (ser_daemon.app.math_threads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ser_daemon.app.math_threads import MATH_THREAD_VARIABLES, limit_math_threads


def test_unset_variables_get_one_thread_and_the_users_own_are_kept() -> None:
    env = {"OPENBLAS_NUM_THREADS": "3", "MKL_NUM_THREADS": "", "PATH": "/bin"}
    chosen = limit_math_threads(env)
    assert chosen == {"MKL_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1"}
    assert env == {"OPENBLAS_NUM_THREADS": "3", "MKL_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "PATH": "/bin"}
    assert limit_math_threads(env) == {}


# Run through ser_daemon.__main__.main, as the ser-daemon command is, with the CLI swapped for a
# probe that reports the BLAS pools numpy really loaded (threadpoolctl reads them from the library).
_PROBE = """
import json, sys, types
probe = types.ModuleType("ser_daemon.cli")
def main():
    import numpy, threadpoolctl
    pools = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    print(json.dumps(pools))
    return 0
probe.main = main
sys.modules["ser_daemon.cli"] = probe
from ser_daemon.__main__ import main as entry
sys.exit(entry())
"""


def _blas_pools(env_extra: dict[str, str]) -> list[int]:
    env = {k: v for k, v in os.environ.items() if k not in MATH_THREAD_VARIABLES and k != "OMP_NUM_THREADS"}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # starts a process
def test_the_daemon_entry_point_loads_numpy_with_one_blas_thread() -> None:
    pytest.importorskip("threadpoolctl")
    pools = _blas_pools({})
    assert pools and all(n == 1 for n in pools), pools


@pytest.mark.slow  # starts a process
def test_a_thread_count_the_user_set_reaches_blas() -> None:
    pytest.importorskip("threadpoolctl")
    cores = os.cpu_count() or 1
    if cores < 2:
        pytest.skip("OpenBLAS caps its pool at the core count: one core cannot tell the user's 2 from our 1")
    # OpenBLAS caps the pool at the core count, so ask for exactly that many.
    assert all(n == cores for n in _blas_pools({"OPENBLAS_NUM_THREADS": str(cores)}))
