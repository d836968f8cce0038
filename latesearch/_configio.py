"""Reading and validating the JSON configs saved next to models, indexes and runs."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

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
