"""Several trained models averaged into one graph: ``python -m ser_daemon.training.ensemble``.

Why: each training run of the same recipe is one draw; on the validation
speakers single runs differed by 3 points, and the average of three networks
was better than the mean of their single scores by 2.3 timeline points in
English and 3.3 in Italian (model card).  The network costs 0.6 ms of a 5 ms
budget, so three of them fit.

The average is ``softmax(mean of the members' logits)``, the normalised
geometric mean of their probabilities.  That is again one linear head over
one embedding -- the members' embeddings side by side, each member's head
weights divided by the number of members -- so the daemon, the LiteRT export
and personal profiles (which refit that head) treat it as any other model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["build_ensemble", "check_members", "joined_training", "member_weights", "pooled_reference", "main"]


def build_ensemble(members: Sequence[Any], name: str = "ser_cnn_ensemble",
                   weights: Sequence[float] | None = None) -> Any:
    """One Keras model whose ``probs`` are the softmax of the members' mean logits.

    The members must share their input shape and labels; each keeps its own
    layers (renamed ``member1``, ``member2``, ...) up to its embedding.
    ``weights`` (positive, normalised to sum 1) make it a weighted mean: a member that is itself
    an average of three networks can count three times.
    """
    import keras
    from keras import layers

    from ..model.inference import embedding_output

    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members. Received: {len(members)}")
    w = member_weights(weights, len(members))
    shape = tuple(members[0].input.shape[1:])
    inp = keras.Input(shape=shape, name="log_mel")
    embeddings, kernels, biases = [], [], []
    for i, m in enumerate(members, start=1):
        if tuple(m.input.shape[1:]) != shape:
            raise ValueError(f"member {i} takes {tuple(m.input.shape[1:])}, member 1 takes {shape}")
        trunk = keras.Model(m.input, embedding_output(m), name=f"member{i}")
        embeddings.append(trunk(inp))
        k, b = m.get_layer("probs").get_weights()
        kernels.append(k)
        biases.append(b)
    if len({b.shape for b in biases}) != 1:
        raise ValueError(f"members have different numbers of labels: {[len(b) for b in biases]}")
    joined = layers.Concatenate(name="embedding")(embeddings)
    head = layers.Dense(len(biases[0]), activation="softmax", name="probs")
    out = head(joined)
    head.set_weights([np.concatenate([k * wi for k, wi in zip(kernels, w)], axis=0),
                      np.sum([b * wi for b, wi in zip(biases, w)], axis=0)])
    return keras.Model(inp, out, name=name)


def member_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    """The members' weights, summing to 1 (equal when None); ValueError for a wrong count or a weight <= 0."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray([float(v) for v in weights], dtype=np.float64)
    if len(w) != n:
        raise ValueError(f"give one weight per member: {n} members, {len(w)} weights")
    if not np.all(np.isfinite(w)) or not np.all(w > 0):
        raise ValueError(f"weights must be positive numbers. Received: {list(weights)}")
    return w / w.sum()


def pooled_reference(bundles: Sequence[Any], weights: np.ndarray) -> Any:
    """One speaker reference for members trained on different populations: the weighted mean prior.

    Each member subtracts a speaker's own mean voiced spectrum; the prior is only where a new
    stream's running reference starts (3 s of weight), so members whose training populations
    differ (another corpus) can share one start.  Their other settings must agree.
    """
    from ..core.speaker_norm import SpeakerNormSettings
    from ..errors import ModelError

    norms = [b.speaker_norm for b in bundles]
    if any(n is None for n in norms):
        if all(n is None for n in norms):
            return None
        raise ModelError("some members use a speaker reference and some do not: they cannot be pooled")
    first = norms[0]
    for b, n in zip(bundles[1:], norms[1:]):
        if (n.kind, n.prior_frames, n.max_frames) != (first.kind, first.prior_frames, first.max_frames):
            raise ModelError(f"{b.name!r} and {bundles[0].name!r} form their speaker references differently")
    prior = np.sum([np.asarray(n.prior, np.float64) * wi for n, wi in zip(norms, weights)], axis=0)
    return SpeakerNormSettings(tuple(float(v) for v in prior), first.prior_frames, first.max_frames, first.kind)


def check_members(bundles: Sequence[Any], pool_references: bool = False) -> None:
    """Refuse members that would not read the same windows the same way (labels, front end, reference).

    With ``pool_references`` members may start their speaker reference from different priors
    (:func:`pooled_reference`).
    """
    from ..errors import ModelError

    first = bundles[0]
    for b in bundles[1:]:
        if list(b.labels) != list(first.labels):
            raise ModelError(f"{b.name!r} has labels {list(b.labels)}, {first.name!r} {list(first.labels)}")
        if b.features.to_dict() != first.features.to_dict() or b.window_s != first.window_s:
            raise ModelError(f"{b.name!r} and {first.name!r} have different feature settings or windows")
        if pool_references:
            continue
        if (b.speaker_norm is None) != (first.speaker_norm is None) or (
            b.speaker_norm is not None
            and not np.allclose(b.speaker_norm.prior, first.speaker_norm.prior, atol=1e-4)
        ):
            raise ModelError(f"{b.name!r} and {first.name!r} were trained with different speaker references "
                             "(different speakers or normalisation): their windows would not match "
                             "(--pool-references starts one reference from their weighted mean prior)")


def joined_training(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The members' ``training`` records as one: who the average learned from, and who none of them heard.

    Members trained on different populations (one with nEMO) must not hide the others' speakers and corpora:
    the card and the tests read ``train_speakers`` to know whom the weights never heard.  The first member's
    record gives everything else (recipe, config).
    """
    out = dict(records[0]) if records else {}
    trained: list[str] = []
    held: list[str] = []
    roots: list[str] = []
    speakers: dict[str, int] = {}
    for r in records:
        trained += [s for s in r.get("train_speakers", []) if s not in trained]
        held += [s for s in r.get("heldout_speakers", []) if s not in held]
        data = r.get("data") or {}
        roots += [d for d in data.get("root", []) if Path(d).name not in {Path(seen).name for seen in roots}]
        speakers.update(data.get("speakers", {}))
    if any("train_speakers" in r for r in records):
        out["train_speakers"] = trained
        out["heldout_speakers"] = [s for s in held if s not in trained]
        out["trained_on_heldout"] = any(r.get("trained_on_heldout") for r in records)
    if roots:
        data = {**(records[0].get("data") or {}), "root": roots, "speakers": speakers,
                "clips": int(sum(speakers.values())) if speakers else (records[0].get("data") or {}).get("clips")}
        names = {Path(root).name for root in roots}  # one corpus may be spelled by several paths
        whole = [r["data"] for r in records if {Path(d).name for d in (r.get("data") or {}).get("root", [])} == names]
        if whole:
            data["labels"] = whole[0].get("labels", {})  # a member that read every corpus counts every clip
        else:
            data.pop("labels", None)
        out["data"] = data
    return out


def _member_record(bundle: Any, folder: str | Path) -> dict[str, Any]:
    """What the card and a reader need of a member: its name, folder, network, seed, time and command."""
    tr = dict(bundle.metadata.get("training") or {})
    cfg = tr.get("config", {})
    inner = tr.get("ensemble") or []  # a member that is itself an average
    seed = [m.get("seed") for m in inner] if inner else cfg.get("seed")  # a nested average: its networks' seeds
    return {"name": bundle.name, "folder": Path(folder).name, "model": cfg.get("model", {}), "seed": seed,
            "train_seconds": sum(float(m.get("train_seconds") or 0) for m in inner) if inner
            else tr.get("train_seconds"),
            "command": tr.get("command"), "networks": sum(int(m.get("networks") or 1) for m in inner) or 1,
            "members": [m.get("folder") or m.get("name") for m in inner]}


def main(argv: Sequence[str] | None = None) -> int:
    """Write the ensemble of the given bundles as a new bundle; exit 2 on members that do not match."""
    import keras

    from ..errors import ModelError
    from ..model.bundle import load_bundle
    from .train import configure_tensorflow, export_bundle

    p = argparse.ArgumentParser(prog="python -m ser_daemon.training.ensemble", description=__doc__.split("\n")[0])
    p.add_argument("members", nargs="+", help="bundle folders (ser_model.json + model.keras), 2 or more")
    p.add_argument("--out", required=True, help="folder for the new bundle")
    p.add_argument("--name", default=None, help="model name (default: the output folder's name)")
    p.add_argument("--quantize", choices=["float", "dynamic"], default="dynamic", help="LiteRT export")
    p.add_argument("--weights", default=None, metavar="W1,W2,...",
                   help="one positive weight per member for the mean of their logits (default: equal)")
    p.add_argument("--pool-references", action="store_true",
                   help="members trained on different populations: start the speaker reference from their "
                        "weighted mean prior")
    args = p.parse_args(argv)
    try:
        if len(args.members) < 2:
            raise ModelError("an ensemble needs at least 2 member bundles")
        try:
            weights = member_weights(None if args.weights is None else args.weights.split(","), len(args.members))
        except ValueError as exc:
            raise ModelError(f"--weights: {exc}") from None
        bundles = [load_bundle(m) for m in args.members]
        check_members(bundles, args.pool_references)
        norm = pooled_reference(bundles, weights) if args.pool_references else bundles[0].speaker_norm
        for b in bundles:
            if b.keras_file is None or not b.keras_file.exists():
                raise ModelError(f"{b.name!r} has no model.keras to build from")
    except ModelError as exc:
        print(f"ser ensemble: {exc}", file=sys.stderr)
        return 2
    configure_tensorflow()
    models = [keras.saving.load_model(b.keras_file, compile=False) for b in bundles]
    ensemble = build_ensemble(models, weights=weights)
    first = bundles[0]
    x = np.random.default_rng(0).normal(-6.0, 3.0, (64, *first.input_shape)).astype(np.float32)
    training = joined_training([b.metadata.get("training") or {} for b in bundles])
    training["ensemble"] = [{**_member_record(b, m), "weight": round(float(w), 6)}
                            for b, m, w in zip(bundles, args.members, weights)]
    training["command"] = "python -m ser_daemon.training.ensemble " + " ".join(
        [*(str(Path(m)) for m in args.members), "--out", str(args.out), "--quantize", args.quantize]
        + (["--name", args.name] if args.name else []) + (["--weights", args.weights] if args.weights else [])
        + (["--pool-references"] if args.pool_references else []))
    name = args.name or Path(args.out).name
    info = export_bundle(ensemble, args.out, name=name, labels=first.labels, feature_cfg=first.features,
                         window_s=first.window_s, check_x=x, quantize=args.quantize,
                         extra={"training": training}, speaker_norm=norm)
    chosen = info["tflite_candidates"][info["tflite_choice"]]
    print(json.dumps({"out": str(args.out), "members": [b.name for b in bundles], "tflite": info["tflite_choice"],
                      "bytes": chosen["bytes"], "max_abs_diff_vs_keras": chosen["max_abs_diff_vs_keras"],
                      "median_ms": chosen["timing"]["median_ms"], "p99_ms": chosen["timing"]["p99_ms"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
