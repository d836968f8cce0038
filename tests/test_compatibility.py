"""Indexes written by an earlier latesearch keep loading and answering the same.

tests/fixtures/index_v0/ holds a tiny ColBERT checkpoint, three indexes built by the first
release of the format (compressed with its fp16 tier, BM25 and a pooled dense view;
compressed without the fp16 tier; uncompressed with a faiss ANN component) and the
answers every search mode gave on them (tests/fixtures/make_index_v0.py made them all).
Every mode must still return the same documents in the same order with the same scores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from latesearch import Index

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "index_v0"
ANSWERS = json.loads((FIXTURE / "answers.json").read_text())
# Scores are recomputed by this CPU's kernels: the order of float additions may differ from
# the machine that recorded them, so they agree to float32 rounding, not bit for bit.
RTOL, ATOL = 1e-4, 1e-6
CASES = [(name, i) for name, calls in ANSWERS["indexes"].items() for i in range(len(calls))]


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> Path:
    """The fixture copied, so that opening it (SQLite) never touches the committed files."""
    folder = tmp_path_factory.mktemp("compat") / "index_v0"
    shutil.copytree(FIXTURE, folder)
    return folder


@pytest.fixture(scope="module")
def indexes(copies) -> dict[str, Index]:
    return {name: Index.load(copies / name, copies / "model") for name in ANSWERS["indexes"]}


def tie_groups(scores: list[float]) -> list[range]:
    """Runs of consecutive positions whose scores are equal within the tolerance."""
    groups, start = [], 0
    for i in range(1, len(scores) + 1):
        if i == len(scores) or not np.isclose(scores[i], scores[i - 1], rtol=RTOL, atol=ATOL):
            groups.append(range(start, i))
            start = i
    return groups


def assert_same_hits(found: list[tuple[str, float]], expected: list[list], where: str) -> None:
    assert len(found) == len(expected), where
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected],
                               rtol=RTOL, atol=ATOL, err_msg=where)  # fmt: skip
    for group in tie_groups([s for _, s in expected]):
        ids = {found[i][0] for i in group}
        wanted = {expected[i][0] for i in group}
        if group.stop == len(expected) and len(expected) == ANSWERS["k"]:
            # a tie cut by k may be filled by another document of the same score
            assert len(ids) == len(group), where
        else:
            assert ids == wanted, f"{where}: positions {list(group)}"


@pytest.mark.parametrize(("name", "i"), CASES)
def test_every_mode_answers_as_it_did(indexes, name, i):
    call = ANSWERS["indexes"][name][i]
    index, queries, k = indexes[name], ANSWERS["queries"], ANSWERS["k"]
    if call["mode"] == "rerank_candidates":
        answers = [index.rerank(queries[0], [f"d{j}" for j in range(0, 48, 3)], k=k)]
    else:
        answers = index.search(queries, k=k, mode=call["mode"], **call["options"])
    assert len(answers) == len(call["hits"])
    for q, (hits, expected) in enumerate(zip(answers, call["hits"], strict=True)):
        found = [(h.doc_id, h.score) for h in hits]
        assert_same_hits(found, expected, f"{name} {call['mode']} {call['options']} q{q}")


@pytest.mark.parametrize("name", list(ANSWERS["indexes"]))
def test_the_fixture_verifies(indexes, name):
    report = indexes[name].verify()
    assert report.files > 0 and not report.unchecked


def test_the_fixture_holds_each_kind_of_index():
    """A regenerated fixture must keep covering every stored layout and component."""
    kinds = {"compressed": ["codes", "dense", "doclens", "embeddings", "residuals"],
             "compressed_nofull": ["codes", "doclens", "residuals"],
             "plain": ["doclens", "embeddings"]}  # fmt: skip
    for name, arrays in kinds.items():
        found = {p.name.split(".")[1] for p in (FIXTURE / name / "chunks").iterdir()}
        assert sorted(found) == arrays, name
        assert (FIXTURE / name / "bm25").is_dir(), name
    assert (FIXTURE / "plain" / "ann").is_dir()
    modes = {c["mode"] for calls in ANSWERS["indexes"].values() for c in calls}
    assert {"e2e", "exact", "rerank", "hybrid", "dense", "fused", "rerank_candidates"} <= modes
