"""``ser-daemon enroll`` and ``ser-daemon profiles``: make, list, show and delete personal profiles.

Enrollment from files is for scripts and tests::

    ser-daemon enroll --profile me --label neutral a.wav b.wav --label happy c.wav

Every take is checked before anything is written (voice heard, not clipped,
long enough); a bad take, an unknown label, a profile that exists already
(without ``--replace``) or a folder that cannot be written ends with one line
and exit code 2, and the old profile, if any, is left as it was.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ..arguments import OneLineParser
from ..errors import ProfileError, SerError
from ..model.backends import AUTO, backend_choices

__all__ = ["main", "build_parser"]

log = logging.getLogger(__name__)





def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="ser-daemon", description="Personal profiles: teach ser-daemon your voice.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    e = sub.add_parser(
        "enroll",
        help="make a profile from takes of your voice",
        description=(
            "Make a personal profile from takes of your voice: --label LABEL FILE.wav ... (repeatable). "
            "Neutral takes alone teach the daemon your voice's baseline; takes in several emotions also fit "
            "a personal classifier head. A profile holds statistics and head weights only, never audio."
        ),
    )
    e.add_argument("--profile", required=True, metavar="NAME|PATH",
                   help="profile name (kept in the per-user data folder) or a path (FILE.json or a folder)")
    e.add_argument("--label", nargs="+", action="append", metavar=("LABEL", "FILE.wav"), default=[],
                   help="a label the model knows, then WAV files of you speaking that way; repeatable")
    e.add_argument("--model", metavar="DIR|NAME", help="model bundle folder or shipped model name (default: default)")
    e.add_argument("--backend", choices=backend_choices(), default=AUTO, help="inference runtime")
    e.add_argument("--baseline-only", action="store_true",
                   help="learn the voice baseline only, no personal head (even with labelled takes)")
    e.add_argument("--replace", action="store_true", help="overwrite the profile if it exists")
    g = e.add_argument_group(
        "guided, from a microphone",
        "With --device (and no --label) a guided session shows short sentences to read, neutrally first, "
        "then as if delighted, furious, sad ...; a level meter and a progress bar show what is captured. "
        "Enter records (and stops; a take also stops by itself after a moment of silence), s skips a step, "
        "q finishes now and keeps the takes accepted so far.")
    g.add_argument("--device", metavar="N|NAME", help="the microphone: index or part of its name (see --list-devices)")
    g.add_argument("--host-api", metavar="NAME", help="take the device from this PortAudio host API")
    g.add_argument("--samplerate", type=int, metavar="HZ", help="capture rate (default: the device's)")
    g.add_argument("--emotions", metavar="LIST",
                   help="comma-separated emotions to record after the neutral sentences (default: every label "
                        "the model knows; 'none' for neutral takes only)")
    e.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="warning")

    ls = sub.add_parser("profiles", help="list, show or delete profiles",
                        description="List the profiles kept by name, show one, or delete one.")
    ls.add_argument("action", nargs="?", choices=("list", "show", "delete"), default="list")
    ls.add_argument("name", nargs="?", metavar="NAME|PATH", help="the profile to show or delete")
    ls.add_argument("--model", metavar="DIR|NAME", help="say whether profiles fit this model (default: the shipped one)")
    ls.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="warning")
    return p


def _enroll(args: argparse.Namespace) -> int:
    from ..audio.clips import load_audio
    from ..model.inference import load_classifier
    from .enroll import Take, check_take, fit_profile, summary_line
    from .store import bundle_for, check_writable, profile_path, save_profile

    path = profile_path(args.profile)
    check_writable(path, args.replace)
    if args.device is not None:
        if args.label:
            raise ProfileError("give either --label LABEL FILE.wav ... or --device N (a guided session), not both")
        from .mic import run_guided

        return run_guided(args, path)
    if not args.label:
        raise ProfileError("no takes: give --label LABEL FILE.wav ... (for example --label neutral me1.wav me2.wav), "
                           "or --device N for a guided session at the microphone")
    bundle = bundle_for(args.model)
    takes: list[Take] = []
    for group in args.label:
        label, files = group[0].strip().lower(), group[1:]
        label = bundle.label_merge.get(label, label)  # calm takes teach "neutral" to a calm=neutral model
        if label not in bundle.labels:
            raise ProfileError(f"label {label!r} is not one model {bundle.name!r} knows; its labels: "
                               f"{', '.join(bundle.labels)}")
        if not files:
            raise ProfileError(f"--label {label} needs at least one WAV file after it")
        for f in files:
            audio = load_audio(f, bundle.features.sample_rate)
            verdict = check_take(audio, bundle)
            if not verdict.ok:
                raise ProfileError(f"{f}: {verdict.problem}")
            takes.append(Take(label, audio, str(f)))
    classifier = load_classifier(bundle, args.backend)
    t0 = time.perf_counter()
    profile = fit_profile(bundle, classifier, takes, head=not args.baseline_only)
    fit_s = time.perf_counter() - t0
    save_profile(path, profile)
    print(summary_line(path, profile, len(takes), fit_s, bundle.name))
    return 0


def _describe(name: str, path: Path, item: Any, fingerprint: str | None) -> str:
    if isinstance(item, SerError):
        return f"{name:<20} unreadable: {item}"
    takes = ", ".join(f"{lab} {int(v.get('takes', 0))}" for lab, v in sorted(item.takes.items())) or "-"
    fits = "" if fingerprint is None else ("  fits this model" if item.model_fingerprint == fingerprint
                                           else f"  made for another model ({item.model_name} {item.model_fingerprint})")
    head = "head" if item.head is not None else "baseline"
    return f"{name:<20} {head:<8} takes: {takes}  updated {item.updated}{fits}"


def _profiles(args: argparse.Namespace) -> int:
    from .store import bundle_for, delete_profile, list_profiles, profile_path, profiles_dir, read_profile

    if args.action in ("show", "delete") and not args.name:
        raise ProfileError(f"'profiles {args.action}' needs the profile's name or path")
    if args.action == "delete":
        print(f"deleted {delete_profile(args.name)}")
        return 0
    try:
        bundle = bundle_for(args.model)
    except SerError:
        bundle = None
    fingerprint = bundle.fingerprint if bundle is not None else None
    if args.action == "show":
        path = profile_path(args.name)
        profile = read_profile(path)
        d = profile.to_dict()
        print(f"profile {path}")
        print(f"  model      {profile.model_name} ({profile.model_fingerprint})"
              + ("" if fingerprint is None else ("  fits this model" if profile.model_fingerprint == fingerprint
                                                 else "  NOT this model")))
        print(f"  baseline   {len(profile.baseline)} bands, weight {profile.baseline_frames:g} voiced frames")
        print(f"  head       {'personal, ' + str(profile.head.embedding_dim) + ' inputs' if profile.head else 'none'}")
        fit = profile.head_fit
        if profile.head is not None and fit.get("shipped_accuracy") is not None:
            pull = "shipped weights kept" if fit.get("pull") is None else f"full refit pulled by {fit['pull']:g}"
            print(f"  fitted     the shipped model read the takes right {fit['shipped_accuracy']:.0%} of the time; "
                  f"{fit.get('bias_share') or 0:.0%} bias-only refit, the rest {pull}")
        if profile.head is not None:
            print(f"  refitted   {', '.join(sorted(profile.takes))} (the labels with takes)")
            unrecorded = [lab for lab in profile.labels if lab not in profile.takes]
            # Checked against the model it was made for only; [] when that model is not at hand.
            same_model = bundle is not None and profile.model_fingerprint == fingerprint
            moved = profile.moved_unrecorded(bundle) if same_model else []
            if moved:
                print(f"  WARNING    made by an older version that also moved {', '.join(moved)} without takes "
                      "of them: enroll again")
            elif unrecorded:
                print(f"  shipped    {', '.join(unrecorded)} (no takes: as the shipped model reads them)")
        for lab, v in sorted(profile.takes.items()):
            print(f"  takes      {lab}: {int(v.get('takes', 0))}, {v.get('voice_s', 0):.1f} s of voice")
        print(f"  created    {d['created']}, updated {d['updated']}")
        return 0
    items = list_profiles()
    if not items:
        print(f"no profiles in {profiles_dir()} (make one: ser-daemon enroll --profile NAME --label neutral FILE.wav)")
        return 0
    for name, path, item in items:
        print(_describe(name, path, item, fingerprint))
    return 0


def main(argv: Sequence[str]) -> int:
    """Run ``ser-daemon enroll ...`` or ``ser-daemon profiles ...``; return the exit code."""
    args = build_parser().parse_args(list(argv))
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _enroll(args) if args.command == "enroll" else _profiles(args)
    except SerError as exc:
        print(f"ser-daemon {args.command}: error: {exc}", file=sys.stderr)
        return 2
