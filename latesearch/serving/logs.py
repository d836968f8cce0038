"""Structured logs of a server: one JSON object a line, each request's line carrying
the request id that is also returned in the `X-Request-ID` header."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
ACCESS_LOGGER = "latesearch.access"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(given: str | None) -> str:
    """The client's `X-Request-ID` where it is a plain token, else a new one."""
    if given and _CLIENT_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object: time, level, logger, message, and the fields
    given in `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(*, access: bool) -> None:
    """JSON lines on stderr for latesearch's and uvicorn's loggers; `access`: one line
    per request (logger `latesearch.access`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("latesearch", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access else logging.WARNING)
