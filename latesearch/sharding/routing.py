"""Which shard holds a document: a stable hash of its id, the same on every machine and in
every process (Python's own `hash` of a string is salted per process)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def shard_of(doc_id: str, n_shards: int) -> int:
    """The shard (0 .. n_shards - 1) of document `doc_id`."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


def by_shard(doc_ids: Iterable[str], n_shards: int) -> dict[int, list[str]]:
    """`doc_ids` grouped by shard, each group in the order given."""
    groups: dict[int, list[str]] = {}
    for doc_id in doc_ids:
        groups.setdefault(shard_of(doc_id, n_shards), []).append(doc_id)
    return groups
