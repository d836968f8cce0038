"""Serving: an HTTP JSON API over an index (`latesearch serve`, install extra `server`).

`SearchService` holds the protocol (validation, limits, consistent versions, writes) and
no sockets; `create_app` puts a FastAPI application in front of it and `RunningServer`
serves that with uvicorn. Importing this package needs neither.
"""

from latesearch.serving.app import RunningServer, create_app
from latesearch.serving.config import ServeConfig
from latesearch.serving.service import Response, SearchService

__all__ = ["Response", "RunningServer", "SearchService", "ServeConfig", "create_app"]
