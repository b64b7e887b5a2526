"""Training: features of augmented windows computed once, then a seeded Keras fit.

The pipeline (all seeded, so the same command gives the same model):

1. :func:`build_feature_set` loads every clip, finds its speech, and for the
   clean clip plus ``AugmentConfig.copies`` headset-like versions cuts
   windows of the daemon's length and computes :func:`ser_daemon.core.features.log_mel`.
   Each clip's randomness is derived from the seed and the clip's file name,
   so a clip gets the same windows whichever subset it is part of (k-fold
   runs reuse one cache).
2. :func:`fit_model` trains the CNN of :mod:`.model_def`; every epoch the
   windows get fresh SpecAugment masks; classes are balanced with weights.
3. :func:`export_bundle` writes ``model.keras``, ``model.tflite`` (float or
   dynamic-range quantized, chosen by measured agreement and speed) and
   ``ser_model.json`` through :func:`ser_daemon.model.bundle.write_metadata`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..audio.clips import TrimConfig, cut_windows, features_of, load_audio, speech_bounds, window_starts
from ..core.features import FeatureConfig, log_mel
from ..core.speaker_norm import LOG_PER_DB, frame_log_energy, voiced_frames
from .affect import affect_table
from .augment import AugmentConfig, augment_waveform, mix_speakers, mixup, spec_augment
from .datasets import Clip, corpus_labels
from .model_def import ModelConfig, build_model, with_affect_head, with_speaker_adversary
from .onset_windows import onset_windows

__all__ = [
    "with_embedding_output",
    "head_metadata",
    "TrainConfig",
    "FeatureSet",
    "build_feature_set",
    "configure_tensorflow",
    "fit_model",
    "export_bundle",
    "tflite_predictor",
    "keras_predictor",
    "time_tflite",
    "clip_windows",
    "class_weights",
    "speaker_folds",
    "evaluate_windows",
    "cross_validate",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained model (stored in the bundle).

    Attributes:
        seed: seed of all randomness.
        window_s: seconds per window (the daemon's window).
        train_hop_s: seconds between training windows within a clip.
        eval_hop_s: seconds between evaluation windows within a clip.
        edge: how far (fraction of a window) augmented training windows may reach
            past the speech at either end; above 0.25 the clip is first padded
            with faint noise so windows that hold only the onset or the tail of
            an utterance exist, as the daemon decides on them too.
        epochs: passes over the training windows.
        batch_size: windows per step.
        learning_rate: peak learning rate (cosine decay after a short warm-up).
        label_smoothing: cross-entropy label smoothing.
        balance: weight classes inversely to their window counts.
        model: CNN settings.
        augment: augmentation settings.
        trim: silence-trimming settings.
        speaker_adversary: loss weight of a speaker classifier trained through
            a gradient reversal on the pooled features (0: none); see
            :func:`~ser_daemon.training.model_def.with_speaker_adversary`.
        corpus_adversary: the same with the corpus as the adversary's target:
            the features that tell the corpora (languages, codecs, rooms) apart
            are pushed out, so class priors cannot follow the corpus.  Not with
            ``speaker_adversary``.
        swa_epochs: average the weights at the end of the last this many
            epochs (0: keep the last epoch's), a flatter solution that may
            carry better to new voices.
        class_mask: a window's loss covers only the classes its corpus records
            (see :func:`emotion_targets`), so a corpus without ``calm`` does not
            teach that calm never occurs.  Off by default: pooled with nEMO it
            let calm and disgust take over every voice outside RAVDESS (held-out
            clip precision of calm 6%, sad recall 0.2%; models/default/MODEL_CARD.md).
        onset_windows: per augmented copy of a clip, this many more windows
            that end ``onset_speech_s`` (drawn uniformly) after the speech
            onset, the frames before the onset filled with the clip's pause
            background, as the daemon fills them after an utterance boundary
            (:mod:`~ser_daemon.training.onset_windows`).  0: none.
        onset_speech_s: range of the speech an onset window holds, seconds.
        affect_weight: loss weight of an auxiliary head that regresses each
            window's arousal and valence from the pooled features (0: none;
            :mod:`~ser_daemon.training.affect`).  Not with an adversary.
        corpus_share: per corpus name, the share of its windows drawn afresh
            each epoch (``{"nemo": 0.33}``); a corpus not named takes all of
            its windows.  A large corpus then adds its voices without
            outweighing the languages of the smaller ones.
    """

    seed: int = 1234
    window_s: float = 2.0
    train_hop_s: float = 0.5
    eval_hop_s: float = 0.5
    edge: float = 0.25
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    label_smoothing: float = 0.1
    balance: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trim: TrimConfig = field(default_factory=TrimConfig)
    speaker_adversary: float = 0.0
    corpus_adversary: float = 0.0
    swa_epochs: int = 0
    class_mask: bool = False
    corpus_share: dict[str, float] = field(default_factory=dict)
    onset_windows: int = 0
    onset_speech_s: tuple[float, float] = (0.25, 1.5)
    affect_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.onset_windows < 0:
            raise ValueError(f"onset_windows must be 0 or more. Received: {self.onset_windows}")
        lo, hi = self.onset_speech_s
        if self.onset_windows and not 0 < lo <= hi <= self.window_s:
            raise ValueError(f"onset_speech_s must be a range within (0, window_s]. Received: {self.onset_speech_s}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        d = dict(data)
        d["model"] = ModelConfig(**d.get("model", {}))
        d["augment"] = AugmentConfig.from_dict(d.get("augment", {}))
        d["trim"] = TrimConfig(**d.get("trim", {}))
        d.setdefault("corpus_adversary", 0.0)
        d.setdefault("class_mask", False)  # recipes stored before masking existed trained without it
        d["corpus_share"] = dict(d.get("corpus_share") or {})
        if "onset_speech_s" in d:
            d["onset_speech_s"] = tuple(d["onset_speech_s"])
        return cls(**d)


@dataclass
class FeatureSet:
    """Windows of many clips.

    Attributes:
        x: ``(n, frames, n_mels)`` float16 log-mel (halves memory; exact
            enough for log-mel values around -14..10).
        y: label index per window.
        clip: index into ``clips`` per window.
        version: 0 for the clean clip, 1.. for augmented copies.
        clips: the clips, in index order.
        labels: class names, in label-index order.
        clip_voiced_sum: ``(n_clips, n_mels)`` sum of each clean clip's voiced
            log-mel frames (see :func:`ser_daemon.core.speaker_norm.voiced_frames`).
        clip_voiced_n: voiced frames per clip; with the sums they give any
            group of clips' speaker reference.
    """

    x: np.ndarray
    y: np.ndarray
    clip: np.ndarray
    version: np.ndarray
    clips: list[Clip]
    labels: list[str]
    clip_voiced_sum: np.ndarray | None = None
    clip_voiced_n: np.ndarray | None = None

    def select(self, mask: np.ndarray) -> "FeatureSet":
        return FeatureSet(self.x[mask], self.y[mask], self.clip[mask], self.version[mask], self.clips, self.labels,
                          self.clip_voiced_sum, self.clip_voiced_n)

    def with_x(self, x: np.ndarray) -> "FeatureSet":
        return FeatureSet(x, self.y, self.clip, self.version, self.clips, self.labels,
                          self.clip_voiced_sum, self.clip_voiced_n)

    def merged(self, merge: Mapping[str, str]) -> "FeatureSet":
        """The same windows with classes merged (``{"calm": "neutral"}``); labels stay sorted.

        Applied after the feature cache, so a merge needs no new features.
        """
        unknown = sorted(set(merge) - set(self.labels))
        if unknown:
            raise ValueError(f"cannot merge {unknown}: not among the labels {self.labels}")
        labels = sorted({merge.get(lab, lab) for lab in self.labels})
        index = {lab: labels.index(merge.get(lab, lab)) for lab in self.labels}
        remap = np.array([index[lab] for lab in self.labels], np.int32)
        clips = [replace(c, label=merge.get(c.label, c.label)) if c.label in merge else c for c in self.clips]
        return FeatureSet(self.x, remap[self.y], self.clip, self.version, clips, labels,
                          self.clip_voiced_sum, self.clip_voiced_n)

    def speakers(self) -> np.ndarray:
        """Speaker per window."""
        spk = np.array([c.speaker for c in self.clips])
        return spk[self.clip]

    def corpora(self) -> np.ndarray:
        """Corpus name per window."""
        names = np.array([c.corpus for c in self.clips])
        return names[self.clip]


def _clip_seed(seed: int, clip: Clip) -> int:
    return (seed * 1_000_003 + zlib.crc32(f"{clip.speaker}/{clip.path.name}".encode())) & 0x7FFFFFFF


def _progress(prefix: str, done: int, total: int, t0: float, stream: Any = sys.stderr) -> None:
    if stream is None:
        return
    rate = done / max(time.perf_counter() - t0, 1e-9)
    eta = (total - done) / rate if rate > 0 else 0.0
    end = "\n" if done == total else ""
    stream.write(f"\r{prefix}: {done}/{total} clips  {rate:5.1f}/s  eta {eta:4.0f}s{end}")
    stream.flush()


def clip_windows(
    clip: Clip, feature_cfg: FeatureConfig, cfg: TrainConfig, copies: int
) -> tuple[list[np.ndarray], list[int], np.ndarray, int]:
    """Features of the clean clip (version 0, eval hop) and ``copies`` augmented versions.

    Also returns the sum and count of the clean clip's voiced frames, from which
    speaker references are formed.
    """
    sr = feature_cfg.sample_rate
    win = int(round(cfg.window_s * sr))
    x = load_audio(clip.path, sr)
    bounds = speech_bounds(x, sr, cfg.trim)
    voiced = voiced_frames(log_mel(x, feature_cfg))
    rng = np.random.default_rng(_clip_seed(cfg.seed, clip))
    feats, versions = [], []
    starts = window_starts(len(x), bounds, win, int(round(cfg.eval_hop_s * sr)))
    feats.append(features_of(cut_windows(x, starts, win), feature_cfg))
    versions.append(0)
    hop = int(round(cfg.train_hop_s * sr))
    for v in range(1, copies + 1):
        y, b = augment_waveform(x, sr, rng, cfg.augment, bounds)
        pad = 0
        if cfg.edge > 0.25:
            pad = int(round(cfg.edge * win))
            quiet = (rng.standard_normal(pad) * 1e-4).astype(np.float32)
            y, b = np.concatenate([quiet, y, quiet]), (b[0] + pad, b[1] + pad)
        shift = int(rng.uniform(-cfg.augment.shift_s, cfg.augment.shift_s) * sr)
        starts = window_starts(len(y), b, win, hop, offset=shift, edge=cfg.edge)
        feats.append(features_of(cut_windows(y, starts, win, pad_seed=v), feature_cfg))
        versions.append(v)
        if cfg.onset_windows:
            heard = rng.uniform(*cfg.onset_speech_s, cfg.onset_windows)
            feats.append(onset_windows(y, b[0], win, heard, feature_cfg, pause_start=pad))
            versions.append(v)
    return feats, versions, voiced.astype(np.float64).sum(axis=0), len(voiced)


def build_feature_set(
    clips: Sequence[Clip],
    labels: Sequence[str],
    feature_cfg: FeatureConfig,
    cfg: TrainConfig,
    *,
    augment: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Any = sys.stderr,
) -> FeatureSet:
    """Windows and features of ``clips`` (clean, plus augmented copies if ``augment``).

    With ``cache_dir`` the arrays are stored under a key of everything that
    determines them and reused on the next call.
    """
    clips = list(clips)
    labels = list(labels)
    copies = cfg.augment.copies if augment else 0
    cfg_key = cfg.to_dict()
    for k in ("mel_warp", "mix_speakers", "time_reverse", "mixup"):  # act per epoch on the cached features
        cfg_key["augment"].pop(k, None)
    if not cfg.augment.p_opus:  # keys made before the Opus option stay valid
        cfg_key["augment"].pop("p_opus", None)
        cfg_key["augment"].pop("opus_level", None)
    key_src = json.dumps(
        {
            "clips": [[str(c.path), c.label, c.speaker] for c in clips],
            "labels": labels,
            "features": feature_cfg.to_dict(),
            "cfg": {k: v for k, v in cfg_key.items() if k in ("seed", "window_s", "train_hop_s", "eval_hop_s", "augment", "trim")
                    or (k == "edge" and v != 0.25)
                    or (k in ("onset_windows", "onset_speech_s") and cfg.onset_windows)},
            "copies": copies,
            "v": 2,
        },
        sort_keys=True,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"features-{key}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        z = np.load(cache)
        return FeatureSet(z["x"], z["y"], z["clip"], z["version"], clips, labels, z["vsum"], z["vn"])
    index = {name: i for i, name in enumerate(labels)}
    xs, ys, cs, vs = [], [], [], []
    vsum = np.zeros((len(clips), feature_cfg.n_mels), np.float64)
    vn = np.zeros(len(clips), np.int64)
    t0 = time.perf_counter()
    for ci, clip in enumerate(clips):
        feats, versions, vsum[ci], vn[ci] = clip_windows(clip, feature_cfg, cfg, copies)
        for f, v in zip(feats, versions):
            xs.append(f.astype(np.float16))
            n = len(f)
            ys.append(np.full(n, index[clip.label], np.int32))
            cs.append(np.full(n, ci, np.int32))
            vs.append(np.full(n, v, np.int16))
        if progress is not None and (ci + 1 == len(clips) or ci % 20 == 0):
            _progress("features", ci + 1, len(clips), t0, progress)
    fs = FeatureSet(np.concatenate(xs), np.concatenate(ys), np.concatenate(cs), np.concatenate(vs), clips, labels,
                    vsum, vn)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, x=fs.x, y=fs.y, clip=fs.clip, version=fs.version, vsum=vsum, vn=vn)
        tmp.replace(cache)
    return fs


REFERENCE_CLASSES = ("neutral", "calm")
EPOCH_CHUNK_BATCHES = 128  # batches augmented at once in an epoch (see fit_model)


def speaker_references(
    fs: FeatureSet, clip_sets: Mapping[str, Sequence[int]] | None = None
) -> dict[str, np.ndarray]:
    """Each speaker's reference (mean voiced log-mel frame) from all their clips, or from ``clip_sets``."""
    if fs.clip_voiced_sum is None or fs.clip_voiced_n is None:
        raise ValueError("feature set has no voiced-frame statistics (built before speaker normalisation existed)")
    groups: dict[str, list[int]] = {}
    if clip_sets is None:
        for i, c in enumerate(fs.clips):
            groups.setdefault(c.speaker, []).append(i)
    else:
        groups = {k: list(v) for k, v in clip_sets.items()}
    refs = {}
    for spk, idx in groups.items():
        n = fs.clip_voiced_n[idx].sum()
        if n > 0:
            refs[spk] = (fs.clip_voiced_sum[idx].sum(axis=0) / n).astype(np.float32)
    return refs


def _speech_level(windows: np.ndarray) -> float:
    """The 95th percentile of per-frame log energy over ``windows``: the level of the speech, not the gaps."""
    return float(np.percentile(frame_log_energy(windows[:, ::2].reshape(-1, windows.shape[-1])), 95))


def apply_speaker_norm(
    fs: FeatureSet, seed: int, *, match_gain: bool = False, gain_jitter_db: float = 3.0
) -> tuple[FeatureSet, np.ndarray]:
    """Subtract each window's speaker reference; returns the set and the population prior.

    Clean windows (version 0) use the reference of all the speaker's clips.
    Augmented copies use references drawn from a random part of the speaker's
    clips -- a third from neutral and calm speech only, a third from a random
    half, a third from all -- so the model does not depend on how much of each
    emotion the live estimate happens to have heard (a user who spoke calmly for
    minutes and then gets angry must still be shown angry).

    ``match_gain``: an augmented copy was played at a random gain, but its
    reference comes from the clean clips, so its level against the reference
    is noise.  A model that reads that level (``ModelConfig.level_units``)
    needs it to mean what it means live, where the reference is measured on the
    same microphone: the copy's reference is moved by the copy's change of
    speech level against the clean clip, give or take ``gain_jitter_db`` (the
    live estimate is never exact, least of all while it leaves the prior).
    """
    rng = np.random.default_rng(seed + 11)
    clean_level: dict[int, float | None] = {}  # per clip, for match_gain
    full = speaker_references(fs)
    prior = np.mean(np.stack(list(full.values())), axis=0).astype(np.float32)
    by_speaker: dict[str, list[int]] = {}
    for i, c in enumerate(fs.clips):
        by_speaker.setdefault(c.speaker, []).append(i)
    x = np.empty(fs.x.shape, np.float16)
    keys = np.stack([fs.clip, fs.version.astype(np.int32)], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for u, (ci, ver) in enumerate(uniq):
        spk = fs.clips[ci].speaker
        idx = by_speaker[spk]
        if ver == 0:
            ref = full[spk]
        else:
            mode = rng.integers(3)
            calm = [i for i in idx if fs.clips[i].label in REFERENCE_CLASSES]
            if mode == 0 and calm:
                pick = calm
            elif mode == 1:
                pick = list(rng.choice(idx, size=max(1, len(idx) // 2), replace=False))
            else:
                pick = idx
            ref = speaker_references(fs, {spk: pick}).get(spk, full[spk])
        rows = np.nonzero(inverse == u)[0]
        if match_gain and ver != 0:
            if ci not in clean_level:
                clean_rows = np.nonzero((fs.clip == ci) & (fs.version == 0))[0]
                clean_level[ci] = _speech_level(fs.x[clean_rows]) if len(clean_rows) else None
            if clean_level[ci] is not None:
                shift = _speech_level(fs.x[rows]) - clean_level[ci]
                shift += rng.uniform(-gain_jitter_db, gain_jitter_db) * LOG_PER_DB
                ref = ref + np.float32(shift)
        x[rows] = (fs.x[rows].astype(np.float32) - ref[None, None, :]).astype(np.float16)
    return fs.with_x(x), prior


def configure_tensorflow(threads: int = 2, deterministic: bool = True) -> None:
    """Quiet TensorFlow, cap its threads, make ops deterministic. Call before building models."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised: keep what is set
        pass
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def corpus_class_mask(fs: FeatureSet) -> np.ndarray:
    """``(windows, labels)`` bool: the classes each window's corpus records.

    Computed from ``fs.clips`` after any merge, so a merged class counts as
    recorded wherever one of its sources was.
    """
    recorded = corpus_labels(fs.clips)
    index = {lab: i for i, lab in enumerate(fs.labels)}
    per_corpus = {}
    for name, labs in recorded.items():
        row = np.zeros(len(fs.labels), bool)
        row[[index[lab] for lab in labs]] = True
        per_corpus[name] = row
    per_clip = np.stack([per_corpus[c.corpus] for c in fs.clips]) if fs.clips else np.zeros((0, len(fs.labels)), bool)
    return per_clip[fs.clip]


def emotion_targets(y: np.ndarray, mask: np.ndarray | None, n_labels: int, label_smoothing: float) -> np.ndarray:
    """Training targets: label-smoothed one-hot rows, ``-1`` where a class is masked.

    The smoothing spreads over the classes a window's corpus records only, and
    :func:`masked_crossentropy` renormalises the prediction over those same
    classes, so a masked class's logit gets no gradient from that window: nothing
    pushes ``calm`` down on Italian or Polish speech that was never labelled calm.
    """
    onehot = np.eye(n_labels, dtype=np.float32)[y]
    if mask is None:
        mask = np.ones_like(onehot, dtype=bool)
    if not mask[np.arange(len(y)), y].all():
        raise ValueError("a window's own label is masked for its corpus")
    present = mask.sum(axis=1, keepdims=True).astype(np.float32)
    smoothed = onehot * (1.0 - label_smoothing) + label_smoothing / present
    return np.where(mask, smoothed, -1.0).astype(np.float32)


def masked_crossentropy(y_true: Any, y_pred: Any) -> Any:
    """Cross-entropy over the classes with a target >= 0 (see :func:`emotion_targets`).

    With no class masked this is Keras's categorical cross-entropy on
    probabilities: the renormalising term is ``log 1``.
    """
    from keras import ops

    keep = ops.cast(ops.greater_equal(y_true, 0.0), y_pred.dtype)
    target = ops.maximum(y_true, 0.0)
    p = ops.clip(y_pred, 1e-7, 1.0)
    log_norm = ops.log(ops.sum(p * keep, axis=-1, keepdims=True))
    return -ops.sum(target * (ops.log(p) - log_norm), axis=-1)


def window_shares(fs: FeatureSet, corpus_share: Mapping[str, float]) -> np.ndarray:
    """Per window, the share of its corpus drawn each epoch (1.0 for corpora not named).

    Raises ``ValueError`` for a corpus that is not in ``fs`` or a share outside (0, 1].
    """
    corpora = np.array([c.corpus for c in fs.clips])[fs.clip] if fs.clips else np.zeros(0, str)
    present = set(corpora.tolist())
    unknown = sorted(set(corpus_share) - present)
    if unknown:
        raise ValueError(f"corpus share for {unknown}: not among the training corpora {sorted(present)}")
    shares = np.ones(len(fs.y), np.float64)
    for name, share in corpus_share.items():
        if not 0.0 < share <= 1.0:
            raise ValueError(f"corpus share for {name} must be in (0, 1], not {share}")
        shares[corpora == name] = share
    return shares


def epoch_order(shares: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch's window order: all windows of a share of 1, a fresh random subset of the others.

    Windows of equal share are drawn together, ``round(share * n)`` of them, so
    the epoch's size is the same every epoch.
    """
    keep = [np.flatnonzero(shares == 1.0)]
    for share in np.unique(shares[shares < 1.0]):
        idx = np.flatnonzero(shares == share)
        keep.append(rng.choice(idx, size=_drawn(share, len(idx)), replace=False))
    chosen = np.concatenate(keep)
    return chosen[rng.permutation(len(chosen))]


def _drawn(share: float, n: int) -> int:
    return max(1, int(round(share * n)))


def epoch_size(shares: np.ndarray) -> int:
    """Windows in each epoch of :func:`epoch_order` (the same every epoch)."""
    partial = shares[shares < 1.0]
    return int(np.sum(shares == 1.0)) + sum(_drawn(s, int(np.sum(partial == s))) for s in np.unique(partial))


def class_weights(y: np.ndarray, n_labels: int, shares: np.ndarray | None = None) -> dict[int, float]:
    """Inverse class frequency, counted as an epoch sees the windows (``shares``: see :func:`window_shares`)."""
    counts = np.bincount(y, weights=shares, minlength=n_labels).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (n_labels * np.maximum(counts, 1)), 0.0)
    return {i: float(w[i]) for i in range(n_labels)}


def fit_model(
    train: FeatureSet,
    cfg: TrainConfig,
    *,
    val: FeatureSet | None = None,
    verbose: int = 2,
    log_fn: Callable[[str], None] | None = None,
) -> tuple[Any, list[dict[str, float]]]:
    """Train a fresh CNN on ``train``; returns the model and per-epoch history.

    ``val`` (optional) is only reported per epoch, never used to stop or
    select: the number of epochs is fixed by ``cfg``.
    """
    import keras

    keras.utils.set_random_seed(cfg.seed)
    n_labels = len(train.labels)
    model = build_model(train.x.shape[1:], n_labels, cfg.model, seed=cfg.seed)
    shares = window_shares(train, cfg.corpus_share)
    rng = np.random.default_rng(cfg.seed + 7)
    steps_per_epoch = int(np.ceil(epoch_size(shares) / cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    warmup = min(steps_per_epoch, total // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 10, decay_steps=max(1, total - warmup), warmup_target=cfg.learning_rate, warmup_steps=warmup
    )
    emotion_loss = masked_crossentropy
    weights = class_weights(train.y, n_labels, shares) if cfg.balance else None
    class_mask = corpus_class_mask(train) if cfg.class_mask else None
    if class_mask is not None and cfg.augment.mixup > 0 and not class_mask.all():
        raise ValueError("mixup cannot mix targets of corpora with different class sets; leave --class-mask off")
    y_onehot = emotion_targets(train.y, class_mask, n_labels, cfg.label_smoothing)
    val_data = None
    if cfg.speaker_adversary > 0 and cfg.corpus_adversary > 0:
        raise ValueError("one adversary at a time: the speaker or the corpus")
    speakers = train.speakers() if cfg.augment.mix_speakers > 0 else None  # the speaker adversary finds its own
    fitted, strength, second, class_w = model, None, None, None
    out2 = _second_output(model, train, cfg)
    if out2 is not None:
        fitted, strength, second = out2.model, out2.strength, out2.targets
        if weights is not None:  # Keras takes class weights for one output only: per window instead
            class_w = np.array([weights[i] for i in range(n_labels)], np.float32)
        fitted.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=[emotion_loss, out2.loss],
            loss_weights=[1.0, out2.weight],
            metrics=[["accuracy"], out2.metrics],
        )
    else:
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=emotion_loss, metrics=["accuracy"])
        if val is not None and len(val.y):
            val_data = (val.x.astype(np.float32), emotion_targets(val.y, None, n_labels, cfg.label_smoothing))
    if cfg.augment.mixup > 0 and second is not None:
        raise ValueError("mixup cannot go with an adversary or the affect head (their targets are not mixed)")
    if not 0 <= cfg.swa_epochs <= cfg.epochs:
        raise ValueError(f"swa_epochs must be between 0 and epochs ({cfg.epochs}), not {cfg.swa_epochs}")
    history: list[dict[str, float]] = []
    averaged = WeightAverage()
    # Windows that are augmented on their own (no mixing across windows) go through an epoch in
    # chunks: the float32 copy SpecAugment makes is then a chunk, not the whole training set
    # (pooling three corpora gives 120k windows: 6 GB per copy, and Keras adds its own; a
    # corpus adversary on whole pooled epochs was killed for memory).
    chunked = cfg.augment.mix_speakers == 0 and cfg.augment.mixup == 0
    chunk = cfg.batch_size * EPOCH_CHUNK_BATCHES
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(train.y)) if not cfg.corpus_share else epoch_order(shares, rng)
        t0 = time.perf_counter()
        one_epoch = dict(batch_size=cfg.batch_size, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0)
        if strength is not None:
            # The reversal grows from 0 to 1 (Ganin & Lempitsky's schedule), so the
            # adversary learns to name speakers (or corpora) before the CNN is pushed away from them.
            strength.assign(2.0 / (1.0 + np.exp(-10.0 * epoch / max(1, cfg.epochs - 1))) - 1.0)
        if chunked and second is None:
            epoch_history = _fit_chunks(
                lambda xb, idx, last: model.fit(xb, y_onehot[idx], class_weight=weights,
                                                validation_data=val_data if last else None, **one_epoch),
                train.x, order, chunk, rng, cfg)
        elif chunked:
            epoch_history = _fit_chunks(
                lambda xb, idx, last: fitted.fit(xb, (y_onehot[idx], second[idx]),
                                                 sample_weight=None if class_w is None else class_w[train.y[idx]],
                                                 **one_epoch),
                train.x, order, chunk, rng, cfg)
        else:
            xb = train.x[order]
            yb = y_onehot[order]
            if cfg.augment.mix_speakers > 0:
                xb = mix_speakers(xb, train.y[order], speakers[order], rng, cfg.augment.mix_speakers)
            xb = spec_augment(xb, rng, cfg.augment)
            if cfg.augment.mixup > 0:  # class weights follow each window's own (largest) label
                xb, yb = mixup(xb, yb, rng, cfg.augment.mixup)
            if second is None:
                h = model.fit(xb, yb, class_weight=weights, validation_data=val_data, **one_epoch)
            else:
                h = fitted.fit(xb, (y_onehot[order], second[order]),
                               sample_weight=None if class_w is None else class_w[train.y[order]], **one_epoch)
            epoch_history = {k: float(v[-1]) for k, v in h.history.items()}
        row = dict(epoch_history)
        if "accuracy" not in row and "probs_accuracy" in row:
            row["accuracy"] = row["probs_accuracy"]
        row["epoch"] = epoch + 1
        history.append(row)
        if verbose:
            left = (cfg.epochs - epoch - 1) * (time.perf_counter() - t0)
            val_txt = f"  val loss {row['val_loss']:.3f} acc {row['val_accuracy']:.3f}" if "val_loss" in row else ""
            sys.stderr.write(f"epoch {epoch + 1:3d}/{cfg.epochs}  loss {row['loss']:.3f}  acc {row['accuracy']:.3f}"
                             f"{val_txt}  {time.perf_counter() - t0:5.1f} s  eta {left / 60:4.1f} min\n")
            sys.stderr.flush()
        if log_fn is not None:
            log_fn(json.dumps(row))
        if cfg.swa_epochs and epoch >= cfg.epochs - cfg.swa_epochs:
            averaged.add(model.get_weights())
    if averaged.count:
        # Batch-norm statistics are averaged with the weights: close enough when the
        # averaged epochs are the last, low-learning-rate ones.
        model.set_weights(averaged.result(model.get_weights()))
    return model, history


@dataclass(frozen=True)
class _SecondOutput:
    """A head trained beside the emotion head: the training model, its targets per window, its loss."""

    model: Any
    targets: np.ndarray
    loss: Any
    weight: float
    metrics: list[str]
    strength: Any = None  # a gradient reversal's strength, for the adversaries' warm-up


def _second_output(model: Any, train: FeatureSet, cfg: TrainConfig) -> _SecondOutput | None:
    """The speaker or corpus adversary, or the arousal/valence head, that ``cfg`` asks for (None: none)."""
    import keras

    adversary_weight = cfg.speaker_adversary or cfg.corpus_adversary
    if adversary_weight > 0 and cfg.affect_weight > 0:
        raise ValueError("an adversary or the affect head, not both")
    if adversary_weight > 0:
        groups = train.speakers() if cfg.speaker_adversary > 0 else train.corpora()
        _, index = np.unique(groups, return_inverse=True)
        fitted, strength = with_speaker_adversary(model, int(index.max()) + 1, seed=cfg.seed)
        return _SecondOutput(fitted, index, keras.losses.SparseCategoricalCrossentropy(), adversary_weight,
                             ["accuracy"], strength)
    if cfg.affect_weight > 0:
        return _SecondOutput(with_affect_head(model, seed=cfg.seed), affect_table(train.labels)[train.y],
                             keras.losses.MeanSquaredError(), cfg.affect_weight, [])
    return None


def _fit_chunks(fit: Callable[[np.ndarray, np.ndarray, bool], Any], x: np.ndarray, order: np.ndarray, chunk: int,
                rng: np.random.Generator, cfg: TrainConfig) -> dict[str, float]:
    """One epoch over ``order`` in chunks of whole batches; returns the epoch's figures.

    ``fit(windows, indices, last_chunk)`` trains on one augmented chunk and returns Keras's history.
    Loss and accuracy are window-weighted means over the chunks; validation
    figures come from the last chunk, after the whole epoch.
    """
    out: dict[str, float] = {}
    for a in range(0, len(order), chunk):
        idx = order[a : a + chunk]
        h = fit(spec_augment(x[idx], rng, cfg.augment), idx, a + chunk >= len(order))
        for k, v in h.history.items():
            if k.startswith("val_"):
                out[k] = float(v[-1])
            else:
                out[k] = out.get(k, 0.0) + float(v[-1]) * len(idx) / len(order)
    return out


class WeightAverage:
    """The running mean of successive lists of weight arrays (stochastic weight averaging)."""

    def __init__(self) -> None:
        self.count = 0
        self._mean: list[np.ndarray] = []

    def add(self, weights: Sequence[np.ndarray]) -> None:
        current = [np.asarray(w, np.float64) for w in weights]
        if self.count and [w.shape for w in current] != [w.shape for w in self._mean]:
            raise ValueError("weights of another shape than those averaged so far")
        self.count += 1
        self._mean = current if self.count == 1 else [m + (c - m) / self.count for m, c in zip(self._mean, current)]

    def result(self, like: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The mean, each array in the dtype of its counterpart in ``like``."""
        if not self.count:
            raise ValueError("no weights averaged")
        return [m.astype(np.asarray(w).dtype) for m, w in zip(self._mean, like)]


def keras_predictor(model: Any, batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    def predict(x: np.ndarray) -> np.ndarray:
        out = [np.asarray(model(np.asarray(x[i : i + batch_size], np.float32), training=False))
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)

    return predict


def tflite_predictor(path: str | os.PathLike[str], num_threads: int = 2) -> Callable[[np.ndarray], np.ndarray]:
    """Window-by-window LiteRT inference (``(n, frames, mels)`` -> ``(n, labels)``)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=num_threads)
    interp.allocate_tensors()
    i_in = interp.get_input_details()[0]["index"]
    outs = interp.get_output_details()
    # The probabilities are the narrowest output (the other is the embedding, see export_bundle).
    probs_out = min(outs, key=lambda o: int(o["shape"][-1]))
    i_out = probs_out["index"]

    def predict(x: np.ndarray) -> np.ndarray:
        rows = []
        for w in np.asarray(x, np.float32):
            interp.set_tensor(i_in, w[None])
            interp.invoke()
            rows.append(interp.get_tensor(i_out)[0].copy())
        return np.stack(rows) if rows else np.zeros((0, int(probs_out["shape"][-1])), np.float32)

    return predict


def time_tflite(path: str | os.PathLike[str], input_shape: tuple[int, int], calls: int = 300) -> dict[str, float]:
    """Milliseconds per window with LiteRT on one thread: median and p99 over ``calls``."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    i_in = interp.get_input_details()[0]["index"]
    x = np.full((1, *input_shape), -5.0, np.float32)
    x += np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    for _ in range(20):
        interp.set_tensor(i_in, x)
        interp.invoke()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        interp.set_tensor(i_in, x)
        interp.invoke()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": float(np.median(times)), "p99_ms": float(np.percentile(times, 99)), "calls": calls,
            "num_threads": 1}


def _convert(model: Any, quantize: bool) -> bytes:
    import contextlib
    import io

    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the whole signature
        return conv.convert()


def with_embedding_output(model: Any) -> Any:
    """The model with the classifier head's input as a second output.

    Personal profiles fit their own head on that embedding (see
    :mod:`ser_daemon.profiles.store`); the probabilities are unchanged, so the daemon
    without a profile computes exactly what it did.
    """
    import keras

    from ..model.inference import embedding_output

    gap = embedding_output(model)
    return keras.Model(model.input, [model.output, gap], name=model.name)


def head_metadata(model: Any) -> dict[str, Any]:
    """The shipped head (``probs`` dense layer) as ``ser_model.json``'s ``head`` entry.

    Enrollment regularises a personal head toward these weights, so it needs
    them without loading Keras.
    """
    from ..core.head import LinearHead

    kernel, bias = model.get_layer("probs").get_weights()
    return LinearHead(kernel, bias).to_dict()


def export_bundle(
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    labels: Sequence[str],
    feature_cfg: FeatureConfig,
    window_s: float,
    check_x: np.ndarray,
    check_y: np.ndarray | None = None,
    quantize: str = "auto",
    extra: dict[str, Any] | None = None,
    speaker_norm: Any = None,
) -> dict[str, Any]:
    """Write the bundle and return what was chosen and measured.

    Args:
        check_x: windows to compare Keras and LiteRT outputs on (and measure
            accuracy of float vs quantized when ``check_y`` is given).
        quantize: ``"float"``, ``"dynamic"`` or ``"auto"``: take the
            dynamic-range quantized model only if it loses at most 0.5 points
            of window accuracy on ``check_x`` and is at least 20 % faster.
    """
    from ..model.bundle import write_metadata

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Save an uncompiled copy: the optimizer state would triple the file and is
    # of no use to inference.
    import keras

    plain = keras.Model.from_config(model.get_config())
    plain.set_weights(model.get_weights())
    plain.save(out / "model.keras")
    ref = keras_predictor(model)(check_x)
    served = with_embedding_output(model)
    candidates = {"float": _convert(served, False)}
    if quantize in ("dynamic", "auto"):
        candidates["dynamic"] = _convert(served, True)
    measured: dict[str, Any] = {}
    for kind, blob in candidates.items():
        path = out / f"model.{kind}.tflite.tmp"
        path.write_bytes(blob)
        probs = tflite_predictor(path, num_threads=2)(check_x)
        m = {
            "bytes": len(blob),
            "max_abs_diff_vs_keras": float(np.max(np.abs(probs - ref))) if len(ref) else 0.0,
            "timing": time_tflite(path, tuple(check_x.shape[1:])),
        }
        if check_y is not None and len(check_y):
            m["window_accuracy"] = float(np.mean(probs.argmax(1) == check_y))
            m["keras_window_accuracy"] = float(np.mean(ref.argmax(1) == check_y))
        measured[kind] = m
    choice = "float" if quantize in ("float", "auto") else "dynamic"
    if quantize == "auto" and "dynamic" in measured:
        f, d = measured["float"], measured["dynamic"]
        acc_ok = d.get("window_accuracy", 0.0) >= f.get("window_accuracy", 1.0) - 0.005 if check_y is not None else False
        faster = d["timing"]["median_ms"] <= 0.8 * f["timing"]["median_ms"]
        if acc_ok and faster:
            choice = "dynamic"
    (out / f"model.{choice}.tflite.tmp").replace(out / "model.tflite")
    for kind in candidates:
        tmp = out / f"model.{kind}.tflite.tmp"
        if tmp.exists():
            tmp.unlink()
    info = {"tflite_choice": choice, "tflite_candidates": measured}
    meta_extra = dict(extra or {})
    meta_extra["export"] = info
    meta_extra["head"] = head_metadata(model)
    write_metadata(out, name=name, labels=list(labels), features=feature_cfg, window_s=window_s, extra=meta_extra,
                   speaker_norm=speaker_norm)
    return info


def speaker_folds(speakers: Sequence[str], k: int) -> list[list[str]]:
    """Split sorted unique speakers into ``k`` folds round-robin (deterministic)."""
    uniq = sorted(set(speakers))
    if k < 2 or k > len(uniq):
        raise ValueError(f"k-fold needs 2 <= k <= number of speakers ({len(uniq)}). Received: k={k}")
    return [uniq[i::k] for i in range(k)]


def evaluate_windows(model_or_predict: Any, fs: FeatureSet) -> dict[str, Any]:
    """Window- and clip-level reports of a model on the clean windows of ``fs``."""
    from .evaluate import evaluate_predictions

    clean = fs.select(fs.version == 0)
    predict = model_or_predict if callable(model_or_predict) and not hasattr(model_or_predict, "layers") \
        else keras_predictor(model_or_predict)
    probs = predict(clean.x.astype(np.float32))
    index = {lab: i for i, lab in enumerate(fs.labels)}
    clip_labels = np.array([index[c.label] for c in fs.clips])
    return evaluate_predictions(probs, clean.y, clean.clip, clip_labels, fs.labels)


def cross_validate(
    fs: FeatureSet, cfg: TrainConfig, k: int, *, log_fn: Callable[[str], None] | None = print, verbose: int = 0
) -> dict[str, Any]:
    """Speaker k-fold: train on k-1 folds (clean + augmented), test on the clean windows of the rest."""
    spk = fs.speakers()
    folds = speaker_folds(list(spk), k)
    rows = []
    for i, test_speakers in enumerate(folds):
        test_mask = np.isin(spk, test_speakers)
        t0 = time.perf_counter()
        model, _ = fit_model(fs.select(~test_mask), cfg, verbose=verbose)
        rep = evaluate_windows(model, fs.select(test_mask))
        row = {
            "fold": i + 1,
            "test_speakers": list(test_speakers),
            "window_accuracy": rep["window"]["accuracy"],
            "window_macro_f1": rep["window"]["macro_f1"],
            "clip_accuracy": rep["clip"]["accuracy"],
            "clip_macro_f1": rep["clip"]["macro_f1"],
            "clip_per_class_f1": {k_: v["f1"] for k_, v in rep["clip"]["per_class"].items()},
            "train_s": time.perf_counter() - t0,
        }
        rows.append(row)
        if log_fn is not None:
            log_fn(
                f"fold {i + 1}/{k} (test {', '.join(test_speakers)}): window acc {row['window_accuracy']:.3f} "
                f"F1 {row['window_macro_f1']:.3f} | clip acc {row['clip_accuracy']:.3f} F1 {row['clip_macro_f1']:.3f}"
            )
    summary: dict[str, Any] = {"k": k, "folds": rows}
    for key in ("window_accuracy", "window_macro_f1", "clip_accuracy", "clip_macro_f1"):
        vals = np.array([r[key] for r in rows])
        summary[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
    return summary
