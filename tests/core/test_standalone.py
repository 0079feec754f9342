"""The repository stands alone: no tracked file reads from beside or outside the checkout.

A clone on a new machine has no ``../shared`` folder and no ``/work``; a test,
benchmark or sandbox that reads one fails there (issue 13). Every text file that
git tracks is scanned; paths a user passes on the command line are not files, so
they cannot trip it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()

# Files allowed to break the rule, each with its reason.
EXEMPT = {
    THIS: "names the patterns it looks for",
}

OUTSIDE = re.compile(
    r"\.\./shared"  # the team's data folder beside the checkout
    r"|shared/data"
    r"|/\s*[\"']shared[\"']"  # ... / "shared" / "data", built with pathlib
    r"|\b(?:REPO|ROOT)\.parent\b"  # the folder that holds the checkout
    r"|(?<![\w.~-])/(?:work|home|Users|mnt)/"  # one machine's absolute paths
)
FILE_PARENTS = re.compile(r"__file__.*?\.parents\[(\d+)\]((?:\.parent\b)*)")


def escapes(path: str, text: str, checkout: str = str(REPO)) -> list[str]:
    """``line: text`` of each line of ``path`` (relative to the checkout) that leaves it."""
    depth = len(Path(path).parts)  # parents[depth - 1] of the file is the checkout
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        bad = bool(OUTSIDE.search(line)) or (len(checkout) > 1 and checkout in line)
        for match in FILE_PARENTS.finditer(line):
            up = int(match.group(1)) + match.group(2).count(".parent")
            bad = bad or up >= depth
        if bad:
            found.append(f"{number}: {line.strip()[:120]}")
    return found


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing says which files are tracked")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=30
    ).stdout
    return [name for name in out.decode().split("\0") if name]


def test_no_tracked_file_reads_outside_the_checkout() -> None:
    problems = []
    files = _tracked()
    for name in files:
        if name in EXEMPT:
            continue
        path = REPO / name
        if not path.is_file():  # deleted in the working tree, not yet committed
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary: a compressed table, an image
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        problems += [f"{name}:{hit}" for hit in escapes(name, text)]
    assert len(files) > 100  # the scan saw the repository
    assert not problems, "files that read outside the checkout:\n" + "\n".join(problems)


def test_exemptions_are_still_needed() -> None:
    """An exemption whose file no longer escapes is stale: drop it from EXEMPT."""
    for name in EXEMPT:
        if name != THIS and (REPO / name).is_file():
            assert escapes(name, (REPO / name).read_text(encoding="utf-8")), name


@pytest.mark.parametrize(
    ("path", "line", "flagged"),
    [
        ("tests/x/y.py", 'FEEDS = Path(__file__).resolve().parents[3] / "shared"', True),
        ("tests/x/y.py", 'S = Path(__file__).resolve().parents[2].parent / "data"', True),
        ("tests/x/y.py", 'D = Path(__file__).resolve().parents[2] / "docs"', False),
        ("bench/b.py", "REPO = Path(__file__).resolve().parents[1]", False),
        ("bench/b.py", 'DATA = REPO.parent / "data"', True),
        ("docs/a.md", "see ../shared/CONTRACT.md", True),
        ("docs/a.md", "the files of shared/data/feeds", True),
        ("tests/a.py", 'p = "/work/shared/x.csv"', True),
        ("tests/a.py", 'p = "/home/alice/feeds.csv"', True),
        ("tests/a.py", 'p = "/srv/checkout/tests/data/x"', True),
        ("tests/a.py", 'chromium = "/usr/bin/chromium"', False),
        ("docs/a.md", "large shared-hosting providers, a shared host", False),
        ("tests/a.py", 'url = "http://example.test/home/index.html"', False),
    ],
)
def test_what_counts_as_leaving_the_checkout(path: str, line: str, flagged: bool) -> None:
    assert bool(escapes(path, line, checkout="/srv/checkout")) is flagged
