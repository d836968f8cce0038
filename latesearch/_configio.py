"""Reading and validating the JSON configs saved next to models, indexes and runs."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from latesearch._atomic import write_json
from latesearch.errors import ConfigError

T = TypeVar("T")


def read_json(
    path: str | os.PathLike, *, error: type[Exception] = ConfigError, what: str = "file"
) -> Any:
    """Parse a JSON file; a missing or malformed file raises `error` naming the path."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no {what}" if what != "file" else f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: not valid JSON ({err})") from None


def config_from_dict(cls: type[T], data: Any, *, source: str) -> T:
    """Build dataclass `cls` from a mapping; unknown fields and bad values are errors that
    name the source and the field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})  # type: ignore[arg-type]
    if unknown:
        raise ConfigError(f"{source}: unknown {cls.__name__} field(s) {unknown}")
    try:
        return cls(**data)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


class JsonConfig:
    """Mixin for config dataclasses stored as one JSON file: `to_dict`, atomic `save`, and
    validating `load` / `from_dict` (unknown fields and bad values name the source)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as JSON to `path` atomically."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls: type[T], path: str | os.PathLike) -> T:
        """Read and validate a config JSON file."""
        return cls.from_dict(read_json(path), source=str(path))  # type: ignore[attr-defined]

    @classmethod
    def from_dict(cls: type[T], data: Any, *, source: str = "config") -> T:
        return config_from_dict(cls, data, source=source)
