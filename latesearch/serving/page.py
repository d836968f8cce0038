"""The search page `latesearch serve` shows at `/`: static HTML, CSS and JavaScript shipped
in the package (`resources/web/`; no build step, nothing fetched from elsewhere) that
searches through the JSON API (`GET /indexes`, then `POST /indexes/NAME/search` with
`explain: true`)."""

from __future__ import annotations

from importlib import resources
from typing import Any

FILES = {
    "index.html": "text/html; charset=utf-8",
    "search.css": "text/css; charset=utf-8",
    "search.js": "text/javascript; charset=utf-8",
}
# the page loads only its own files and talks only to its own server
HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self'; "
           "script-src 'self'; connect-src 'self'; img-src 'self' data:",
           "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}  # fmt: skip


def page_file(name: str) -> tuple[bytes, str] | None:
    """The bytes and media type of one of the page's files; None for any other name."""
    if name not in FILES:
        return None
    return resources.files("latesearch").joinpath("resources", "web", name).read_bytes(), FILES[
        name
    ]


def add_page_routes(app: Any) -> None:
    """`GET /` (the page) and `GET /page/{name}` (its style sheet and script) on a FastAPI
    app, left out of the OpenAPI schema."""
    from fastapi.responses import Response
    from starlette.exceptions import HTTPException

    def serve(name: str) -> Response:
        found = page_file(name)
        if found is None:
            raise HTTPException(404)
        return Response(found[0], media_type=found[1], headers=HEADERS)

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return serve("index.html")

    @app.get("/page/{name}", include_in_schema=False)
    def page_asset(name: str) -> Response:
        return serve(name)
