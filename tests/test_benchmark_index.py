"""docs/benchmarks.md and benchmarks/results/README.md list every benchmark script, every
stress harness and every result file, and every result file they list exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DOCS = {"docs/benchmarks.md": REPO / "docs" / "benchmarks.md",
        "benchmarks/results/README.md": RESULTS / "README.md"}  # fmt: skip
SCRIPTS = sorted(p.name for p in (REPO / "benchmarks").glob("*.py") if not p.name.startswith("_"))
HARNESSES = sorted(p.name for p in (REPO / "tests" / "stress").glob("*.py")
                   if p.name != "conftest.py")  # fmt: skip
RESULT_FILES = sorted(p.name + ("/" if p.is_dir() else "") for p in RESULTS.iterdir()
                      if p.name != "README.md" and not p.name.startswith("."))  # fmt: skip
RESULT_NAME = re.compile(r"[\w-]+\.(?:json|md|png)\b|[\w-]+/")


def names(text: str, name: str) -> bool:
    """Whether `text` names `name` as a whole (fuzz.py is not test_fuzz.py)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


@pytest.mark.parametrize("doc", list(DOCS))
def test_every_script_and_result_is_listed(doc):
    text = DOCS[doc].read_text(encoding="utf-8")
    assert len(SCRIPTS) > 10 and len(HARNESSES) == 3 and len(RESULT_FILES) > 20
    missing = [n for n in SCRIPTS + HARNESSES + RESULT_FILES if not names(text, n)]
    assert not missing, f"{doc} does not name {missing}"


def result_cells() -> list[tuple[str, str]]:
    """(document, cell) for each table cell that lists result files: the first column of
    the results README, the last column of the four-column tables of docs/benchmarks.md."""
    cells = []
    for doc, path in DOCS.items():
        for line in path.read_text(encoding="utf-8").splitlines():
            row = [c.strip() for c in line.split("|")[1:-1]]
            if not line.startswith("| ") or set("".join(row)) <= set("-"):
                continue
            if doc.startswith("benchmarks/") and row[0] != "files":
                cells.append((doc, row[0]))
            elif doc.startswith("docs/") and len(row) == 4 and row[3] != "results":
                cells.append((doc, row[3]))
    return cells


def test_every_listed_result_exists():
    cells = result_cells()
    assert len(cells) > 20
    for doc, cell in cells:
        listed = {m.group(0) for m in RESULT_NAME.finditer(cell)}
        assert listed <= set(RESULT_FILES), f"{doc}: {sorted(listed - set(RESULT_FILES))}"
