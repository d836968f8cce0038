"""Training checkpoints: colbertv2.0 weights + trainer state, written atomically.

Layout under a run's output folder::

    train_config.json          the run's TrainConfig
    loss.jsonl                 one record per optimizer step
    eval.jsonl                 one record per dev evaluation (when on)
    checkpoints/step-000100/   save_pretrained layout + trainer_state.pt + train_config.json
                               + COMPLETE (written last)
    best/                      best dev checkpoint (when dev evaluation is on)
    final/                     the model after the last step

A checkpoint is built in a hidden temporary folder and renamed into place, so an
interrupted run never leaves a folder that looks complete; resume only considers folders
with the COMPLETE marker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from latesearch._atomic import replace_folder
from latesearch.errors import CheckpointError
from latesearch.training.config import CONFIG_FILE, TrainConfig

CHECKPOINTS_DIR = "checkpoints"
COMPLETE = "COMPLETE"
STATE_FILE = "trainer_state.pt"
LOSS_LOG = "loss.jsonl"
EVAL_LOG = "eval.jsonl"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_dir(output: str | os.PathLike, step: int) -> Path:
    return Path(output) / CHECKPOINTS_DIR / f"step-{step:06d}"


def save_checkpoint(
    folder: str | os.PathLike,
    model: Any,
    config: TrainConfig,
    *,
    state: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write `model` (save_pretrained layout), `state` and `config` into `folder` atomically;
    `info` goes into the COMPLETE marker (JSON)."""
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        if state is not None:
            torch.save(dict(state), tmp / STATE_FILE)
        config.save(tmp / CONFIG_FILE)
        marker = json.dumps(dict(info or {}), indent=2) + "\n"
        (tmp / COMPLETE).write_text(marker, encoding="utf-8")
        replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def is_complete(folder: str | os.PathLike) -> bool:
    return (Path(folder) / COMPLETE).is_file()


def list_checkpoints(output: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete step checkpoints of a run, oldest first."""
    root = Path(output) / CHECKPOINTS_DIR
    found = []
    for child in root.iterdir() if root.is_dir() else ():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and is_complete(child):
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(output: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(output)
    return found[-1][1] if found else None


def clean_partial(output: str | os.PathLike) -> None:
    """Remove temporary folders left by an interrupted save."""
    out = Path(output)
    for root in (out, out / CHECKPOINTS_DIR):
        for child in root.iterdir() if root.is_dir() else ():
            if child.name.startswith(".") and (".tmp-" in child.name or ".old-" in child.name):
                shutil.rmtree(child, ignore_errors=True)


def prune_checkpoints(output: str | os.PathLike, keep_last: int) -> None:
    """Keep only the newest `keep_last` step checkpoints (0 keeps all)."""
    if keep_last <= 0:
        return
    for _, path in list_checkpoints(output)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)


def load_trainer_state(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / STATE_FILE
    if not is_complete(folder):
        raise CheckpointError(f"{folder}: checkpoint is incomplete (no {COMPLETE} marker)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: trainer state missing") from None
    except Exception as err:
        raise CheckpointError(f"{path}: unreadable trainer state ({err})") from None


class JsonlLog:
    """An append-only JSONL log (loss per step, dev evaluations)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def append(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(dict(record)) + "\n")

    def truncate(self, step: int) -> None:
        """Keep only records with ``step <= step`` (rewritten atomically)."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interruption
            if isinstance(record, dict) and int(record.get("step", 0)) <= step:
                kept.append(line + "\n")
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, self.path)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines()]
