"""Decisions are cited from this repository, never from documents a reader of it does not have.

Every tracked text file (code, tests, README, chart templates, scripts) is scanned: none may cite
the specification documents the project was started from, a sibling ``shared`` folder, a section
number of such a document (a section sign that does not follow an RFC number), or an issue
number. A decision is cited as its record under ``docs/decisions/`` — and every record cited
that way must exist.
Self-tests run the scanner on synthetic lines, so this test can fail.

Left out: the conformance data copied from the Connaisseur project (``cases.yaml`` and
``data/``), which is theirs and is not ours to reword.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DECISIONS = ROOT / "docs" / "decisions"
#: Upstream data, copied verbatim.
EXCLUDED = ("tests/conformance/cases.yaml", "tests/conformance/data/")

#: What a reader of this repository cannot follow. Spelled in pieces so that this file, which is
#: scanned too, does not match itself.
FORBIDDEN = {
    "an outside specification": re.compile("(product|connaisseur-v3)" + r"\.md", re.IGNORECASE),
    "a sibling shared folder": re.compile(r"\.\./" + "shared" + r"\b"),
    "an issue number": re.compile(r"\b" + "issues?" + r"\s*#?\s*\d+", re.IGNORECASE),
    "a section of an outside specification": re.compile(r"(?<!RFC \d{4} )(?<!RFC \d{3} )\u00a7"),
}
RECORD = re.compile(r"docs/decisions/(\d{4}-[a-z0-9-]+\.md)")


def tracked_text_files() -> Iterator[tuple[str, str]]:
    """(path, text) of every tracked file git knows, except upstream data and binaries."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if name.startswith(EXCLUDED) or path.is_dir() or path.is_symlink() or not path.exists():
            continue
        try:
            yield name, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def outside_citations(text: str) -> list[tuple[int, str]]:
    """(line number, what is cited) for each citation a reader of the repository cannot follow."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        found += [(number, what) for what, pattern in FORBIDDEN.items() if pattern.search(line)]
    return found


def missing_records(text: str) -> list[str]:
    """Records cited as ``docs/decisions/NNNN-title.md`` that do not exist."""
    return [name for name in RECORD.findall(text) if not (DECISIONS / name).is_file()]


@pytest.mark.parametrize(
    "line",
    [
        "# see product" + ".md \u00a73",
        "(connaisseur-v3" + ".md \u00a75.2)",
        "tools in ../" + "shared/tools",
        "fixed in issue" + " 6",
        "(Issue" + " #12)",
        "the ``with`` block (\u00a74.6)",
    ],
)
def test_the_scanner_finds_an_outside_citation(line: str) -> None:
    assert outside_citations(f"first line\n{line}\n") != []


@pytest.mark.parametrize(
    "line",
    [
        "the signature covers the DER SET (RFC 5652 \u00a75.4)",
        "issue(root, 'signer')",
        "see docs/decisions/0004-notary-v1-strictness.md",
        "Connaisseur v3 configures notation-go",
    ],
)
def test_the_scanner_lets_a_repository_citation_pass(line: str) -> None:
    assert outside_citations(line) == []


def test_a_cited_record_that_does_not_exist_is_found() -> None:
    text = "docs/decisions/0004-notary-v1-strictness.md and docs/" + "decisions/9999-no-such.md"
    assert missing_records(text) == ["9999-no-such.md"]


def test_no_file_cites_documents_outside_the_repository() -> None:
    offenders = [
        f"{name}:{number}: cites {what}"
        for name, text in tracked_text_files()
        for number, what in outside_citations(text)
    ]
    assert offenders == []


def test_every_cited_decision_record_exists() -> None:
    offenders = [
        f"{name}: docs/decisions/{record}"
        for name, text in tracked_text_files()
        for record in missing_records(text)
    ]
    assert offenders == []
