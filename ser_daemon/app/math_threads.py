"""One BLAS thread for the daemon's process, unless the user chose otherwise.

Every decision multiplies small matrices: the 64-band mel filterbank over the frames a hop
adds and, with a personal profile, the 512-by-8 head. That is microseconds of work. numpy's
and scipy's wheels hand it to OpenBLAS, whose worker threads go to sleep between bursts and
must be woken; after any larger product (fitting a profile, the web page's calibration) a
decision then waits for them now and then. Measured on the 2-core VM (benchmarks/RESULTS.md,
2026-11-26): per-decision p99 with a profile 4.7 ms with the default pool in 3 runs of 4,
0.8 ms in 4 of 4 with one thread; fitting a profile from a minute of takes 0.38 s against
0.24 s. The daemon's parallelism is its streams and LiteRT's own threads, not BLAS.

The pools read these variables once, when the library loads, so :func:`limit_math_threads`
must run before numpy is first imported (``ser_daemon.__main__`` calls it first). Like
``ser_daemon.app.startup`` this module imports nothing but ``os``.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # as in ser_daemon.app.startup: no typing import on the start-up path
if TYPE_CHECKING:
    from typing import MutableMapping

__all__ = ["MATH_THREAD_VARIABLES", "limit_math_threads"]

# OpenBLAS (pip wheels of numpy and scipy), MKL (conda), Accelerate (macOS). Not OMP_NUM_THREADS:
# TensorFlow's oneDNN reads it, and the Keras backend sets its own thread counts.
MATH_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def limit_math_threads(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set each BLAS thread variable to 1 where it is unset; return the ones set.

    A value already there (the user's, for a reason we cannot know) is kept.
    """
    env = os.environ if environ is None else environ
    chosen = {name: "1" for name in MATH_THREAD_VARIABLES if not env.get(name)}
    env.update(chosen)
    return chosen
