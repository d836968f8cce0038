"""A dev set over the demo collection (409 Python standard-library docstrings) with 128
hand-written questions: the demo's 20 ('demo:' ids) and 108 more from
scripts/default_model/data/pydocs-dev.tsv ('py:' ids), none of them ever a training query.
A third dev domain of real questions larger than the demo's 20, whose single query moves
the multi-domain dev mean by up to 0.017.

python scripts/default_model/make_pydocs_dev.py --out .work/dm/devpy
python scripts/default_model/evaluate_dev.py --dev .work/dm/devpy \
    --out benchmarks/results/default-model/dev-pydocs.json NAME=MODEL ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latesearch._atomic import write_text
from latesearch.data import read_collection, read_qrels, read_queries

HERE = Path(__file__).resolve().parent
DEMO = HERE.parents[1] / "latesearch" / "resources" / "demo"
EXTRA = HERE / "data" / "pydocs-dev.tsv"


def read_extra(path: Path, known: set[str]) -> list[tuple[str, str, list[str]]]:
    """Rows `qid<TAB>question<TAB>id,id,...` ('#' lines are comments); every id must be a
    document of the demo collection."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.strip() for f in fields):
            raise SystemExit(f"{path}:{number}: expected qid<TAB>question<TAB>ids")
        qid, text, rel = fields
        ids = rel.split(",")
        unknown = [d for d in ids if d not in known]
        if unknown:
            raise SystemExit(f"{path}:{number}: {qid}: not in the demo collection: {unknown}")
        rows.append((qid, text, ids))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    docs = {f"demo:{d.doc_id}": d.full_text() for d in read_collection(DEMO / "collection.jsonl")}
    queries: dict[str, str] = {}
    qrels: list[tuple[str, str]] = []
    demo_q = read_queries(DEMO / "queries.tsv")
    for q, rel in read_qrels(DEMO / "qrels.txt").items():
        queries[f"demo:{q}"] = demo_q[q]
        qrels += [(f"demo:{q}", f"demo:{d}") for d, r in rel.items() if r > 0]
    for qid, text, ids in read_extra(EXTRA, {d[5:] for d in docs}):
        queries[f"py:{qid}"] = text
        qrels += [(f"py:{qid}", f"demo:{d}") for d in ids]
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(
        args.out / "collection.jsonl",
        "".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in docs.items()),
    )
    write_text(args.out / "queries.tsv", "".join(f"{q}\t{t}\n" for q, t in queries.items()))
    write_text(args.out / "qrels.txt", "".join(f"{q} 0 {d} 1\n" for q, d in qrels))
    print(f"{len(queries)} queries, {len(docs)} documents -> {args.out}")


if __name__ == "__main__":
    main()
