"""The package's rooms import only the rooms below them (CONTRIBUTING.md's table).

Every `import latesearch.X` / `from latesearch.X import ...` counts, lazy ones inside
functions included, so an upward import cannot hide in a function body.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import latesearch

PACKAGE = Path(latesearch.__file__).parent
BASE = {"errors", "_atomic", "_configio"}
ALLOWED = {
    "errors": set(),
    "_atomic": {"errors"},
    "_configio": {"errors", "_atomic"},
    "scoring": BASE,
    "data": BASE,
    "modeling": BASE | {"scoring"},
    "compressed": BASE,
    "indexing": BASE | {"scoring", "modeling", "data", "compressed"},
    "search": BASE | {"scoring", "modeling", "data", "compressed", "indexing"},
    "evaluation": BASE | {"data", "search"},
    "training": BASE
    | {"scoring", "modeling", "data", "compressed", "indexing", "search", "evaluation"},
    "index": BASE | {"scoring", "modeling", "data", "compressed", "indexing", "search"},
    "sharding": BASE | {"data", "compressed", "indexing", "modeling", "search", "index"},
    "serving": BASE | {"__init__", "data", "compressed", "indexing", "search", "index"},
    "client": BASE | {"data", "search"},
    "integrations": BASE | {"client", "indexing", "search"},
    "cli": None,  # the top: anything
    "__main__": {"cli"},
    "__init__": set(),  # re-exports by name only (import_module), checked below
}


def room_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py") if len(parts) == 1 else parts[0]


def latesearch_imports(path: Path) -> set[str]:
    """The rooms `path` imports (first component after `latesearch.`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "latesearch":
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


FILES = sorted(p for p in PACKAGE.rglob("*.py") if "resources" not in p.parts)


def test_every_room_is_in_the_table():
    assert {room_of(p) for p in FILES} <= set(ALLOWED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_rooms_below(path):
    room = room_of(path)
    allowed = ALLOWED[room]
    if allowed is None:
        return
    upward = latesearch_imports(path) - allowed - {room}
    assert not upward, f"{path.relative_to(PACKAGE)} ({room}) imports {sorted(upward)}"


def test_the_lazy_top_level_exports_point_below_the_cli():
    exported = {module.split(".")[1] for module in latesearch._EXPORTS.values()}
    assert exported <= set(ALLOWED) - {"cli", "__main__"}


def contributing_table() -> dict[str, set[str] | None]:
    """CONTRIBUTING.md's layer table: room -> the rooms it may import (None: everything)."""
    text = (PACKAGE.parent / "CONTRIBUTING.md").read_text(encoding="utf-8")
    table: dict[str, set[str] | None] = {}
    for line in text.splitlines():
        if not line.startswith("| `latesearch/"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        room = cells[0].strip("`").removeprefix("latesearch/").rstrip("/").removesuffix(".py")
        names = {n.strip().strip("`") for n in cells[-1].split(",")}
        if names == {"everything"}:
            table[room] = None
            continue
        rooms = set() if names == {"—"} else names
        if "base" in rooms:
            rooms = (rooms - {"base"}) | BASE
        table[room] = {"__init__" if r == "latesearch" else r for r in rooms}
    return table


def test_contributing_table_is_the_checked_one():
    assert contributing_table() == ALLOWED
