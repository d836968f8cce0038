"""Errors raised by latesearch. Every error names what was wrong and where."""

from __future__ import annotations


class LatesearchError(Exception):
    """Base class of all latesearch errors."""


class ConfigError(LatesearchError, ValueError):
    """A configuration has an unknown field or an impossible value (`field`, where known)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


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


class ModelMismatchError(LatesearchError):
    """The query encoder is not the model the index was built with."""


class UnknownDocumentError(InputError, KeyError):
    """A document id that the index does not hold: `doc_id` (the first one, where known),
    given in the input `field`."""

    __str__ = Exception.__str__

    def __init__(self, message: str, *, doc_id: str | None = None, path: str | None = None,
                 field: str | None = None) -> None:  # fmt: skip
        super().__init__(message, path=path, field=field)
        self.doc_id = doc_id


class IndexExistsError(LatesearchError, FileExistsError):
    """The target folder already holds something and overwriting was not asked for."""


class IndexBusyError(IndexExistsError):
    """Another process is building or updating the same index."""


class MissingComponentError(LatesearchError):
    """A search mode needs an index component (bm25/ or ann/) that the index lacks."""


class UnknownOptionError(InputError, TypeError):
    """An option no call of its kind takes (a TypeError, as for any unexpected keyword
    argument, and an InputError naming it: a 400 over HTTP)."""


class ServerError(LatesearchError):
    """A search server answered with an error that is not the request's fault (a 5xx), or
    did not answer at all (`status` None); `retry_after`: the seconds it asked a client to
    wait (Retry-After), where it said."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class AuthError(ServerError, PermissionError):
    """A search server refused the request's credentials: 401 (no API key, or a wrong one)
    or 403 (the server takes no writes)."""


class RateLimitError(ServerError):
    """A search server's rate limit refused the request (429): retry after `retry_after`
    seconds."""


class ServerBusyError(ServerError):
    """A search server cannot take the request now (its queue is full, or the request
    waited past its deadline): a 503; try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = 1) -> None:
        super().__init__(message, status=503, retry_after=retry_after)


class DeadlineError(ServerError, TimeoutError):
    """A request ran past its deadline on the server before it was answered: a 504."""

    def __init__(self, message: str, *, status: int | None = 504) -> None:
        super().__init__(message, status=status)


class NotFoundError(ServerError, LookupError):
    """A search server holds no index or build job of the name or id a request gave (a
    404); the message names those it holds."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)
