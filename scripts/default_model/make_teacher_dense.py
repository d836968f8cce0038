"""Training data of the v20 candidate (issue 7): make_neighbours.py examples re-scored by
a teacher that fuses the raw 384-d MaxSim with a stronger mean-pooled bi-encoder.

For each example [qid, [doc, score], ...] (its first LIMIT examples), the teacher score of
each neighbour d is

    t(d) = mean(raw) + std(raw) * (z(raw)(d) + z(dense)(d)) / 2

where raw is the raw scorer's MaxSim sum (make_raw.py's model, documents read at
--doc-maxlen), dense the bi-encoder's cosine (its own length), and mean, std and z are
taken over the example's neighbours: the equal-weight fusion z(raw) + z(dense) of
probe-teacher-fusion-300.json, put back on the raw scorer's scale so that the KL
temperature keeps its meaning. Rows are sorted by t. The dense model runs in bfloat16
(embeddings at cosine >= 0.9998 to float32 on SciFact abstracts; probe-teacher-checks.json).

python scripts/default_model/make_teacher_dense.py .work/dm/data16/neighbours.jsonl \
    .work/dm/data20/neighbours.jsonl --collection .work/dm/data14/collection.jsonl \
    --queries .work/dm/data14/queries.tsv --raw .work/dm/raw \
    --dense .work/teachers/all-mpnet-base-v2 --doc-maxlen 300 --limit 1600
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from latesearch import ColBERT
from latesearch._atomic import write_json, write_text
from latesearch.data import read_id_triples, read_queries
from latesearch.modeling.dense import DenseEncoder
from latesearch.scoring.maxsim import maxsim
from latesearch.scoring.padding import pad_documents
from latesearch.training.data import load_texts


def standardized(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / x.std().clamp_min(1e-6)


@torch.inference_mode()
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", type=Path, help="make_neighbours.py examples")
    ap.add_argument("out", type=Path)
    ap.add_argument("--collection", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--raw", required=True, help="make_raw.py's model folder")
    ap.add_argument("--dense", required=True, help="a mean-pooled bi-encoder folder")
    ap.add_argument("--doc-maxlen", type=int, default=300)
    ap.add_argument("--limit", type=int, default=None, help="first LIMIT examples only")
    args = ap.parse_args()
    torch.set_num_threads(2)
    started = time.time()
    texts = load_texts(args.collection, "raise")
    queries = dict(read_queries(args.queries))
    # malformed lines and unknown ids raise an InputError naming the file, line and field
    triples = read_id_triples(args.source, queries, texts)
    rows = [(t.query_id, t.doc_ids) for t in itertools.islice(triples, args.limit)]
    doc_ids = sorted({d for _, docs in rows for d in docs})
    qids = sorted({q for q, _ in rows})
    print(f"{len(rows)} examples, {len(doc_ids)} documents, {len(qids)} queries", flush=True)

    raw = ColBERT.from_pretrained(args.raw, device="cpu", doc_maxlen=args.doc_maxlen)
    raw_q = dict(zip(qids, raw.encode_queries([queries[q] for q in qids]), strict=True))
    raw_d = dict(zip(doc_ids, raw.encode_documents([texts[d] for d in doc_ids]), strict=True))
    print(f"raw scorer encoded in {time.time() - started:.0f} s", flush=True)
    dense = DenseEncoder.from_pretrained(args.dense, dtype=torch.bfloat16)
    dense_q = F.normalize(dense.encode([queries[q] for q in qids]).float(), dim=-1)
    dense_d = F.normalize(dense.encode([texts[d] for d in doc_ids]).float(), dim=-1)
    q_row = {q: i for i, q in enumerate(qids)}
    d_row = {d: i for i, d in enumerate(doc_ids)}
    print(f"dense teacher encoded in {time.time() - started:.0f} s", flush=True)

    changed_top, lines = 0, []
    for qid, docs in rows:
        D, mask = pad_documents([raw_d[d] for d in docs])
        r = maxsim(raw_q[qid][None], D, mask)[0]
        c = dense_d[[d_row[d] for d in docs]] @ dense_q[q_row[qid]]
        t = r.mean() + r.std() * (standardized(r) + standardized(c)) / 2
        changed_top += int(t.argmax() != r.argmax())
        ranked = sorted(zip(docs, t.tolist(), strict=True), key=lambda x: -x[1])
        lines.append(json.dumps([qid, *[[d, round(s, 4)] for d, s in ranked]]) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, "".join(lines))
    summary = {
        "examples": len(rows),
        "documents": len(doc_ids),
        "top_changed_vs_raw": round(changed_top / len(rows), 4),
        "seconds": round(time.time() - started),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    write_json(args.out.with_name("teacher.json"), summary)
    print(summary)


if __name__ == "__main__":
    main()
