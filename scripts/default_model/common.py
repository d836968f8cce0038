"""Small helpers shared by the default-model scripts: whole-file writes (a temporary file
renamed into place, so an interrupted step never leaves a half-written result) and the
machine a result was measured on."""

from __future__ import annotations

import json
import os
import platform
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
    """CPU, cores, platform and Python / torch versions, recorded beside results."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
