"""`progress.json` in the staging folder: the finished chunks of an unfinished build, and
what it was built from, so `--resume` can continue it (or refuse to, saying why)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from latesearch._atomic import write_json
from latesearch.errors import ConfigError, IndexCorruptError
from latesearch.indexing.config import IndexConfig
from latesearch.indexing.manifest import FORMAT_VERSION, ChunkInfo

PROGRESS = "progress.json"
HEAD_BYTES = 1 << 20
MAX_FILES = 64
# IndexConfig settings whose change would make a resumed index inconsistent.
RESUME_FIXED = {
    "codec.precision": lambda c: c.codec.precision,
    "title_join": lambda c: c.title_join,
    "dense": lambda c: c.dense,
}


def describe_source(collection: Any) -> dict[str, Any]:
    """What identifies a collection: size and a hash of the first MiB of each file."""
    if isinstance(collection, str | os.PathLike):
        path = Path(collection)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())[:MAX_FILES]
            return {"path": str(path), "files": {str(p.relative_to(path)): _file(p) for p in files}}
        if path.is_file():
            return {"path": str(path), **_file(path)}
        return {"path": str(path)}
    return {"type": type(collection).__name__}


def _file(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(HEAD_BYTES)).hexdigest()
    return {"size": path.stat().st_size, "head_sha256": head}


@dataclass
class BuildState:
    """Progress of a build; rewritten atomically after every finished chunk."""

    model_fingerprint: str
    colbert_config: dict[str, Any]
    index_config: dict[str, Any]
    collection: dict[str, Any]
    chunks: list[ChunkInfo] = field(default_factory=list)
    docs_consumed: int = 0  # documents taken from the collection reader
    truncated_docs: int = 0
    empty_docs: int = 0
    seconds: float = 0.0
    format_version: int = FORMAT_VERSION

    @property
    def n_docs(self) -> int:
        return sum(c.n_docs for c in self.chunks)

    @property
    def n_embeddings(self) -> int:
        return sum(c.n_embeddings for c in self.chunks)

    def save(self, folder: Path) -> None:
        write_json(folder / PROGRESS, asdict(self))

    @classmethod
    def load(cls, folder: Path) -> BuildState | None:
        """The saved state, or None when the folder holds none."""
        path = folder / PROGRESS
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["chunks"] = [ChunkInfo(**c) for c in data["chunks"]]
            state = cls(**data)
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise IndexCorruptError(f"{path}: unreadable build progress ({err})") from None
        if state.format_version != FORMAT_VERSION:
            raise IndexCorruptError(f"{path}: written by another format version")
        return state

    def check_resumable(self, other: BuildState, folder: Path) -> None:
        """Refuse to resume when model, encoder config, storage or collection changed."""
        problems = []
        if self.model_fingerprint != other.model_fingerprint:
            problems.append("the model is different (fingerprint)")
        if self.colbert_config != other.colbert_config:
            problems.append("the ColBERT config is different")
        mine = IndexConfig.from_dict(self.index_config, source=f"{PROGRESS}: index_config")
        theirs = IndexConfig.from_dict(other.index_config, source="index_config")
        for name, setting in RESUME_FIXED.items():
            if setting(mine) != setting(theirs):
                problems.append(f"IndexConfig.{name} is different")
        if self.collection != other.collection:
            problems.append("the collection changed (size or content of its first MiB)")
        if problems:
            raise ConfigError(
                f"cannot resume the build in {folder}: {'; '.join(problems)}. "
                "Use overwrite (--overwrite) to start again."
            )
