"""A small threading HTTP server (standard library only) in front of a `SearchService`."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from latesearch import __version__
from latesearch.serving.service import Response, SearchService


class SearchServer(ThreadingHTTPServer):
    """`ThreadingHTTPServer` bound to a service; `url` is where it listens."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: SearchService, *, quiet: bool):
        self.service, self.quiet = service, quiet
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(
    service: SearchService, host: str = "127.0.0.1", port: int = 8893, *, quiet: bool = False
) -> SearchServer:
    """Bind a server for `service` (port 0: any free port; see `server.url`). Call
    `serve_forever()` to answer requests and `shutdown()` / `server_close()` to stop."""
    return SearchServer((host, port), service, quiet=quiet)


class _Handler(BaseHTTPRequestHandler):
    server: SearchServer
    server_version = f"latesearch/{__version__}"
    protocol_version = "HTTP/1.1"
    # headers and body leave in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK hold the body back (tens of ms per keep-alive request)
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(self.server.service.handle("GET", self.path))

    def do_POST(self) -> None:  # noqa: N802
        body = self._read_body()
        if body is not None:
            self._answer(self.server.service.handle("POST", self.path, body))

    def do_PUT(self) -> None:  # noqa: N802
        self._answer(self.server.service.handle("PUT", self.path))

    def do_DELETE(self) -> None:  # noqa: N802
        self._answer(self.server.service.handle("DELETE", self.path))

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 411/413/400 for a bad length."""
        header = self.headers.get("Content-Length")
        if header is None:
            self.close_connection = True
            self._answer(Response(411, {"error": "POST needs a Content-Length header"}))
            return None
        try:
            length = int(header)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._answer(Response(400, {"error": f"bad Content-Length {header!r}"}))
            return None
        limit = self.server.service.config.max_body_bytes
        if length > limit:
            self.close_connection = True  # the unread body must not be parsed as a request
            self._answer(Response(413, {"error": f"body of {length} bytes; the limit is {limit}"}))
            return None
        return self.rfile.read(length)

    def _answer(self, response: Response) -> None:
        payload = json.dumps(response.body, ensure_ascii=False).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")
