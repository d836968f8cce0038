"""Cutting a collection into per-shard JSONL files (documents routed by id), written once
per sharded build and kept until every shard is built, so that an interrupted build
resumes on the same files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from latesearch._atomic import write_json
from latesearch._configio import read_json
from latesearch.data import read_collection
from latesearch.errors import InputError
from latesearch.indexing import IndexConfig
from latesearch.indexing.buildstate import describe_source
from latesearch.sharding.routing import shard_of

SPLIT_DIR = "split"
DONE = "split.json"


def split_collection(collection: Any, staging: Path, n_shards: int,
                     config: IndexConfig) -> list[Path]:  # fmt: skip
    """The shards' JSONL files under `staging`/split/ (BEIR keys: _id, title, text,
    metadata), written unless a finished split of as many shards is there."""
    folder = staging / SPLIT_DIR
    files = [folder / f"shard-{i:03d}.jsonl" for i in range(n_shards)]
    done = folder / DONE
    source = describe_source(collection)
    if done.is_file():
        split = read_json(done)
        if split.get("n_shards") == n_shards and split.get("collection") == source:
            return files
        raise InputError(f"{staging}: the interrupted sharded build had another collection or "
                         f"another number of shards ({split.get('n_shards')}); start again "
                         "with --overwrite (overwrite=True)")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    counts = [0] * n_shards
    handles = [open(f, "w", encoding="utf-8") for f in files]  # noqa: SIM115
    try:
        for doc in read_collection(collection, on_error=config.on_error):
            shard = shard_of(doc.doc_id, n_shards)
            row = {"_id": doc.doc_id, "title": doc.title, "text": doc.text}
            if doc.metadata:
                row["metadata"] = doc.metadata
            handles[shard].write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[shard] += 1
        for handle in handles:
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        for handle in handles:
            handle.close()
    empty = [i for i, c in enumerate(counts) if c == 0]
    if empty:
        raise InputError(f"{n_shards} shards for {sum(counts)} documents: shard(s) {empty} "
                         "would be empty; use fewer shards")  # fmt: skip
    write_json(done, {"n_shards": n_shards, "documents": counts, "collection": source})
    return files
