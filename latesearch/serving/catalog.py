"""`Catalog`: the named indexes one server answers, each with its own `SearchService`
(scheduler, versions, writes), and the build jobs that add new ones (`serving.jobs`).

    GET    /indexes                   every index: name, documents, modes, version
    GET    /indexes/NAME              one index (its /health)
    DELETE /indexes/NAME              unload it (API key); ?delete_files=true also deletes
                                      its folder, only for an index under the index root
    POST   /indexes/NAME              build it from posted documents (API key; a job)
    ...    /indexes/NAME/search, /rerank, /documents, /documents/delete, /health

The routes without /indexes/NAME answer for the default index: the only one, or the one
named `default`.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latesearch import __version__
from latesearch.errors import InputError, NotFoundError
from latesearch.indexing.manifest import MANIFEST
from latesearch.serving.config import ServeConfig
from latesearch.serving.metrics import Metrics, make_metrics
from latesearch.serving.service import Response, SearchService, _describe

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
JOBS_DIR = ".jobs"  # under the index root: the build jobs' records and documents


def check_name(name: str) -> str:
    """`name` when it may name an index (and its folder under the index root)."""
    if not NAME.fullmatch(name) or name.endswith((".building", ".lock")) or ".." in name:
        raise InputError(f"index name {name!r}: 1-64 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit", field="name")  # fmt: skip
    return name


def indexes_under(root: Path, markers: tuple[str, ...] = (MANIFEST,)) -> dict[str, Path]:
    """The index folders directly under `root` (those holding one of the `markers`
    files: an index's manifest, or a sharded index's shard list), by folder name."""
    return {p.name: p for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith(".")
            and any((p / marker).is_file() for marker in markers)}  # fmt: skip


class SharedModel:
    """A model loaded once, by the first caller of `get`, from `load` (then dropped, with
    what it holds)."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load: Callable[[], Any] | None = load
        self._model: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._model is None:
                assert self._load is not None
                self._model, self._load = self._load(), None
            return self._model


class Catalog:
    """Named `SearchService`s sharing one config, API key and `Metrics`.

    `open_index(path)` opens an index folder (the server's model options); `root`: the
    index root (its sub-folders are the indexes created or deleted over HTTP, and its
    `.jobs/` the build jobs); `default`: the index the routes without a name answer for;
    `model`: what new indexes are built with (a checkpoint path; None: the default);
    `markers`: the files that make a folder under the root an index (`open_index` opens
    each; the CLI adds sharded indexes' `shards.json`).
    """

    def __init__(self, config: ServeConfig | None = None, *, api_key: str | None = None,
                 metrics: Metrics | None | bool = True, root: str | Path | None = None,
                 default: str | None = None, model: Any = None,
                 open_index: Callable[[Path], Any] | None = None,
                 markers: tuple[str, ...] = (MANIFEST,)) -> None:  # fmt: skip
        self.config = config or ServeConfig()
        self.api_key = api_key or None
        self.metrics = make_metrics() if metrics is True else metrics or None
        self.root = Path(root) if root is not None else None
        self.default_name = default
        self.model = model
        self.open_index = open_index
        self.markers = markers
        self.services: dict[str, SearchService] = {}
        self._lock = threading.Lock()
        self._models: dict[tuple[Any, ...], SharedModel] = {}  # one per model_key
        self.jobs: Any = None  # `BuildJobs`, with a root: see `start_jobs`

    @classmethod
    def of(cls, service: SearchService) -> Catalog:
        """A catalog of one service (`create_app` given a `SearchService`)."""
        catalog = cls(service.config, api_key=service.api_key, metrics=service.metrics or False)
        catalog.services[service.name] = service
        return catalog

    # ------------------------------------------------------------------ holding
    def add(self, name: str, index: Any, *, warm: bool = False) -> SearchService:
        """Serve `index` as `name` (an error if the name is taken)."""
        check_name(name)
        self._share_model(index)
        service = SearchService(index, self.config, api_key=self.api_key,
                                metrics=self.metrics or False, name=name)  # fmt: skip
        if warm:
            service.warm_up()
        with self._lock:
            if name in self.services:
                service.close()
                raise InputError(f"an index named {name!r} is served already", field="name")
            self.services[name] = service
        return service

    def _share_model(self, index: Any) -> None:
        """Indexes whose query model is the same (`Index.model_key`: fingerprint, source,
        config, device, backend) share one loaded model; the first index loads it."""
        key = getattr(index, "model_key", None)
        if key is None:  # a sharded index, or one given a model object
            return
        with self._lock:
            shared = self._models.get(key)
            if shared is None:
                self._models[key] = SharedModel(lambda: index.model)
                return
        index.use_model(shared.get)

    def open(self, folder: Path) -> Any:
        """The index in `folder`, opened with the server's model options."""
        if self.open_index is not None:
            return self.open_index(folder)
        from latesearch.index import Index

        return Index.load(folder, self.model)

    def start_jobs(self) -> list[str]:
        """Take build jobs (needs the index root) and resume those a previous server left
        unfinished; their ids."""
        from latesearch.serving.jobs import BuildJobs

        if self.root is None:
            return []
        self.jobs = BuildJobs(self, self.root)
        return self.jobs.resume()

    def create(self, name: str, data: Any) -> Response:
        """POST /indexes/NAME: a build job (202, its record and where to poll it)."""
        check_name(name)
        if self.jobs is None:
            raise InputError("this server creates no indexes: start it with --index-root",
                             field="name")  # fmt: skip
        body = data.model_dump() if hasattr(data, "model_dump") else data
        if not isinstance(body, dict):
            raise InputError("the body must be a JSON object", field="body")
        job = self.jobs.submit(name, body)
        return Response(202, job, {"Location": f"/jobs/{job['id']}"})

    def job(self, job_id: str) -> Response:
        return Response(200, self._jobs().get(job_id))

    def cancel_job(self, job_id: str) -> Response:
        return Response(200, self._jobs().cancel(job_id))

    def _jobs(self) -> Any:
        if self.jobs is None:
            raise NotFoundError("this server has no build jobs (no --index-root)")
        return self.jobs

    def load_root(self) -> None:
        """Serve every index folder under the index root not served yet."""
        if self.root is None or self.open_index is None:
            return
        for name, folder in indexes_under(self.root, self.markers).items():
            if name not in self.services:
                self.add(name, self.open_index(folder))

    def get(self, name: str) -> SearchService:
        """The service of index `name`; NotFoundError naming the indexes served."""
        service = self.services.get(name)
        if service is None:
            raise NotFoundError(f"no index {name!r}; indexes: {sorted(self.services)}")
        return service

    def default(self) -> SearchService:
        """The service the routes without an index name answer for."""
        if self.default_name is not None:
            return self.get(self.default_name)
        if len(self.services) == 1:
            return next(iter(self.services.values()))
        raise NotFoundError(f"this server serves {len(self.services)} indexes: ask one under "
                            f"/indexes/NAME/...; indexes: {sorted(self.services)}")  # fmt: skip

    def listing(self) -> Response:
        """GET /indexes."""
        rows = []
        for name, service in sorted(self.services.items()):
            described = _describe(service.index)
            store = getattr(service.index, "store", None)  # a sharded index has none
            rows.append({"name": name, "documents": described["documents"],
                         "modes": described["modes"],
                         "version": store.manifest.created if store is not None else None,
                         "folder": str(service.index.folder)})  # fmt: skip
        building = self.jobs.building() if self.jobs is not None else {}
        return Response(200, {"indexes": rows, "default": self._default_name(),
                              "building": building, "server_version": __version__})  # fmt: skip

    def _default_name(self) -> str | None:
        found = self.default_or_none()
        return found.name if found is not None else None

    def default_or_none(self) -> SearchService | None:
        """The default index's service, or None where there is none."""
        try:
            return self.default()
        except NotFoundError:
            return None

    def remove(self, name: str, *, delete_files: bool = False) -> Response:
        """DELETE /indexes/NAME: unload it; with `delete_files`, delete its folder too
        (only an index under the index root)."""
        service = self.get(name)
        folder = Path(service.index.folder)
        if delete_files and (self.root is None or folder.parent.resolve() != self.root.resolve()):
            raise InputError(f"{folder} is not under the server's index root: unloaded only "
                             "when asked without delete_files", field="delete_files")  # fmt: skip
        with self._lock:
            self.services.pop(name, None)
        service.close()
        if delete_files:
            shutil.rmtree(folder)
        return Response(200, {"deleted": name, "files_deleted": delete_files,
                              "folder": str(folder)})  # fmt: skip

    def close(self) -> None:
        if self.jobs is not None:
            self.jobs.close()
        for service in list(self.services.values()):
            service.close()

    def warm_up(self) -> None:
        for service in self.services.values():
            service.warm_up()
