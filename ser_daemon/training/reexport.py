"""Give a bundle exported before personal profiles existed its embedding output and head.

``python -m ser_daemon.training.reexport models/default`` rewrites
``model.tflite`` from ``model.keras`` with the embedding as a second output (same
quantisation as before, so the probabilities are unchanged; this is checked)
and stores the head's weights in ``ser_model.json``.  Needs TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..model.bundle import MODEL_FILE, file_checksums, load_bundle
from .train import _convert, head_metadata, tflite_predictor, with_embedding_output

__all__ = ["reexport"]


def reexport(directory: Path) -> float:
    """Rewrite the bundle in ``directory``; return the largest probability change (should be ~0)."""
    import keras

    bundle = load_bundle(directory)
    if bundle.keras_file is None or bundle.tflite_file is None:
        raise SystemExit(f"{directory}: needs both model.keras and model.tflite")
    meta = dict(bundle.metadata)
    model = keras.saving.load_model(str(bundle.keras_file), compile=False)
    quantized = (meta.get("export") or {}).get("tflite_choice", "float") == "dynamic"
    x = np.random.default_rng(0).normal(-8.0, 3.0, (16, *bundle.input_shape)).astype(np.float32)
    before = tflite_predictor(bundle.tflite_file)(x)
    tmp = bundle.tflite_file.with_suffix(".tflite.tmp")
    tmp.write_bytes(_convert(with_embedding_output(model), quantized))
    after = tflite_predictor(tmp)(x)
    change = float(np.max(np.abs(after - before)))
    tmp.replace(bundle.tflite_file)
    meta["head"] = head_metadata(model)
    meta["sha256"] = file_checksums(directory, meta.get("files") or {})  # the .tflite was rewritten
    (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return change


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ser_daemon.training.reexport", description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path)
    args = p.parse_args(argv)
    change = reexport(args.bundle)
    print(f"{args.bundle}: embedding output added; largest probability change {change:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
