"""The README a user reads first: what to expect, contents that lead somewhere, commands that work from nothing.

The figures in the "what to expect" box come from the model card and the issue tracker (they
change with the model); what is checked here is that the box is there, near the top, says each
thing a first-time user asks, and that the README's memory figure is the one the benchmark measured.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from conftest import timeout
from helpers import REPO, daemon_cmd

README = (REPO / "README.md").read_text(encoding="utf-8")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _block_after(marker: str) -> str:
    """The first fenced code block after ``marker``."""
    rest = README[README.index(marker):]
    return re.search(r"```\w*\n(.*?)```", rest, re.S).group(1)


def test_what_to_expect_box_is_near_the_top_and_complete() -> None:
    start = README.index("<!-- BEGIN what-to-expect")
    box = README[start:README.index("<!-- END what-to-expect -->")]
    assert README[:start].count("\n") < 25, "the box must be near the top"
    assert README.index("## Quick start") > start
    for needed in ("English", "Italian", "German", "far from the training", "never heard",  # per language
                   "Reaction", "1 change in 6", "Flicker", "a minute",  # reaction time and flicker
                   "one-minute profile", "Windows and macOS", "not run on a real machine",
                   "not the time to the right face", "MODEL_CARD.md", "issue 27"):
        assert needed in box, needed
    assert re.search(r"\d+%", box) and re.search(r"\d\.\d s", box)


def test_contents_links_lead_to_headings() -> None:
    contents = README[README.index("**Contents:**"):README.index("## Quick start")]
    anchors = re.findall(r"\]\(#([^)]+)\)", contents)
    headings = {_slug(h) for h in re.findall(r"^#{2,3} (.+)$", README, re.M)}
    assert len(anchors) >= 15
    missing = [a for a in anchors if a not in headings]
    assert not missing, missing
    tops = [_slug(h) for h in re.findall(r"^## (.+)$", README, re.M)]
    assert [t for t in tops if t not in anchors] == [], "every section is in the contents"


def test_debian_quick_start_works_on_a_machine_that_never_ran_apt() -> None:
    block = _block_after("**Debian/Ubuntu**")
    assert block.index("apt-get update") < block.index("apt-get install")
    assert "git clone" in block and "git " in block.split("apt-get install", 1)[1].split("\n", 1)[0] + " "


def test_windows_from_nothing() -> None:
    section = README[README.index("**Windows 10/11, from nothing**"):README.index("**macOS**")]
    assert "winget install -e --id Python.Python.3.11" in section and "Git.Git" in section
    assert "git clone" in section and "Download ZIP" in section and "new* PowerShell window" in section


def test_linux_source_selection_is_described_as_the_cli_prints_it() -> None:
    from ser_daemon.audio.sound_server import format_sources

    header = format_sources([]).splitlines()[0].split(":")[0]
    assert header in README and "--device \"USB Headset\"" in README


def test_memory_figure_is_the_measured_one() -> None:
    measured = json.loads((REPO / "benchmarks" / "results" / "resident_memory.json").read_text())
    plain = next(r for r in measured["rows"] if r["args"] == ["--osc", "127.0.0.1:9"])
    vrchat = next(r for r in measured["rows"] if r["args"] == ["--osc", "vrchat"])
    perf = README[README.index("## Performance"):README.index("## The model")]
    said = [float(x) for x in re.findall(r"([\d.]+) MiB", perf)]
    assert said, "the Performance section gives resident memory in MiB"
    assert abs(said[0] - plain["rss_mib_steady_median"]) <= 0.05 * plain["rss_mib_steady_median"]
    assert abs(said[1] - vrchat["rss_mib_steady_median"]) <= 0.05 * vrchat["rss_mib_steady_median"]
    assert "Processing time is not the time to the right face" in perf


@pytest.mark.slow
def test_help_says_what_the_readme_says_about_subcommands() -> None:
    r = subprocess.run(daemon_cmd("--help"), capture_output=True, text=True, timeout=timeout(30), cwd=REPO)
    for sub in ("enroll", "profiles", "cluster"):
        assert f"`{sub}`" in README and re.search(rf"^  {sub} ", r.stdout, re.M)


@pytest.mark.slow  # starts a process
def test_the_web_view_costs_no_enrollment_code_until_a_calibration_starts() -> None:
    """The README's --web figure: Calibrate's enrollment code (scipy.signal, ~50 MiB) loads on first use."""
    import sys

    code = ("import sys, ser_daemon.app.daemon, ser_daemon.profiles.calibration, ser_daemon.outputs.websocket; "
            "print('scipy.signal' in sys.modules, 'ser_daemon.profiles.enroll' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout(60), cwd=REPO)
    assert r.stdout.split() == ["False", "False"], r.stderr
