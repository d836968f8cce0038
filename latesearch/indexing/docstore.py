"""Document store: ids, titles and texts in SQLite (`docs.sqlite`), plus the memory-mapped
id list (`doc_ids.bin` + `doc_ids.offsets.npy`) that makes id lookups by index free."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from latesearch.errors import IndexCorruptError, InputError
from latesearch.indexing.filters import CompiledFilter, compile_filter, plain_field_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    idx INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT
)
"""
# `metadata`: the document's other fields as a JSON object, NULL when it has none. Doc
# stores written before the column existed lack it; writers add it, readers see no metadata.


def metadata_json(doc_id: str, metadata: Mapping[str, Any] | None) -> str | None:
    """A document's metadata as stored: compact JSON, None when empty; InputError naming
    the document if it is not JSON (e.g. a set, or NaN)."""
    if not metadata:
        return None
    try:
        return json.dumps(dict(metadata), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))  # fmt: skip
    except (TypeError, ValueError) as err:
        raise InputError(
            f"document {doc_id!r}: metadata is not JSON ({err})", field="metadata"
        ) from None


# Field indexes: `field_indexes` names the indexed metadata fields; `field_values` holds a
# row per document and indexed field present (elem 0: the value, with value NULL for a
# list, an object, true, false and null) and one per element of a list (elem 1); `type`
# is number, text, true, false, null, array or object. Triggers keep it in step with
# inserts and deletes; `DocStoreWriter.remove` renumbers it with the documents.
FIELD_SCHEMA = """
CREATE TABLE IF NOT EXISTS field_indexes (field TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS field_values (field TEXT NOT NULL, type TEXT NOT NULL, value,
                                         elem INTEGER NOT NULL, idx INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS field_values_lookup ON field_values (field, type, value, elem, idx);
CREATE INDEX IF NOT EXISTS field_values_doc ON field_values (idx);
CREATE TRIGGER IF NOT EXISTS field_values_insert AFTER INSERT ON docs
WHEN NEW.metadata IS NOT NULL BEGIN
    INSERT INTO field_values (field, type, value, elem, idx) %s;
END;
CREATE TRIGGER IF NOT EXISTS field_values_delete AFTER DELETE ON docs BEGIN
    DELETE FROM field_values WHERE idx = OLD.idx;
END;
"""


def _field_rows(fields: str, *, source: str = "", metadata: str = "NEW.metadata",
                idx: str = "NEW.idx") -> str:  # fmt: skip
    """SQL of the `field_values` rows (field, type, value, elem, idx) of the JSON object
    `metadata` of each row of `source` (none: the trigger's NEW row), for the field names
    `fields` (an SQL list or query) lists."""
    kind = ("CASE {0}.type WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
            "ELSE {0}.type END")  # fmt: skip
    value = "CASE WHEN {0}.type IN ('integer', 'real', 'text') THEN {0}.value END"
    top = (f"SELECT j.key, {kind.format('j')}, {value.format('j')}, 0, {idx} "
           f"FROM {source}json_each({metadata}) AS j WHERE j.key IN ({fields})")  # fmt: skip
    items = (f"SELECT j.key, {kind.format('e')}, {value.format('e')}, 1, {idx} "
             f"FROM {source}json_each({metadata}) AS j, json_each(j.value) AS e "
             f"WHERE j.type = 'array' AND j.key IN ({fields})")  # fmt: skip
    return f"{top} UNION ALL {items}"


def indexed_fields(conn: sqlite3.Connection) -> frozenset[str]:
    """The metadata fields with a field index in the doc store (none in one from before
    field indexes)."""
    tables = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'field_indexes'")
    if tables.fetchone() is None:
        return frozenset()
    return frozenset(row[0] for row in conn.execute("SELECT field FROM field_indexes"))


def has_metadata_column(conn: sqlite3.Connection, schema: str = "main") -> bool:
    return any(row[1] == "metadata" for row in conn.execute(f"PRAGMA {schema}.table_info(docs)"))


_BATCH = 500  # SQLite parameters per query
MATCHING_CACHE = 32  # filters whose matching documents a DocStore remembers
# SQLite's words for a statement past one of its limits (SQL too deep, too many
# variables): the query's fault, not the file's
_LIMIT_WORDS = ("too many", "too large", "too big", "too complex", "stack overflow")


def _plan_key(spec: Any) -> Any:
    """What identifies a filter's plan in a doc store: a compiled filter's SQL, parameters
    and the fields it was compiled against; a filter object's JSON text (None where it
    has none)."""
    try:
        if isinstance(spec, CompiledFilter):
            key: Any = ("compiled", spec.sql, spec.params, spec.indexed)
        else:
            key = ("spec", spec if isinstance(spec, str) else json.dumps(spec))
        hash(key)
    except (TypeError, ValueError, RecursionError):
        return None
    return key


def check_field_name(name: Any) -> None:
    """InputError (field "filter_fields") unless `name` can be a field index's field."""
    if not plain_field_name(name):
        raise InputError(f"a field index needs a non-empty field name without quotes, "
                         f"backslashes or control characters, got {name!r}",
                         field="filter_fields")  # fmt: skip


def _statements(script: str) -> list[str]:
    """The statements of a script of CREATE statements (triggers hold `;` inside)."""
    out, current = [], ""
    for line in script.strip().splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


def _past_a_limit(err: sqlite3.DatabaseError) -> bool:
    """Whether SQLite refused a statement for its size or depth (not a damaged file)."""
    return (getattr(err, "sqlite_errorname", None) in ("SQLITE_ERROR", "SQLITE_TOOBIG")
            and any(word in str(err).lower() for word in _LIMIT_WORDS))  # fmt: skip


def _batches(items: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DocStoreWriter:
    """Appends documents during a build; one transaction per group."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(SCHEMA)
        if not has_metadata_column(self.conn):  # a doc store from before metadata
            self.conn.execute("ALTER TABLE docs ADD COLUMN metadata TEXT")
        # filters scan this covering index, not the table's rows with their texts
        self.conn.execute("CREATE INDEX IF NOT EXISTS docs_metadata ON docs (metadata)")
        self.conn.commit()

    def index_fields(self, fields: Iterable[str]) -> None:
        """Give each metadata field of `fields` a field index (kept from then on by every
        insert and delete), indexing the documents already stored; one transaction."""
        new = [name for name in dict.fromkeys(fields) if name not in indexed_fields(self.conn)]
        for name in new:
            check_field_name(name)
        if not new:
            return
        with self.conn:
            self.conn.execute("BEGIN")
            trigger_rows = _field_rows("SELECT field FROM field_indexes")
            for statement in _statements(FIELD_SCHEMA % trigger_rows):
                self.conn.execute(statement)
            rows = _field_rows(", ".join("?" * len(new)), source="docs AS d, ",
                               metadata="d.metadata", idx="d.idx")  # fmt: skip
            self.conn.execute(f"INSERT INTO field_values (field, type, value, elem, idx) {rows}",
                              [*new, *new])  # fmt: skip
            self.conn.executemany("INSERT INTO field_indexes VALUES (?)", ((n,) for n in new))

    def existing(self, doc_ids: Sequence[str]) -> set[str]:
        """Which of `doc_ids` are already stored."""
        found: set[str] = set()
        for part in _batches(list(doc_ids)):
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(f"SELECT doc_id FROM docs WHERE doc_id IN ({marks})", part)
            found.update(r[0] for r in rows)
        return found

    def index_of(self, doc_id: str) -> int | None:
        """Internal index of a stored id, or None (an indexed lookup, nothing kept in memory)."""
        row = self.conn.execute("SELECT idx FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
        return None if row is None else int(row[0])

    def add(self, first_idx: int, rows: Iterable[tuple[str, str, str, str | None]]) -> None:
        """Insert (doc_id, title, text, metadata JSON) rows as idx first_idx, first_idx+1,
        ... and commit."""
        with self.conn:
            self.conn.executemany(
                "INSERT INTO docs (idx, doc_id, title, text, metadata) VALUES (?, ?, ?, ?, ?)",
                ((first_idx + i, *row) for i, row in enumerate(rows)),
            )

    def truncate(self, n_docs: int) -> None:
        """Drop rows of documents >= n_docs (left by an interrupted group)."""
        with self.conn:
            self.conn.execute("DELETE FROM docs WHERE idx >= ?", (n_docs,))

    def remove(self, indices: np.ndarray) -> None:
        """Delete the documents at `indices` and renumber the rest to stay contiguous, in
        their order (one transaction)."""
        removed = sorted({int(i) for i in indices})
        if not removed:
            return
        with self.conn:
            self.conn.execute("CREATE TEMP TABLE removed (idx INTEGER PRIMARY KEY)")
            self.conn.executemany("INSERT INTO removed VALUES (?)", ((i,) for i in removed))
            self.conn.execute("DELETE FROM docs WHERE idx IN (SELECT idx FROM removed)")
            # two passes through negative numbers: idx stays unique at every row update
            self.conn.execute(
                "UPDATE docs SET idx = -1 - (idx - "
                "(SELECT count(*) FROM removed r WHERE r.idx < docs.idx)) WHERE idx > ?",
                (removed[0],),
            )
            self.conn.execute("UPDATE docs SET idx = -1 - idx WHERE idx < 0")
            if indexed_fields(self.conn):  # the delete trigger removed the documents' rows
                self.conn.execute(
                    "UPDATE field_values SET idx = idx - (SELECT count(*) FROM removed r "
                    "WHERE r.idx < field_values.idx) WHERE idx > ?",
                    (removed[0],),
                )
            self.conn.execute("DROP TABLE removed")

    def append_from(self, path: Path, first_idx: int) -> None:
        """Copy every document of another doc store, its idx shifted by `first_idx`."""
        self.conn.execute("ATTACH DATABASE ? AS other", (str(path),))
        try:
            metadata = "metadata" if has_metadata_column(self.conn, "other") else "NULL"
            with self.conn:
                self.conn.execute(
                    "INSERT INTO docs (idx, doc_id, title, text, metadata) "
                    f"SELECT idx + ?, doc_id, title, text, {metadata} FROM other.docs "
                    "ORDER BY idx",
                    (first_idx,),
                )
        finally:
            self.conn.execute("DETACH DATABASE other")

    def iter_ids(self, start: int = 0) -> Iterator[str]:
        """Stored ids in index order, streamed."""
        cursor = self.conn.execute("SELECT doc_id FROM docs WHERE idx >= ? ORDER BY idx", (start,))
        for (doc_id,) in cursor:
            yield doc_id

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM docs").fetchone()[0])

    def write_id_map(self, folder: Path, n_docs: int, bin_name: str, offsets_name: str) -> None:
        """Stream ids into the memory-mappable id list (bounded memory)."""
        offsets = np.lib.format.open_memmap(
            folder / offsets_name, mode="w+", dtype=np.int64, shape=(n_docs + 1,)
        )
        position = 0
        with open(folder / bin_name, "wb") as out:
            for i, doc_id in enumerate(self.iter_ids()):
                offsets[i] = position
                data = doc_id.encode("utf-8")
                out.write(data)
                position += len(data)
        offsets[n_docs] = position
        offsets.flush()
        del offsets

    def close(self) -> None:
        self.conn.close()


class DocStore:
    """Read-only access to `docs.sqlite` through one connection, opened here and shared by
    all threads: it keeps reading the file it opened even after an update publishes a new
    version of the index under the same path, so a reader never mixes two versions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._matching: OrderedDict[str, np.ndarray] = OrderedDict()  # recent filters
        self._plans: OrderedDict[Any, tuple[str, tuple[Any, ...]]] = OrderedDict()
        self.plans_compiled = 0  # filters compiled against the indexed fields (a count)
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False
        )
        try:
            # the column a query reads metadata from (NULL: a doc store from before it)
            self.metadata_column = "metadata" if has_metadata_column(self._conn) else "NULL"
            self.indexed_fields = indexed_fields(self._conn)  # filters look these up
        except sqlite3.DatabaseError:
            self.close()
            raise
        # what filters select from: rows with a `metadata` column, NULL where it is missing
        self._filtered = ("docs" if self.metadata_column == "metadata"
                          else "(SELECT idx, NULL AS metadata FROM docs)")  # fmt: skip

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"{self.path}: the document store is closed")
        return self._conn

    def _rows(
        self, sql: str, params: Sequence[Any] = (), field: str | None = None
    ) -> list[tuple[Any, ...]]:
        """The rows of a query; InputError on `field` where SQLite finds the query too
        large or deep, IndexCorruptError where it cannot read the file."""
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as err:
                if _past_a_limit(err):
                    raise InputError(f"too complex for SQLite ({err})", field=field) from None
                raise IndexCorruptError(
                    f"{self.path}: unreadable ({err}); rebuild the index or restore it from a copy"
                ) from None

    def max_idx(self) -> int:
        """Largest stored index (-1 when empty): a cheap completeness check."""
        value = self._rows("SELECT max(idx) FROM docs")[0][0]
        return -1 if value is None else int(value)

    def indices(self, doc_ids: Sequence[str]) -> dict[str, int]:
        """Map the known ones of `doc_ids` to their internal indices."""
        found: dict[str, int] = {}
        for part in _batches(list(doc_ids)):
            marks = ",".join("?" * len(part))
            sql = f"SELECT doc_id, idx FROM docs WHERE doc_id IN ({marks})"
            found.update(self._rows(sql, part))
        return found

    def matching(self, spec: Any | CompiledFilter) -> np.ndarray:
        """Sorted indices (int64, read-only) of the documents whose metadata match the
        filter `spec`, given as a filter or compiled (see `latesearch.indexing.filters`);
        its fields with a field index are looked up in it. The answers to the last
        `MATCHING_CACHE` filters are kept: a doc store never changes once published."""
        query, params = self.filter_query(spec)
        key = json.dumps([query, params])
        with self._lock:
            if key in self._matching:
                self._matching.move_to_end(key)
                return self._matching[key]
        rows = self._rows(query, params, field="filter")
        found = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        found.setflags(write=False)
        with self._lock:
            self._matching[key] = found
            while len(self._matching) > MATCHING_CACHE:
                self._matching.popitem(last=False)
        return found

    def filter_query(self, spec: Any | CompiledFilter) -> tuple[str, tuple[Any, ...]]:
        """The query `matching` runs for `spec`, and its parameters: over the field index
        alone where the filter needs no document's metadata and requires a value of an
        indexed field, else over the documents (looking indexed fields up). The plans of
        the last `MATCHING_CACHE` filters are kept (a doc store's indexed fields never
        change): a filter repeated by many requests is compiled once per version."""
        key = _plan_key(spec)
        if key is not None:
            with self._lock:
                plan = self._plans.get(key)
                if plan is not None:
                    self._plans.move_to_end(key)
                    return plan
        plan = self._plan(spec)
        if key is not None:
            with self._lock:
                self._plans[key] = plan
                while len(self._plans) > MATCHING_CACHE:
                    self._plans.popitem(last=False)
        return plan

    def _plan(self, spec: Any | CompiledFilter) -> tuple[str, tuple[Any, ...]]:
        compiled = compile_filter(spec, self.indexed_fields)
        self.plans_compiled += 1
        sql, params = compiled
        if compiled.driver is None:
            return f"SELECT idx FROM {self._filtered} WHERE {sql} ORDER BY idx", params
        driver, driver_params = compiled.driver
        if sql == f"idx IN ({driver})":  # the whole filter: nothing more to check
            return f"SELECT DISTINCT idx FROM ({driver}) ORDER BY idx", driver_params
        return (f"SELECT DISTINCT idx FROM ({driver}) WHERE {sql} ORDER BY idx",
                (*driver_params, *params))  # fmt: skip

    def documents(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """{doc_id, title, text, metadata} for each index, in the order asked."""
        wanted = [int(i) for i in indices]
        rows: dict[int, dict[str, Any]] = {}
        for part in _batches(sorted(set(wanted))):
            marks = ",".join("?" * len(part))
            sql = (f"SELECT idx, doc_id, title, text, {self.metadata_column} FROM docs "
                   f"WHERE idx IN ({marks})")  # fmt: skip
            for idx, doc_id, title, text, metadata in self._rows(sql, part):
                rows[idx] = {"doc_id": doc_id, "title": title, "text": text,
                             "metadata": json.loads(metadata) if metadata else {}}  # fmt: skip
        missing = [i for i in wanted if i not in rows]
        if missing:
            raise IndexError(f"{self.path}: no document with index {missing[0]}")
        return [dict(rows[i]) for i in wanted]

    def all_metadata(self) -> list[tuple[str, dict[str, Any]]]:
        """(doc_id, metadata) of every document that has metadata, in index order."""
        if self.metadata_column == "NULL":
            return []
        sql = "SELECT doc_id, metadata FROM docs WHERE metadata IS NOT NULL ORDER BY idx"
        return [(doc_id, json.loads(meta)) for doc_id, meta in self._rows(sql)]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class DocIdList(Sequence[str]):
    """The string ids in internal order, decoded on access from memory-mapped files.

    Supports ``len``, iteration, ``ids[i]``, slices and integer arrays (-> list[str]).
    """

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, path: Path | None = None) -> None:
        self._path = path
        self._blob, self._offsets = blob, offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice | Sequence[int] | np.ndarray) -> list[str]: ...

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, int | np.integer):
            i = int(index)
            n = len(self)
            if not -n <= i < n:
                raise IndexError(f"document index {i} out of range (n_docs={n})")
            i %= n
            data = bytes(self._blob[self._offsets[i] : self._offsets[i + 1]])
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise IndexCorruptError(
                    f"{self._path or 'the id list'}: the id of document {i} is not UTF-8 (the "
                    "file is damaged; rebuild the index or restore it from a copy)"
                ) from None
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return [self[int(i)] for i in np.asarray(index).reshape(-1)]

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"DocIdList(n={len(self)})"
