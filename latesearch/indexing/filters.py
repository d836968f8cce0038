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
"""

from __future__ import annotations

import json
import math
from typing import Any

from latesearch.errors import InputError

COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = ("$eq", "$ne", "$in", "$nin", *COMPARISONS, "$exists")
COMBINATORS = ("$and", "$or", "$not")
MAX_IN = 1000  # values in one $in / $nin


def compile_filter(spec: Any, column: str = "metadata") -> tuple[str, list[Any]]:
    """(SQL boolean expression, parameters) selecting the documents `spec` matches, over
    the JSON text in `column` (a trusted column name). InputError names the bad part."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as err:
            raise InputError(f"the filter is not valid JSON: {err.msg}", field="filter") from None
    params: list[Any] = []
    sql = _object(spec, "filter", column, params)
    return sql, params


def _object(spec: Any, where: str, column: str, params: list[Any]) -> str:
    if not isinstance(spec, dict):
        raise InputError(f"{where} must be a JSON object, got {_kind(spec)}", field=where)
    if not spec:
        return "1"
    parts = []
    for key, value in spec.items():
        here = f"{where}.{key}"
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InputError(f"{here} must be a non-empty list of filters", field=here)
            inner = [_object(v, f"{here}[{n}]", column, params) for n, v in enumerate(value)]
            parts.append("(" + f" {key[1:].upper()} ".join(inner) + ")")
        elif key == "$not":
            parts.append(f"(NOT {_object(value, here, column, params)})")
        elif key.startswith("$"):
            raise InputError(f"unknown operator {key!r} at {where}; combinators are "
                             f"{', '.join(COMBINATORS)}", field=here)  # fmt: skip
        else:
            if not key:
                raise InputError(f"{where} has an empty field name", field=here)
            parts.append(_field(key, value, here, column, params))
    return "(" + " AND ".join(parts) + ")"


def _field(name: str, cond: Any, where: str, column: str, params: list[Any]) -> str:
    if isinstance(cond, dict) and any(k.startswith("$") for k in cond):
        if not all(k.startswith("$") for k in cond):
            raise InputError(f"{where} mixes operators and plain keys", field=where)
        tests = [_operator(name, op, arg, f"{where}.{op}", column, params)
                 for op, arg in cond.items()]  # fmt: skip
    else:
        tests = [_operator(name, "$eq", cond, where, column, params)]
    # two-valued: a missing field or a document without metadata gives false, not NULL
    return "COALESCE((" + " AND ".join(tests) + "), 0)"


def _operator(name: str, op: str, arg: Any, where: str, column: str, params: list[Any]) -> str:
    path = _path(name)
    if op == "$exists":
        if not isinstance(arg, bool):
            raise InputError(f"{where} must be true or false, got {_kind(arg)}", field=where)
        params.append(path)
        return f"(json_type({column}, ?) IS {'NOT ' if arg else ''}NULL)"
    if op in ("$eq", "$ne"):
        test = _any_equal(path, [_scalar(arg, where)], column, params)
        return test if op == "$eq" else f"(NOT {test})"
    if op in ("$in", "$nin"):
        if not isinstance(arg, list) or not arg:
            raise InputError(f"{where} must be a non-empty list of values", field=where)
        if len(arg) > MAX_IN:
            raise InputError(f"{where} has {len(arg)} values; the limit is {MAX_IN}", field=where)
        values = [_scalar(v, f"{where}[{n}]") for n, v in enumerate(arg)]
        test = _any_equal(path, values, column, params)
        return test if op == "$in" else f"(NOT {test})"
    if op in COMPARISONS:
        value = _scalar(arg, where)
        if value is None or isinstance(value, bool):
            raise InputError(f"{where} compares with a number or a string, got {_kind(arg)}",
                             field=where)  # fmt: skip
        kinds = "('integer', 'real')" if not isinstance(value, str) else "('text')"
        params.extend([path, path, value])
        return (f"(json_type({column}, ?) IN {kinds} AND "
                f"json_extract({column}, ?) {COMPARISONS[op]} ?)")  # fmt: skip
    raise InputError(f"unknown operator {op!r}; operators are {', '.join(OPERATORS)}",
                     field=where)  # fmt: skip


def _any_equal(path: str, values: list[Any], column: str, params: list[Any]) -> str:
    """The field equals one of `values`, or is a list holding one of them. Never NULL, so
    that NOT of it is true where the field is missing."""
    tests = []
    for value in values:
        types, sql_value = _typed(value)
        params.extend([path, path, sql_value])
        tests.append(f"(json_type({column}, ?) IN {types} AND json_extract({column}, ?) IS ?)")
        params.extend([path, path, sql_value])
        tests.append(
            f"(json_type({column}, ?) = 'array' AND EXISTS (SELECT 1 FROM json_each({column}, ?)"
            f" AS e WHERE e.type IN {types} AND e.value IS ?))"
        )
    return "COALESCE((" + " OR ".join(tests) + "), 0)"


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


def _path(name: str) -> str:
    """The JSON path of a top-level field, quoted (so dots and spaces are plain
    characters of the name)."""
    if '"' in name or "\\" in name or any(ord(c) < 32 for c in name):
        raise InputError(f"field name {name!r} may not hold quotes, backslashes or control "
                         "characters", field=f"filter.{name}")  # fmt: skip
    return f'$."{name}"'


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)  # fmt: skip
