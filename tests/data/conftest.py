"""Fixtures of the data tests: tiny files written on the fly (never ../shared)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

Writer = Callable[[str, str | bytes], Path]


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """write(name, content) -> path under tmp_path; gzipped when the name ends with .gz."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        return path

    return _write
