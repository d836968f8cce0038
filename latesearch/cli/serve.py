"""`latesearch serve`: answer search and rerank requests over HTTP (JSON).

One process by default; `--workers N` starts N worker processes on one listening socket,
each with its own model, all reading the index's memory maps through the page cache.
Each process's OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE, set by the
console command before torch starts, unless given) and it uses `--threads` intra-op
threads (default: the cores divided among the workers): see docs/serving.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import signal
import sys
import tempfile
from typing import Any

from latesearch.cli._options import add_model_options, open_index
from latesearch.errors import InputError
from latesearch.search.modes import mode_names
from latesearch.serving.app import INSTALL_HINT
from latesearch.serving.config import ServeConfig

API_KEY_ENV = "LATESEARCH_API_KEY"
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve an index over HTTP (JSON API; needs latesearch[server])",
        description="Answer GET /search?q=..., POST /search, POST /rerank, GET /health, "
        "GET /metrics and, with an API key, POST/PUT /documents and POST /documents/delete, "
        "with JSON, for INDEX_DIR (OpenAPI at /openapi.json, docs at /docs). Searches are "
        "queued, batched and answered concurrently; the query encoder is loaded before the "
        "first request. Needs the server extra: pip install 'latesearch[server]'.",
    )
    parser.add_argument("index_dir", nargs="?", default=None,
                        help="index folder (from `latesearch index`), served as the folder's "
                        "name and the default index")  # fmt: skip
    many = parser.add_argument_group("several indexes (routes under /indexes/NAME)")
    many.add_argument("--index", action="append", default=[], metavar="NAME=FOLDER",
                      dest="indexes", help="serve FOLDER as NAME (repeat for more)")  # fmt: skip
    many.add_argument("--index-root", default=None, metavar="FOLDER",
                      help="serve every index folder in FOLDER, named by its folder; with "
                      "an API key, indexes are created (POST /indexes/NAME) and deleted "
                      "there")  # fmt: skip
    many.add_argument("--default-index", default=None, metavar="NAME",
                      help="the index the routes without /indexes/NAME answer for (default: "
                      "INDEX_DIR, or the only index)")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8893, help="port (8893; 0 = any free)")
    parser.add_argument("--mode", choices=mode_names(), default="e2e", help="default mode (e2e)")
    parser.add_argument("-k", type=int, default=10, help="default results per query (10)")
    parser.add_argument("--max-k", type=int, default=1000, help="largest k a request may ask")
    parser.add_argument("--max-queries", type=int, default=256, help="queries per request")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="queries encoded at once within a request (64)")  # fmt: skip
    parser.add_argument("--max-documents", type=int, default=None,
                        help="most documents writes may leave in the index")  # fmt: skip
    parser.add_argument("--rate-limit", type=float, default=None, metavar="PER_SECOND",
                        help="requests per second per client (API key, else address); past "
                        "it 429 with Retry-After (default: no limit)")  # fmt: skip
    parser.add_argument("--rate-burst", type=int, default=None,
                        help="--rate-limit: requests a client may make at once")  # fmt: skip
    load = parser.add_argument_group("load (see docs/serving.md)")
    d = ServeConfig  # the defaults are the config's
    load.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes on the one port, each with its own model (1)",
    )
    load.add_argument(
        "--threads",
        type=int,
        default=d.torch_threads,
        help="intra-op threads per process (0: the cores / --workers)",
    )
    load.add_argument(
        "--search-threads",
        type=int,
        default=d.search_threads,
        help=f"threads running batches per process ({d.search_threads})",
    )
    load.add_argument(
        "--max-batch",
        type=int,
        default=d.max_batch,
        help=f"queries searched together at most ({d.max_batch})",
    )
    load.add_argument(
        "--max-wait-ms",
        type=float,
        default=d.max_wait_ms,
        help=f"how long a batch waits for more queries, ms ({d.max_wait_ms:g})",
    )
    load.add_argument(
        "--max-queue",
        type=int,
        default=d.max_queue,
        help=f"queries waiting at most; past it: 503 + Retry-After ({d.max_queue})",
    )
    load.add_argument(
        "--max-queue-wait-ms",
        type=float,
        default=d.max_queue_wait_ms,
        help="the longest expected wait in the queue, ms; past it: 503 + Retry-After "
        f"({d.max_queue_wait_ms:g})",
    )
    load.add_argument(
        "--timeout",
        type=float,
        default=d.request_timeout,
        help=f"seconds a search may take; past it: 503 (queued) or 504 ({d.request_timeout:g})",
    )
    load.add_argument(
        "--max-exact-documents",
        type=int,
        default=d.max_exact_documents,
        help=f"mode exact only up to this many documents ({d.max_exact_documents})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"allow document writes to requests carrying this key (default: ${API_KEY_ENV}; "
        "without one, writes are refused)",
    )
    add_model_options(parser)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument("--log-format", choices=("json", "text"), default="json",
                        help="json: one JSON object a line, with request ids (default); "
                        "text: uvicorn's")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from latesearch.serving.app import listening_socket

    if not 0 <= args.port <= 65535:
        raise InputError(f"port must be 0-65535, got {args.port}", field="port")
    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}", field="workers")
    if args.workers > 1 and args.ray:
        raise InputError("--ray serves from one process (its shards are Ray actors); "
                         "give --workers 1", field="workers")  # fmt: skip
    if args.workers > 1 and args.index_root:
        raise InputError("--index-root builds and deletes indexes in one process: give "
                         "--workers 1", field="workers")  # fmt: skip
    named_folders(args)  # a bad --index fails before anything loads
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise InputError(INSTALL_HINT)  # before the model loads
    config = ServeConfig(
        default_k=args.k, default_mode=args.mode, max_k=args.max_k,
        max_queries=args.max_queries, batch_size=args.batch_size, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, max_queue=args.max_queue, request_timeout=args.timeout,
        max_queue_wait_ms=args.max_queue_wait_ms,
        search_threads=args.search_threads, max_exact_documents=args.max_exact_documents,
        torch_threads=args.threads, max_documents=args.max_documents,
        rate_limit=args.rate_limit, rate_burst=args.rate_burst,
    )  # fmt: skip
    catalog = open_catalog(args, config)  # a bad folder fails here, before binding
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as err:
        raise InputError(
            f"cannot listen on {args.host}:{args.port}: {err.strerror or err}", field="port"
        ) from None
    with sock:
        if args.workers == 1:
            return serve_here(args, config, sock, catalog)
        catalog.close()  # each worker opens its own
        del catalog
        return serve_processes(args, config, sock)


def named_folders(args: argparse.Namespace) -> dict[str, str]:
    """{name: folder} of INDEX_DIR and the --index options (InputError naming a bad one)."""
    from pathlib import Path

    from latesearch.serving.catalog import check_name

    if args.index_dir is None and not args.indexes and args.index_root is None:
        raise InputError("give an index folder, --index NAME=FOLDER or --index-root FOLDER",
                         field="index_dir")  # fmt: skip
    folders: dict[str, str] = {}
    if args.index_dir is not None:
        folders[Path(args.index_dir).resolve().name] = args.index_dir
    for given in args.indexes:
        name, sep, folder = given.partition("=")
        if not sep or not folder:
            raise InputError(f"--index {given!r}: give NAME=FOLDER", field="index")
        check_name(name)
        if name in folders:
            raise InputError(f"--index: the name {name!r} is given twice", field="index")
        folders[name] = folder
    if args.index_root is not None and not Path(args.index_root).is_dir():
        raise InputError(f"--index-root {args.index_root}: no such folder", field="index_root")
    return folders


def open_catalog(args: argparse.Namespace, config: Any) -> Any:
    """A `Catalog` of the indexes the arguments name (each opened, an Index or a
    ShardedIndex) and those under --index-root."""
    from pathlib import Path

    from latesearch.indexing.manifest import MANIFEST
    from latesearch.serving.catalog import Catalog
    from latesearch.sharding.manifest import SHARDS_MANIFEST

    folders = named_folders(args)
    default = args.default_index
    if default is None and args.index_dir is not None:
        default = Path(args.index_dir).resolve().name
    catalog = Catalog(config, api_key=args.api_key, root=args.index_root, default=default,
                      model=args.model,
                      open_index=lambda folder: open_index(str(folder), args),
                      markers=(MANIFEST, SHARDS_MANIFEST))  # fmt: skip
    for name, folder in folders.items():
        catalog.add(name, open_index(folder, args))
    catalog.load_root()
    if catalog.model is None and catalog.services:  # new indexes: the served one's model
        first = next(iter(catalog.services.values())).index
        catalog.model = getattr(getattr(first, "store", None), "manifest", None) and \
            first.store.manifest.model_source  # fmt: skip
    if default is not None and default not in catalog.services:
        catalog.close()
        raise InputError(f"--default-index {default!r}: not among the indexes served "
                         f"{sorted(catalog.services)}", field="default_index")  # fmt: skip
    return catalog


def serve_here(args: argparse.Namespace, config: Any, sock: Any, catalog: Any = None) -> int:
    """Serve `catalog` (None: open it, in a worker process) on `sock` until Ctrl-C or
    SIGTERM."""
    import torch

    from latesearch.serving import RunningServer

    torch.set_num_threads(threads_per_worker(config.torch_threads, args.workers))
    announce = catalog is not None  # the one process; workers are announced by their parent
    if catalog is None:
        catalog = open_catalog(args, config)
    catalog.warm_up()
    resumed = catalog.start_jobs()
    server = RunningServer(catalog, quiet=args.quiet, json_logs=args.log_format == "json",
                           sock=sock)  # fmt: skip
    if announce:
        writes = "writes allowed with the API key" if args.api_key else "read-only"
        names = sorted(catalog.services)
        served = (repr(catalog.services[names[0]].index) if len(names) == 1
                  else f"{len(names)} indexes {names}")  # fmt: skip
        more = f"; resuming {len(resumed)} build jobs" if resumed else ""
        print(f"latesearch serve: {served} at {server.url} ({writes}{more}; Ctrl-C stops)",
              flush=True)  # fmt: skip
    server.run()  # uvicorn stops on Ctrl-C and SIGTERM, finishing requests in flight
    catalog.close()
    if announce:
        print("latesearch serve: stopped", file=sys.stderr, flush=True)
    return 0


def serve_processes(args: argparse.Namespace, config: Any, sock: Any) -> int:
    """`args.workers` processes serving `sock`; their metrics summed (prometheus-client's
    multiprocess mode); SIGTERM / Ctrl-C stop them all."""
    from latesearch.serving.metrics import MULTIPROCESS_ENV

    with tempfile.TemporaryDirectory(prefix="latesearch-metrics-") as metrics_dir:
        os.environ.setdefault(MULTIPROCESS_ENV, metrics_dir)  # inherited by the workers
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: torch, OpenMP
        workers = [
            spawn.Process(
                target=_worker,
                args=(args, config, sock),
                daemon=False,
                name=f"latesearch-serve-{n}",
            )
            for n in range(args.workers)
        ]
        for worker in workers:
            worker.start()
        host, port = sock.getsockname()[:2]
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        writes = "writes allowed with the API key" if args.api_key else "read-only"
        served = args.index_dir or ", ".join(args.indexes)
        print(f"latesearch serve: {served} at {url} ({args.workers} workers; "
              f"{writes}; Ctrl-C stops)", flush=True)  # fmt: skip

        def stop(signum: int, frame: Any) -> None:
            for worker in workers:
                if worker.is_alive():
                    os.kill(worker.pid, signal.SIGTERM)

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for worker in workers:
                worker.join()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    failed = [w.name for w in workers if w.exitcode]
    if failed:
        print(f"latesearch serve: {', '.join(failed)} failed", file=sys.stderr, flush=True)
        return 1
    print("latesearch serve: stopped", file=sys.stderr, flush=True)
    return 0


def _worker(args: argparse.Namespace, config: Any, sock: Any) -> None:
    os.environ.setdefault(WAIT_POLICY_ENV, "PASSIVE")  # before torch starts OpenMP
    for stop in (signal.SIGINT, signal.SIGTERM):  # stopped while loading: a clean exit too
        signal.signal(stop, lambda signum, frame: sys.exit(0))
    sys.exit(serve_here(args, config, sock))


def threads_per_worker(threads: int, workers: int) -> int:
    """Intra-op threads of each worker: `threads`, or (0) the cores it may use divided
    among the workers (at least 1)."""
    if threads:
        return threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // workers)
