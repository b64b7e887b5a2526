"""``ser-eval``: speaker-independent evaluation of a model bundle, or a speaker k-fold.

Score a bundle on any folder in a supported layout::

    ser-eval --model models/default --data my_recordings/ --out eval_out

Clips of speakers the model was trained on (listed in its metadata) are left
out unless ``--include-train-speakers`` is given, so the figures stay
speaker-independent.  Writes ``report.json``, ``report.txt`` and
``confusion_matrix.png`` (clip level) to ``--out`` and prints the text.

Score what a viewer of the avatar sees: conversation-like recordings per
speaker (segments of 2-4 clips of one emotion, pauses kept, shuffled order)
replayed through the daemon's streaming pipeline (see ``timeline.py``)::

    ser-eval --timeline --data ../shared/data/ravdess --speakers Actor_17,Actor_18,Actor_19,Actor_20
    ser-eval --timeline --data ../shared/data/emovo --merge calm=neutral --no-streaming

Cross-validate the training recipe by speaker (trains K models)::

    ser-eval --cv 4 --data ../shared/data/ravdess --exclude-speakers Actor_17,Actor_18,Actor_19,Actor_20
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from ..model.backends import backend_choices
from .cli_args import csv_list, label_map

__all__ = ["main", "build_parser"]

log = logging.getLogger("ser_daemon.training")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ser-eval", description="Speaker-independent evaluation of a speech-emotion model.")
    p.add_argument("--data", required=True, nargs="+", action="extend",
                   help="data folder(s) or CSV manifest(s); several are scored together")
    p.add_argument("--layout", default="auto",
                   choices=["auto", "manifest", "ravdess", "emovdb", "emovdb-sorted", "folders"])
    p.add_argument("--model", default=None, help="model bundle folder or shipped model name (default: the shipped default)")
    p.add_argument("--out", default="ser-eval-report", help="folder for report.json, report.txt, confusion_matrix.png")
    p.add_argument("--speakers", type=csv_list, default=[], help="only these speakers")
    p.add_argument("--exclude-speakers", type=csv_list, default=[], help="leave these speakers out")
    p.add_argument("--include-train-speakers", action="store_true",
                   help="also score speakers the model trained on (not speaker-independent!)")
    p.add_argument("--label-map", type=label_map, default={}, help="data_label=model_label,... renames")
    p.add_argument("--backend", default="litert", choices=backend_choices(auto=False))
    p.add_argument("--no-streaming", action="store_true", help="skip the per-clip streaming replay")
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help="replay with the hop, gate and smoothing settings of this daemon config file "
                        "(default: the daemon's defaults)")
    p.add_argument("--timeline", action="store_true",
                   help="also replay conversation-like recordings per speaker and score what the face shows")
    p.add_argument("--timeline-seed", type=int, default=0, help="with --timeline: seed of the segment order")
    p.add_argument("--timeline-draws", type=int, default=1, metavar="N",
                   help="with --timeline: also replay N segment orders (seeds from --timeline-seed) and report "
                        "the headline figures' mean, spread and range")
    p.add_argument("--timeline-pause-s", type=float, default=0.0, metavar="S",
                   help="with --timeline: at least this much silence between two clips' speech, added where a "
                        "clip's own silence is shorter (default 0: clips as they are; nEMO's are cut at the speech)")
    p.add_argument("--settle-s", type=float, default=2.0,
                   help="with --timeline: decisions this far into a segment (and voiced) are scored")
    p.add_argument("--merge", type=label_map, default={},
                   help="with --timeline: label=label,... merged for scoring, truth and shown alike (e.g. calm=neutral)")
    p.add_argument("--enroll", type=int, default=None, metavar="K",
                   help="also score personal profiles: per speaker, enroll with 1..K clips per class and with "
                        "neutral clips only, score the speaker's other clips (timeline and clip) against no profile")
    p.add_argument("--enroll-l2", type=float, default=None, metavar="X",
                   help="with --enroll: pull of the personal head toward the shipped one (default: the daemon's)")
    p.add_argument("--enroll-labels", type=lambda v: [x.strip() for x in v.split(",") if x.strip()], default=None,
                   metavar="L1,L2,...",
                   help="with --enroll: make the K-clip profiles from these classes only (e.g. neutral,happy,angry, "
                        "the README's example) and report the recall of the recorded and the unrecorded classes")
    p.add_argument("--enroll-draws", type=int, default=1, metavar="N",
                   help="with --enroll: repeat with N draws of enrollment clips (seeds from --timeline-seed) and "
                        "report means and the gain's spread (one draw of four speakers moves by about 3 points)")
    p.add_argument("--cv", type=int, default=0, help="speaker k-fold of the training recipe instead (trains K models)")
    p.add_argument("--epochs", type=int, default=None, help="with --cv: epochs per fold")
    p.add_argument("--cache", default=None, help="with --cv: feature cache folder")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def _run_cv(args: argparse.Namespace, clips: list, argv: Sequence[str] | None) -> int:  # type: ignore[type-arg]
    from dataclasses import replace

    from ..core.features import FeatureConfig
    from ..model.bundle import load_bundle
    from .evaluate import write_json
    from .train import TrainConfig, build_feature_set, configure_tensorflow, cross_validate

    cfg = TrainConfig()
    features = FeatureConfig()
    if args.model:
        bundle = load_bundle(args.model)
        stored = (bundle.metadata.get("training") or {}).get("config")
        if stored:
            cfg = TrainConfig.from_dict(stored)
        features = bundle.features
    if args.epochs is not None:
        cfg = replace(cfg, epochs=args.epochs)
    configure_tensorflow(args.threads)
    labels = sorted({c.label for c in clips})
    fs = build_feature_set(clips, labels, features, cfg, cache_dir=args.cache,
                           progress=None if args.quiet else sys.stderr)
    cv = cross_validate(fs, cfg, args.cv, log_fn=print, verbose=0 if args.quiet else 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "ser-eval " + " ".join(sys.argv[1:] if argv is None else list(argv))
    write_json({"cross_validation": cv, "config": cfg.to_dict(), "command": command}, out / "report.json")
    print(f"k-fold ({args.cv}) by speaker: "
          f"window acc {cv['window_accuracy']['mean']:.3f} ± {cv['window_accuracy']['std']:.3f}, "
          f"window macro-F1 {cv['window_macro_f1']['mean']:.3f} ± {cv['window_macro_f1']['std']:.3f}, "
          f"clip acc {cv['clip_accuracy']['mean']:.3f} ± {cv['clip_accuracy']['std']:.3f}, "
          f"clip macro-F1 {cv['clip_macro_f1']['mean']:.3f} ± {cv['clip_macro_f1']['std']:.3f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for flag, value in (("--enroll-draws", args.enroll_draws), ("--timeline-draws", args.timeline_draws)):
        if value < 1:
            print(f"ser-eval: {flag} must be at least 1, not {value}", file=sys.stderr)
            return 2
    if not 0.0 <= args.timeline_pause_s <= 60.0:
        print(f"ser-eval: --timeline-pause-s must be between 0 and 60 seconds, not {args.timeline_pause_s}",
              file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from ..errors import SerError
    from ..model.bundle import load_bundle, model_dir_or_default
    from .datasets import load_dataset

    try:
        clips = [c for root in args.data for c in load_dataset(root, args.layout)]
    except SerError as exc:
        print(f"ser-eval: {exc}", file=sys.stderr)
        return 2
    if args.speakers:
        clips = [c for c in clips if c.speaker in set(args.speakers)]
    clips = [c for c in clips if c.speaker not in set(args.exclude_speakers)]
    if not clips:
        print("ser-eval: no clips left after the speaker filters", file=sys.stderr)
        return 2
    if args.cv:
        return _run_cv(args, clips, argv)

    from ..model.inference import load_classifier
    from .evaluate import evaluate_predictions, map_labels, streaming_eval, write_reports
    from .train import TrainConfig, TrimConfig, build_feature_set

    try:
        bundle = load_bundle(model_dir_or_default(args.model))
        clf = load_classifier(bundle, backend=args.backend)
        settings = None
        if args.config:
            from ..app.options import analysis_settings_from_file

            settings = analysis_settings_from_file(args.config)
    except SerError as exc:
        print(f"ser-eval: {exc}", file=sys.stderr)
        return 2
    labels = list(bundle.labels)
    trained_on = set((bundle.metadata.get("training") or {}).get("train_speakers") or [])
    seen: list[str] = []
    if trained_on and not args.include_train_speakers:
        seen = sorted({c.speaker for c in clips if c.speaker in trained_on})
        if seen:
            log.info("leaving out %d speakers the model trained on: %s", len(seen), ", ".join(seen))
        clips = [c for c in clips if c.speaker not in trained_on]
    # A model trained with --merge (calm=neutral) is scored on the data merged the same way.
    trained_merge = bundle.label_merge
    if trained_merge:
        log.info("the model was trained with classes merged: %s; the data is scored the same way", trained_merge)
    clips, skipped = map_labels(clips, labels, {**trained_merge, **args.label_map})
    if skipped:
        log.info("leaving out clips with labels the model does not know: %s", skipped)
    if not clips:
        why = "all speakers seen in training, or unknown labels"
        if seen:
            # The shipped weights learned every speaker in ../shared; their held-out twin did not.
            why = (f"the model trained on {', '.join(seen)}; score a model trained without them (for the"
                   " shipped model: models/heldout, its recipe without RAVDESS 17-20 and EMOVO f3, m3)"
                   " or pass --include-train-speakers")
        print(f"ser-eval: no clips left to score ({why})", file=sys.stderr)
        return 2
    stored = (bundle.metadata.get("training") or {}).get("config") or {}
    trim = TrimConfig(**stored["trim"]) if "trim" in stored else TrimConfig()
    cfg = TrainConfig(window_s=bundle.window_s, trim=trim)
    progress = None if args.quiet else sys.stderr
    fs = build_feature_set(clips, labels, bundle.features, cfg, augment=False, progress=progress)
    if bundle.speaker_norm is not None:
        # Window and clip figures normalise each speaker by the reference of all
        # their clips (what the live estimate converges to); the streaming replay
        # starts every clip from the model's prior instead, as a new voice does.
        from .train import apply_speaker_norm

        fs, _ = apply_speaker_norm(fs, cfg.seed)
    probs = np.concatenate([clf.predict(fs.x[i : i + 64].astype(np.float32)) for i in range(0, len(fs.y), 64)])
    index = {lab: i for i, lab in enumerate(labels)}
    reports = evaluate_predictions(probs, fs.y, fs.clip, np.array([index[c.label] for c in clips]), labels)
    reports["command"] = "ser-eval " + " ".join(sys.argv[1:] if argv is None else list(argv))
    reports["model"] = str(bundle.directory)
    reports["data"] = [str(d) for d in args.data]
    reports["speakers"] = sorted({c.speaker for c in clips})
    reports["skipped_labels"] = skipped
    if not args.no_streaming:
        reports["streaming"] = streaming_eval(clips, clf, labels, sample_rate=bundle.features.sample_rate,
                                              settings=settings, progress=progress)
    if args.timeline:
        from .timeline import evaluate_timeline_draws

        score = evaluate_timeline_draws(clips, clf, args.timeline_draws, settings=settings, seed=args.timeline_seed,
                                        settle_s=args.settle_s, merge=args.merge, progress=progress,
                                        min_pause_s=args.timeline_pause_s)
        reports["timeline"] = score.to_dict()
    if args.enroll is not None:
        from .enroll_eval import evaluate_enrollment

        try:
            enroll = evaluate_enrollment(clips, clf, args.enroll, settings=settings, seed=args.timeline_seed,
                                         draws=args.enroll_draws, settle_s=args.settle_s, merge=args.merge,
                                         l2=args.enroll_l2, enroll_labels=args.enroll_labels,
                                         progress=progress)
        except SerError as exc:
            print(f"ser-eval: {exc}", file=sys.stderr)
            return 2
        reports["enroll"] = enroll
    spk = reports["speakers"]
    who = ", ".join(spk) if len(spk) <= 4 else f"{len(spk)} speakers"
    data_names = "+".join(Path(d).name for d in args.data)
    paths = write_reports(args.out, reports, f"{bundle.name} on {data_names}, unseen: {who}")
    print(paths["txt"].read_text(encoding="utf-8"))
    print(f"reports in {Path(args.out)}: {', '.join(p.name for p in paths.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
