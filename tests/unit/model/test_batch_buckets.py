"""Batches are padded to powers of two for runtimes that specialise on the batch size.

A GPU daemon serving many streams sees a different number of due windows every
tick; JAX compiles once per input shape (a second or more on a GPU), so without
buckets each new count would stall the tick that meets it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser_daemon.model.inference import load_classifier, pad_to_bucket, power_of_two_pieces
from ser_daemon.model.bundle import load_bundle


@pytest.mark.parametrize("n,bucket", [(1, 1), (2, 2), (3, 4), (5, 8), (64, 64), (65, 128), (1000, 1024)])
def test_pad_to_bucket(n: int, bucket: int) -> None:
    x = np.random.default_rng(n).normal(size=(n, 3, 2)).astype(np.float64)
    padded, real = pad_to_bucket(x)
    assert real == n and padded.shape == (bucket, 3, 2) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:n], x.astype(np.float32))
    assert not padded[n:].any()


@pytest.mark.needs_tf  # loads the Keras model
def test_keras_on_jax_sees_only_bucket_sizes_and_returns_the_real_rows(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="the tiny model is built with TensorFlow")
    from tiny_model import build_tiny_bundle

    bundle = load_bundle(build_tiny_bundle(tmp_path / "m", profiles=True))
    clf = load_classifier(bundle, backend="keras")
    real_fn = clf._fn
    seen: list[int] = []

    def recording(x: np.ndarray):  # type: ignore[no-untyped-def]
        seen.append(int(x.shape[0]))
        return real_fn(x)

    clf._fn = recording
    x = np.random.default_rng(0).normal(-6, 3, (5, *bundle.input_shape)).astype(np.float32)
    expected_probs, expected_emb = clf.predict_embedded(x)  # TensorFlow: one trace for any batch, no padding
    assert seen == [5]
    clf.keras_backend = "jax"  # the branch a GPU machine takes
    probs, emb = clf.predict_embedded(x)
    assert seen[-1] == 8 and probs.shape == (5, len(bundle.labels)) and emb.shape[0] == 5
    np.testing.assert_allclose(probs, expected_probs, atol=1e-6)
    np.testing.assert_allclose(emb, expected_emb, atol=1e-6)
    assert clf.predict(x[:3]).shape == (3, len(bundle.labels)) and seen[-1] == 4


def test_litert_gives_back_the_interpreters_of_large_batches_and_makes_them_again(tiny_bundle) -> None:
    """Issue 32: after a wave of streams the batch-64 interpreter stayed resident (a 41-74% step in memory)."""
    bundle = load_bundle(tiny_bundle)
    clf = load_classifier(bundle, backend="litert")
    x = np.random.default_rng(0).normal(size=(40, *clf.input_shape)).astype(np.float32)
    first = clf.predict(x)
    assert sorted(clf._by_batch) == [1, 8, 32]  # 40 windows run as 32 + 8, not padded to 64
    assert clf.release_batches_above(2) == 2 and sorted(clf._by_batch) == [1]
    assert clf.release_batches_above(1) == 0  # the interpreter made at load always stays
    np.testing.assert_allclose(clf.predict(x), first, rtol=1e-5, atol=1e-6)  # made again on demand


@pytest.mark.parametrize("n,largest,pieces", [(0, 32, []), (1, 32, [1]), (45, 32, [32, 8, 4, 1]), (64, 32, [32, 32]),
                                              (63, 32, [32, 16, 8, 4, 2, 1]), (7, 4, [4, 2, 1]), (5, 1, [1] * 5)])
def test_power_of_two_pieces(n: int, largest: int, pieces: list[int]) -> None:
    assert power_of_two_pieces(n, largest) == pieces


def test_power_of_two_pieces_refuses_what_it_cannot_split() -> None:
    with pytest.raises(ValueError, match="largest must be a power of two. Received: 24"):
        power_of_two_pieces(5, 24)
    with pytest.raises(ValueError, match="n must not be negative"):
        power_of_two_pieces(-1, 32)


def test_litert_pieces_give_each_window_what_it_gets_alone(profile_bundle) -> None:
    """Run as pieces, a window's outputs do not depend on how many others share its call."""
    bundle = load_bundle(profile_bundle)
    clf = load_classifier(bundle, backend="litert")
    x = np.random.default_rng(1).normal(-6, 3, (45, *clf.input_shape)).astype(np.float32)
    alone = np.concatenate([clf.predict(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(clf.predict(x), alone, rtol=1e-5, atol=1e-6)
    probs, emb = clf.predict_embedded(x[:13])
    np.testing.assert_allclose(probs, alone[:13], rtol=1e-5, atol=1e-6)
    assert emb.shape[0] == 13 and np.isfinite(emb).all()
    assert clf.predict(x[:0]).shape == (0, len(bundle.labels))
