"""Errors raised by latesearch. Every error names what was wrong and where."""

from __future__ import annotations


class LatesearchError(Exception):
    """Base class of all latesearch errors."""


class ConfigError(LatesearchError, ValueError):
    """A configuration has an unknown field or an impossible value."""


class CheckpointError(LatesearchError):
    """A checkpoint folder is missing, incomplete or malformed."""


class IndexCorruptError(LatesearchError):
    """An on-disk index is incomplete, inconsistent or of an unknown format."""


class InputError(LatesearchError, ValueError):
    """Bad input data, located by file, line and field where known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message, self.path, self.line, self.field = message, path, line, field
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
        if field is not None:
            where += f" (field {field!r})" if where else f"field {field!r}"
        super().__init__(f"{where}: {message}" if where else message)


class StaleIndexError(LatesearchError):
    """An index folder was replaced by a newer version (an update published by another
    `Index` or process) after this object loaded it: load it again."""
