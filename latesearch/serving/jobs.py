"""`BuildJobs`: indexes built in the background from posted documents (`POST
/indexes/NAME`), one at a time, with the library's resumable builder.

Each job is a record `<root>/.jobs/<id>.json` (rewritten durably at every change: status,
progress, error) and its documents `<root>/.jobs/<id>.jsonl`; the index is staged in
`<root>/<name>.building` (its `progress.json` records every finished chunk) and served as
`name` once published. A server started again on the same root resumes the jobs it left
queued or running, from their last finished chunk. Statuses: queued, running, done,
failed, cancelled.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from latesearch._atomic import write_json, write_text
from latesearch.data import read_collection
from latesearch.errors import ConfigError, InputError, LatesearchError, NotFoundError
from latesearch.indexing.buildstate import BuildState
from latesearch.indexing.config import IndexConfig
from latesearch.indexing.manifest import MANIFEST
from latesearch.indexing.storage import building_folder

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed", "cancelled")
UNFINISHED = ("queued", "running")
REFUSED_OPTIONS = ("ray", "devices")  # where a build runs is the server's to choose


class _Stop(BaseException):
    """Raised from the builder's chunk callback to stop a build (cancelled, or the
    server stopping: then it resumes at the next start)."""


def build_options(data: dict[str, Any]) -> tuple[IndexConfig, bool, bool | None]:
    """(IndexConfig, bm25, ann) from a create request's `config` (IndexConfig fields, flat
    or grouped), `bm25` and `ann`."""
    fields = dict(data.get("config") or {})
    for name in REFUSED_OPTIONS:
        if name in fields or name in (fields.get("run") or {}):
            raise InputError(f"{name} is set by the server, not by a request",
                             field=f"config.{name}")  # fmt: skip
    try:
        config = IndexConfig().replace(**fields)
    except (InputError, ConfigError, TypeError) as err:
        name = getattr(err, "field", None)
        field = f"config.{name}" if name else "config"
        raise InputError(getattr(err, "message", str(err)), field=field) from None
    return config, bool(data.get("bm25", False)), data.get("ann")


class BuildJobs:
    """The build jobs of a `Catalog` with an index root: submitted, run one at a time by a
    worker thread, recorded durably, resumed after a restart (`resume()`)."""

    def __init__(self, catalog: Any, root: Path) -> None:
        self.catalog = catalog
        self.root = root
        self.folder = root / ".jobs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._cancel: dict[str, threading.Event] = {}
        self._stopping = threading.Event()
        self._queue: queue.Queue[str | None] = queue.Queue()
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                log.error("%s: unreadable build job record (%s); skipped", path, err)
                continue
            self.records[record["id"]] = record
        self._worker = threading.Thread(target=self._work, name="latesearch-build", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ requests
    def resume(self) -> list[str]:
        """Queue again the jobs a previous server left unfinished (oldest first)."""
        unfinished = sorted((r for r in self.records.values() if r["status"] in UNFINISHED),
                            key=lambda r: r["created"])  # fmt: skip
        for record in unfinished:
            record["resumed"] = record.get("resumed", 0) + 1
            self._set(record, status="queued")
            self._cancel[record["id"]] = threading.Event()
            self._queue.put(record["id"])
        return [r["id"] for r in unfinished]

    def submit(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        """A new job building index `name` from `data` (documents, config, bm25, ann)."""
        config, bm25, ann = build_options(data)
        rows = data.get("documents") or []
        if not rows:
            raise InputError("an index needs documents", field="documents")
        limit = self.catalog.config.max_documents
        if limit is not None and len(rows) > limit:
            raise InputError(f"{len(rows):,} documents; this server's indexes hold at most "
                             f"{limit:,} (--max-documents)", field="documents")  # fmt: skip
        documents = _documents(rows)
        with self._lock:
            self._check_free(name)
            job_id = uuid.uuid4().hex[:16]
            lines = (json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text,
                                 "metadata": d.metadata}, ensure_ascii=False)
                     for d in documents)  # fmt: skip
            write_text(self.folder / f"{job_id}.jsonl", "\n".join(lines) + "\n")
            record = {"id": job_id, "index": name, "status": "queued", "created": time.time(),
                      "started": None, "finished": None, "error": None, "resumed": 0,
                      "documents": len(documents), "documents_done": 0,
                      "config": config.to_dict(), "bm25": bm25, "ann": ann}  # fmt: skip
            self._cancel[job_id] = threading.Event()
            self._set(record)
        self._queue.put(job_id)
        return self.view(record)

    def _check_free(self, name: str) -> None:
        if name in self.catalog.services:
            raise InputError(f"an index named {name!r} is served already", field="name")
        if (self.root / name).exists():
            raise InputError(f"{self.root / name} exists already", field="name")
        for record in self.records.values():
            if record["index"] == name and record["status"] in UNFINISHED:
                raise InputError(f"job {record['id']} is building {name!r} already",
                                 field="name")  # fmt: skip

    def get(self, job_id: str) -> dict[str, Any]:
        record = self.records.get(job_id)
        if record is None:
            raise NotFoundError(f"no build job {job_id!r}")
        return self.view(record)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (a finished one is left as it is)."""
        self.get(job_id)
        with self._lock:
            record = self.records[job_id]
            if record["status"] in UNFINISHED:
                self._cancel[job_id].set()
                if record["status"] == "queued":
                    self._finish(record, "cancelled")
        return self.view(record)

    def building(self) -> dict[str, str]:
        """{index name: job id} of the jobs not finished."""
        return {r["index"]: r["id"] for r in self.records.values() if r["status"] in UNFINISHED}

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        total = record["documents"] or 1
        shown = {k: v for k, v in record.items() if k != "config"}
        progress = 1.0 if record["status"] == "done" else record["documents_done"] / total
        return {
            **shown,
            "progress": round(min(progress, 1.0), 4),
            "cancel_requested": self._cancel.get(record["id"], threading.Event()).is_set(),
        }

    def close(self) -> None:
        """Stop the worker: a running build stops at its next chunk and stays unfinished
        (a server started again on the root resumes it)."""
        self._stopping.set()
        self._queue.put(None)
        self._worker.join(timeout=60)

    # ------------------------------------------------------------------ the worker
    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            record = self.records[job_id]
            if record["status"] != "queued" or self._stopping.is_set():
                continue
            try:
                self._build(record)
            except _Stop:
                if self._stopping.is_set():
                    return
                self._discard(record)
                self._finish(record, "cancelled")
            except Exception as err:  # noqa: BLE001 - the job fails, the server goes on
                log.error("build job %s (%s) failed", job_id, record["index"], exc_info=err)
                self._discard(record)
                message = str(err) if isinstance(err, LatesearchError) else repr(err)
                self._finish(record, "failed", error=message)

    def _build(self, record: dict[str, Any]) -> None:
        from latesearch.index import component_builders
        from latesearch.indexing.builder import build_index

        target = self.root / record["index"]
        staging = building_folder(target)
        saved = BuildState.load(staging) if staging.is_dir() else None
        self._set(record, status="running", started=time.time(),
                  documents_done=saved.n_docs if saved else 0)  # fmt: skip
        cancel = self._cancel[record["id"]]

        def on_chunk(chunk: Any) -> None:
            self._set(record, documents_done=record["documents_done"] + chunk.n_docs)
            if cancel.is_set() or self._stopping.is_set():
                raise _Stop()

        if not (target / MANIFEST).is_file():  # else: published before a restart
            build_index(self.folder / f"{record['id']}.jsonl", target, self.catalog.model,
                        IndexConfig.from_dict(record["config"]), resume=True, progress=False,
                        extra_builders=component_builders(bm25=record["bm25"],
                                                          ann=record["ann"]),
                        on_chunk=on_chunk)  # fmt: skip
        if cancel.is_set():
            raise _Stop()
        index = self.catalog.open(target)
        with self._lock:
            if cancel.is_set():
                raise _Stop()
            self.catalog.add(record["index"], index, warm=True)
            self._finish(record, "done", documents_done=record["documents"])

    def _discard(self, record: dict[str, Any]) -> None:
        """Delete what a cancelled or failed job built (never an index served)."""
        target = self.root / record["index"]
        shutil.rmtree(building_folder(target), ignore_errors=True)
        if record["index"] not in self.catalog.services:
            shutil.rmtree(target, ignore_errors=True)

    # ------------------------------------------------------------------ records
    def _finish(self, record: dict[str, Any], status: str, **changes: Any) -> None:
        self._set(record, status=status, finished=time.time(), **changes)
        (self.folder / f"{record['id']}.jsonl").unlink(missing_ok=True)

    def _set(self, record: dict[str, Any], **changes: Any) -> None:
        record.update(changes)
        self.records[record["id"]] = record
        write_json(self.folder / f"{record['id']}.json", record)
        metrics = self.catalog.metrics
        if metrics is not None:
            counts = dict.fromkeys(STATUSES, 0)
            for r in list(self.records.values()):
                counts[r["status"]] += 1
            metrics.build_jobs(counts)


def _documents(rows: list[Any]) -> list[Any]:
    """The posted documents, checked (an error names `documents.N.field`); ids unique."""
    from latesearch.serving.service import _in_the_body

    plain = [row.model_dump() if hasattr(row, "model_dump") else row for row in rows]
    try:
        documents = list(read_collection(plain))
    except InputError as err:
        raise _in_the_body(err) from None
    seen: set[str] = set()
    for n, doc in enumerate(documents):
        if doc.doc_id in seen:
            raise InputError(f"id {doc.doc_id!r} is given twice", field=f"documents.{n}.id")
        seen.add(doc.doc_id)
    return documents
