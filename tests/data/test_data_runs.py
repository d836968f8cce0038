"""write_trec_run / read_trec_run: round trip, atomicity, bad rows."""

from __future__ import annotations

import math

import pytest

from latesearch.data import ReadStats, read_trec_run, write_trec_run
from latesearch.errors import InputError


def test_round_trip_ranks_by_score(tmp_path):
    path = tmp_path / "out" / "run.txt"
    run = {"q1": [("d1", 1.5), ("d2", 3.25), ("d3", 1.5)], "q2": {"d9": 0.1}}
    assert write_trec_run(path, run, tag="mine") == 4
    assert path.read_text().splitlines() == [
        "q1 Q0 d2 1 3.25 mine", "q1 Q0 d1 2 1.5 mine", "q1 Q0 d3 3 1.5 mine",
        "q2 Q0 d9 1 0.1 mine"]
    assert read_trec_run(path) == {"q1": {"d2": 3.25, "d1": 1.5, "d3": 1.5}, "q2": {"d9": 0.1}}
    assert [p.name for p in path.parent.iterdir()] == ["run.txt"]


def test_rows_are_written_as_given_and_gz(tmp_path):
    path = tmp_path / "run.trec.gz"
    write_trec_run(path, [("q", "a", 1, 2.0), ("q", "b", 2, 1)])
    assert read_trec_run(path) == {"q": {"a": 2.0, "b": 1.0}}


@pytest.mark.parametrize(("run", "message"), [
    ({"q 1": [("d", 1.0)]}, "field 'qid'"),
    ({"q": [("d", math.nan)]}, "finite"),
    ({"q": [("", 1.0)]}, "field 'doc_id'"),
    ([("q", "d", "1", 1.0)], "rank must be an integer"),
    ([("q", "d", 1)], "expected \\(qid, doc_id, rank, score\\)"),
])
def test_bad_runs_leave_no_file(tmp_path, run, message):
    path = tmp_path / "run.txt"
    path.write_text("old\n")
    with pytest.raises(InputError, match=message):
        write_trec_run(path, run)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.txt"]
    with pytest.raises(InputError, match="field 'tag'"):
        write_trec_run(path, {}, tag="two words")


@pytest.mark.parametrize(("line", "field", "message"), [
    ("q Q0 d 1 1.0", None, "expected 6 columns"),
    ("q Q0 d x 1.0 t", "rank", "expected int"),
    ("q Q0 d 1 nan t", "score", "finite"),
    ("q Q0 a 2 0.5 t", "doc_id", "ranked twice"),
])
def test_read_errors_name_the_line(tmp_path, line, field, message):
    path = tmp_path / "run.txt"
    path.write_text("q Q0 a 1 1.0 t\n" + line + "\n")
    with pytest.raises(InputError, match=rf"run.txt:2\b.*{message}") as info:
        read_trec_run(path)
    assert info.value.field == field
    stats = ReadStats()
    assert read_trec_run(path, on_error="skip", stats=stats) == {"q": {"a": 1.0}}
    assert stats.total_skipped == 1
