"""Serving: an HTTP JSON API over an index (`latesearch serve`).

`SearchService` holds the protocol (routing, validation, JSON bodies) and no sockets;
`make_server` puts a standard-library threading HTTP server in front of it.
"""

from latesearch.serving.config import ServeConfig
from latesearch.serving.httpd import SearchServer, make_server
from latesearch.serving.service import Response, SearchService

__all__ = ["Response", "SearchServer", "SearchService", "ServeConfig", "make_server"]
