"""`latesearch index --shards N` builds a sharded index that `latesearch search` opens."""

from __future__ import annotations

import json

from latesearch import ShardedIndex
from latesearch.cli.main import main


def test_index_shards_then_search(tmp_path, tiny_bert_dir, kit, capsys):
    corpus = kit.write_corpus(tmp_path / "corpus.jsonl", n=20)
    folder = tmp_path / "sharded"
    code = main(["index", str(corpus), str(folder), "--shards", "2", "--model",
                 str(tiny_bert_dir), "--n-centroids", "8", "--quiet"])  # fmt: skip
    assert code == 0 and "20 documents in 2 shards" in capsys.readouterr().out
    assert main(["search", str(folder), "protein cell", "-k", "3", "--mode", "exact",
                 "--json"]) == 0  # fmt: skip
    hits = json.loads(capsys.readouterr().out)["hits"]
    expected = ShardedIndex.load(folder).search("protein cell", k=3, mode="exact")
    assert [h["doc_id"] for h in hits] == [h.doc_id for h in expected]
    assert main(["search", str(folder), "protein", "--mode", "hybrid"]) == 2
    assert "sharded" in capsys.readouterr().err
