"""``ser-train``: train the emotion CNN and write a model bundle.

Example (the shipped default model)::

    ser-train --data ../shared/data/ravdess --out models/default \\
        --holdout-speakers Actor_17,Actor_18,Actor_19,Actor_20 --cv-folds 4

With ``--holdout-speakers`` the model is trained without those speakers and
scored on them (window, clip and streaming level); the figures go into the
bundle's metadata and ``<out>/eval/``.  ``--cv-folds K`` first runs a
speaker k-fold over the remaining speakers.  ``--final-on-all`` then
retrains on every speaker and ships that model, keeping the held-out
figures of the model that did not see the held-out speakers.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from ..arguments import checked_float
from ..errors import ConfigError
from .cli_args import csv_list, label_map

__all__ = ["main", "build_parser"]

log = logging.getLogger("ser_daemon.training")

# A number in [0, 1] (argparse turns the error into exit 2).
_share = checked_float(0.0, 1.0, parse_error="takes a number in [0, 1], not {text!r}",
                       range_error="takes a number in [0, 1], not {text!r}")




def _lo_hi(text: str, example: str) -> tuple[float, float]:
    """``LO,HI`` as two numbers (argparse turns the error into exit 2)."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes LO,HI (e.g. {example}), not {text!r}") from None
    return lo, hi


def _warp_range(text: str) -> tuple[float, float]:
    """``LO,HI`` for --mel-warp."""
    lo, hi = _lo_hi(text, "0.9,1.1")
    if not 0.5 <= lo <= hi <= 2.0:
        raise argparse.ArgumentTypeError(f"needs 0.5 <= LO <= HI <= 2, not {text!r}")
    return lo, hi


def _float_range(text: str) -> tuple[float, float]:
    """``LO,HI`` seconds for --onset-speech-s."""
    lo, hi = _lo_hi(text, "0.25,1.5 seconds")
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"needs 0 < LO <= HI, not {text!r}")
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ser-train", description="Train the speech-emotion CNN and write a model bundle.")
    p.add_argument("--data", required=True, action="append",
                   help="data folder or CSV manifest (see ser_daemon.training.datasets); repeat for several corpora")
    p.add_argument("--layout", default="auto",
                   choices=["auto", "manifest", "ravdess", "emovdb", "emovdb-sorted", "folders"])
    p.add_argument("--out", required=True, help="output folder: the bundle (ser_model.json, model.keras, model.tflite)")
    p.add_argument("--name", default=None, help="model name stored in the bundle (default: the output folder's name)")
    p.add_argument("--holdout-speakers", type=csv_list, default=[],
                   help="comma-separated speakers never trained on; the model is scored on them")
    p.add_argument("--exclude-speakers", type=csv_list, default=[], help="speakers to ignore entirely")
    p.add_argument("--cv-folds", type=int, default=0, help="speaker k-fold over the training speakers first (0: skip)")
    p.add_argument("--final-on-all", action="store_true",
                   help="after the held-out evaluation, retrain on all speakers and ship that model")
    p.add_argument("--no-streaming", action="store_true", help="skip the streaming replay of held-out clips")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--width", type=int, default=None, help="channels of the first conv block")
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--merge", type=label_map, default={}, metavar="FROM=TO,...",
                   help="train classes FROM as TO (e.g. calm=neutral: one resting face for both); the bundle "
                        "records it and ser-eval applies it to the data")
    p.add_argument("--level-units", type=int, default=None,
                   help="width of the level branch: the loudest 80 ms per mel band against the speaker's reference, "
                        "which the per-window standardisation hides from the CNN (default 0: none; needs "
                        "--speaker-norm on)")
    p.add_argument("--copies", type=int, default=None, help="augmented copies per clip")
    p.add_argument("--mel-warp", default=None, metavar="LO,HI", type=_warp_range,
                   help="per-window stretch of the mel axis drawn from [LO, HI] every epoch (default 1,1: none); "
                        "makes the training voices more varied")
    p.add_argument("--mix-speakers", type=_share, default=None, metavar="SHARE",
                   help="share of windows averaged each epoch with a same-emotion window of another speaker "
                        "(default 0: none)")
    p.add_argument("--mixup", type=float, default=None, metavar="ALPHA",
                   help="mixup every epoch with weights from Beta(ALPHA, ALPHA) (default 0: none): windows and "
                        "targets of any two emotions averaged, the window itself weighing at least half")
    p.add_argument("--opus", dest="p_opus", type=_share, default=None, metavar="SHARE",
                   help="share of augmented copies sent through an Ogg Opus encoder and decoder at 16-70 kbit/s "
                        "(default 0: none), as voice chat codes a voice; nEMO is Opus-coded, the other corpora not")
    p.add_argument("--swa-epochs", type=int, default=None, metavar="N",
                   help="average the weights of the last N epochs (default 0: keep the last epoch's)")
    p.add_argument("--time-reverse", type=_share, default=None, metavar="SHARE",
                   help="share of windows played backwards each epoch (default 0: none): the voice without "
                        "the words of any language")
    p.add_argument("--window-norm", choices=["standardise", "centre"], default=None,
                   help="inside the model, per window: subtract the mean and divide by the spread (default), "
                        "or only subtract the mean (keeps how much the energy varies)")
    p.add_argument("--pooling", choices=["mean", "meanmax", "band", "attention"], default=None,
                   help="how the last conv block becomes the embedding: average over time and mel (default), "
                        "average beside maximum, average over time per mel band, or a learned weighting of the "
                        "frames over time (attention)")
    p.add_argument("--speaker-adversary", type=float, default=None, metavar="WEIGHT",
                   help="loss weight of a speaker classifier trained through a gradient reversal, which pushes "
                        "what names the speaker out of the CNN's features (default 0: none)")
    p.add_argument("--corpus-adversary", type=float, default=None, metavar="WEIGHT",
                   help="loss weight of a corpus classifier trained through a gradient reversal, which pushes "
                        "what tells the corpora (languages, codecs) apart out of the CNN's features (default 0: "
                        "none; not with --speaker-adversary)")
    p.add_argument("--affect-weight", type=float, default=None, metavar="WEIGHT",
                   help="loss weight of a second head that places each window's arousal and valence, so the "
                        "features keep what tells sad from calm (default 0: none; not with an adversary or "
                        "--mixup; only the emotion head is exported)")
    p.add_argument("--class-mask", dest="class_mask", action="store_true", default=None,
                   help="score each window only against the classes its corpus records, so a corpus without "
                        "calm or disgust teaches nothing about them (default off: with nEMO pooled it let calm "
                        "and disgust take over the other corpora's voices; see the model card)")
    p.add_argument("--no-class-mask", dest="class_mask", action="store_false",
                   help="every window against every class (the default)")
    p.add_argument("--corpus-share", action="append", default=[], metavar="CORPUS=SHARE",
                   help="draw only this share of a corpus's windows each epoch, afresh every epoch (e.g. "
                        "nemo=0.33), so a large corpus adds its voices without outweighing the others' "
                        "languages; repeatable (default: every window of every corpus)")
    p.add_argument("--window-s", type=float, default=None, help="seconds per window (must match the daemon)")
    p.add_argument("--mel-bands", type=int, default=None,
                   help="mel bands of the front end (default 64); stored in the bundle, the daemon follows it")
    p.add_argument("--frame-ms", type=float, default=None,
                   help="analysis window of the front end in ms (default 25); longer resolves the voice's "
                        "harmonics (pitch); the FFT size is the next power of two")
    p.add_argument("--edge", type=float, default=None,
                   help="how far training windows may reach past the speech, as a fraction of a window "
                        "(default 0.25; more trains on utterance onsets and tails, as the daemon sees them)")
    p.add_argument("--onset-windows", type=int, default=None,
                   help="per augmented copy of a clip, this many more windows holding only the first "
                        "0.25-1.5 s of the utterance behind the pause's background, as the daemon reads "
                        "after an utterance boundary (default 0)")
    p.add_argument("--onset-speech-s", type=_float_range, default=None,
                   help="LO,HI: seconds of speech an onset window holds (default 0.25,1.5)")
    p.add_argument("--quantize", default="auto", choices=["auto", "float", "dynamic"],
                   help="LiteRT export: float, dynamic-range quantized, or auto (measured)")
    p.add_argument("--speaker-norm", choices=["on", "off"], default="on",
                   help="subtract each speaker's mean voiced log-mel spectrum (the daemon keeps a live estimate "
                        "per stream); default on")
    p.add_argument("--eval-dir", default=None, help="folder for the held-out reports (default: <out>/eval)")
    p.add_argument("--cache", default=None, help="folder to cache computed features in (reused across runs)")
    p.add_argument("--threads", type=int, default=2, help="TensorFlow CPU threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress")
    return p


def _corpus_shares(specs: list[str]) -> dict[str, float]:
    """``["nemo=0.33"]`` -> ``{"nemo": 0.33}``; ``ValueError`` names the bad item."""
    out: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = float("nan")
        if not sep or not name.strip() or not 0.0 < share <= 1.0:
            raise ValueError(f"--corpus-share takes CORPUS=SHARE with a share in (0, 1], not {spec!r}")
        out[name.strip()] = share
    return out


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .train import TrainConfig

    cfg = TrainConfig()
    top = {k: getattr(args, k) for k in ("epochs", "batch_size", "learning_rate", "seed", "window_s", "edge",
                                         "speaker_adversary", "corpus_adversary", "swa_epochs",
                                         "class_mask", "onset_windows", "onset_speech_s", "affect_weight")}
    cfg = replace(cfg, **{k: v for k, v in top.items() if v is not None})
    if args.corpus_share:
        cfg = replace(cfg, corpus_share=_corpus_shares(args.corpus_share))
    model_args = {"width": args.width, "dropout": args.dropout, "level_units": args.level_units,
                  "window_norm": args.window_norm, "pooling": args.pooling}
    mo = {k: v for k, v in model_args.items() if v is not None}
    if mo:
        cfg = replace(cfg, model=replace(cfg.model, **mo))
    aug = {k: getattr(args, k) for k in ("copies", "mix_speakers", "mel_warp", "time_reverse", "mixup", "p_opus")}
    au = {k: v for k, v in aug.items() if v is not None}
    if au:
        cfg = replace(cfg, augment=replace(cfg.augment, **au))
    return cfg


def _feature_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ..core.features import FeatureConfig

    cfg = FeatureConfig()
    if args.mel_bands is not None:
        cfg = replace(cfg, n_mels=args.mel_bands)
    if args.frame_ms is not None:
        win = int(round(args.frame_ms * cfg.sample_rate / 1000))
        n_fft = 1 << max(0, win - 1).bit_length()
        cfg = replace(cfg, win_length=win, n_fft=max(n_fft, 2))
    return cfg


def _tf_version() -> str:
    import tensorflow as tf

    return str(tf.__version__)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t_start = time.perf_counter()
    import numpy as np

    from ..errors import SerError
    from .datasets import load_dataset, summarize
    from .evaluate import streaming_eval, write_reports
    from .train import (
        build_feature_set,
        configure_tensorflow,
        cross_validate,
        evaluate_windows,
        export_bundle,
        fit_model,
        head_metadata,
    )

    try:
        cfg = _config(args)
    except ValueError as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 2
    if cfg.model.level_units > 0 and args.speaker_norm == "off":
        print("ser-train: --level-units needs --speaker-norm on (a level against no reference is the microphone's gain)",
              file=sys.stderr)
        return 2
    if cfg.model.level_units < 0:
        print(f"ser-train: --level-units must be 0 or more, not {cfg.model.level_units}", file=sys.stderr)
        return 2
    if cfg.speaker_adversary < 0:
        print(f"ser-train: --speaker-adversary must be 0 or more, not {cfg.speaker_adversary}", file=sys.stderr)
        return 2
    if cfg.corpus_adversary < 0 or (cfg.corpus_adversary > 0 and cfg.speaker_adversary > 0):
        print(f"ser-train: --corpus-adversary must be 0 or more and cannot go with --speaker-adversary "
              f"(given {cfg.corpus_adversary})", file=sys.stderr)
        return 2
    if cfg.affect_weight < 0 or (cfg.affect_weight > 0 and (cfg.speaker_adversary > 0 or cfg.corpus_adversary > 0)):
        print(f"ser-train: --affect-weight must be 0 or more and cannot go with an adversary "
              f"(given {cfg.affect_weight})", file=sys.stderr)
        return 2
    if cfg.augment.mixup < 0 or (cfg.augment.mixup > 0 and (cfg.speaker_adversary > 0 or cfg.corpus_adversary > 0
                                                            or cfg.affect_weight > 0)):
        print(f"ser-train: --mixup must be 0 or more and cannot go with an adversary or --affect-weight "
              f"(given {cfg.augment.mixup})", file=sys.stderr)
        return 2
    if not 0 <= cfg.swa_epochs <= cfg.epochs:
        print(f"ser-train: --swa-epochs must be between 0 and --epochs ({cfg.epochs}), not {cfg.swa_epochs}",
              file=sys.stderr)
        return 2
    try:
        feature_cfg = _feature_config(args)
    except ConfigError as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    progress = None if args.quiet else sys.stderr
    try:
        clips = [c for root in args.data for c in load_dataset(root, args.layout)]
    except SerError as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 2
    clips = [c for c in clips if c.speaker not in set(args.exclude_speakers)]
    labels = sorted({c.label for c in clips})
    speakers = sorted({c.speaker for c in clips})
    unknown = [s for s in args.holdout_speakers if s not in speakers]
    if unknown:
        print(f"ser-train: held-out speakers not in the data: {unknown}; speakers are {speakers}", file=sys.stderr)
        return 2
    corpora = sorted({c.corpus for c in clips})
    if set(cfg.corpus_share) - set(corpora):
        print(f"ser-train: --corpus-share names {sorted(set(cfg.corpus_share) - set(corpora))}: not among the "
              f"corpora {corpora}", file=sys.stderr)
        return 2
    if cfg.affect_weight > 0:
        from .affect import affect_table

        try:  # before the features are built: the labels the network will learn, after --merge
            affect_table(sorted({args.merge.get(lab, lab) for lab in labels}))
        except ValueError as exc:
            print(f"ser-train: --affect-weight: {exc}", file=sys.stderr)
            return 2
    summary = summarize(clips)
    log.info("data: %d clips, %d speakers, labels %s", len(clips), len(speakers), summary["labels"])

    configure_tensorflow(args.threads)
    fs = build_feature_set(clips, labels, feature_cfg, cfg, cache_dir=args.cache, progress=progress)
    log.info("windows: %d (clean %d, augmented %d)", len(fs.y), int(np.sum(fs.version == 0)), int(np.sum(fs.version > 0)))
    if args.merge:
        try:
            fs = fs.merged(args.merge)
        except ValueError as exc:
            print(f"ser-train: --merge {exc}", file=sys.stderr)
            return 2
        clips, labels = fs.clips, fs.labels
        summary = summarize(clips)
        log.info("merged %s: labels %s", args.merge, summary["labels"])
    speaker_norm = None
    if args.speaker_norm == "on":
        from ..core.speaker_norm import SpeakerNormSettings
        from .train import apply_speaker_norm

        fs, prior = apply_speaker_norm(fs, cfg.seed, match_gain=cfg.model.level_units > 0)
        speaker_norm = SpeakerNormSettings(prior=tuple(float(v) for v in prior))
    spk = fs.speakers()
    holdout = np.isin(spk, args.holdout_speakers)
    train_speakers = [s for s in speakers if s not in args.holdout_speakers]
    verbose = 0 if args.quiet else 2
    results: dict[str, object] = {}

    if args.cv_folds:
        log.info("speaker %d-fold cross-validation over %d training speakers", args.cv_folds, len(train_speakers))
        cv = cross_validate(fs.select(~holdout), cfg, args.cv_folds, log_fn=log.info, verbose=verbose)
        results["cross_validation"] = cv
        log.info(
            "k-fold: clip acc %.3f ± %.3f, clip macro-F1 %.3f ± %.3f; window acc %.3f ± %.3f",
            cv["clip_accuracy"]["mean"], cv["clip_accuracy"]["std"], cv["clip_macro_f1"]["mean"],
            cv["clip_macro_f1"]["std"], cv["window_accuracy"]["mean"], cv["window_accuracy"]["std"],
        )

    log.info("training on %d speakers (%d windows), %d epochs", len(train_speakers), int(np.sum(~holdout)), cfg.epochs)
    t0 = time.perf_counter()
    # Without held-out speakers the whole set trains: no copy of it (three pooled corpora: 3 GB).
    model, history = fit_model(fs.select(~holdout) if holdout.any() else fs, cfg, verbose=verbose)
    train_s = time.perf_counter() - t0
    check = fs.select(holdout & (fs.version == 0)) if holdout.any() else fs.select(fs.version == 0)
    check_x = check.x[:400].astype(np.float32)
    check_y = check.y[:400] if holdout.any() else None
    name = args.name or out.name
    eval_dir = Path(args.eval_dir) if args.eval_dir else out / "eval"
    if holdout.any():
        heldout = evaluate_windows(model, fs.select(holdout))
        results["heldout"] = {"speakers": list(args.holdout_speakers), **heldout}
        log.info("held-out %s: window acc %.3f F1 %.3f | clip acc %.3f F1 %.3f", ",".join(args.holdout_speakers),
                 heldout["window"]["accuracy"], heldout["window"]["macro_f1"], heldout["clip"]["accuracy"],
                 heldout["clip"]["macro_f1"])
    shipped_speakers = train_speakers
    if args.final_on_all and holdout.any():
        staging = out / "heldout_model"
        export_bundle(model, staging, name=f"{name}-heldout", labels=labels, feature_cfg=feature_cfg,
                      window_s=cfg.window_s, check_x=check_x, check_y=check_y, quantize=args.quantize,
                      speaker_norm=speaker_norm)
        log.info("retraining on all %d speakers for the shipped model", len(speakers))
        t0 = time.perf_counter()
        model, history = fit_model(fs, cfg, verbose=verbose)
        train_s += time.perf_counter() - t0
        shipped_speakers = speakers
    extra = {
        "training": {
            "command": "ser-train " + " ".join(sys.argv[1:] if argv is None else list(argv)),
            "config": cfg.to_dict(),
            "merge": dict(args.merge),
            "data": {"root": [str(d) for d in args.data], "clips": len(clips), **summary},
            "train_speakers": shipped_speakers,
            "heldout_speakers": list(args.holdout_speakers),
            "trained_on_heldout": bool(args.final_on_all and holdout.any()),
            "windows": int(np.sum(~holdout)) if shipped_speakers is train_speakers else int(len(fs.y)),
            "epochs": cfg.epochs,
            "final_epoch": history[-1] if history else {},
            "train_seconds": round(train_s, 1),
            "tensorflow": _tf_version(),
        },
        "metrics": {
            k: ({"window": {kk: v["window"][kk] for kk in ("accuracy", "macro_f1")},
                 "clip": {kk: v["clip"][kk] for kk in ("accuracy", "macro_f1")},
                 "clip_per_class_f1": {lab: m["f1"] for lab, m in v["clip"]["per_class"].items()},
                 "speakers": v["speakers"]} if k == "heldout" else
                {kk: v[kk] for kk in ("k", "window_accuracy", "window_macro_f1", "clip_accuracy", "clip_macro_f1")})
            for k, v in results.items()  # type: ignore[union-attr]
        },
    }
    info = export_bundle(model, out, name=name, labels=labels, feature_cfg=feature_cfg, window_s=cfg.window_s,
                         check_x=check_x, check_y=check_y, quantize=args.quantize, extra=extra,
                         speaker_norm=speaker_norm)
    if holdout.any() and not args.no_streaming:
        from ..model.bundle import load_bundle, write_metadata
        from ..model.inference import load_classifier

        # Streaming figures always come from a model that never heard these speakers.
        scored = out / "heldout_model" if args.final_on_all else out
        held_clips = [c for c in clips if c.speaker in set(args.holdout_speakers)]
        clf = load_classifier(load_bundle(scored), backend="litert")
        stream = streaming_eval(held_clips, clf, labels, sample_rate=feature_cfg.sample_rate, progress=progress)
        results["heldout"]["streaming"] = stream  # type: ignore[index]
        extra["metrics"]["heldout"]["streaming"] = {  # type: ignore[index]
            "accuracy": stream["accuracy"], "macro_f1": stream["macro_f1"], "settle": stream["settle"]}
        extra["export"] = info
        extra["head"] = head_metadata(model)  # the rewrite must keep what export_bundle stored
        write_metadata(out, name=name, labels=labels, features=feature_cfg, window_s=cfg.window_s, extra=extra,
                       speaker_norm=speaker_norm)
    if args.final_on_all and holdout.any():
        shutil.rmtree(out / "heldout_model", ignore_errors=True)
    if "heldout" in results:
        reports = dict(results["heldout"])  # type: ignore[arg-type]
        if "cross_validation" in results:
            reports["cross_validation"] = results["cross_validation"]
        write_reports(eval_dir, reports, f"held-out speakers {','.join(args.holdout_speakers)}")
    elif "cross_validation" in results:
        eval_dir.mkdir(parents=True, exist_ok=True)
        from .evaluate import write_json

        write_json({"cross_validation": results["cross_validation"]}, eval_dir / "report.json")

    chosen = info["tflite_candidates"][info["tflite_choice"]]
    print("\n== ser-train summary ==", file=sys.stderr)
    print(f"bundle: {out}  (labels: {', '.join(labels)})", file=sys.stderr)
    print(f"trained on {len(shipped_speakers)} speakers, {cfg.epochs} epochs, {train_s:.0f} s training, "
          f"{time.perf_counter() - t_start:.0f} s total", file=sys.stderr)
    if history:
        print(f"last epoch: loss {history[-1].get('loss', float('nan')):.3f}, "
              f"train acc {history[-1].get('accuracy', float('nan')):.3f}", file=sys.stderr)
    if "cross_validation" in results:
        cv = results["cross_validation"]
        print(f"k-fold ({cv['k']}): clip acc {cv['clip_accuracy']['mean']:.3f} ± {cv['clip_accuracy']['std']:.3f}, "  # type: ignore[index]
              f"clip macro-F1 {cv['clip_macro_f1']['mean']:.3f} ± {cv['clip_macro_f1']['std']:.3f}", file=sys.stderr)  # type: ignore[index]
    if "heldout" in results:
        h = results["heldout"]
        print(f"held-out: window acc {h['window']['accuracy']:.3f} F1 {h['window']['macro_f1']:.3f}; "  # type: ignore[index]
              f"clip acc {h['clip']['accuracy']:.3f} F1 {h['clip']['macro_f1']:.3f}", file=sys.stderr)  # type: ignore[index]
        if "streaming" in h:  # type: ignore[operator]
            s = h["streaming"]  # type: ignore[index]
            print(f"streaming: clip acc {s['accuracy']:.3f} F1 {s['macro_f1']:.3f}, settle median "
                  f"{s['settle']['median_s']:.2f} s", file=sys.stderr)
    print(f"tflite: {info['tflite_choice']}, {chosen['bytes'] / 1024:.0f} KiB, "
          f"{chosen['timing']['median_ms']:.3f} ms/window median (p99 {chosen['timing']['p99_ms']:.3f}) on 1 thread",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
