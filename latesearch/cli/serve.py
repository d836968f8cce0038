"""`latesearch serve`: answer search and rerank requests over HTTP (JSON)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from latesearch.cli._options import add_model_options, open_index
from latesearch.errors import InputError
from latesearch.search.modes import mode_names
from latesearch.serving.app import INSTALL_HINT

API_KEY_ENV = "LATESEARCH_API_KEY"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve an index over HTTP (JSON API; needs latesearch[server])",
        description="Answer GET /search?q=..., POST /search, POST /rerank, GET /health and, "
        "with an API key, POST/PUT /documents and POST /documents/delete, with JSON, for "
        "INDEX_DIR (OpenAPI at /openapi.json, docs at /docs). The query encoder is loaded "
        "before the first request. Needs the server extra: pip install 'latesearch[server]'.",
    )
    parser.add_argument("index_dir", help="index folder (from `latesearch index`)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8893, help="port (8893; 0 = any free)")
    parser.add_argument("--mode", choices=mode_names(), default="e2e", help="default mode (e2e)")
    parser.add_argument("-k", type=int, default=10, help="default results per query (10)")
    parser.add_argument("--max-k", type=int, default=1000, help="largest k a request may ask")
    parser.add_argument("--max-queries", type=int, default=256, help="queries per request")
    parser.add_argument("--batch-size", type=int, default=64, help="queries encoded at once")
    parser.add_argument("--max-documents", type=int, default=None,
                        help="most documents writes may leave in the index")  # fmt: skip
    parser.add_argument("--rate-limit", type=float, default=None, metavar="PER_SECOND",
                        help="requests per second per client (API key, else address); past "
                        "it 429 with Retry-After (default: no limit)")  # fmt: skip
    parser.add_argument("--rate-burst", type=int, default=None,
                        help="--rate-limit: requests a client may make at once")  # fmt: skip
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"allow document writes to requests carrying this key (default: ${API_KEY_ENV}; "
        "without one, writes are refused)",
    )
    add_model_options(parser)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.serving import RunningServer, SearchService, ServeConfig

    if not 0 <= args.port <= 65535:
        raise InputError(f"port must be 0-65535, got {args.port}", field="port")
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise InputError(INSTALL_HINT)  # before the model loads
    config = ServeConfig(default_k=args.k, default_mode=args.mode, max_k=args.max_k,
                         max_queries=args.max_queries, batch_size=args.batch_size,
                         max_documents=args.max_documents, rate_limit=args.rate_limit,
                         rate_burst=args.rate_burst)  # fmt: skip
    index = open_index(args.index_dir, args)  # an Index, or a ShardedIndex (--ray: actors)
    service = SearchService(index, config, api_key=args.api_key)
    service.warm_up()
    try:
        server = RunningServer(service, args.host, args.port, quiet=args.quiet)
    except OSError as err:
        raise InputError(
            f"cannot listen on {args.host}:{args.port}: {err.strerror or err}", field="port"
        ) from None
    writes = "writes allowed with the API key" if args.api_key else "read-only"
    print(f"latesearch serve: {index!r} at {server.url} ({writes}; Ctrl-C stops)", flush=True)
    server.run()  # uvicorn stops on Ctrl-C and SIGTERM, finishing requests in flight
    print("latesearch serve: stopped", file=sys.stderr, flush=True)
    return 0
