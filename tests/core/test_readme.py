"""README.md is generated from docs/readme/*.md (docs/build_readme.py) and kept fresh."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from docs import build_readme

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "build_readme.py"
CI_TEST_COMMAND = "python3 -m pip install nox && nox"  # what .ci/run greps README.md for
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_is_generated_from_the_fragments() -> None:
    """The committed README.md equals the fragments assembled; if not, says how to regenerate."""
    fresh = build_readme.build(build_readme.read_fragments())
    current = (ROOT / "README.md").read_text(encoding="utf-8")
    if current != fresh:
        pytest.fail(build_readme.stale_message(current, fresh), pytrace=False)


def test_check_mode_fails_on_a_stale_readme_and_passes_on_a_fresh_one(tmp_path: Path) -> None:
    """`build_readme.py --check` exits 1 naming `nox -s readme` when stale, 0 once rebuilt."""
    copy = tmp_path / "repo"
    (copy / "docs").mkdir(parents=True)
    (copy / "docs" / "build_readme.py").write_bytes(SCRIPT.read_bytes())
    (copy / "docs" / "readme").mkdir()
    for fragment in (ROOT / "docs" / "readme").glob("*.md"):
        (copy / "docs" / "readme" / fragment.name).write_bytes(fragment.read_bytes())
    for package in build_readme.PACKAGES:  # the layout section lists their modules
        (copy / package).mkdir()
        for module in (ROOT / package).glob("*.py"):
            (copy / package / module.name).write_bytes(module.read_bytes())
    readme = copy / "README.md"
    readme.write_text((ROOT / "README.md").read_text(encoding="utf-8") + "hand edit\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(copy / "docs" / "build_readme.py"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    stale = run("--check")
    assert stale.returncode == 1
    assert "README.md is stale" in stale.stderr
    assert "nox -s readme" in stale.stderr
    assert "-hand edit" in stale.stderr  # the diff shows what differs
    assert run().returncode == 0
    assert "hand edit" not in readme.read_text(encoding="utf-8")
    fresh = run("--check")
    assert fresh.returncode == 0, fresh.stderr


def test_an_unlisted_fragment_is_an_error(tmp_path: Path) -> None:
    """A docs/readme/*.md file missing from FRAGMENTS stops the build instead of being dropped."""
    for name in build_readme.FRAGMENTS:
        (tmp_path / name).write_text(f"## {name}\n")
    (tmp_path / "extra.md").write_text("## Extra\n")
    with pytest.raises(build_readme.ReadmeError, match=r"extra\.md .* not in FRAGMENTS"):
        build_readme.read_fragments(tmp_path)


def test_contents_links_every_second_level_heading_outside_code() -> None:
    """The contents line links each `## ` heading by its GitHub anchor, skipping code blocks."""
    text = "# T\n\n<!-- contents -->\n\n## Quick start\n\n```\n## not a heading\n```\n\n## When?\n"
    built = build_readme.build([("a.md", text)])
    assert "Contents: [Quick start](#quick-start) · [When?](#when)\n" in built
    assert built.startswith("<!--") and "nox -s readme" in built.splitlines()[0]


def test_readme_keeps_the_ci_test_command_and_its_links_resolve() -> None:
    """README.md shows the command .ci/run runs, and every relative link names a real file."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert CI_TEST_COMMAND in text
    anchors = {build_readme.anchor(title) for title in build_readme.headings(text, 2)}
    anchors |= {build_readme.anchor(title) for title in build_readme.headings(text, 3)}
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        if target.startswith("#"):
            assert target[1:] in anchors, target
        else:
            assert (ROOT / target.split("#")[0]).exists(), target
