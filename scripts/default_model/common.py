"""Small helpers shared by the default-model scripts: whole-file writes (a temporary file
renamed into place, so an interrupted step never leaves a half-written result) and the
machine a result was measured on (as the benchmarks record it)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a temporary file and `os.replace`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write `data` as indented JSON to `path` (see write_text)."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def machine_info() -> dict[str, Any]:
    """The machine a result was measured on: the benchmarks' own record of it
    (`benchmarks/_machine.py`: CPU, cores, memory, GPU, Python / torch / faiss versions)."""
    benchmarks = str(Path(__file__).resolve().parents[2] / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    from _machine import machine_info as benchmark_machine_info

    return benchmark_machine_info()
