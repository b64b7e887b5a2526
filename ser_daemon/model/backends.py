"""The inference backends by name: the one place a new runtime is registered.

Every command line (``ser-daemon``, ``enroll``, ``cluster``, ``ser-eval``), the config checks
and :func:`~ser_daemon.model.inference.load_classifier` read their choices from here.  This
module imports no runtime and no numpy (the command line reads it at start-up): a backend's
classifier class is named as ``module:Class`` and imported only when that backend is chosen.
Adding a backend is its classifier module plus one entry in :data:`BACKENDS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["Backend", "BACKENDS", "AUTO", "backend_choices", "or_list", "load_backend_class"]

AUTO = "auto"  # Keras on a visible GPU, else LiteRT (see load_classifier)


@dataclass(frozen=True)
class Backend:
    """One inference runtime.

    Attributes:
        name: what ``--backend`` calls it.
        model_file: the :class:`~ser_daemon.model.bundle.ModelBundle` attribute holding the file it reads.
        suffix: that file's suffix, for messages.
        classifier: ``module:Class`` of its classifier, called as ``Class(path, labels, input_shape, num_threads)``.
        instead: the backend to suggest when a bundle lacks this one's file.
    """

    name: str
    model_file: str
    suffix: str
    classifier: str
    instead: str


BACKENDS: dict[str, Backend] = {
    "litert": Backend("litert", "tflite_file", ".tflite", "ser_daemon.model.inference:LiteRTClassifier", "keras"),
    "keras": Backend("keras", "keras_file", ".keras", "ser_daemon.model.inference:KerasClassifier", "litert"),
}


def backend_choices(auto: bool = True) -> tuple[str, ...]:
    """The names ``--backend`` accepts (``auto`` first unless left out)."""
    return ((AUTO,) if auto else ()) + tuple(BACKENDS)


def or_list(names: Sequence[str]) -> str:
    """``("auto", "litert", "keras")`` -> ``"auto, litert or keras"`` (for messages)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def load_backend_class(backend: Backend) -> Any:
    """The backend's classifier class (imports its module, not yet its runtime)."""
    module, _, name = backend.classifier.partition(":")
    return getattr(importlib.import_module(module), name)
