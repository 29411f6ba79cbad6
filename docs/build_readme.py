"""Build README.md from the fragments in docs/readme/ (the README's one source).

    python docs/build_readme.py          # write README.md (what `nox -s readme` runs)
    python docs/build_readme.py --check  # exit 1 with a diff when README.md is stale

Standard library only; the README is the fragments in `FRAGMENTS` order, joined by one
blank line, under a generated-file banner. A `<!-- contents -->` line in a fragment
becomes the table of contents: one link per `## ` heading, in order.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FRAGMENT_DIR = ROOT / "docs" / "readme"

# The README, top to bottom. Every *.md in docs/readme/ must be listed here.
FRAGMENTS = (
    "intro.md",  # title, what it is, quick start, a worked example in Python
    "user-guide.md",  # concepts, the command line, the config file reference
    "schedules.md",
    "core.md",  # when does evaluation happen?
    "distributed.md",
    "faults.md",  # what each task does when one fails, never comes, or is stopped
    "devices.md",  # tf.distribute strategies: MirroredStrategy, MultiWorkerMirroredStrategy
    "sweeps.md",  # tfexperiment tune on Optuna
    "performance.md",
    "troubleshooting.md",
    "layout.md",  # how the code is organised
    "development.md",
)

REGENERATE = "nox -s readme"
BANNER = (
    "<!-- Generated from docs/readme/*.md by docs/build_readme.py: do not edit by hand."
    f" Edit the fragments, then run `{REGENERATE}` and commit README.md. -->"
)
CONTENTS_MARKER = "<!-- contents -->"
MODULES_MARKER = "<!-- modules -->"
PACKAGES = ("core", "shell")
_FENCE = re.compile(r"^\s*(```|~~~)")


class ReadmeError(Exception):
    """The fragments cannot be assembled (a missing, unlisted or malformed fragment)."""


def headings(text: str, level: int = 2) -> list[str]:
    """The Markdown ATX headings of exactly `level` in `text`, outside fenced code blocks.

    Args:
        text: Markdown source.
        level: the number of `#` (2 for `## Title`).

    Returns:
        The heading titles, in order, without the `#`s.
    """
    found: list[str] = []
    in_fence = False
    prefix = "#" * level + " "
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and line.startswith(prefix):
            found.append(line[len(prefix) :].strip())
    return found


def anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def contents_line(titles: list[str]) -> str:
    """The one-line table of contents linking each `## ` heading."""
    return "Contents: " + " · ".join(f"[{title}](#{anchor(title)})" for title in titles)


def read_fragments(fragment_dir: Path = FRAGMENT_DIR) -> list[tuple[str, str]]:
    """The (name, text) of each fragment, in README order.

    Raises:
        ReadmeError: a listed fragment is missing or does not start with a heading, or a
            `*.md` file in `fragment_dir` is not listed in `FRAGMENTS`.
    """
    present = {path.name for path in fragment_dir.glob("*.md")}
    unlisted = sorted(present - set(FRAGMENTS))
    if unlisted:
        raise ReadmeError(
            f"{', '.join(unlisted)} in {fragment_dir} not in FRAGMENTS in docs/build_readme.py:"
            " add each where it belongs in the README"
        )
    missing = [name for name in FRAGMENTS if name not in present]
    if missing:
        raise ReadmeError(f"fragments listed in docs/build_readme.py not found: {missing}")
    fragments = []
    for name in FRAGMENTS:
        text = (fragment_dir / name).read_text(encoding="utf-8").strip()
        if not text.startswith("#"):
            raise ReadmeError(f"{fragment_dir / name} must start with a Markdown heading")
        fragments.append((name, text))
    return fragments


def module_lines(root: Path = ROOT) -> str:
    """One Markdown list line per module of core/ and shell/: its path and the first line
    of its docstring (so the layout section cannot drift from the code)."""
    lines = []
    for package in PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            summary = doc.strip().splitlines()[0] if doc.strip() else "(no module docstring)"
            lines.append(f"- `{package}/{path.name}` — {summary}")
    return "\n".join(lines)


def build(fragments: list[tuple[str, str]], root: Path = ROOT) -> str:
    """The README text: banner, then the fragments joined by one blank line.

    The `<!-- contents -->` marker line, if any, is replaced by the table of contents,
    and `<!-- modules -->` by `module_lines`.
    """
    body = "\n\n".join(text.strip() for _, text in fragments)
    if MODULES_MARKER in body:
        body = body.replace(MODULES_MARKER, module_lines(root))
    if CONTENTS_MARKER in body:
        body = body.replace(CONTENTS_MARKER, contents_line(headings(body)))
    return f"{BANNER}\n\n{body}\n"


def stale_message(current: str, fresh: str, max_diff_lines: int = 40) -> str:
    """What `--check` prints when README.md differs from the fragments: how to fix, a diff."""
    diff = list(
        difflib.unified_diff(
            current.splitlines(),
            fresh.splitlines(),
            "README.md (as it is)",
            "README.md (as docs/readme/ generates it)",
            lineterm="",
            n=1,
        )
    )
    shown = diff[:max_diff_lines]
    if len(diff) > max_diff_lines:
        shown.append(f"... ({len(diff) - max_diff_lines} more diff lines)")
    return (
        "README.md is stale: it is generated from docs/readme/*.md and differs from them.\n"
        f"Edit the fragments (not README.md), run `{REGENERATE}` (or"
        " `python docs/build_readme.py`) and commit README.md.\n" + "\n".join(shown)
    )


def main(argv: list[str] | None = None) -> int:
    """Write README.md, or with `--check` report whether it is up to date (exit 0/1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if README.md is stale"
    )
    args = parser.parse_args(argv)
    try:
        fresh = build(read_fragments())
    except ReadmeError as exc:
        print(f"build_readme: {exc}", file=sys.stderr)
        return 2
    current = README.read_text(encoding="utf-8") if README.is_file() else ""
    if args.check:
        if current != fresh:
            print(stale_message(current, fresh), file=sys.stderr)
            return 1
        print("README.md is up to date with docs/readme/")
        return 0
    if current != fresh:
        README.write_text(fresh, encoding="utf-8")
        print(f"wrote {README.relative_to(ROOT)} from {len(FRAGMENTS)} fragments")
    else:
        print("README.md already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
