"""Training data forms: text triples, id triples, qrels with BM25 or index-mined negatives;
bad rows; and the stream's resumable position (no model involved except for index mining)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from latesearch import train
from latesearch.errors import InputError
from latesearch.training import mining
from latesearch.training.data import build_stream


def _write_ids(folder: Path, rows: list[str]) -> dict[str, Path]:
    queries = folder / "queries.tsv"
    queries.write_text("q1\twhat cat\nq2\twhat protein\n", encoding="utf-8")
    collection = folder / "collection.tsv"
    collection.write_text(
        "p1\tthe cat dog house\np2\tthe protein gene cell\np3\tthe music city river\n",
        encoding="utf-8",
    )
    triples = folder / "triples.jsonl"
    triples.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return {"triples": triples, "queries": queries, "collection": collection}


def _flat(stream, steps: int, start: int = 0) -> list[tuple[list[str], list[str]]]:
    out = []
    for step in itertools.islice(stream.batches(start), steps):
        out.append(([q for m in step for q in m.queries], [d for m in step for d in m.documents]))
    return out


def test_id_triples_resolve_texts_and_nway(tmp_path, small_config):
    files = _write_ids(tmp_path, ['["q1", "p1", "p2", "p3"]', '["q2", "p2", "p3", "p1"]'])
    config = small_config(**files, negatives_per_query=2, batch_size=2, output=tmp_path / "o")
    ((queries, docs),) = _flat(build_stream(config, tmp_path), 1)
    assert queries == ["what cat", "what protein"]
    assert docs == [
        "the cat dog house",
        "the protein gene cell",
        "the music city river",
        "the protein gene cell",
        "the music city river",
        "the cat dog house",
    ]


def test_bad_rows_name_file_and_line_or_are_counted(tmp_path, small_config):
    rows = ['["q1", "p1", "p2"]', '["q1", "p1", "nope"]', '["q2", "p2"]', '["q2", "p2", "p3"]']
    files = _write_ids(tmp_path, rows)
    config = small_config(**files, batch_size=2, output=tmp_path / "o")
    with pytest.raises(InputError, match=r"triples\.jsonl:2 \(field .negatives\[0\].") as err:
        _flat(build_stream(config, tmp_path), 1)
    assert "nope" in str(err.value)
    stream = build_stream(config.replace(on_error="skip"), tmp_path)
    ((queries, _),) = _flat(stream, 1)
    assert queries == ["what cat", "what protein"]  # rows 1 and 4
    assert stream.skipped == 2


def test_too_few_negatives_is_a_bad_row(tmp_path, small_config):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\tc\td\na\tb\tc\n", encoding="utf-8")
    config = small_config(triples=path, negatives_per_query=2, batch_size=1, output=tmp_path)
    with pytest.raises(InputError, match=r"t\.tsv:2 \(field .negatives.\)"):
        _flat(build_stream(config, tmp_path), 2)


@pytest.mark.parametrize("form", ["text", "ids", "qrels"])
def test_stream_continues_from_any_position(form, tmp_path, toy_triples, toy_beir, small_config):
    """What resume relies on: batches(start) is the tail of batches(0), across epochs."""
    if form == "text":
        data = dict(triples=toy_triples)
    elif form == "ids":
        data = _write_ids(
            tmp_path, ['["q1", "p1", "p2"]', '["q2", "p2", "p3"]', '["q1", "p1", "p3"]']
        )
    else:
        data = dict(
            qrels=toy_beir["qrels"],
            queries=toy_beir["queries"],
            collection=toy_beir["collection"],
            mine_negatives="bm25",
            mine_depth=4,
        )
    config = small_config(**data, batch_size=4, grad_accum=2, output=tmp_path)
    whole = _flat(build_stream(config, tmp_path), 20)
    assert _flat(build_stream(config, tmp_path), 7, start=13 * 4) == whole[13:]
    if form == "qrels":  # shuffled per epoch, negatives sampled from the mined lists
        assert whole[:2] != whole[2:4]


def test_bm25_mining_excludes_positives(tmp_path, toy_beir, small_config):
    config = small_config(
        qrels=toy_beir["qrels"],
        queries=toy_beir["queries"],
        collection=toy_beir["collection"],
        mine_negatives="bm25",
        mine_depth=3,
        output=tmp_path,
    )
    build_stream(config, tmp_path)
    mined = mining.load_mined(tmp_path / mining.MINED_FILE)
    assert sorted(mined) == [f"q{i}" for i in range(6)]
    for i in range(6):
        assert 0 < len(mined[f"q{i}"]) <= 3 and f"d{i}" not in mined[f"q{i}"]
    # "what cat": documents about cats rank first among the negatives
    assert all("x" in pid for pid in mined["q0"][:2])


def test_negatives_mined_from_an_existing_index(tmp_path, tiny_colbert, toy_beir, small_config):
    from latesearch import Index

    model_dir = tiny_colbert.save_pretrained(tmp_path / "model")
    Index.build(
        toy_beir["collection"],
        tmp_path / "index",
        str(model_dir),
        ann=False,
        progress=False,
        precision=32,
    )
    config = small_config(
        qrels=toy_beir["qrels"],
        queries=toy_beir["queries"],
        collection=toy_beir["collection"],
        mine_negatives=f"index:{tmp_path / 'index'}",
        mine_depth=4,
        base_model=str(model_dir),
        output=tmp_path / "run",
        steps=2,
        batch_size=3,
    )
    result = train(config)
    records = [
        json.loads(line) for line in (tmp_path / "run" / mining.MINED_FILE).read_text().splitlines()
    ]
    assert len(records) == 6
    for record in records:
        positive = "d" + record["qid"][1:]
        assert len(record["negatives"]) == 4 and positive not in record["negatives"]
    assert result.steps == 2
