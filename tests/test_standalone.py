"""The repository stands alone: no code, spec or document cites a path that exists only beside the
development checkout (the ``shared`` folder with the paper's text and the notes). The paper is
cited by title and authors and what the notes said lives in docs/ (docs/references.md)."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The two folder names, kept out of this file's text as paths (it is searched like the others).
SHARED, NOTES = "shared", "notes"
SUFFIXES = (".py", ".yaml", ".md")
#: A path into the ``shared`` folder or a top-level ``notes`` folder: at the start of a path
#: (after a space, quote, bracket or ``./``/``../``), not a folder of that name inside another
#: path (``docs`` then ``notes``); a join above the checkout (``ROOT.parent / "shared"``); the
#: paper's file name; this machine's /work.
OUTSIDE = re.compile(
    r"(?<![\w./-])(?:\.\.?/)*(?:shared|notes)/"
    r"|(?:\.parents?(?:\[\d+\])?|[\"']\.\.[\"']\)?)\s*/\s*[\"'](?:shared|notes)[\"']"
    r"|ablation-monet\.txt"
    r"|(?<![\w.])/work/"
)


def _files() -> list[Path]:
    """The repository's *.py, *.yaml and *.md files: tracked, or new and not ignored."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed
            if name.endswith(SUFFIXES) and (ROOT / name).is_file()]  # fmt: skip


def _hits(files: list[Path]) -> list[str]:
    hits = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return hits


@pytest.mark.parametrize(
    ("line", "outside"),
    [
        (f"({SHARED}/paper/the-paper.txt)", True),
        (f"see `{SHARED}/{NOTES}/monet-reference.md`", True),
        (f"# GENESIS ({NOTES}/monet-reference.md)", True),
        (f"PAPER = ROOT.parent / '{SHARED}' / 'paper'", True),
        (f"cat ../{SHARED}/README.md", True),
        ('Path("..") / "notes"', True),
        ('shared, alone = tmp_path / "shared", tmp_path / "alone"', False),
        ("the paper's text", False),
        (f"see docs/{NOTES}/x.md or docs/monet_reference.md", False),
        ("runs shared with 3.1", False),
        ("store/<run id> -> ../../../store/<run id>", False),
    ],
)
def test_the_pattern_finds_paths_outside_and_nothing_else(line, outside):
    assert bool(OUTSIDE.search(line)) is outside


def test_no_path_outside_the_repository_outside_tests():
    files = [p for p in _files() if p.relative_to(ROOT).parts[0] != "tests"]
    assert files
    assert _hits(files) == []


def test_no_path_outside_the_repository_in_tests():
    """The tests too, but for this file's own patterns; the paper's text comes from the
    ``MONETK_PAPER_TEXT`` environment variable (tests/test_specs.py)."""
    here = Path(__file__).resolve()
    files = [p for p in _files() if p.relative_to(ROOT).parts[0] == "tests" and p != here]
    assert _hits(files) == []
