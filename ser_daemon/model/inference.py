"""Inference engines behind one small interface, imported only when chosen.

LiteRT (the TFLite runtime) is the CPU workhorse: it loads in under 0.1 s and
runs a window in about a millisecond.  Keras is the way onto a GPU (TensorFlow
or JAX backend) and the reference the LiteRT export is checked against.  The
daemon's hot path must not import TensorFlow when LiteRT serves (2.5 s and
600 MB), so neither runtime is imported at module level.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from ..errors import BackendUnavailable, ModelError, import_failure
from .backends import AUTO, BACKENDS, backend_choices, load_backend_class, or_list
from .bundle import ModelBundle

__all__ = ["Classifier", "LiteRTClassifier", "KerasClassifier", "load_classifier", "gpu_visible", "split_outputs",
           "EMBEDDING_LAYERS", "embedding_output", "pad_to_bucket", "power_of_two_pieces"]

# The layer whose output the classifier head reads (training.model_def names it):
# "embedding" where the model has a level branch joined to the pooled CNN
# features (or, in models trained before 2026-11-26 10:30, mean+max or per-band
# pooling), else the pooled features: "pooled", or "gap" for mean pooling.
EMBEDDING_LAYERS = ("embedding", "pooled", "gap")


def embedding_output(model: Any) -> Any:
    """The Keras tensor the classifier head reads; ValueError if the model has none."""
    for name in EMBEDDING_LAYERS:
        try:
            return model.get_layer(name).output
        except ValueError:
            continue
    raise ValueError(f"model has none of the layers {EMBEDDING_LAYERS}")

log = logging.getLogger(__name__)


class Classifier(Protocol):
    """What the pipeline needs from a model runtime."""

    labels: tuple[str, ...]
    input_shape: tuple[int, int]
    backend: str
    embedding_dim: int | None  # None: the model has no embedding output (no personal profiles)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, len(labels))`` for windows ``(n, frames, n_mels)`` float32."""
        ...

    def predict_embedded(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and the classifier head's input ``(n, embedding_dim)``, from one pass.

        A personal profile's head reads the embedding (see :mod:`ser_daemon.profiles.store`).

        Raises:
            ModelError: the model was exported without its embedding output.
        """
        ...


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Hide what the LiteRT C++ runtime prints while an interpreter is created.

    It announces "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on the
    process's stderr, which would break the CLI's one-line messages; real failures
    still arrive as Python exceptions.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _check_output(probs: np.ndarray, n: int, n_labels: int, source: str) -> np.ndarray:
    if probs.shape != (n, n_labels):
        raise ModelError(f"{source}: model output has shape {probs.shape}, expected ({n}, {n_labels}) for the labels")
    return probs


def _no_embedding(path: Path) -> ModelError:
    return ModelError(
        f"{path}: this model has no embedding output, so personal profiles cannot use it "
        "(re-export it with this version of ser-train)"
    )


def split_outputs(shapes: list[tuple[int, ...]], n_labels: int, source: str) -> tuple[int, int | None]:
    """Which of a model's outputs are the probabilities and which the embedding.

    Exported models have the probabilities and, since profiles exist, the head's
    input as a second output; converters do not keep the outputs' order, so they
    are told apart by width.
    """
    if len(shapes) == 1:
        return 0, None
    if len(shapes) == 2:
        widths = [s[-1] if s else 0 for s in shapes]
        if widths.count(n_labels) == 1:
            probs = widths.index(n_labels)
            return probs, 1 - probs
    raise ModelError(
        f"{source}: expected the probabilities ({n_labels} wide) and optionally an embedding output of "
        f"another width; found outputs {shapes}"
    )


class LiteRTClassifier:
    """A ``.tflite`` model on the CPU through ai-edge-litert."""

    backend = "litert"

    def __init__(self, path: Path, labels: tuple[str, ...], input_shape: tuple[int, int], num_threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # ImportError only: a signal can land in this import (errors.import_failure)
            raise BackendUnavailable(import_failure(
                exc, "ai-edge-litert", "the LiteRT backend needs ai-edge-litert: pip install ai-edge-litert"
            )) from exc
        self.labels = tuple(labels)
        self.input_shape = tuple(input_shape)  # type: ignore[assignment]
        self.path = Path(path)
        try:
            # LiteRT's default thread count behaved like 1 here: always set it.
            with _quiet_native_stderr():
                self._interp = Interpreter(model_path=str(path), num_threads=int(num_threads))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load LiteRT model {path}: {exc}") from None
        inp = self._interp.get_input_details()
        out = self._interp.get_output_details()
        if len(inp) != 1:
            raise ModelError(f"{path}: expected one input, found {len(inp)}")
        probs_i, emb_i = split_outputs([tuple(int(x) for x in o["shape"]) for o in out], len(labels), str(path))
        self._in = inp[0]["index"]
        self._out = out[probs_i]["index"]
        self._emb = out[emb_i]["index"] if emb_i is not None else None
        self.embedding_dim = int(out[emb_i]["shape"][-1]) if emb_i is not None else None
        shape = tuple(int(x) for x in inp[0]["shape"])
        if len(shape) != 3 or shape[1:] != self.input_shape:
            raise ModelError(
                f"{path}: model input shape {shape} does not match the metadata's (batch, {self.input_shape[0]}, "
                f"{self.input_shape[1]})"
            )
        out_shape = tuple(int(x) for x in out[probs_i]["shape"])
        if out_shape[-1] != len(self.labels):
            raise ModelError(f"{path}: model has {out_shape[-1]} outputs but the metadata lists {len(self.labels)} labels")
        with _quiet_native_stderr():
            self._interp.allocate_tensors()
        self._num_threads = int(num_threads)
        # One interpreter per batch size (1, 2, 4, ... 32): re-allocating tensors whenever the
        # number of due windows changes would cost more than inference.  A batch runs as
        # power-of-two pieces, not padded up to the next power: a padded row costs as much
        # as a real one, and past 32 windows a window costs more (LITERT_PIECE).
        self._by_batch = {int(shape[0]): self._interp}

    def _interpreter(self, batch: int):  # type: ignore[no-untyped-def]
        interp = self._by_batch.get(batch)
        if interp is None:
            from ai_edge_litert.interpreter import Interpreter

            with _quiet_native_stderr():
                interp = Interpreter(model_path=str(self.path), num_threads=self._num_threads)
                interp.resize_tensor_input(self._in, [batch, *self.input_shape], strict=False)
                interp.allocate_tensors()
            self._by_batch[batch] = interp
        return interp

    def release_batches_above(self, batch: int) -> int:
        """Drop the interpreters of batch buckets larger than ``batch``; return how many went.

        Each bucket's interpreter holds its activations (tens of MB at 64 windows): after a
        wave of streams has ended they would stay resident for good.  A later large batch
        makes its interpreter again (a few milliseconds).
        """
        keep = min(self._by_batch)  # the first interpreter, made at load
        drop = [b for b in self._by_batch if b > max(batch, keep)]
        for b in drop:
            del self._by_batch[b]
        return len(drop)

    def _run(self, batch: np.ndarray, embedded: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The batch's outputs, run as power-of-two pieces (each on its own size's interpreter)."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        outs: list[np.ndarray] = []
        embs: list[np.ndarray] = []
        at = 0
        for size in power_of_two_pieces(len(x), LITERT_PIECE) or [1]:  # an empty batch: one padded row
            piece = x[at : at + size] if len(x) else np.zeros((1, *self.input_shape), np.float32)
            interp = self._interpreter(size)
            interp.set_tensor(self._in, piece)
            interp.invoke()
            outs.append(np.array(interp.get_tensor(self._out)))
            if embedded:
                embs.append(np.array(interp.get_tensor(self._emb)))
            at += size
        n = len(x)
        probs = _check_output(np.concatenate(outs)[:n], n, len(self.labels), str(self.path))
        return probs, (np.concatenate(embs)[:n] if embedded else None)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self._run(batch, False)[0]

    def predict_embedded(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._emb is None:
            raise _no_embedding(self.path)
        probs, emb = self._run(batch, True)
        assert emb is not None
        return probs, emb


class KerasClassifier:
    """A ``.keras`` model through Keras 3 (TensorFlow or JAX backend, GPU when visible)."""

    backend = "keras"

    def __init__(self, path: Path, labels: tuple[str, ...], input_shape: tuple[int, int], num_threads: int = 1) -> None:
        """``num_threads`` is for LiteRT's sake (one call for every backend): Keras keeps its own pools."""
        try:
            import keras
        except ImportError as exc:
            raise BackendUnavailable(import_failure(
                exc, "Keras", "the Keras backend needs Keras 3 with TensorFlow or JAX: pip install 'ser-daemon[keras]'"
            )) from exc

        self.labels = tuple(labels)
        self.input_shape = tuple(input_shape)  # type: ignore[assignment]
        self.path = Path(path)
        try:
            self.model = keras.saving.load_model(str(path), compile=False)
        except Exception as exc:  # keras raises many types for a bad file
            raise ModelError(f"cannot load Keras model {path}: {exc}") from None
        shape = tuple(self.model.input_shape)
        if len(shape) != 3 or tuple(shape[1:]) != self.input_shape:
            raise ModelError(f"{path}: model input shape {shape} does not match the metadata's (None, {self.input_shape})")
        if self.model.output_shape[-1] != len(self.labels):
            raise ModelError(
                f"{path}: model has {self.model.output_shape[-1]} outputs but the metadata lists {len(self.labels)} labels"
            )
        self.keras_backend = keras.backend.backend()
        # The head's input is the embedding layer of models built by training.model_def; a model
        # that has no such layer still classifies, only without profiles.
        # ``model`` stays the plain classifier (benchmarks call it); ``_served`` also gives the embedding.
        self._served = self.model
        try:
            gap = embedding_output(self.model)
        except ValueError:
            self.embedding_dim = None
        else:
            self._served = keras.Model(self.model.input, [self.model.output, gap])
            self.embedding_dim = int(gap.shape[-1])
        self._fn = self._compile()

    def _compile(self):  # type: ignore[no-untyped-def]
        """A compiled forward pass: model.predict costs ~40 ms a call in overhead."""
        model = self._served
        if self.keras_backend == "tensorflow":
            import tensorflow as tf

            spec = tf.TensorSpec([None, *self.input_shape], tf.float32)
            fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
            return lambda x: _as_pair(fn(x))
        if self.keras_backend == "jax":
            import jax

            tv = [v.value for v in model.trainable_variables]
            ntv = [v.value for v in model.non_trainable_variables]

            @jax.jit
            def run(x):  # type: ignore[no-untyped-def]
                y, _ = model.stateless_call(tv, ntv, x, training=False)
                return y

            return lambda x: _as_pair(run(x))
        return lambda x: _as_pair(model(x, training=False))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.predict_embedded_or_not(batch)[0]

    def predict_embedded(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, emb = self.predict_embedded_or_not(batch)
        if emb is None:
            raise _no_embedding(self.path)
        return probs, emb

    def predict_embedded_or_not(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.keras_backend == "jax":
            # jax.jit compiles once per input shape (a second or more on a GPU): padding to
            # powers of two keeps that to a handful of shapes however many streams are due.
            x, n = pad_to_bucket(batch)
        else:
            x = np.ascontiguousarray(batch, dtype=np.float32)
            n = x.shape[0]
        probs, emb = self._fn(x)
        if x.shape[0] != n and probs.shape[0] == x.shape[0]:
            probs, emb = probs[:n], None if emb is None else emb[:n]
        return _check_output(probs, n, len(self.labels), str(self.path)), emb


# Largest LiteRT piece: on the 2-core machine a window of the shipped model cost the same from 1
# to 32 windows per call (0.16-0.17 ms) and 1.3 times that at 64 (benchmarks/RESULTS.md,
# "Batches as power-of-two pieces").
LITERT_PIECE = 32


def power_of_two_pieces(n: int, largest: int) -> list[int]:
    """``n`` windows as power-of-two pieces, largest first, none above ``largest`` (a power of two).

    45 windows with ``largest`` 32 run as 32 + 8 + 4 + 1, where padding would run 64.
    """
    if largest < 1 or largest & (largest - 1):
        raise ValueError(f"largest must be a power of two. Received: {largest}")
    if n < 0:
        raise ValueError(f"n must not be negative. Received: {n}")
    pieces = [largest] * (n // largest)
    rest = n % largest
    while rest:
        size = 1 << (rest.bit_length() - 1)
        pieces.append(size)
        rest -= size
    return pieces


def pad_to_bucket(batch: np.ndarray) -> tuple[np.ndarray, int]:
    """``batch`` as float32, zero-padded to the next power of two windows; and its real length.

    Runtimes that specialise on the batch size (a LiteRT interpreter per size, a
    JAX compilation per shape) then see at most log2(max batch) sizes.
    """
    x = np.ascontiguousarray(batch, dtype=np.float32)
    n = x.shape[0]
    bucket = 1 << max(0, (n - 1).bit_length())
    if bucket != n:
        x = np.concatenate([x, np.zeros((bucket - n, *x.shape[1:]), np.float32)])
    return x, n


def _as_pair(out: object) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities, embedding or None) from a one- or two-output model call."""
    if isinstance(out, (list, tuple)):
        return np.asarray(out[0]), np.asarray(out[1])
    return np.asarray(out), None


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is visible, without importing TensorFlow or JAX."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi") is not None and os.path.exists("/proc/driver/nvidia")


def _keras_importable() -> bool:
    return importlib.util.find_spec("keras") is not None and (
        importlib.util.find_spec("tensorflow") is not None or importlib.util.find_spec("jax") is not None
    )


def load_classifier(bundle: ModelBundle, backend: str = "auto", num_threads: int = 1) -> Classifier:
    """Load the bundle's model on the asked runtime.

    ``auto`` takes Keras when a GPU is visible and Keras can run there, else LiteRT
    (or Keras when the bundle has no ``.tflite``).

    Raises:
        ModelError: the bundle lacks the file that backend needs, or it is unusable.
        BackendUnavailable: the runtime is not installed.
    """
    if backend == AUTO:
        if bundle.keras_file is not None and gpu_visible() and _keras_importable():
            backend = "keras"
        elif bundle.tflite_file is not None:
            backend = "litert"
        else:
            backend = "keras"
        log.info("backend auto: chose %s", backend)
    entry = BACKENDS.get(backend)
    if entry is None:
        raise ModelError(f"unknown backend {backend!r}: choose {or_list(backend_choices())}")
    path = getattr(bundle, entry.model_file)
    if path is None:
        raise ModelError(f"{bundle.directory}: no {entry.suffix} model for the {backend} backend "
                         f"(try --backend {entry.instead})")
    clf: Classifier = load_backend_class(entry)(path, bundle.labels, bundle.input_shape, num_threads)
    clf.bundle = bundle  # type: ignore[attr-defined]  # so replay_audio knows the front end
    return clf
