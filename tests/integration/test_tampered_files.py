"""Tampered and unusual files and paths (issue 32): one line naming the cause and exit 2, never a traceback.

Profiles: every value read from a file is checked (type, finite, range, shape); a bad file is named
in one line and skipped in listings, and random corruptions of a real profile are refused cleanly
or load as a profile. Also over-long names, --stats-json targets and --write-config through links.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import timeout
from helpers import REPO, daemon_cmd
from ser_daemon.errors import ProfileError
from ser_daemon.core.head import LinearHead
from ser_daemon.model.bundle import load_bundle
from ser_daemon.profiles.store import VoiceProfile, profile_path, read_profile
from ser_daemon.profiles.cli import _describe

pytestmark = pytest.mark.slow  # most cases run the CLI

SHIPPED = REPO / "models" / "default"
DEMO = REPO / "ser_daemon" / "data" / "demo.wav"
HUGE = 10**400  # json.dumps writes all 401 digits; float() of it raises OverflowError


def real_profile() -> dict[str, Any]:
    """A profile as enrollment writes it, for the shipped model (numbers made up, shapes real)."""
    b = load_bundle(SHIPPED)
    rng = np.random.default_rng(0)
    n = len(b.labels)
    p = VoiceProfile(model_name=b.name, model_fingerprint=b.fingerprint, labels=b.labels, features=b.features.to_dict(),
                baseline=rng.normal(size=b.features.n_mels), baseline_frames=1234.0,
                head=LinearHead(rng.normal(size=(16, n)), rng.normal(size=n)),
                takes={"neutral": {"takes": 3.0, "voice_s": 12.5}, "happy": {"takes": 2.0, "voice_s": 8.0}},
                head_fit={"shipped_accuracy": 0.5, "bias_share": 0.25, "pull": None})
    return p.to_dict()


def run(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(daemon_cmd(*args), capture_output=True, text=True, cwd=REPO, timeout=timeout(60),
                          env={**os.environ, **(env or {})}, **kw)


def one_line_error(r: subprocess.CompletedProcess, cause: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and cause in lines[0], r.stderr


# -- profiles ----------------------------------------------------------------------------------------

TAMPERED = {
    "a 400-digit integer in baseline": lambda d: d["baseline"].__setitem__(0, HUGE),
    "a 400-digit baseline_frames": lambda d: d.__setitem__("baseline_frames", HUGE),
    "a 400-digit integer in head": lambda d: d["head"]["weights"][0].__setitem__(0, HUGE),
    "a 400-digit takes count": lambda d: d["takes"]["neutral"].__setitem__("takes", HUGE),
    "takes as NaN": lambda d: d["takes"]["neutral"].__setitem__("takes", float("nan")),
    "takes as Infinity": lambda d: d["takes"]["happy"].__setitem__("voice_s", float("inf")),
    "a negative takes count": lambda d: d["takes"]["happy"].__setitem__("takes", -3),
    "takes as text": lambda d: d["takes"]["happy"].__setitem__("takes", "many"),
    "a ragged head": lambda d: d["head"]["weights"][1].pop(),
    "baseline of text": lambda d: d.__setitem__("baseline", ["1.0"] * 3),
    "head_fit as NaN": lambda d: d["head_fit"].__setitem__("bias_share", float("nan")),
}


@pytest.fixture
def profiles_home(tmp_path: Path) -> dict[str, str]:
    """A per-user data folder with one good and one tampered profile slot."""
    return {"XDG_DATA_HOME": str(tmp_path / "data")}


def write_named(env: dict[str, str], name: str, data: dict[str, Any]) -> Path:
    p = Path(env["XDG_DATA_HOME"]) / "ser-daemon" / "profiles" / f"{name}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data))  # json writes NaN and Infinity as such, as a hand edit would
    return p


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_profile_is_refused_in_one_line_everywhere(profiles_home, case: str) -> None:
    good = real_profile()
    bad = real_profile()
    TAMPERED[case](bad)
    write_named(profiles_home, "good", good)
    write_named(profiles_home, "bad", bad)
    # The listing names the bad file in one line and still lists the good one.
    r = run("profiles", env=profiles_home)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    rows = r.stdout.strip().splitlines()
    assert len(rows) == 2 and rows[0].startswith("bad") and "unreadable" in rows[0], r.stdout
    assert rows[1].startswith("good") and "unreadable" not in rows[1], r.stdout
    one_line_error(run("profiles", "show", "bad", env=profiles_home), "bad.json")
    one_line_error(run("--profile", "bad", "--input", str(DEMO), "--fast", "--no-osc", "--no-ws", "--quiet",
                       env=profiles_home), "bad.json")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.sampled_from(["baseline", "baseline_frames", "head", "weights", "bias", "takes", "neutral",
                                      "takes", "voice_s", "head_fit", "pull", "labels", "model", "name",
                                      "fingerprint", "features", "created", 0, 1, -1]), min_size=1, max_size=4),
       value=st.one_of(st.none(), st.booleans(), st.integers(), st.just(HUGE), st.just(-HUGE),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                       st.lists(st.floats(allow_nan=True), max_size=3), st.dictionaries(st.text(max_size=4),
                                                                                       st.integers(), max_size=2)))
def test_random_corruptions_of_a_real_profile_are_refused_or_load(tmp_path_factory, path: list, value: Any) -> None:
    data = real_profile()
    node: Any = data
    for key in path[:-1]:  # walk as far as the path goes
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
    try:
        node[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        return  # the path does not exist in a profile: nothing was corrupted
    f = tmp_path_factory.mktemp("corrupt") / "p.json"
    f.write_text(json.dumps(data))
    try:
        loaded = read_profile(f)
    except ProfileError as exc:
        assert "\n" not in str(exc)
        return
    # It loaded: every number in it is usable, and the listing and show lines can be made.
    assert np.isfinite(loaded.baseline).all() and np.isfinite(loaded.baseline_frames)
    assert all(np.isfinite(v) for t in loaded.takes.values() for v in t.values())
    _describe("p", f, loaded, None)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_random_byte_flips_of_a_real_profile_are_refused_or_load(tmp_path_factory, flips) -> None:
    raw = bytearray(json.dumps(real_profile()).encode())
    for pos, byte in flips:
        raw[pos % len(raw)] = byte
    f = tmp_path_factory.mktemp("flipped") / "p.json"
    f.write_bytes(bytes(raw))
    try:
        loaded = read_profile(f)
    except ProfileError as exc:
        assert "\n" not in str(exc)
        return
    _describe("p", f, loaded, None)


def test_a_profile_name_with_a_trailing_newline_is_refused(profiles_home, tmp_path) -> None:
    with pytest.raises(ProfileError, match="profile name"):
        profile_path("me\n")
    r = run("enroll", "--profile", "me\n", "--label", "neutral", str(DEMO), env=profiles_home)
    one_line_error(r, "profile name 'me\\n'")
    assert not (Path(profiles_home["XDG_DATA_HOME"]) / "ser-daemon" / "profiles").exists()


# -- over-long names -----------------------------------------------------------------------------------

LONG = "/tmp/" + "a" * 300


@pytest.mark.parametrize("args", [
    ["--profile", LONG + ".json", "--input", str(DEMO), "--fast", "--no-osc", "--no-ws"],
    ["--model", LONG, "--input", str(DEMO), "--fast", "--no-osc", "--no-ws"],
    ["--write-config", LONG + ".toml"],
    ["--stats-json", LONG + ".json", "--input", str(DEMO), "--fast", "--no-osc", "--no-ws"],
    ["--input", LONG + ".wav", "--fast", "--no-osc", "--no-ws"],
    ["--config", LONG + ".toml"],
    ["profiles", "show", LONG + ".json"],
    ["enroll", "--profile", LONG + ".json", "--label", "neutral", str(DEMO)],
])
def test_names_over_the_file_name_limit_are_one_line(args: list[str]) -> None:
    one_line_error(run(*args), "File name too long")


# -- --stats-json --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target, cause", [
    ("{tmp}/missing/stats.json", "does not exist"),
    ("{tmp}", "is a folder"),
    ("/dev/full", "not a regular file"),
])
def test_stats_json_targets_are_checked_at_start_up(tmp_path, target: str, cause: str) -> None:
    one_line_error(run("--input", str(DEMO), "--fast", "--no-osc", "--no-ws", "--quiet", "--stats-json",
                       target.format(tmp=tmp_path)), cause)


def test_a_stats_json_write_that_fails_at_exit_is_logged_once(tmp_path) -> None:
    """A disk that fills while running: the write fails (here: a file-size limit of 16 bytes, EFBIG)."""
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))

    r = run("--input", str(DEMO), "--fast", "--no-osc", "--no-ws", "--quiet", "--stats-json",
            str(tmp_path / "stats.json"), preexec_fn=small_files)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("cannot write the statistics") == 1, r.stderr


# -- --write-config -----------------------------------------------------------------------------------


def test_write_config_never_writes_through_a_link(tmp_path) -> None:
    link = tmp_path / "ser-daemon.toml"
    link.symlink_to(tmp_path / "elsewhere" / "target.toml")  # dangling
    one_line_error(run("--write-config", str(link)), "symbolic link")
    assert not (tmp_path / "elsewhere").exists()
    r = run("--write-config", str(tmp_path / "fresh.toml"))
    assert r.returncode == 0 and (tmp_path / "fresh.toml").is_file(), r.stderr


# -- config files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, cause", [
    ("a." * 5000 + "a = 1\n", "nested deeper than 32"),
    ("[" + "a." * 5000 + "a]\nx = 1\n", "nested deeper than 32"),
    ("a = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("hop_ms = " + "9" * 400 + "\n", "hop_ms is out of range"),
    ('log_level = "VERBOSE"\n', "log_level must be one of debug, info, warning, error"),
])
def test_config_files_that_broke_the_parser_are_one_line(tmp_path, text: str, cause: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    one_line_error(run("--config", str(cfg), "--input", str(DEMO), "--fast", "--no-osc", "--no-ws", "--quiet"), cause)


def real_config_lines() -> list[str]:
    """The template --write-config writes, every option switched on."""
    from ser_daemon.cli import build_parser
    from ser_daemon.app.config_template import config_template

    out = []
    for line in config_template(build_parser()).splitlines():
        if line.startswith("# ") and " = " in line and not line.startswith("## "):
            line = line[2:]
        out.append(line)
    return out


CONFIG_VALUES = st.one_of(
    st.sampled_from(["9" * 400, "-" + "9" * 400, "nan", "inf", "-inf", '"VERBOSE"', "[" * 200 + "]" * 200,
                     "{a = {b = {c = 1}}}", '"' + "x" * 5000 + '"', "true", "0", "-1", "1e400", '"\\u0000"',
                     '"127.example.invalid:8765"', '"::1"', '"0.0.0.0:0"', "[]", "[1, 2]"]),
    st.integers().map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=12).map(lambda t: json.dumps(t)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_corruptions_of_a_real_config_are_refused_or_load(tmp_path_factory, data) -> None:
    from ser_daemon.app.options import _from_toml, config_from_options
    from ser_daemon.app.config import DaemonConfig, load_toml
    from ser_daemon.errors import SerError

    lines = real_config_lines()
    keyed = [i for i, ln in enumerate(lines) if " = " in ln and not ln.startswith("#")]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.sampled_from(keyed))
        how = data.draw(st.sampled_from(["value", "key", "bytes"]))
        key, _, _ = lines[i].partition(" = ")
        if how == "value":
            lines[i] = f"{key} = {data.draw(CONFIG_VALUES)}"
        elif how == "key":
            lines[i] = f"{'.'.join([key] * data.draw(st.integers(2, 60)))} = 1"
        else:
            raw = list(lines[i])
            pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
            raw[pos:pos + 1] = data.draw(st.text(min_size=1, max_size=3))
            lines[i] = "".join(raw)
    f = tmp_path_factory.mktemp("cfg") / "c.toml"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        opts = _from_toml(load_toml(f), str(f))
        opts.setdefault("input", [str(DEMO)])
        cfg = config_from_options(opts)
    except SerError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(cfg, DaemonConfig)


# -- model bundles ---------------------------------------------------------------------------------------


def copy_shipped(folder: Path) -> Path:
    import shutil

    folder.mkdir(exist_ok=True)
    for name in ("ser_model.json", "model.tflite", "model.keras"):
        shutil.copy(SHIPPED / name, folder / name)
    return folder


def test_a_model_file_with_flipped_bytes_or_a_wrong_input_shape_is_refused(tmp_path) -> None:
    """Issue 32: a .tflite with 4 KB of flipped bytes loaded and ran; a disagreeing input_shape was accepted."""
    flipped = copy_shipped(tmp_path / "flipped")
    raw = bytearray((flipped / "model.tflite").read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 4096):
        raw[i] ^= 0xFF
    (flipped / "model.tflite").write_bytes(bytes(raw))
    one_line_error(run("--model", str(flipped), "--input", str(DEMO), "--fast", "--no-osc", "--no-ws", "--quiet"),
                   "does not match its SHA-256")
    shaped = copy_shipped(tmp_path / "shaped")
    meta = json.loads((shaped / "ser_model.json").read_text())
    meta["input_shape"] = [100, 64]
    (shaped / "ser_model.json").write_text(json.dumps(meta))
    one_line_error(run("--model", str(shaped), "--input", str(DEMO), "--fast", "--no-osc", "--no-ws", "--quiet"),
                   "input_shape [100, 64] disagrees")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_corruptions_of_a_real_model_bundle_are_refused_or_run(tmp_path_factory, data) -> None:
    from ser_daemon.errors import SerError
    from ser_daemon.model.inference import load_classifier

    folder = copy_shipped(tmp_path_factory.mktemp("bundle"))
    how = data.draw(st.sampled_from(["json_value", "json_bytes", "tflite_bytes"]))
    if how == "json_value":
        meta = json.loads((folder / "ser_model.json").read_text())
        key = data.draw(st.sampled_from(sorted(meta)))
        meta[key] = data.draw(st.one_of(st.none(), st.booleans(), st.integers(), st.just(HUGE),
                                        st.floats(allow_nan=True), st.text(max_size=8), st.lists(st.integers(), max_size=3),
                                        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)))
        (folder / "ser_model.json").write_text(json.dumps(meta))
    else:
        name = "ser_model.json" if how == "json_bytes" else "model.tflite"
        raw = bytearray((folder / name).read_bytes())
        for _ in range(data.draw(st.integers(1, 16))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        (folder / name).write_bytes(bytes(raw))
    try:
        bundle = load_bundle(folder)
        clf = load_classifier(bundle, backend="litert")
        probs = clf.predict(np.zeros((1, *bundle.input_shape), np.float32))
    except SerError as exc:
        assert "\n" not in str(exc).strip()
        return
    # It loaded: then it is the model it says it is (a changed model file never gets this far).
    assert probs.shape == (1, len(bundle.labels)) and np.isfinite(probs).all()
    assert how != "tflite_bytes" or (folder / "model.tflite").read_bytes() == (SHIPPED / "model.tflite").read_bytes()
