"""Metadata filters: the MongoDB-style language of vector stores (Pinecone, Chroma),
compiled to parameterized SQL over the doc store's JSON `metadata` column.

A filter is a JSON object. A key that is a field name holds a value (equality) or an
object of operators; `$and` / `$or` hold lists of filters, `$not` one filter:

    {"lang": "en"}
    {"year": {"$gte": 2020, "$lt": 2024}, "$or": [{"lang": "en"}, {"lang": "de"}]}
    {"tags": {"$in": ["ml", "ir"]}, "draft": {"$exists": false}}

Operators: $eq $ne $in $nin $gt $gte $lt $lte $exists. Values are strings, numbers,
booleans or null ($in/$nin: lists of them). A field holding a list matches $eq / $in when
any element does (and $ne / $nin when none does), as in MongoDB. A missing field matches
$ne, $nin and {"$exists": false} only. Field names and values only ever reach SQLite as
bound parameters, never as SQL text.

Limits, far above any hand-written filter and inside what SQLite parses: objects nest at
most `MAX_DEPTH` (32) deep, a filter holds at most `MAX_CONDITIONS` (1,000) conditions,
each value of an $in / $nin counting as one, and one $in / $nin at most `MAX_IN` (1,000)
values. A filter past them is an InputError on field "filter".

Fields with a field index (`compile_filter(spec, indexed=...)`: the doc store's
`field_values` table, one row per value and per list element) compile to lookups in it,
`idx IN (SELECT idx FROM field_values WHERE ...)`, which SQLite answers from its index in
time that grows with the matches, not the collection; they select exactly what the scan
of the JSON selects. A filter on indexed fields alone that requires one of their values
runs over that lookup without reading any document (`CompiledFilter.driver`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from typing import Any, NamedTuple

from latesearch.errors import InputError

COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = ("$eq", "$ne", "$in", "$nin", *COMPARISONS, "$exists")
COMBINATORS = ("$and", "$or", "$not")
MAX_DEPTH = 32  # nested filter objects ($and / $or / $not)
MAX_CONDITIONS = 1000  # conditions in one filter, each $in / $nin value counting as one
MAX_IN = 1000  # values in one $in / $nin
_GROUP = 32  # terms joined without parentheses: SQLite's expression depth stays small


class _SQL(NamedTuple):
    sql: str
    params: tuple[Any, ...]


class CompiledFilter(_SQL):
    """A filter as SQL: a boolean expression over the JSON text in a column named
    `metadata` (and, for `indexed` fields, the `idx` column and the `field_values`
    table), and its bound parameters (`sql, params = compiled`); `spec` is the filter it
    was compiled from. `driver`: where the filter needs no document's metadata and
    requires a value of an indexed field, that field's lookup (a query of `idx`, and its
    parameters), a superset of the matches to check the filter on (None otherwise)."""

    spec: Any
    indexed: frozenset[str]
    driver: tuple[str, tuple[Any, ...]] | None

    def __new__(cls, sql: str, params: tuple[Any, ...], spec: Any = None,
                indexed: frozenset[str] = frozenset(),
                driver: tuple[str, tuple[Any, ...]] | None = None) -> CompiledFilter:  # fmt: skip
        self = super().__new__(cls, sql, params)
        self.spec, self.indexed, self.driver = spec, indexed, driver
        return self

    def __getnewargs__(self) -> tuple[Any, ...]:  # type: ignore[override]
        return (self.sql, self.params, self.spec, self.indexed, self.driver)


def compile_filter(spec: Any, indexed: Collection[str] = ()) -> CompiledFilter:
    """The SQL selecting the documents `spec` (a filter object, its JSON text, or an
    already compiled filter) matches, looking the fields in `indexed` up in their field
    index. InputError names the bad part."""
    indexed = frozenset(indexed)
    if isinstance(spec, CompiledFilter):
        if spec.indexed == indexed:
            return spec
        spec = spec.spec
    compiler = _Compiler(indexed)
    parsed = parse_filter(spec)
    sql = compiler.object(parsed, "filter", 1)
    driver = None if compiler.reads_metadata else compiler.driver
    return CompiledFilter(sql, tuple(compiler.params), parsed, indexed, driver)


def parse_filter(spec: Any) -> Any:
    """`spec`, parsed where it is a filter's JSON text (InputError if it is not JSON)."""
    if not isinstance(spec, str):
        return spec
    try:
        return json.loads(spec)
    except json.JSONDecodeError as err:
        raise InputError(f"the filter is not valid JSON: {err.msg}", field="filter") from None
    except RecursionError:
        raise _too_deep() from None


def _too_deep() -> InputError:
    return InputError(f"the filter nests objects ($and / $or / $not) more than {MAX_DEPTH} "
                      "deep", field="filter")  # fmt: skip


def _join(terms: list[str], op: str) -> str:
    """`terms` joined by AND / OR, in parenthesized groups of `_GROUP` so that a long
    list stays shallow for SQLite's parser."""
    while len(terms) > _GROUP:
        terms = ["(" + f" {op} ".join(terms[i : i + _GROUP]) + ")"
                 for i in range(0, len(terms), _GROUP)]  # fmt: skip
    return terms[0] if len(terms) == 1 else "(" + f" {op} ".join(terms) + ")"


class _Compiler:
    """One filter's compilation: its bound parameters and its conditions so far."""

    def __init__(self, indexed: frozenset[str] = frozenset()) -> None:
        self.params: list[Any] = []
        self.conditions = 0
        self.indexed = indexed
        self.reads_metadata = False  # a condition on a field without a field index
        self.positive: tuple[str, tuple[Any, ...]] | None = None  # a field's first lookup
        self.driver: tuple[str, tuple[Any, ...]] | None = None  # a top-level field's

    def count(self, n: int) -> None:
        self.conditions += n
        if self.conditions > MAX_CONDITIONS:
            raise InputError(f"the filter holds more than {MAX_CONDITIONS} conditions (each "
                             "$in / $nin value counts as one)", field="filter")  # fmt: skip

    def object(self, spec: Any, where: str, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise _too_deep()
        if not isinstance(spec, dict):
            raise InputError(f"{where} must be a JSON object, got {_kind(spec)}", field=where)
        if not spec:
            self.count(1)  # matches everything, and costs SQL like any condition
            return "1"
        parts = []
        for key, value in spec.items():
            here = f"{where}.{key}"
            if key in ("$and", "$or"):
                if not isinstance(value, list) or not value:
                    raise InputError(f"{here} must be a non-empty list of filters", field=here)
                inner = [self.object(v, f"{here}[{n}]", depth + 1) for n, v in enumerate(value)]
                parts.append(_join(inner, key[1:].upper()))
            elif key == "$not":
                parts.append(f"NOT {self.object(value, here, depth + 1)}")
            elif key.startswith("$"):
                raise InputError(f"unknown operator {key!r} at {where}; combinators are "
                                 f"{', '.join(COMBINATORS)}", field=here)  # fmt: skip
            else:
                if not key:
                    raise InputError(f"{where} has an empty field name", field=here)
                self.positive = None
                parts.append(self.field(key, value, here))
                if depth == 1 and self.driver is None:
                    self.driver = self.positive
        return _join(parts, "AND")

    def field(self, name: str, cond: Any, where: str) -> str:
        if isinstance(cond, dict) and any(k.startswith("$") for k in cond):
            if not all(k.startswith("$") for k in cond):
                raise InputError(f"{where} mixes operators and plain keys", field=where)
            ops = [(op, arg, f"{where}.{op}") for op, arg in cond.items()]
        else:
            ops = [("$eq", cond, where)]
        if name in self.indexed:
            return self.indexed_field(name, ops)
        tests = [self.operator(name, op, arg, here) for op, arg, here in ops]
        # two-valued: a missing field or a document without metadata gives false, not NULL
        return f"COALESCE({_join(tests, 'AND')}, 0)"

    def indexed_field(self, name: str, ops: list[tuple[str, Any, str]]) -> str:
        """An indexed field's conditions as lookups in `field_values` (never NULL). Its
        comparisons share one range lookup, so that a range costs what it selects."""
        _path(name)
        tests, ranges, range_params = [], [], []
        for op, arg, where in ops:
            if op in COMPARISONS:
                value = self.comparable(arg, where)
                kind = "text" if isinstance(value, str) else "number"
                ranges.append(f"type = '{kind}' AND value {COMPARISONS[op]} ?")
                range_params.append(value)
            elif op == "$exists":
                self.check_exists(arg, where)
                select = "SELECT idx FROM field_values WHERE field = ? AND elem = 0"
                test = self.lookup(select, [name], positive=arg)
                tests.append(test if arg else f"NOT {test}")
            elif op in ("$eq", "$ne", "$in", "$nin"):
                select, params = self.indexed_equal(name, self.values(op, arg, where))
                test = self.lookup(select, params, positive=op in ("$eq", "$in"))
                tests.append(test if op in ("$eq", "$in") else f"NOT {test}")
            else:
                raise _unknown(op, where)
        if ranges:
            select = ("SELECT idx FROM field_values WHERE field = ? AND elem = 0 AND "
                      f"{' AND '.join(ranges)}")  # fmt: skip
            tests.append(self.lookup(select, [name, *range_params], positive=True))
        return _join(tests, "AND")

    def lookup(self, select: str, params: list[Any], *, positive: bool) -> str:
        """`idx IN (select)`, its parameters added; the field's first one that the
        field's condition requires (`positive`) is remembered."""
        self.params.extend(params)
        if positive and self.positive is None:
            self.positive = (select, tuple(params))
        return f"idx IN ({select})"

    def indexed_equal(self, name: str, values: list[Any]) -> tuple[str, list[Any]]:
        """The query of the documents whose field equals one of `values` or is a list
        holding one, and its parameters: one lookup per kind of value (numbers, texts,
        true, false, null)."""
        kinds: dict[str, list[Any]] = {}
        for value in values:
            kinds.setdefault(_kind_of(value), []).append(value)
        selects, params = [], []
        for kind, group in kinds.items():
            select = f"SELECT idx FROM field_values WHERE field = ? AND type = '{kind}'"
            params.append(name)
            if kind in ("number", "text"):
                select += f" AND value IN ({', '.join('?' * len(group))})"
                params.extend(group)
            selects.append(select)
        return " UNION ALL ".join(selects), params

    def values(self, op: str, arg: Any, where: str) -> list[Any]:
        """The checked values of an $eq / $ne (one) or $in / $nin (a list), counted."""
        if op in ("$eq", "$ne"):
            values = [_scalar(arg, where)]
        else:
            if not isinstance(arg, list) or not arg:
                raise InputError(f"{where} must be a non-empty list of values", field=where)
            if len(arg) > MAX_IN:
                raise InputError(f"{where} has {len(arg)} values; the limit is {MAX_IN}",
                                 field=where)  # fmt: skip
            values = [_scalar(v, f"{where}[{n}]") for n, v in enumerate(arg)]
        self.count(len(values))
        return values

    def comparable(self, arg: Any, where: str) -> Any:
        value = _scalar(arg, where)
        if value is None or isinstance(value, bool):
            raise InputError(f"{where} compares with a number or a string, got {_kind(arg)}",
                             field=where)  # fmt: skip
        self.count(1)
        return value

    def check_exists(self, arg: Any, where: str) -> None:
        if not isinstance(arg, bool):
            raise InputError(f"{where} must be true or false, got {_kind(arg)}", field=where)
        self.count(1)

    def operator(self, name: str, op: str, arg: Any, where: str) -> str:
        path = _path(name)
        self.reads_metadata = True
        if op == "$exists":
            self.check_exists(arg, where)
            self.params.append(path)
            return f"(json_type(metadata, ?) IS {'NOT ' if arg else ''}NULL)"
        if op in ("$eq", "$ne", "$in", "$nin"):
            test = self.any_equal(path, self.values(op, arg, where))
            return test if op in ("$eq", "$in") else f"NOT {test}"
        if op in COMPARISONS:
            value = self.comparable(arg, where)
            kinds = "('integer', 'real')" if not isinstance(value, str) else "('text')"
            self.params.extend([path, path, value])
            return (f"(json_type(metadata, ?) IN {kinds} AND "
                    f"json_extract(metadata, ?) {COMPARISONS[op]} ?)")  # fmt: skip
        raise _unknown(op, where)

    def any_equal(self, path: str, values: list[Any]) -> str:
        """The field equals one of `values`, or is a list holding one of them. Never NULL,
        so that NOT of it is true where the field is missing."""
        tests = []
        for value in values:
            types, sql_value = _typed(value)
            self.params.extend([path, path, sql_value])
            tests.append(f"(json_type(metadata, ?) IN {types} AND "
                         "json_extract(metadata, ?) IS ?)")  # fmt: skip
            self.params.extend([path, path, sql_value])
            tests.append(
                f"(json_type(metadata, ?) = 'array' AND EXISTS (SELECT 1 FROM "
                f"json_each(metadata, ?) AS e WHERE e.type IN {types} AND e.value IS ?))"
            )
        return f"COALESCE({_join(tests, 'OR')}, 0)"


def _unknown(op: str, where: str) -> InputError:
    return InputError(f"unknown operator {op!r}; operators are {', '.join(OPERATORS)}",
                      field=where)  # fmt: skip


def _kind_of(value: Any) -> str:
    """The `field_values.type` of a scalar: number, text, true, false or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "number" if isinstance(value, int | float) else "text"


def _typed(value: Any) -> tuple[str, Any]:
    """(SQL list of the JSON types that may equal `value`, its SQL value): numbers equal
    numbers of either kind, but 1 never equals true and "1" never equals 1."""
    if value is None:
        return "('null')", None
    if isinstance(value, bool):
        return ("('true')" if value else "('false')"), int(value)
    if isinstance(value, int | float):
        return "('integer', 'real')", value
    return "('text')", value


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{where} must be a finite number", field=where)
        return value
    raise InputError(f"{where} must be a string, number, boolean or null, got {_kind(value)}",
                     field=where)  # fmt: skip


def plain_field_name(name: Any) -> bool:
    """Whether `name` can be a filtered or indexed field: a non-empty string without
    quotes, backslashes or control characters."""
    return (isinstance(name, str) and bool(name) and '"' not in name and "\\" not in name
            and all(ord(c) >= 32 for c in name))  # fmt: skip


def _path(name: str) -> str:
    """The JSON path of a top-level field, quoted (so dots and spaces are plain
    characters of the name)."""
    if not plain_field_name(name):
        raise InputError(f"field name {name!r} may not hold quotes, backslashes or control "
                         "characters", field=f"filter.{name}")  # fmt: skip
    return f'$."{name}"'


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)  # fmt: skip
