"""Personal profiles: the file, enrollment, refusals, and the daemon using (and updating) a profile.

The tiny test model reads a 3 kHz tone as ``angry``, a 1 kHz tone as ``happy``
and a 200 Hz tone as ``calm``.  A "user" who says *happy* with a 3 kHz tone,
*angry* with a 1 kHz tone and *calm* with a 200 Hz tone is therefore misread by
the shipped head; a profile enrolled from those takes must make the daemon show
``happy`` for that voice, and only for the streams it is given to.  Both labels
of the swap are recorded: a profile never relabels a label that has no takes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd
from tiny_model import tone, write_wav

from ser_daemon.core.settings import AnalysisSettings
from ser_daemon.profiles.enroll import (
    HEAD_L2,
    HEAD_L2_GRID,
    PARTIAL_MIN_L2,
    Take,
    _streamed,
    _streamed_by_take,
    blend_heads,
    check_take,
    choose_head_l2,
    fit_head,
    fit_profile,
    head_trust,
    pull_grid,
    streamed_windows,
)
from ser_daemon.errors import ConfigError, ModelError, ProfileError
from ser_daemon.core.head import LinearHead, softmax
from ser_daemon.model.inference import load_classifier
from ser_daemon.model.bundle import load_bundle
from ser_daemon.model.analyzer import Analyzer, replay_audio
from ser_daemon.core.pipeline import StreamProcessor
from ser_daemon.profiles.store import (
    FORMAT_VERSION,
    VoiceProfile,
    delete_profile,
    list_profiles,
    load_profile,
    profile_path,
    read_profile,
    save_profile,
)

pytestmark = [pytest.mark.needs_tf]

RATE = 16000


def voice(freq: float, seconds: float = 2.5, seed: int = 0) -> np.ndarray:
    """A tone with a little noise and a pause either side, like a take of read speech."""
    rng = np.random.default_rng(seed)
    pause = (rng.standard_normal(int(0.4 * RATE)) * 1e-3).astype(np.float32)
    return np.concatenate([pause, tone(freq, seconds) + (rng.standard_normal(int(seconds * RATE)) * 1e-3), pause]
                          ).astype(np.float32)


@pytest.fixture(scope="module")
def bundle(profile_bundle):
    return load_bundle(profile_bundle)


@pytest.fixture(scope="module")
def clf(bundle):
    return load_classifier(bundle, "litert")


@pytest.fixture(scope="module")
def swapped_profile(bundle, clf) -> VoiceProfile:
    """A user whose "happy" sounds like what the model calls angry, and the other way round."""
    takes = ([Take("happy", voice(3000, seed=i)) for i in range(2)]
             + [Take("angry", voice(1000, seed=i)) for i in range(2)]
             + [Take("calm", voice(200, seed=i)) for i in range(2)])
    return fit_profile(bundle, clf, takes)


def _label_share(states, label: str) -> float:
    voiced = [s for s in states if s.voice_active and not s.final]
    return sum(s.label == label for s in voiced) / max(1, len(voiced))


# -- the embedding output and the head ---------------------------------------------------------


def test_exported_model_gives_embedding_and_the_stored_head_reproduces_its_probabilities(bundle, clf) -> None:
    x = np.stack([streamed_windows(voice(f), bundle, np.zeros(64, np.float32))[-1] for f in (200, 1200, 3000)])
    probs, emb = clf.predict_embedded(x)
    assert clf.embedding_dim == 64 and emb.shape == (3, 64)
    np.testing.assert_allclose(probs, clf.predict(x), atol=1e-6)
    np.testing.assert_allclose(bundle.head.probs(emb), probs, atol=1e-4)
    assert [bundle.labels[i] for i in probs.argmax(1)] == ["calm", "happy", "angry"]


def test_each_labels_takes_are_streamed_once_and_every_window_goes_to_the_take_it_centres_on(bundle) -> None:
    """The fit sees a label's takes as one stream; the held-out check splits those same windows by take."""
    ref = np.zeros(64, np.float32)
    takes = [Take("calm", voice(200, seed=1)), Take("happy", voice(3000, seed=2)), Take("calm", voice(1200, seed=3))]
    split = _streamed_by_take(takes, bundle, ref)
    calm_run = streamed_windows(np.concatenate([takes[0].audio, takes[2].audio]), bundle, ref)
    np.testing.assert_array_equal(np.concatenate([split[0], split[2]]), calm_run)
    np.testing.assert_array_equal(split[1], streamed_windows(takes[1].audio, bundle, ref))
    _, centres = _streamed(np.concatenate([takes[0].audio, takes[2].audio]), bundle, ref)
    assert len(split[0]) == int((centres < len(takes[0].audio)).sum()) > 2 and len(split[2]) > 2


def test_a_streamed_windows_centre_is_where_its_audio_is_centred(bundle) -> None:
    """Each window equals the features of the audio span centred on the sample reported for it."""
    from ser_daemon.audio.clips import cut_windows, features_of

    audio = np.concatenate([voice(200, seed=4), voice(3000, seed=5)])
    windows, centres = _streamed(audio, bundle, np.zeros(64, np.float32))
    half = bundle.window_samples // 2
    inside = [i for i, c in enumerate(centres) if half <= c <= len(audio) - half]
    assert len(inside) >= 3 and np.all(np.diff(centres) > 0)
    for i in inside:
        span = features_of(cut_windows(audio, np.array([centres[i] - half]), bundle.window_samples), bundle.features)
        np.testing.assert_allclose(windows[i], span[0], atol=1e-4)


def test_model_exported_before_profiles_has_no_embedding(tiny_bundle) -> None:
    old = load_bundle(tiny_bundle)
    c = load_classifier(old, "litert")
    assert c.embedding_dim is None and old.head is None
    with pytest.raises(ModelError, match="no embedding output"):
        c.predict_embedded(np.zeros((1, *old.input_shape), np.float32))
    with pytest.raises(ProfileError, match="cannot carry personal profiles"):
        fit_profile(old, c, [Take("calm", voice(200))])


def test_keras_backend_gives_the_same_embedding(bundle, clf) -> None:
    x = np.random.default_rng(1).normal(-8, 2, (2, *bundle.input_shape)).astype(np.float32)
    k = load_classifier(bundle, "keras")
    pk, ek = k.predict_embedded(x)
    pl, el = clf.predict_embedded(x)
    np.testing.assert_allclose(ek, el, atol=1e-4)
    np.testing.assert_allclose(pk, pl, atol=1e-5)


def test_linear_head_is_softmax_of_affine_map_and_checks_its_shapes() -> None:
    w = np.array([[1.0, -1.0], [0.5, 2.0]])
    h = LinearHead(w, np.array([0.1, -0.1]))
    e = np.array([[1.0, 2.0]])
    z = np.array([1.0 + 1.0 + 0.1, -1.0 + 4.0 - 0.1])
    np.testing.assert_allclose(h.probs(e)[0], np.exp(z) / np.exp(z).sum(), rtol=1e-6)
    np.testing.assert_allclose(LinearHead.from_dict(h.to_dict()).weights, w)
    with pytest.raises(ConfigError):
        LinearHead(w, np.zeros(3))
    with pytest.raises(ConfigError):
        LinearHead(np.full((2, 2), np.nan), np.zeros(2))
    np.testing.assert_allclose(softmax(np.array([1000.0, 1000.0])), [0.5, 0.5])


def test_fit_head_stays_at_the_prior_when_pulled_hard_and_learns_when_free() -> None:
    rng = np.random.default_rng(0)
    prior = LinearHead(rng.normal(0, 0.1, (4, 3)), np.zeros(3))
    e = np.concatenate([rng.normal(0, 0.1, (20, 4)) + [3, 0, 0, 0], rng.normal(0, 0.1, (20, 4)) + [0, 3, 0, 0]])
    y = np.array([2] * 20 + [0] * 20)
    stiff = fit_head(e, y, prior, l2=1e6)
    np.testing.assert_allclose(stiff.weights, prior.weights, atol=1e-3)
    free = fit_head(e, y, prior, l2=1e-3)
    assert (free.probs(e).argmax(1) == y).all()
    # Class 1 had no takes: the pull keeps its weights near the prior's, not wiped out.
    assert np.abs(free.weights[2:, 1] - prior.weights[2:, 1]).max() < 0.05
    with pytest.raises(ProfileError):
        fit_head(e[:, :3], y, prior)


def _anchoring_user(seed: int) -> tuple[LinearHead, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A shipped head over 5 labels and a user who recorded only labels 0-2.

    Label c sits at ``3 * unit(c)`` for the shipped head.  This voice adds its
    own offset to everything it says, and its label 0 leans toward label 1, so
    the shipped head reads some of the takes wrong.  Returns ``(prior, takes,
    take labels, the user's unrecorded speech, its labels)``.
    """
    rng = np.random.default_rng(seed)
    dim, k = 6, 5
    proto = 3.0 * np.eye(dim)[:k]
    prior = LinearHead(proto.T.copy(), np.zeros(k))
    voice_offset = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.5])
    centres = proto + voice_offset
    centres[0] += 1.6 * (proto[1] - proto[0]) / 3.0  # this voice's label 0 sounds halfway to label 1
    take_y = np.repeat([0, 1, 2], 40)
    takes = centres[take_y] + rng.normal(0, 0.5, (len(take_y), dim))
    other_y = np.repeat([3, 4], 40)
    other = centres[other_y] + rng.normal(0, 0.5, (len(other_y), dim))
    return prior, takes, take_y, other, other_y


@pytest.mark.parametrize("weights", [True, False])
def test_labels_without_takes_keep_the_shipped_head(weights: bool) -> None:
    """Takes of some labels refit those labels only; the others keep the shipped columns and their recall."""
    prior, takes, y, other, other_y = _anchoring_user(3)
    head = fit_head(takes, y, prior, l2=1e-3, weights=weights)
    # The unrecorded labels' weights and biases are the shipped ones, bit for bit.
    np.testing.assert_array_equal(head.weights[:, 3:], prior.weights[:, 3:])
    np.testing.assert_array_equal(head.bias[3:], prior.bias[3:])
    # The recorded labels moved only relative to each other: their mean logit is the prior's on any input.
    probe = np.random.default_rng(9).normal(0, 3, (200, prior.embedding_dim))
    change = (probe @ head.weights + head.bias) - (probe @ prior.weights + prior.bias)
    np.testing.assert_allclose(change[:, :3].mean(axis=1), 0.0, atol=1e-6)
    # The recorded labels gain on this voice, and the unrecorded ones keep at least 90% of their recall.
    def recall(h: LinearHead, e: np.ndarray, lab: np.ndarray, c: int) -> float:
        return float(np.mean(h.probs(e[lab == c]).argmax(1) == c))
    assert recall(head, takes, y, 0) > recall(prior, takes, y, 0) + 0.2
    for c in (3, 4):
        assert recall(prior, other, other_y, c) > 0.9
        assert recall(head, other, other_y, c) >= 0.9 * recall(prior, other, other_y, c)


def test_a_profile_of_some_labels_leaves_the_others_shipped(bundle, clf) -> None:
    """Through fit_profile (pull chosen, bias refit blended in): unrecorded labels are the shipped head's."""
    takes = [Take("happy", voice(3000, seed=i)) for i in range(2)] + [Take("calm", voice(200, seed=i)) for i in range(2)]
    p = fit_profile(bundle, clf, takes)
    assert p.head is not None
    kept = [bundle.labels.index(lab) for lab in bundle.labels if lab not in ("happy", "calm")]
    np.testing.assert_allclose(p.head.weights[:, kept], bundle.head.weights[:, kept], atol=1e-12)
    np.testing.assert_allclose(p.head.bias[kept], bundle.head.bias[kept], atol=1e-12)
    # With labels missing the pull is never weaker than PARTIAL_MIN_L2; with all recorded, the full grid.
    assert p.head_fit["pull"] is None or p.head_fit["pull"] >= PARTIAL_MIN_L2
    grid, default = pull_grid(3, 8)
    assert min(grid) >= PARTIAL_MIN_L2 and default >= PARTIAL_MIN_L2
    assert pull_grid(8, 8) == (HEAD_L2_GRID, HEAD_L2)


def test_a_profile_that_moved_unrecorded_labels_is_recognised(bundle, swapped_profile) -> None:
    assert swapped_profile.moved_unrecorded(bundle) == []  # neutral has no takes and kept the shipped column
    w, b = swapped_profile.head.weights.copy(), swapped_profile.head.bias.copy()
    b[0] -= 2.0
    old = dataclasses.replace(swapped_profile, head=LinearHead(w, b))
    assert old.moved_unrecorded(bundle) == ["neutral"]
    w[:, 2] += 1.0  # happy has takes: moving it is what a profile is for
    happy_moved = dataclasses.replace(swapped_profile, head=LinearHead(w, swapped_profile.head.bias))
    assert happy_moved.moved_unrecorded(bundle) == []
    assert dataclasses.replace(swapped_profile, head=None).moved_unrecorded(bundle) == []


def test_bias_only_fit_keeps_the_weights_and_moves_the_offsets() -> None:
    """weights=False: a voice whose every window leans one way gets a bias that undoes the lean."""
    rng = np.random.default_rng(2)
    prior = LinearHead(np.array([[2.0, -2.0], [0.0, 0.0]]), np.array([3.0, -3.0]))  # leans to label 0
    e = np.concatenate([rng.normal(0, 0.2, (30, 2)) + [1, 0], rng.normal(0, 0.2, (30, 2)) + [-1, 0]])
    y = np.array([0] * 30 + [1] * 30)
    assert (prior.probs(e[30:]).argmax(1) == 0).mean() > 0.9  # the lean: label 1's takes read as 0
    head = fit_head(e, y, prior, l2=1e-3, weights=False)
    np.testing.assert_array_equal(head.weights, prior.weights)
    assert (head.probs(e).argmax(1) == y).mean() > 0.9
    assert head.bias[1] - head.bias[0] > prior.bias[1] - prior.bias[0] + 2.0


def test_trust_in_the_shipped_head_follows_its_accuracy_on_the_takes() -> None:
    prior = LinearHead(np.array([[1.0, -1.0, 0.0, 0.0]]), np.zeros(4))  # tells 0 from 1, never says 2 or 3
    e = np.array([[2.0], [2.0], [-2.0], [-2.0]])
    assert head_trust(prior, e, np.array([0, 0, 1, 1])) == (1.0, 1.0)
    acc, trust = head_trust(prior, np.concatenate([e, e]), np.array([0, 0, 1, 1, 2, 2, 3, 3]))
    assert acc == 0.5 and trust == pytest.approx((0.5 - 0.25) / 0.75)
    assert head_trust(prior, e, np.array([1, 1, 0, 0])) == (0.0, 0.0)  # worse than chance: no trust
    a, b = LinearHead(np.ones((1, 2)), np.zeros(2)), LinearHead(np.zeros((1, 2)), np.ones(2))
    mix = blend_heads(0.25, a, b)
    np.testing.assert_allclose(mix.weights, [[0.25, 0.25]])
    np.testing.assert_allclose(mix.bias, [0.75, 0.75])


def _takes(rng: np.random.Generator, pattern: list[tuple[int, list[float]]]) -> list[tuple[int, np.ndarray]]:
    """Per take: (label, centre of its window embeddings); 8 noisy windows each."""
    return [(lab, rng.normal(0, 0.3, (8, 4)) + np.array(c)) for lab, c in pattern]


def test_held_out_takes_choose_a_personal_head_only_when_it_predicts_them_better() -> None:
    rng = np.random.default_rng(1)
    prior = LinearHead(np.array([[1.5, -1.5], [0, 0], [0, 0], [0, 0]]), np.zeros(2))  # reads dimension 0
    # This voice shows its classes on dimension 1, and on dimension 0 the other way round:
    # the shipped head is wrong for it, every take agrees, so a personal head wins.
    takes = _takes(rng, [(0, [-1, 2, 0, 0]), (0, [-1, 2, 0, 0]), (1, [1, -2, 0, 0]), (1, [1, -2, 0, 0])])
    l2, scores = choose_head_l2(takes, prior)
    assert l2 is not None and scores[str(l2)] > scores["shipped"]
    # Here dimension 0 is right and what dimension 1 says flips from take to take: a head fitted
    # on half the takes learns the flip and predicts the other half worse, so the shipped head stays.
    takes = _takes(rng, [(0, [1, 2, 0, 0]), (0, [1, -2, 0, 0]), (1, [-1, -2, 0, 0]), (1, [-1, 2, 0, 0])])
    l2, scores = choose_head_l2(takes, prior)
    assert l2 is None and scores["shipped"] >= max(scores.values())
    # One take per label leaves nothing to hold out: the default pull, no scores.
    takes = _takes(rng, [(0, [-1, 2, 0, 0]), (1, [1, -2, 0, 0])])
    assert choose_head_l2(takes, prior) == (HEAD_L2, {})


# -- takes ----------------------------------------------------------------------------------------


def test_check_take_refuses_silence_clipping_and_too_short_with_reasons(bundle) -> None:
    assert check_take(voice(1200), bundle).ok
    silent = (np.random.default_rng(0).standard_normal(3 * RATE) * 1e-5).astype(np.float32)
    assert "no voice" in check_take(silent, bundle).problem
    clipped = np.sign(tone(300, 2.0)).astype(np.float32)
    c = check_take(clipped, bundle)
    assert "clipping" in c.problem and c.clipped_share > 0.5
    assert "too short" in check_take(tone(1200, 0.5), bundle).problem
    blip = np.concatenate([np.zeros(RATE, np.float32) + 1e-5, tone(1200, 0.3), np.zeros(RATE, np.float32) + 1e-5])
    assert "only" in check_take(blip, bundle).problem


def test_fit_profile_refuses_unknown_labels_and_no_takes(bundle, clf) -> None:
    with pytest.raises(ProfileError, match="'bored' is not one model"):
        fit_profile(bundle, clf, [Take("bored", voice(200))])
    with pytest.raises(ProfileError, match="no takes"):
        fit_profile(bundle, clf, [])


def test_neutral_only_takes_give_a_baseline_and_no_head(bundle, clf) -> None:
    p = fit_profile(bundle, clf, [Take("neutral", voice(700, seed=s)) for s in range(3)])
    assert p.head is None and p.takes["neutral"]["takes"] == 3
    assert p.baseline.shape == (64,) and bundle.speaker_norm.prior_frames <= p.baseline_frames


# -- the file ----------------------------------------------------------------------------------


def test_profile_round_trip_holds_numbers_not_audio(tmp_path, swapped_profile, bundle) -> None:
    path = save_profile(tmp_path / "me.json", swapped_profile)
    data = json.loads(path.read_text())
    assert set(data) == {"format", "format_version", "note", "model", "labels", "features", "baseline",
                         "baseline_frames", "head", "takes", "head_fit", "created", "updated"}
    assert data["format_version"] == FORMAT_VERSION and data["model"]["fingerprint"] == bundle.fingerprint
    assert path.stat().st_size < 20_000  # 10 s of takes as 16-bit audio would be 320 kB
    back, where = load_profile(path, bundle)
    assert where == path
    np.testing.assert_allclose(back.baseline, swapped_profile.baseline, atol=1e-5)
    np.testing.assert_allclose(back.head.weights, swapped_profile.head.weights, atol=1e-6)
    assert back.labels == bundle.labels and back.takes == swapped_profile.takes
    # How the head was fitted: the happy takes read as angry, the angry ones as happy, the calm ones as calm.
    fit = back.head_fit
    assert fit == swapped_profile.head_fit and set(fit) == {"shipped_accuracy", "bias_share", "pull"}
    assert 0.2 <= fit["shipped_accuracy"] <= 0.5
    chance = 1 / len(bundle.labels)
    assert fit["bias_share"] == pytest.approx((fit["shipped_accuracy"] - chance) / (1 - chance), abs=1e-3)
    # A profile written before head_fit existed (same format version) still loads, with none.
    del data["head_fit"]
    (tmp_path / "older.json").write_text(json.dumps(data))
    assert read_profile(tmp_path / "older.json").head_fit == {}


def test_profile_of_another_version_or_model_or_damaged_is_refused(tmp_path, swapped_profile, bundle,
                                                                   tiny_bundle) -> None:
    path = save_profile(tmp_path / "me.json", swapped_profile)
    data = json.loads(path.read_text())
    (tmp_path / "v2.json").write_text(json.dumps({**data, "format_version": 2}))
    with pytest.raises(ProfileError, match="format_version 2"):
        read_profile(tmp_path / "v2.json")
    other = load_bundle(tiny_bundle)
    with pytest.raises(ProfileError, match=r"made for model 'tiny-test-profiles' \(\w+\), not for this model "
                                           r"'tiny-test'"):
        load_profile(path, other)
    (tmp_path / "cut.json").write_text(path.read_text()[:200])
    with pytest.raises(ProfileError, match="not a profile"):
        read_profile(tmp_path / "cut.json")
    (tmp_path / "nohead.json").write_text(json.dumps({**data, "head": {"weights": [[1]]}}))
    with pytest.raises(ProfileError, match="damaged"):
        read_profile(tmp_path / "nohead.json")
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ProfileError):
        read_profile(tmp_path / "deep.json")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(ProfileError, match="not a regular file"):
        read_profile(tmp_path / "fifo.json")


def test_profile_names_and_paths(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert profile_path("me") == tmp_path / "data" / "ser-daemon" / "profiles" / "me.json"
    assert profile_path(str(tmp_path / "x.json")) == tmp_path / "x.json"
    assert profile_path(str(tmp_path / "dir")) == tmp_path / "dir" / "profile.json"
    for bad in ("", "a b", "-x", "a" * 65):
        with pytest.raises(ProfileError):
            profile_path(bad)


def test_save_is_atomic_and_refuses_an_unwritable_place(tmp_path, swapped_profile) -> None:
    path = save_profile(tmp_path / "me.json", swapped_profile)
    before = path.read_bytes()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ProfileError, match="cannot write"):
        save_profile(tmp_path / "afile" / "me.json", swapped_profile)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".profile-")] == []


def test_list_and_delete(tmp_path, monkeypatch, swapped_profile) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    save_profile(profile_path("b"), swapped_profile)
    save_profile(profile_path("a"), swapped_profile)
    profile_path("junk").write_text("{}")
    names = [(n, type(p).__name__) for n, _, p in list_profiles()]
    assert names == [("a", "VoiceProfile"), ("b", "VoiceProfile"), ("junk", "ProfileError")]
    delete_profile("a")
    assert not profile_path("a").exists()
    with pytest.raises(ProfileError):
        delete_profile("junk")  # not a profile: left alone
    assert profile_path("junk").exists()


# -- live use --------------------------------------------------------------------------------------


def test_profile_makes_the_pipeline_show_what_the_user_means(bundle, clf, swapped_profile) -> None:
    x = voice(3000, seconds=8.0, seed=7)
    without = replay_audio(x, RATE, clf)
    with_profile = replay_audio(x, RATE, clf, profile=swapped_profile)
    assert _label_share(without, "angry") > 0.7
    assert _label_share(with_profile, "happy") > 0.7


def test_profile_is_per_stream_and_starts_the_speaker_reference_at_the_baseline(bundle, clf, swapped_profile) -> None:
    s = AnalysisSettings()
    mine = StreamProcessor("me", bundle.labels, bundle.features, bundle.window_s, s, RATE, clock=lambda: 0.0,
                           speaker_norm=bundle.speaker_norm, profile=swapped_profile)
    other = StreamProcessor("guest", bundle.labels, bundle.features, bundle.window_s, s, RATE, clock=lambda: 0.0,
                            speaker_norm=bundle.speaker_norm)
    np.testing.assert_allclose(mine.speaker.reference, swapped_profile.baseline.astype(np.float32))
    assert mine.speaker.weight_frames == swapped_profile.baseline_frames
    np.testing.assert_allclose(other.speaker.reference, np.float32(-10.0))
    x = voice(3000, seconds=8.0, seed=3)
    analyzer = Analyzer(clf)
    got: dict[str, list] = {"me": [], "guest": []}
    for start in range(0, len(x), 320):
        work = [(p, d) for p in (mine, other) for d in p.feed(x[start : start + 320], start, lambda i: 0.0)]
        for st in analyzer.decide(work):
            got[st.stream].append(st)
    alone = replay_audio(x, RATE, clf, stream="guest", block_frames=320)
    # The guest's decisions are exactly those of a run without any profile in the batch.
    assert len(got["guest"]) == len(alone)
    np.testing.assert_allclose(np.array([s.raw for s in got["guest"]]), np.array([s.raw for s in alone]), atol=1e-6)
    assert _label_share(got["me"], "happy") > 0.7 and _label_share(got["guest"], "angry") > 0.7


# -- the command line ----------------------------------------------------------------------------------


def _run(args: list[str], env: dict[str, str], limit: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(daemon_cmd(*args), capture_output=True, text=True, timeout=timeout(limit), cwd=REPO,
                          env={**os.environ, **env})


@pytest.fixture()
def takes_dir(tmp_path) -> Path:
    d = tmp_path / "takes"
    d.mkdir()
    for i in range(2):
        write_wav(d / f"happy{i}.wav", voice(3000, seed=i))
        write_wav(d / f"angry{i}.wav", voice(1000, seed=20 + i))
        write_wav(d / f"calm{i}.wav", voice(200, seed=10 + i))
    write_wav(d / "silence.wav", np.zeros(3 * RATE, np.float32))
    write_wav(d / "scene.wav", voice(3000, seconds=8.0, seed=5))
    return d


def _states(stdout: str) -> list[dict]:
    return [m for m in map(json.loads, stdout.splitlines()) if m.get("type") == "state"]


@pytest.mark.slow
def test_enroll_from_files_then_use_and_update_the_profile(profile_bundle, takes_dir, tmp_path) -> None:
    env = {"SER_MODEL_DIR": str(profile_bundle)}
    d = takes_dir
    r = _run(["enroll", "--profile", "me", "--label", "happy", str(d / "happy0.wav"), str(d / "happy1.wav"),
              "--label", "angry", str(d / "angry0.wav"), str(d / "angry1.wav"),
              "--label", "calm", str(d / "calm0.wav"), str(d / "calm1.wav")], env)
    assert r.returncode == 0, r.stderr
    assert "6 takes" in r.stdout and "personal head for angry, calm, happy" in r.stdout
    assert re.search(r"the shipped model read your takes right \d+% of the time", r.stdout), r.stdout
    shown = _run(["profiles", "show", "me"], env)
    assert shown.returncode == 0 and re.search(r"fitted +the shipped model read the takes right \d+%", shown.stdout)
    assert "refitted   angry, calm, happy" in shown.stdout and "shipped    neutral (no takes" in shown.stdout
    assert "WARNING" not in shown.stdout
    # A profile from a version that refitted every label from the takes of some is pointed out.
    mine = read_profile(profile_path("me"))
    w = mine.head.weights.copy()
    w[:, 0] -= 0.5  # neutral, never recorded, pushed away as the old refit did
    save_profile(tmp_path / "older.json", dataclasses.replace(mine, head=LinearHead(w, mine.head.bias)))
    older = _run(["profiles", "show", str(tmp_path / "older.json")], env)
    assert older.returncode == 0 and "older version that also moved neutral" in older.stdout, older.stdout
    listing = _run(["profiles"], env)
    assert listing.returncode == 0 and listing.stdout.startswith("me ") and "fits this model" in listing.stdout

    run = ["--input", str(d / "scene.wav"), "--fast", "--jsonl", "--no-osc", "--no-ws", "--quiet"]
    plain = _run(run, env)
    assert plain.returncode == 0, plain.stderr
    voiced = [s for s in _states(plain.stdout) if s["voice"] and not s["final"]]
    assert sum(s["label"] == "angry" for s in voiced) > 0.7 * len(voiced)

    before = read_profile(profile_path("me"))
    config = tmp_path / "ser.toml"
    config.write_text('profile = "me"\nno_profile_update = true\n')
    frozen = _run(run + ["--config", str(config)], env)
    assert frozen.returncode == 0, frozen.stderr
    voiced = [s for s in _states(frozen.stdout) if s["voice"] and not s["final"]]
    assert sum(s["label"] == "happy" for s in voiced) > 0.7 * len(voiced)
    assert read_profile(profile_path("me")).updated == before.updated

    # A file is usually someone else's voice: it uses the profile but leaves it alone unless asked.
    kept = _run(run + ["--profile", "me"], env)
    assert kept.returncode == 0, kept.stderr
    voiced = [s for s in _states(kept.stdout) if s["voice"] and not s["final"]]
    assert sum(s["label"] == "happy" for s in voiced) > 0.7 * len(voiced)
    assert read_profile(profile_path("me")).updated == before.updated
    both = _run(run + ["--profile", "me", "--profile-update", "--no-profile-update"], env)
    assert both.returncode == 2 and "contradict" in both.stderr and len(both.stderr.strip().splitlines()) == 1

    # Asked for on the command line, the update happens, over the config file's opposite.
    used = _run(run + ["--config", str(config), "--profile-update"], env)
    assert used.returncode == 0, used.stderr
    after = read_profile(profile_path("me"))
    assert after.baseline_frames > before.baseline_frames or not np.allclose(after.baseline, before.baseline)
    np.testing.assert_allclose(after.head.weights, before.head.weights)  # the head is never changed live

    assert _run(["profiles", "delete", "me"], env).returncode == 0
    assert not profile_path("me").exists()


@pytest.mark.slow
def test_bad_enrollment_input_exits_2_with_one_line_and_writes_nothing(profile_bundle, takes_dir, tmp_path) -> None:
    env = {"SER_MODEL_DIR": str(profile_bundle)}
    d = takes_dir
    good = ["--label", "happy", str(d / "happy0.wav"), "--label", "calm", str(d / "calm0.wav")]
    assert _run(["enroll", "--profile", "me", *good], env).returncode == 0
    kept = profile_path("me").read_bytes()
    cases = {
        "no voice heard": ["enroll", "--profile", "new", "--label", "calm", str(d / "silence.wav")],
        "'bored' is not one model": ["enroll", "--profile", "new", "--label", "bored", str(d / "calm0.wav")],
        "exists already": ["enroll", "--profile", "me", *good],
        "is not a folder": ["enroll", "--profile", str(d / "happy0.wav" / "p.json"), *good],
        "needs at least one WAV": ["enroll", "--profile", "new", "--label", "calm"],
        "input file not found": ["enroll", "--profile", "new", "--label", "calm", str(d / "missing.wav")],
    }
    for needle, args in cases.items():
        r = _run(args, env)
        assert r.returncode == 2, (needle, r.stderr)
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert not profile_path("new").exists()
    assert profile_path("me").read_bytes() == kept
    # A damaged profile, and a profile made for another model, are refused by the daemon.
    (tmp_path / "bad.json").write_text('{"format": "ser-daemon-profile", "format_version": 1}')
    run = ["--input", str(d / "scene.wav"), "--fast", "--no-osc", "--no-ws", "--quiet"]
    r = _run(run + ["--profile", str(tmp_path / "bad.json")], env)
    assert r.returncode == 2 and "damaged profile" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    shipped = _run(run + ["--profile", "me", "--model", str(REPO / "models" / "default")], env)
    assert shipped.returncode == 2, shipped.stderr
    assert "made for model 'tiny-test-profiles'" in shipped.stderr and "this model 'default'" in shipped.stderr


def test_only_microphones_update_a_profile_unless_asked(tmp_path) -> None:
    from ser_daemon.app.config import DaemonConfig

    wav = tmp_path / "someone.wav"
    assert DaemonConfig(device=(3,), profile="me").updates_profile
    assert not DaemonConfig(inputs=(wav,), profile="me").updates_profile
    assert not DaemonConfig(profile="me").updates_profile  # no local input at all (ingest only)
    assert DaemonConfig(inputs=(wav,), profile="me", profile_update=True).updates_profile
    assert not DaemonConfig(device=(3,), profile="me", profile_update=False).updates_profile


# -- ser-eval --enroll -------------------------------------------------------------------------------


def _clips(speaker: str, per_label: int) -> list:
    from ser_daemon.training.datasets import Clip

    return [Clip(Path(f"/virtual/{speaker}/{lab}{i}.wav"), lab, speaker)
            for lab in ("neutral", "calm", "happy", "angry") for i in range(per_label)]


def test_pick_enrollment_keeps_scored_clips_apart_and_nests_the_sets() -> None:
    from ser_daemon.training.enroll_eval import pick_enrollment

    clips = _clips("u1", 5)
    durations = {str(c.path): 10.0 for c in clips}
    sets, scored = pick_enrollment(clips, 2, seed=3, durations=durations)
    assert set(sets) == {"K=1", "K=2", "neutral-only"}
    paths = {k: {str(c.path) for c in v} for k, v in sets.items()}
    assert paths["K=1"] < paths["K=2"]
    for lab in ("neutral", "calm", "happy", "angry"):
        assert sum(c.label == lab for c in sets["K=2"]) == 2
        assert sum(c.label == lab for c in scored) >= 1
    assert {c.label for c in sets["neutral-only"]} == {"neutral"} and len(sets["neutral-only"]) == 3  # 30 s
    assert not {str(c.path) for c in scored} & set().union(*paths.values())
    assert len(scored) + len(set().union(*paths.values())) == len(clips)
    again, _ = pick_enrollment(list(reversed(clips)), 2, seed=3, durations=durations)
    assert {k: [str(c.path) for c in v] for k, v in again.items()} == {k: [str(c.path) for c in v]
                                                                       for k, v in sets.items()}


def test_enroll_evaluation_measures_the_gain_of_a_profile(bundle, clf) -> None:
    from ser_daemon.training.enroll_eval import evaluate_enrollment, format_enrollment

    # This speaker's happy sounds like the model's angry and the other way round.
    pitch = {"neutral": 700.0, "calm": 200.0, "happy": 3000.0, "angry": 1200.0}
    clips = _clips("u1", 4)
    audio = {str(c.path): voice(pitch[c.label], seconds=2.0, seed=i) for i, c in enumerate(clips)}
    result = evaluate_enrollment(clips, clf, 1, load=lambda c: audio[str(c.path)], progress=None)
    rows = result["settings"]
    assert set(rows) == {"K=0", "K=1", "neutral-only"} and result["speakers"] == ["u1"]
    assert rows["K=0"]["timeline_gain"] == 0.0 and rows["K=0"]["per_class_recall"]["happy"] == 0.0
    assert rows["K=1"]["timeline_gain"] > 0.3 and rows["K=1"]["per_class_recall"]["happy"] > 0.5
    assert rows["K=1"]["clip_accuracy"] > rows["K=0"]["clip_accuracy"]
    # K=1 takes one clip per label; neutral-only two more neutral ones (one neutral is always kept to score).
    assert rows["K=1"]["clips_scored"] == rows["K=0"]["clips_scored"] == len(clips) - 4 - 2
    assert rows["K=1"]["fit_s_max"] < 5.0
    assert rows["K=1"]["per_speaker_timeline_gain"] == {"u1": rows["K=1"]["timeline_gain"]}
    text = format_enrollment(result, "tiny")
    assert "K=1" in text and "neutral-only" in text and "gain sd" not in text


def test_enroll_evaluation_over_draws_is_the_mean_of_single_draws(bundle, clf) -> None:
    from ser_daemon.training.enroll_eval import evaluate_enrollment, format_enrollment

    pitch = {"neutral": 700.0, "calm": 200.0, "happy": 3000.0, "angry": 1200.0}
    clips = _clips("u1", 3) + _clips("u2", 3)
    audio = {str(c.path): voice(pitch[c.label] * (1.1 if c.speaker == "u2" else 1.0), seconds=2.0, seed=i)
             for i, c in enumerate(clips)}

    def run(seed: int, draws: int) -> dict:
        return evaluate_enrollment(clips, clf, 1, seed=seed, draws=draws, load=lambda c: audio[str(c.path)],
                                   progress=None)

    one, two, both = run(5, 1), run(6, 1), run(5, 2)
    assert both["draws"] == 2 and both["seed"] == 5
    for name in ("K=0", "K=1", "neutral-only"):
        a, b, m = one["settings"][name], two["settings"][name], both["settings"][name]
        for key in ("timeline_settled_accuracy", "clip_accuracy", "timeline_gain", "clip_gain"):
            assert m[key] == pytest.approx((a[key] + b[key]) / 2)
        assert m["timeline_gain_per_draw"] == pytest.approx([a["timeline_gain"], b["timeline_gain"]])
        assert m["timeline_gain_sd"] == pytest.approx(abs(a["timeline_gain"] - b["timeline_gain"]) / 2)
        for spk in ("u1", "u2"):
            assert m["per_speaker_timeline_gain"][spk] == pytest.approx(
                (a["per_speaker_timeline_gain"][spk] + b["per_speaker_timeline_gain"][spk]) / 2)
    # Another seed draws other enrollment clips: the two single draws must differ somewhere.
    assert one["settings"]["K=1"]["per_speaker_timeline"] != two["settings"]["K=1"]["per_speaker_timeline"] or \
        one["settings"]["K=1"]["clip_accuracy"] != two["settings"]["K=1"]["clip_accuracy"]
    text = format_enrollment(both, "tiny")
    assert "means over 2 draws" in text and "gain sd" in text and "u2" in text
    with pytest.raises(ValueError, match="draws"):
        evaluate_enrollment(clips, clf, 1, draws=0, load=lambda c: audio[str(c.path)], progress=None)


def test_enroll_evaluation_of_some_labels_reports_the_recorded_and_the_unrecorded(bundle, clf) -> None:
    from ser_daemon.training.enroll_eval import class_groups, evaluate_enrollment, format_enrollment

    pitch = {"neutral": 700.0, "calm": 200.0, "happy": 3000.0, "angry": 1200.0}
    clips = _clips("u1", 3)
    audio = {str(c.path): voice(pitch[c.label], seconds=2.0, seed=i) for i, c in enumerate(clips)}
    result = evaluate_enrollment(clips, clf, 1, enroll_labels=["happy", "calm"], load=lambda c: audio[str(c.path)],
                                 progress=None)
    assert result["enroll_labels"] == ["happy", "calm"]
    rows, classes = result["settings"], result["classes"]
    # Only happy and calm were enrolled (one clip each), yet the scored clips are those of a full enrollment.
    assert rows["K=1"]["enroll_audio_s_mean"] == pytest.approx(2 * (2.0 + 0.8))
    assert rows["K=1"]["clips_scored"] == rows["K=0"]["clips_scored"] == len(clips) - 4 - 1
    assert set(rows["K=1"]["clip_per_class_recall"]) == {"neutral", "calm", "happy", "angry"}
    k1 = classes["K=1"]
    assert k1["recorded_labels"] == ["happy", "calm"] and classes["neutral-only"]["recorded_labels"] == ["neutral"]
    for short, key in (("timeline", "per_class_recall"), ("clip", "clip_per_class_recall")):
        assert set(k1[short]["kept"]) == {"neutral", "angry"}
        recall = rows["K=1"][key]
        assert k1[short]["recorded"] == pytest.approx((recall["happy"] + recall["calm"]) / 2)
        assert k1[short]["unrecorded"] == pytest.approx((recall["neutral"] + recall["angry"]) / 2)
        kept = [v for v in k1[short]["kept"].values() if v is not None]
        assert k1[short]["kept_min"] == (min(kept) if kept else None)
    assert classes["K=0"]["clip"]["kept_min"] in (1.0, None)
    # The grouping itself, on made-up rows: what an unrecorded class kept of its recall without a profile.
    made = {"K=0": {"per_class_recall": {"a": 0.5, "b": 0.8, "c": 0.0}, "clip_per_class_recall": {"a": 1.0, "b": 0.5}},
            "K=1": {"per_class_recall": {"a": 0.9, "b": 0.4, "c": 0.2}, "clip_per_class_recall": {"a": 1.0, "b": 0.25}}}
    got = class_groups(made, ["a"])["K=1"]
    assert got["timeline"] == {"recorded": 0.9, "unrecorded": pytest.approx(0.3), "kept": {"b": 0.5, "c": None},
                               "kept_min": 0.5}
    assert got["clip"]["kept"] == {"b": 0.5} and got["clip"]["recorded"] == 1.0
    text = format_enrollment(result, "tiny")
    assert "recall per class (K-clip profiles from happy, calm only" in text and "unrec." in text
    with pytest.raises(ProfileError, match="'bored'|bored"):
        evaluate_enrollment(clips, clf, 1, enroll_labels=["bored"], load=lambda c: audio[str(c.path)], progress=None)
