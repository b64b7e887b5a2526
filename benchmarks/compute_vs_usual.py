"""Per-decision compute: ser-daemon's streaming path against the usual tutorial pipeline.

Both run in this process on the same audio (the bundled speech recording, looped) and the
same trained model:

- ours: 48 kHz capture blocks of 20 ms -> stateful resampling -> incremental log-mel (only the
  frames each hop adds) -> voice gate -> one inference -> smoothing -> expression mapping ->
  OSC packets and JSON encoded.  Timed from the first block of a hop to the encoded messages.
- usual: every hop, librosa's melspectrogram over the whole 2 s window (already at 16 kHz,
  which favours it) and Keras ``model.predict`` on it, as most speech-emotion tutorials do.

Usage: python benchmarks/compute_vs_usual.py [--seconds 120] [--model DIR]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ser_daemon.app.math_threads import limit_math_threads  # noqa: E402

limit_math_threads()  # one BLAS thread, as the ser-daemon command sets before numpy loads

import numpy as np
from _util import default_model, demo_audio, git_rev, machine, save, stats_ms


def run_ours(bundle, classifier, audio48: np.ndarray, hop_ms: float = 250.0, profile=None,
             mood: bool = False) -> list[float]:
    from ser_daemon.core.settings import AnalysisSettings
    from ser_daemon.outputs.mapping import load_mapping
    from ser_daemon.outputs.messages import dumps, generic_osc_messages, osc_packets, state_json
    from ser_daemon.model.analyzer import Analyzer
    from ser_daemon.core.pipeline import StreamProcessor

    settings = AnalysisSettings(hop_ms=hop_ms, drop_stale=False)
    proc = StreamProcessor("bench", bundle.labels, bundle.features, bundle.window_s, settings, 48000,
                           speaker_norm=bundle.speaker_norm, profile=profile)
    analyzer = Analyzer(classifier)
    mapping = load_mapping(None, bundle.labels)
    stage = None
    if mood:  # --mood: the tracker, its events and their messages on every decision
        from ser_daemon.core.mood_stage import MoodStage
        from ser_daemon.outputs.mood_messages import generic_mood_osc_update, update_messages

        stage = MoodStage(bundle.labels, bundle.features.sample_rate)
    block = 960  # 20 ms at 48 kHz
    per_decision: list[float] = []
    acc = 0.0
    for i in range(0, len(audio48) - block + 1, block):
        t0 = time.perf_counter()
        due = proc.feed(audio48[i : i + block], i, lambda idx: 0.0)
        for state in analyzer.decide((proc, d) for d in due):
            weights = mapping.all_weights(state.smoothed)
            osc_packets(generic_osc_messages(state))
            dumps(state_json(state, weights=weights))
            if stage is not None:
                update = stage.update(state)
                osc_packets(generic_mood_osc_update(update))
                for message in update_messages(update):
                    dumps(message)
        acc += time.perf_counter() - t0
        if due:
            per_decision.append(acc * 1000.0)
            acc = 0.0
    return per_decision[1:]  # the first includes one-off warm-up


def run_usual(bundle, model, audio16: np.ndarray, hop_ms: float = 250.0) -> list[float]:
    import librosa

    sr = 16000
    win = int(bundle.window_s * sr)
    hop = int(hop_ms / 1000 * sr)
    times = []
    for end in range(win, len(audio16) + 1, hop):
        t0 = time.perf_counter()
        y = audio16[end - win : end]
        mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=512, win_length=400, hop_length=160, center=False,
                                             n_mels=64, fmin=50.0, fmax=8000.0)
        x = np.log(mel.T + 1e-6)[None].astype(np.float32)
        probs = model.predict(x, verbose=0)
        int(np.argmax(probs))
        times.append((time.perf_counter() - t0) * 1000.0)
    return times[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120.0, help="audio per variant (decisions = seconds * 4)")
    ap.add_argument("--model", help="model bundle (default: the shipped one)")
    args = ap.parse_args()

    from scipy.signal import resample_poly

    from ser_daemon.model.inference import load_classifier
    from ser_daemon.model.bundle import load_bundle

    bundle = load_bundle(args.model or default_model())
    audio16 = demo_audio(args.seconds)
    audio48 = resample_poly(audio16, 3, 1).astype(np.float32)

    results: dict[str, dict] = {}
    for name, threads in (("ours: LiteRT, 1 thread", 1), ("ours: LiteRT, 2 threads", 2)):
        clf = load_classifier(bundle, "litert", num_threads=threads)
        results[name] = stats_ms(run_ours(bundle, clf, audio48))
        print(f"{name:32s} {results[name]}")
    name = "ours: LiteRT, 1 thread, --mood"
    results[name] = stats_ms(run_ours(bundle, load_classifier(bundle, "litert", num_threads=1), audio48, mood=True))
    print(f"{name:32s} {results[name]}")
    # The profile row runs before TensorFlow is loaded, as in the daemon on LiteRT: after the
    # Keras row TensorFlow's idle worker threads put 4-5 ms stalls into its p99.
    if bundle.head is not None:
        # A personal profile (baseline + head) fitted on the demo audio itself: only its cost matters here.
        from ser_daemon.profiles.enroll import Take, fit_profile

        clf = load_classifier(bundle, "litert", num_threads=1)
        half = len(audio16) // 2
        profile = fit_profile(bundle, clf, [Take("neutral", audio16[:half]), Take("happy", audio16[half:])])
        name = "ours: LiteRT, 1 thread, profile"
        results[name] = stats_ms(run_ours(bundle, clf, audio48, profile=profile))
        print(f"{name:32s} {results[name]}")
    name = "ours: Keras tf.function"
    results[name] = stats_ms(run_ours(bundle, load_classifier(bundle, "keras", num_threads=1), audio48))
    print(f"{name:32s} {results[name]}")
    keras_model = load_classifier(bundle, "keras").model
    results["usual: librosa + model.predict"] = stats_ms(run_usual(bundle, keras_model, audio16))
    print(f"{'usual: librosa + model.predict':32s} {results['usual: librosa + model.predict']}")
    base = results["ours: LiteRT, 1 thread"]
    usual = results["usual: librosa + model.predict"]
    ratio = {"median": round(usual["median"] / base["median"], 1), "p99": round(usual["p99"] / base["p99"], 1)}
    print(f"usual / ours (LiteRT, 1 thread): median {ratio['median']}x, p99 {ratio['p99']}x")
    save("compute_vs_usual", {"machine": machine(), "git": git_rev(), "model": bundle.name,
                              "model_dir": str(bundle.directory), "seconds": args.seconds, "results_ms": results,
                              "ratio_usual_over_ours": ratio})


if __name__ == "__main__":
    main()
