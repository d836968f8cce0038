"""Fuzzing (hypothesis): random bytes through every reader, random JSON through the HTTP
request parsers and the filter compiler, and random byte flips and truncations of every
file of a small index. Only `LatesearchError` subclasses may come out, and an index that
opens after damage to any file but its checksum records (the manifest and a component's
checksums.json, validated rather than hashed) is refused by `verify`: every other file has
a checksum. A lean run: CI's budget."""

from __future__ import annotations

import contextlib
import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latesearch.data import (
    read_collection,
    read_id_triples,
    read_qrels,
    read_queries,
    read_text_triples,
    read_trec_run,
)
from latesearch.errors import LatesearchError
from latesearch.indexing.filters import compile_filter
from latesearch.serving.config import ServeConfig
from latesearch.serving.parsing import (
    parse_json_body,
    rerank_from_json,
    search_from_json,
    search_from_url,
    write_from_json,
)

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
LINES = st.lists(
    st.one_of(
        st.sampled_from(['{"_id": "a", "text": "x"}', "1\tq text", "1 0 d1 1", "q\tp\tn",
                         "<DOC><DOCNO>d</DOCNO>t</DOC>", "", "  ", "\t", "{", "[1]", "id\ttext"]),
        st.text(max_size=30),
    ),
    max_size=6,
)  # fmt: skip
READERS = {
    "corpus.jsonl": lambda p: list(read_collection(p)),
    "corpus.tsv": lambda p: list(read_collection(p)),
    "corpus.trec": lambda p: list(read_collection(p)),
    "queries.tsv": read_queries,
    "queries.jsonl": read_queries,
    "qrels.txt": read_qrels,
    "run.trec": read_trec_run,
    "triples.tsv": lambda p: list(read_text_triples(p)),
    "ids.tsv": lambda p: list(read_id_triples(p, {"q": "a query", "1": "x"},
                                              {"p": "a passage", "n": "another"})),
}  # fmt: skip
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)  # fmt: skip
FIELDS = st.sampled_from(["query", "queries", "k", "mode", "filter", "candidates", "ids",
                          "documents", "missing", "fusion", "hybrid_weight", "return_text"])


@pytest.mark.parametrize("name", sorted(READERS))
@FAST
@given(lines=LINES, raw=st.binary(max_size=40))
def test_readers_raise_only_latesearch_errors(tmp_path_factory, name, lines, raw):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + raw)
    with contextlib.suppress(LatesearchError):
        READERS[name](path)


@FAST
@given(body=st.dictionaries(FIELDS, JSON, max_size=5), raw=st.binary(max_size=30))
def test_request_parsers_raise_only_input_errors(body, raw):
    config = ServeConfig()
    for parse in (search_from_json, rerank_from_json):
        with contextlib.suppress(LatesearchError):
            parse(body, config)
    for delete in (False, True):
        with contextlib.suppress(LatesearchError):
            write_from_json(body, config, delete=delete)
    for call in (lambda: parse_json_body(raw), lambda: search_from_url(raw.decode("latin-1"),
                                                                       config)):  # fmt: skip
        with contextlib.suppress(LatesearchError):
            call()


@FAST
@given(spec=JSON)
def test_the_filter_compiler_raises_only_input_errors(spec):
    try:
        compile_filter(spec)
        compile_filter(json.dumps(spec))
    except (LatesearchError, ValueError) as err:  # json.dumps refuses nothing here but NaN
        assert isinstance(err, LatesearchError) or "JSON" in str(err)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, tiny_colbert):
    from latesearch import Index

    folder = tmp_path_factory.mktemp("fuzz-index")
    docs = [{"_id": f"d{i}", "text": f"protein cell study {i} river"} for i in range(12)]
    return Index.build(docs, folder / "index", tiny_colbert, bm25=True, progress=False).folder


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_damaged_index_files_are_refused_or_caught_by_verify(pristine, tmp_path_factory, data,
                                                             tiny_colbert):  # fmt: skip
    from latesearch import Index
    from latesearch.indexing import IndexStore

    files = sorted(p.relative_to(pristine) for p in pristine.rglob("*") if p.is_file())
    target = tmp_path_factory.mktemp("damaged") / "index"
    shutil.copytree(pristine, target)
    victim = target / data.draw(st.sampled_from(files))
    original = victim.read_bytes()
    content = bytearray(original)
    if data.draw(st.booleans()) and content:  # flip some bytes
        for _ in range(data.draw(st.integers(1, 8))):
            content[data.draw(st.integers(0, len(content) - 1))] ^= data.draw(st.integers(1, 255))
    else:  # truncate
        del content[data.draw(st.integers(0, max(0, len(content) - 1))):]
    victim.write_bytes(bytes(content))
    try:
        store = IndexStore.open(target)
    except LatesearchError:
        return  # refused with a clear error
    changed = bytes(content) != original  # two flips of one byte may cancel out
    if changed and victim.name not in ("manifest.json", "checksums.json"):  # the records
        # themselves are validated, not hashed (white space in them is harmless); every
        # other file has a checksum: damage is found
        with pytest.raises(LatesearchError):
            store.verify()
    try:
        store.verify()
        list(store.doc_ids)
        store.documents(list(range(store.n_docs)))
        index = Index(store, tiny_colbert)
        for mode in ("e2e", "rerank", "exact"):
            index.search("protein river", k=3, mode=mode, return_text=True)
    except LatesearchError:
        pass
    finally:
        store.close()
