"""``ser-daemon``: the command line.  Parses, loads, hands over; no pipeline logic here."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .app.config import DaemonConfig, load_toml
from .app.flags import LOG_LEVELS, build_parser
from .app.options import _NOT_OPTIONS, _from_toml, config_from_options
from .app.startup import install_startup_handlers, restore_signals
from .app.stop_requests import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED
from .errors import ConfigError, SerError
from .os_defaults import user_config_path

__all__ = ["main", "build_parser"]

log = logging.getLogger("ser_daemon")

def _list_devices() -> int:
    from .audio.sound_server import format_sources, list_sources
    from .audio.sources import format_device_list, list_input_devices
    from .os_defaults import default_host_api

    print(format_device_list(list_input_devices(), default_host_api()))
    if sys.platform.startswith("linux"):
        sources = list_sources()
        if sources:
            print("\n" + format_sources(sources))
    return 0


def _model_dir(config: DaemonConfig) -> Path:
    from .model.bundle import model_dir_or_default

    return model_dir_or_default(config.model)


def _vrchat_table(config: DaemonConfig) -> int:
    """The tables an avatar maker needs, from the code that sends the values (the README's come from here)."""
    from .model.bundle import load_bundle
    from .outputs.mapping import load_mapping
    from .outputs.vrchat_params import label_table_markdown, parameter_table_markdown, plan_from_table

    bundle = load_bundle(_model_dir(config))
    mapping = load_mapping(config.mapping, bundle.labels)
    default, avatars = plan_from_table(mapping.vrchat, bundle.labels, preset=config.vrchat_params,
                                       prefix=config.vrchat_prefix, targets=mapping.targets)
    out = [parameter_table_markdown(default)]
    for avatar_id, plan in avatars.items():
        out += ["", f"Avatar `{avatar_id}`:", "", parameter_table_markdown(plan)]
    label_params = [p.name for p in default.params if p.source == "label"]
    if label_params:
        out += ["", label_table_markdown(bundle.labels, label_params[0])]
    print("\n".join(out))
    return 0


def _write_config(path: str) -> int:
    from .app.config_template import config_template

    target = Path(path).expanduser() if path else user_config_path()
    shown = str(target) if len(str(target)) <= 120 else f"{str(target)[:120]}... ({len(str(target))} characters)"
    try:
        if target.is_symlink():  # also a dangling one: never write through a link
            raise ConfigError(f"{shown} is a symbolic link; not writing through it")
        if target.exists():
            raise ConfigError(f"{shown} exists already; edit it, or delete it to write a fresh one")
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: created here or refused, even if a link appeared meanwhile (O_EXCL never follows one).
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(config_template(build_parser()))
    except OSError as exc:
        raise ConfigError(f"cannot write {shown}: {exc.strerror or exc}") from None
    print(target)
    return 0


def _exit_now(code: int) -> None:
    """Flush what can be flushed and leave at once, whatever state the interpreter is in."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ser-daemon``; return the process exit code."""
    # Until the daemon's loop takes over (and again once its clean stop is done), SIGINT,
    # SIGTERM and SIGHUP (SIGBREAK on Windows) end the process at once with their exit code
    # (README: exit codes).  ``python -m ser_daemon`` and the ``ser-daemon`` command installed
    # them already, before this module was imported; here for callers of main() itself.
    previous = install_startup_handlers()
    try:
        code = _main(argv)
    except KeyboardInterrupt:  # defensive: only Python's own Ctrl-C handler raises it, and ours replaced it
        _exit_now(EXIT_INTERRUPTED)
    except BrokenPipeError:
        _exit_now(EXIT_BROKEN_PIPE)  # e.g. `ser-daemon --list-devices | head -1`
    if argv is not None:
        restore_signals(previous)  # called as a library function: give the caller its handlers back
    return code


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("enroll", "profiles"):
        from .profiles.cli import main as profiles_main

        return profiles_main(args_list)
    if args_list[:1] == ["sessions"]:  # the session logs of --session-log (ser_daemon/sessions/)
        from .sessions.cli import main as sessions_main

        return sessions_main(args_list[1:])
    if args_list[:1] == ["report"]:
        from .sessions.report import main as report_main

        return report_main(args_list[1:])
    if args_list[:1] == ["cluster"]:  # the Ray Serve application (ser_daemon/cluster/), its own options
        from .cluster.cli import main as cluster_main

        return cluster_main(args_list[1:])
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    logging.basicConfig(
        level=getattr(logging, str(args.get("log_level", "warning")).upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.get("list_devices"):
            return _list_devices()
        if args.get("config_path"):
            print(user_config_path())
            return 0
        if "write_config" in args:
            return _write_config(args["write_config"])
        opts: dict[str, Any] = {}
        config_file = args.get("config")
        if config_file is None and user_config_path().is_file():
            config_file = user_config_path()
            log.info("reading the per-user config file %s", config_file)
        if config_file is not None:
            opts.update(_from_toml(load_toml(config_file), str(config_file)))
        for flag, other in (("profile_update", "no_profile_update"), ("no_profile_update", "profile_update")):
            if flag in args:  # a flag overrides the config file's opposite, as flags override the file
                opts.pop(other, None)
        opts.update({k: v for k, v in args.items() if k not in _NOT_OPTIONS})
        if "log_level" in opts:
            level = str(opts["log_level"]).lower()
            if level not in LOG_LEVELS:
                raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}. Received: {level[:40]!r}")
            logging.getLogger().setLevel(getattr(logging, level.upper()))
        config = config_from_options(opts)
        if args.get("vrchat_table"):
            return _vrchat_table(config)
        return _run(config, opts.get("stats_json"))
    except SerError as exc:
        print(f"ser-daemon: error: {exc}", file=sys.stderr)
        return 2


def _run(config: DaemonConfig, stats_json: str | None) -> int:
    from .app.daemon import Daemon
    from .errors import ModelError
    from .model.bundle import load_bundle
    from .model.inference import load_classifier

    if stats_json:
        from .outputs.console import check_output_file

        check_output_file(stats_json, "--stats-json")
    model_dir = _model_dir(config)
    if config.device not in (None, ()):
        from .audio.sources import resolve_device

        for wanted in config.device if isinstance(config.device, tuple) else (config.device,):
            resolve_device(wanted, config.host_api)  # fail fast, before the model loads
    bundle = load_bundle(model_dir)
    profile = profile_path = None
    if config.profile is not None:
        from .profiles.store import load_profile

        profile, profile_path = load_profile(config.profile, bundle)
        moved = profile.moved_unrecorded(bundle)
        if moved:
            print(f"ser-daemon: warning: profile {profile_path} was made by an older version that also moved "
                  f"{', '.join(moved)} without takes of them, so the face may rarely show them: enroll again",
                  file=sys.stderr)
    classifier = load_classifier(bundle, config.backend, num_threads=config.threads)
    if profile is not None and profile.head is not None and classifier.embedding_dim != profile.head.embedding_dim:
        raise ModelError(f"the {classifier.backend} model of {bundle.name!r} gives no embedding for the profile's head")
    log.info("model %s (%s), labels %s", bundle.name, classifier.backend, ", ".join(bundle.labels))
    daemon = Daemon(config, bundle, classifier, profile=profile, profile_path=profile_path)
    code = daemon.run()
    if stats_json:
        daemon.write_stats(stats_json)
    # The profile may have changed while running (the web page's Calibrate): save into the one in use.
    if daemon.profile is not None and daemon.profile_path is not None and config.updates_profile:
        _save_learned_baseline(daemon, daemon.profile, daemon.profile_path)
    if daemon.left_work_behind:  # stopped during start-up: a library's exit hook would only delay the end
        _exit_now(code)
    return code


def _save_learned_baseline(daemon: Any, profile: Any, path: Path) -> None:
    """Keep what the live estimate learned about the voice (never the audio) for next time."""
    from .profiles.store import save_profile

    learned = daemon.engine.speaker_estimate()
    if learned is None:
        return
    try:
        save_profile(path, profile.with_baseline(*learned))
        log.info("profile %s: voice baseline updated", path)
    except SerError as exc:
        print(f"ser-daemon: warning: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
