"""Explanations and bounded scores of a sharded index's hits: each shard explains its
own, as the whole index does."""

from __future__ import annotations

import pytest

from latesearch.errors import InputError

QUERY = "late interaction of a cat"


def test_sharded_hits_carry_the_explanations_of_the_whole_index(sharded_pair):
    sharded, whole = sharded_pair
    got = sharded.search(QUERY, k=5, mode="exact", explain=True)
    expected = whole.search(QUERY, k=5, mode="exact", explain=True)
    assert [h.doc_id for h in got] == [h.doc_id for h in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.bounded_score == pytest.approx(b.bounded_score, rel=1e-5)
        assert [m.doc_token for m in a.explanation.matches] == [
            m.doc_token for m in b.explanation.matches]  # fmt: skip
        assert [(h.start, h.end) for h in a.highlights] == [(h.start, h.end) for h in b.highlights]
    with pytest.raises(InputError, match="explain"):
        sharded.search(QUERY, mode="hybrid", explain=True)
