"""The metadata filter language: its SQL against a reference evaluator written in Python
(hypothesis draws documents and filters), clear errors, and no SQL injection."""

from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latesearch.errors import InputError
from latesearch.indexing.filters import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_IN,
    CompiledFilter,
    compile_filter,
)

FIELDS = ["lang", "year", "tags", "x.y"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                    st.sampled_from(["en", "de", "", "1"]), st.sampled_from([1.5, 2.0]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
DOCS = st.lists(st.one_of(st.none(), st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3)),
                min_size=1, max_size=8)  # fmt: skip


def conditions():
    ordered = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "en", "z"]))
    ops = st.one_of(
        st.builds(lambda v: {"$eq": v}, SCALARS), st.builds(lambda v: {"$ne": v}, SCALARS),
        st.builds(lambda v: {"$in": v}, st.lists(SCALARS, min_size=1, max_size=3)),
        st.builds(lambda v: {"$nin": v}, st.lists(SCALARS, min_size=1, max_size=3)),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ordered),
        st.builds(lambda v: {"$exists": v}, st.booleans()),
    )  # fmt: skip
    return st.one_of(SCALARS, ops)


FILTERS = st.recursive(
    st.dictionaries(st.sampled_from(FIELDS), conditions(), min_size=1, max_size=2),
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda f: {"$not": f}, inner),
    ),
    max_leaves=6,
)


# ------------------------------------------------------------------ the reference
def same(a, b) -> bool:
    """JSON equality as the filter language means it: 1 == 1.0, but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def ordered(a, b, op) -> bool:
    numeric = (isinstance(a, int | float) and not isinstance(a, bool)
               and isinstance(b, int | float) and not isinstance(b, bool))  # fmt: skip
    if not (numeric or (isinstance(a, str) and isinstance(b, str))):
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def holds(meta, name, op, arg) -> bool:
    present = name in meta
    value = meta.get(name)
    if op == "$exists":
        return present == arg
    if op in ("$eq", "$in"):
        wanted = [arg] if op == "$eq" else arg
        if not present:
            return False
        if isinstance(value, list):
            return any(same(v, w) for v in value for w in wanted)
        return any(same(value, w) for w in wanted)
    if op == "$ne":
        return not holds(meta, name, "$eq", arg)
    if op == "$nin":
        return not holds(meta, name, "$in", arg)
    return present and not isinstance(value, list) and ordered(value, arg, op)


def matches(meta, spec) -> bool:
    meta = meta or {}
    for key, cond in spec.items():
        if key == "$and":
            ok = all(matches(meta, f) for f in cond)
        elif key == "$or":
            ok = any(matches(meta, f) for f in cond)
        elif key == "$not":
            ok = not matches(meta, cond)
        elif isinstance(cond, dict):
            ok = all(holds(meta, key, op, arg) for op, arg in cond.items())
        else:
            ok = holds(meta, key, "$eq", cond)
        if not ok:
            return False
    return True


def select(docs, spec) -> list[int]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE docs (idx INTEGER PRIMARY KEY, metadata TEXT)")
    conn.executemany("INSERT INTO docs VALUES (?, ?)",
                     [(i, json.dumps(m) if m else None) for i, m in enumerate(docs)])  # fmt: skip
    sql, params = compile_filter(spec)
    return [r[0] for r in conn.execute(f"SELECT idx FROM docs WHERE {sql} ORDER BY idx", params)]


# ------------------------------------------------------------------ tests
@settings(max_examples=300, deadline=None)
@given(DOCS, FILTERS)
def test_sql_selects_what_the_reference_selects(docs, spec):
    assert select(docs, spec) == [i for i, m in enumerate(docs) if matches(m, spec)]


def test_examples():
    docs = [{"lang": "en", "year": 2021, "tags": ["ml", "ir"]}, {"lang": "de", "year": 2019},
            {"lang": "fr", "year": 2023.0, "draft": True}, None, {"year": "2020", "x.y": 1}]
    assert select(docs, {"year": {"$gte": 2020}, "$or": [{"lang": "en"}, {"lang": "de"}]}) == [0]
    assert select(docs, {"tags": "ml"}) == [0]
    assert select(docs, {"lang": {"$ne": "en"}}) == [1, 2, 3, 4]
    assert select(docs, {"draft": {"$exists": False}}) == [0, 1, 3, 4]
    assert select(docs, {"year": 2023}) == [2] and select(docs, {"year": "2020"}) == [4]
    assert select(docs, {"x.y": 1}) == [4] and select(docs, {}) == [0, 1, 2, 3, 4]
    assert select(docs, json.dumps({"lang": "de"})) == [1]


@pytest.mark.parametrize("spec, field", [
    ({"lang": {"$regex": "e"}}, "filter.lang.$regex"),
    ({"$xor": [{"a": 1}]}, "filter.$xor"),
    ({"$or": []}, "filter.$or"),
    ({"$and": [{"a": 1}, 5]}, "filter.$and[1]"),
    ({"year": {"$gt": None}}, "filter.year.$gt"),
    ({"a": {"$in": []}}, "filter.a.$in"),
    ({"a": {"$in": [1, {"b": 2}]}}, "filter.a.$in[1]"),
    ({"a": {"$exists": 1}}, "filter.a.$exists"),
    ({"a": {"$gt": 1, "b": 2}}, "filter.a"),
    ({"a": float("nan")}, "filter.a"),
    ([1], "filter"),
    ('{"a":', "filter"),
])  # fmt: skip
def test_bad_filters_name_the_bad_part(spec, field):
    with pytest.raises(InputError) as err:
        compile_filter(spec)
    assert err.value.field == field


@pytest.mark.parametrize("hostile", [
    "x') OR 1=1 --", "'; DROP TABLE docs; --", "a') OR ('1'='1", "metadata) OR (1",
])  # fmt: skip
def test_names_and_values_are_parameters_never_sql(hostile):
    docs = [{"lang": "en"}, {"lang": hostile}]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE docs (idx INTEGER PRIMARY KEY, metadata TEXT)")
    conn.executemany("INSERT INTO docs VALUES (?, ?)",
                     [(i, json.dumps(m)) for i, m in enumerate(docs)])  # fmt: skip
    for spec in ({"lang": hostile}, {hostile: "en"}, {"lang": {"$in": [hostile]}}):
        sql, params = compile_filter(spec)
        assert hostile not in sql
        rows = [r[0] for r in conn.execute(f"SELECT idx FROM docs WHERE {sql}", params)]
        assert rows == ([1] if spec != {hostile: "en"} else [])
    assert conn.execute("SELECT count(*) FROM docs").fetchone()[0] == 2


def nested(depth: int, leaf=None) -> dict:
    """A filter `depth` objects deep, alternating $and (of two filters) and $not."""
    spec = leaf or {"a": 1}
    for level in range(depth - 1):
        spec = {"$not": spec} if level % 2 else {"$and": [spec, {"b": {"$ne": 2}}]}
    return spec


@pytest.mark.parametrize("spec", [
    nested(MAX_DEPTH + 1),
    json.dumps(nested(300)),
    "[" * 100_000,  # too deep for Python's own JSON parser
    {"$or": [{"a": n} for n in range(MAX_CONDITIONS + 1)]},
    {"a": {"$in": list(range(600))}, "b": {"$nin": list(range(600))}},
    {"$and": [{}] * (MAX_CONDITIONS + 1)},
])  # fmt: skip
def test_filters_past_the_limits_are_refused_on_the_filter_field(spec):
    with pytest.raises(InputError) as err:
        compile_filter(spec)
    assert err.value.field == "filter"


def test_filters_at_the_limits_run_on_sqlite():
    # the deepest and largest filters allowed stay inside SQLite's parser stack, expression
    # depth and variables, and select what the reference selects
    docs = [{"a": n, "b": [n, 2], "lang": "en"} for n in range(6)] + [None, {"b": 7}]
    wide = {"$or": [{"a": {"$in": list(range(500))}}, {"b": {"$nin": list(range(1, 400))}}]}
    for spec in (nested(MAX_DEPTH), nested(MAX_DEPTH - 1, wide),
                 {"$or": [{"a": n} for n in range(MAX_CONDITIONS)]},
                 {"a": {"$nin": list(range(1, MAX_IN + 1))}}):  # fmt: skip
        assert select(docs, spec) == [i for i, m in enumerate(docs) if matches(m, spec)]


def test_a_compiled_filter_compiles_to_itself():
    compiled = compile_filter({"lang": "en"})
    assert isinstance(compiled, CompiledFilter) and compile_filter(compiled) is compiled
