"""The JSON configs saved next to models, indexes and runs: one reader, one validating
mixin (`JsonConfig`), one positive-integer check."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from latesearch._atomic import write_json
from latesearch.errors import ConfigError, InputError, LatesearchError

C = TypeVar("C", bound="JsonConfig")


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


def check_positive(
    name: str, value: Any, *, minimum: int = 1, error: type[LatesearchError] = InputError
) -> None:
    """Raise `error` (with `field=name`) unless `value` is an integer, not a bool, that is at
    least `minimum` (1: positive)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise error(f"{name} must be an integer >= {minimum}, got {value!r}", field=name)


class JsonConfig:
    """Mixin for config dataclasses stored as JSON.

    Built or loaded, every field is checked against its annotation (int, float, str, bool,
    None, tuples, nested JsonConfig groups given as objects or mappings): lists become
    tuples, ints become floats where a float is expected, paths become strings. Then
    `validate` checks the values. Errors are ConfigError naming `Class.field`; unknown
    fields are refused. `to_dict` gives plain JSON values (groups nested). With `file_name`
    set, `save` and `load` also take the folder that holds the file (a folder, or a path
    that is not a file and does not end in ".json").
    """

    file_name: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name, hint in _hints(type(self)).items():
            value = _checked(f"{owner}.{name}", hint, getattr(self, name))
            object.__setattr__(self, name, value)
        self.validate()

    def validate(self) -> None:
        """Checks of the values (their types are checked already); raise ConfigError."""

    def _check_ints(self, *names: str, minimum: int = 1) -> None:
        """`check_positive` on each named field that is not None."""
        for name in names:
            value = getattr(self, name)
            try:
                if value is not None:
                    check_positive(name, value, minimum=minimum, error=ConfigError)
            except ConfigError as err:
                raise ConfigError(f"{type(self).__name__}.{err}", field=name) from None

    def _bad(self, name: str, expected: str) -> typing.NoReturn:
        """Raise ConfigError: field `name` must be `expected`."""
        value = getattr(self, name)
        raise ConfigError(f"{type(self).__name__}.{name} must be {expected}, got {value!r}",
                          field=name)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with some fields changed."""
        return self.from_dict({**self.to_dict(), **changes}, source="overrides")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as JSON to `path` (or into the folder `path`) atomically."""
        return write_json(self._file(path), self.to_dict())

    @classmethod
    def load(cls: type[C], path: str | os.PathLike) -> C:
        """Read and validate a config JSON file (or `file_name` in the folder `path`)."""
        path = cls._file(path)
        return cls.from_dict(read_json(path, what=f"{cls.__name__} file"), source=str(path))

    @classmethod
    def from_dict(cls: type[C], data: Any, *, source: str = "config") -> C:
        """Build a config from a mapping; unknown fields and bad values name the source."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        unknown = sorted(set(data) - {f.name for f in fields})
        if unknown:
            raise ConfigError(f"{source}: unknown {cls.__name__} field(s) {unknown}")
        missing = [f.name for f in fields if f.name not in data and _required(f)]
        if missing:
            raise ConfigError(f"{source}: missing {cls.__name__} field(s) {missing}")
        try:
            return cls(**data)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}", field=err.field) from None

    @classmethod
    def _file(cls, path: str | os.PathLike) -> Path:
        path = Path(path)
        if cls.file_name and (path.is_dir() or not path.is_file() and path.suffix != ".json"):
            return path / cls.file_name
        return path


def _required(f: dataclasses.Field) -> bool:
    no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    return f.init and no_default


def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotation of each dataclass field of `cls` (cached on the class)."""
    cached = cls.__dict__.get("_field_hints")
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
        cls._field_hints = cached  # type: ignore[attr-defined]
    return cached


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _checked(where: str, hint: Any, value: Any) -> Any:
    """`value` checked against annotation `hint` (and converted: lists to tuples, ...)."""
    if type(value) is hint and hint in (int, str, bool):
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _checked(where, option, value)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1 and type(None) not in args:
            raise errors[0]
        names = [_describe(a) for a in args]
        raise ConfigError(f"{where} must be {' or '.join(names)}, got {value!r}",
                          field=where.split(".", 1)[-1])  # fmt: skip
    if hint is Any:
        return value
    if hint is tuple or origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            _wrong(where, "a list", value)
        if args and args[-1] is Ellipsis:
            return tuple(_checked(f"{where}[{i}]", args[0], v) for i, v in enumerate(value))
        return tuple(value)
    if isinstance(hint, type) and issubclass(hint, JsonConfig):
        if isinstance(value, hint):
            return value
        if isinstance(value, dict):
            return hint.from_dict(value, source=where)
        _wrong(where, f"an object of {hint.__name__} fields", value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            _wrong(where, "a finite number", value)
        return float(value)
    if hint is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    if hint in _KINDS:
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            _wrong(where, _KINDS[hint], value)
        return value
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            _wrong(where, "a mapping", value)
        return value
    raise TypeError(f"{where}: JsonConfig cannot check annotation {hint!r}")


def _describe(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and issubclass(hint, JsonConfig):
        return f"an object of {hint.__name__} fields"
    return _KINDS.get(hint, "a list" if hint is tuple or typing.get_origin(hint) is tuple
                      else str(hint))  # fmt: skip


def _wrong(where: str, expected: str, value: Any) -> typing.NoReturn:
    raise ConfigError(f"{where} must be {expected}, got {value!r}", field=where.split(".", 1)[-1])


def _plain(value: Any) -> Any:
    """A field's value as plain JSON data: groups as mappings, tuples as lists."""
    if isinstance(value, JsonConfig):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
