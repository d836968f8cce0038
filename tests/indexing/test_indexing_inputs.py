"""Collections in every supported format through `build_index`; duplicate ids caught in memory
bounded by the group size; the progress bar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latesearch.errors import InputError
from latesearch.indexing import reading


def encoded_as(store, i: int, tiny_colbert, text: str) -> None:
    """Document i's stored embeddings are the encoder's for `text`."""
    start, stop = int(store.offsets[i]), int(store.offsets[i + 1])
    got = torch.from_numpy(np.array(store.token_range(start, stop), dtype=np.float32))
    torch.testing.assert_close(got, tiny_colbert.encode_documents([text])[0], atol=1e-5, rtol=0)


def test_msmarco_tsv_with_and_without_titles(build, tmp_path, tiny_colbert):
    plain = tmp_path / "collection.tsv"
    plain.write_text("0\tthe cat is a dog\n1\tprotein cell gene\n", encoding="utf-8")
    store = build(plain, "plain")
    assert list(store.doc_ids) == ["0", "1"]
    assert store.documents([1]) == [
        {"doc_id": "1", "title": "", "text": "protein cell gene", "metadata": {}}
    ]

    titled = tmp_path / "titled.tsv"
    titled.write_text("id\ttitle\ttext\n7\tcat\tthe dog\n8\t\tgene study\n", encoding="utf-8")
    store = build(titled, "titled")
    assert store.documents([0, 1]) == [
        {"doc_id": "7", "title": "cat", "text": "the dog", "metadata": {}},
        {"doc_id": "8", "title": "", "text": "gene study", "metadata": {}},
    ]
    encoded_as(store, 0, tiny_colbert, "cat the dog")  # title joined the BEIR way
    encoded_as(store, 1, tiny_colbert, "gene study")


def test_trec_sgml_collection(build, tmp_path, tiny_colbert):
    trec = tmp_path / "docs.trec"
    trec.write_text(
        "<DOC>\n<DOCNO> d1 </DOCNO>\n<TITLE>gene</TITLE>\n<TEXT>\nthe cell &amp; drug\n</TEXT>\n"
        "</DOC>\n<DOC><DOCNO>d2</DOCNO>query model</DOC>\n",
        encoding="utf-8",
    )
    store = build(trec)
    assert list(store.doc_ids) == ["d1", "d2"]
    assert store.documents([0]) == [
        {"doc_id": "d1", "title": "gene", "text": "the cell & drug", "metadata": {}}
    ]
    encoded_as(store, 0, tiny_colbert, "gene the cell & drug")


def test_duplicate_id_in_a_later_group_names_file_and_line(build, tmp_path, docs, write_jsonl,
                                                           small_config):  # fmt: skip
    rows = docs + [dict(docs[2], text="again")]  # line 41 repeats line 3, two groups later
    path = write_jsonl(tmp_path / "dup.jsonl", rows)
    with pytest.raises(InputError, match=r"dup\.jsonl:41.*duplicate document id 'doc-2'"):
        build(path)
    # the chunks finished before it are kept: the build resumes, skipping the bad record
    assert (tmp_path / "index.building").is_dir()
    skip = build(path, config=small_config.replace(on_error="skip"), resume=True)
    assert skip.n_docs == len(docs)


@pytest.mark.parametrize("bad", ["malformed first line", "lone surrogate"])
def test_input_refused_before_any_chunk_leaves_nothing(build, tmp_path, bad):
    if bad == "malformed first line":
        collection = tmp_path / "bad.jsonl"
        collection.write_text('{"_id": "1", "text": \n{"_id": "2", "text": "b"}\n')
    else:
        collection = [("1", "a"), ("2", "b \ud800")]
    before = sorted(tmp_path.iterdir())
    with pytest.raises(InputError):
        build(collection)
    assert sorted(tmp_path.iterdir()) == before


def test_skipped_duplicates_are_counted_and_resume_replays_them(
    build, tmp_path, docs, small_config, write_jsonl
):
    rows = docs[:3] + [dict(docs[1], text="again")] + docs[3:] + [dict(docs[30], text="x")]
    path = write_jsonl(tmp_path / "dup.jsonl", rows)
    skip = small_config.replace(on_error="skip")

    def crash(info):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(path, config=skip, on_chunk=crash)
    store = build(path, config=skip, resume=True)
    assert list(store.doc_ids) == [d["_id"] for d in docs]
    assert store.summary.skipped == {"duplicate_id": 2}
    assert store.documents([1])[0]["text"] == docs[1]["text"]  # the first one is kept


def test_reading_and_id_memory_stay_within_two_groups(build, docs, small_config, monkeypatch):
    config = small_config.replace(group_size=10, chunk_size=None)
    group = config.run.group_size
    pulled, peak = [0], [0]

    def source():
        for d in docs[:25] * 2:  # 50 rows: 5 groups
            pulled[0] += 1
            yield dict(d, _id=f"{d['_id']}-{pulled[0]}")

    add = reading.StoredIds.add

    def tracking_add(self, doc_id):
        add(self, doc_id)
        peak[0] = max(peak[0], len(self.pending))

    monkeypatch.setattr(reading.StoredIds, "add", tracking_add)
    ahead = []
    committed = [0]

    def on_chunk(info):
        committed[0] = info.first_doc + info.n_docs
        ahead.append(pulled[0] - committed[0])

    store = build(source(), config=config, on_chunk=on_chunk)
    assert store.n_docs == 50 and len(ahead) == 5
    assert max(ahead) <= 2 * group and peak[0] <= 2 * group


def test_progress_bar_shows_rate_and_eta(build, corpus, capsys):
    build(corpus, progress=True)
    err = capsys.readouterr().err
    assert "indexing" in err and "40/40" in err  # the total is known: an ETA is shown
    assert "doc/s" in err and "<" in err  # rate, and elapsed<remaining
