"""A held-out dev set of three domains for choosing the default model, never test judgements:

- SciFact: the dev slice cut from qrels/train.tsv by make_data.py (150 queries), their
  relevant documents plus 1,500 random SciFact documents;
- Vaswani: 150 span -> rest-of-document pairs from documents make_data.py did not use
  (queries are 6-12 word spans; the judged document is the abstract with the span cut out),
  among 1,000 random Vaswani documents;
- the demo collection (409 Python docstrings, 20 judged queries), a domain absent from
  training.
Ids are prefixed by domain. Writes collection.jsonl, queries.tsv and qrels.txt to --out.

python scripts/default_model/make_dev.py --scifact ../shared/data/scifact \
    --vaswani ../shared/data/vaswani/doc-text.trec --data .work/dm/data3 --out .work/dm/dev
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from common import write_text

from latesearch.data import read_collection, read_qrels, read_queries

DEMO = Path(__file__).resolve().parents[2] / "latesearch" / "resources" / "demo"


def add_demo(docs: dict[str, str], queries: dict[str, str], qrels: list[tuple[str, str]]) -> None:
    """Add the demo collection and its 20 judged queries, ids prefixed 'demo:'."""
    for d in read_collection(DEMO / "collection.jsonl"):
        docs[f"demo:{d.doc_id}"] = d.full_text()
    demo_q = read_queries(DEMO / "queries.tsv")
    for q, rel in read_qrels(DEMO / "qrels.txt").items():
        queries[f"demo:{q}"] = demo_q[q]
        qrels += [(f"demo:{q}", f"demo:{d}") for d, r in rel.items() if r > 0]


def write_dev(
    out: Path, docs: dict[str, str], queries: dict[str, str], qrels: list[tuple[str, str]]
) -> None:
    """Write a dev set's collection.jsonl, queries.tsv and qrels.txt (each atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(
        out / "collection.jsonl",
        "".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in docs.items()),
    )
    write_text(out / "queries.tsv", "".join(f"{q}\t{t}\n" for q, t in queries.items()))
    write_text(out / "qrels.txt", "".join(f"{q} 0 {d} 1\n" for q, d in qrels))
    print(f"{len(queries)} queries, {len(docs)} documents -> {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scifact", required=True)
    ap.add_argument("--vaswani", required=True)
    ap.add_argument("--data", required=True, help="make_data.py's output folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    docs: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: list[tuple[str, str]] = []

    sf = {d.doc_id: d.full_text() for d in read_collection(Path(args.scifact) / "corpus.jsonl")}
    dev_q = read_queries(data / "dev_queries.tsv")
    for q, rel in read_qrels(data / "dev_qrels.txt").items():
        queries[f"sf:{q}"] = dev_q[q]
        for d in rel:
            qrels.append((f"sf:{q}", f"sf:{d}"))
            docs[f"sf:{d}"] = sf[d]
    for d in rng.sample(sorted(sf), 1500):
        docs[f"sf:{d}"] = sf[d]

    used = {
        line.split("\t", 1)[0][4:]
        for line in (data / "queries.tsv").read_text(encoding="utf-8").splitlines()
        if line.startswith("vws:")
    }
    vw = {d.doc_id: d.text for d in read_collection(args.vaswani)}
    pool = [d for d, t in vw.items() if len(t.split()) >= 30 and d not in used]
    picked = rng.sample(pool, 150)
    for d in picked:
        words = vw[d].split()
        n = rng.randint(6, 12)
        start = rng.randrange(0, len(words) - n)
        queries[f"vw:q{d}"] = " ".join(words[start : start + n])
        docs[f"vw:{d}"] = " ".join(words[:start] + words[start + n :])
        qrels.append((f"vw:q{d}", f"vw:{d}"))
    others = sorted(set(vw) - set(picked))
    for d in rng.sample(others, 1000):
        docs[f"vw:{d}"] = vw[d]

    add_demo(docs, queries, qrels)
    write_dev(out, docs, queries, qrels)


if __name__ == "__main__":
    main()
