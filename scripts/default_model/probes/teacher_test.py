"""The v20 teacher on the test splits, for the record (issue 7; chosen on the dev set by
teacher_fusion.py, never used to choose a model). Re-ranks the top DEPTH of the raw
scorer's runs (evaluate.sh's NAME-scifact-test.trec and NAME-vaswani.trec) by
z(raw) + z(mpnet), both standardized over those DEPTH candidates, and writes the runs as
OUT_NAME-*.trec beside them for compare.sh (ranks below DEPTH keep the raw order).

python scripts/default_model/probes/teacher_test.py --raw-run raw300 --out-name teach300 \
    --dense .work/teachers/all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from latesearch.data import read_collection, read_queries
from latesearch.data.runs import read_trec_run, write_trec_run
from latesearch.modeling.dense import DenseEncoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_teacher_dense import standardized  # noqa: E402

SPLITS = {
    "scifact-test": ("scifact/corpus.jsonl", "scifact/queries.jsonl"),
    "vaswani": ("vaswani/doc-text.trec", "vaswani/query-text.trec"),
}


@torch.inference_mode()
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw-run", required=True, help="evaluate.sh NAME of the raw scorer")
    ap.add_argument("--out-name", required=True)
    ap.add_argument("--dense", required=True, help="a mean-pooled bi-encoder folder")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--runs", type=Path, default=Path(".work/dm/runs"))
    ap.add_argument("--depth", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(2)
    dense = DenseEncoder.from_pretrained(args.dense, dtype=torch.bfloat16)
    for split, (corpus, queries_file) in SPLITS.items():
        # best first; a malformed row raises an InputError naming the file, line and field
        run = {
            qid: sorted(ranking.items(), key=lambda h: -h[1])
            for qid, ranking in read_trec_run(args.runs / f"{args.raw_run}-{split}.trec").items()
        }
        needed = {d for hits in run.values() for d, _ in hits[: args.depth]}
        texts = {
            doc.doc_id: doc.full_text()
            for doc in read_collection(args.data / corpus)
            if doc.doc_id in needed
        }
        queries = dict(read_queries(args.data / queries_file))
        missing = [q for q in run if q not in queries] + [d for d in needed if d not in texts]
        if missing:
            raise SystemExit(f"{split}: {len(missing)} run ids unknown, e.g. {missing[0]}")
        doc_ids, qids = sorted(texts), sorted(run)
        print(f"{split}: {len(qids)} queries, {len(doc_ids)} documents", flush=True)
        D = F.normalize(dense.encode([texts[d] for d in doc_ids]).float(), dim=-1)
        Q = F.normalize(dense.encode([queries[q] for q in qids]).float(), dim=-1)
        row = {d: i for i, d in enumerate(doc_ids)}
        fused_run = {}
        for i, qid in enumerate(qids):
            head, tail = run[qid][: args.depth], run[qid][args.depth :]
            raw = torch.tensor([s for _, s in head])
            cos = D[[row[d] for d, _ in head]] @ Q[i]
            fused = (standardized(raw) + standardized(cos)).tolist()
            floor = min(fused) - 1.0
            fused_run[qid] = list(zip([d for d, _ in head], fused, strict=True)) + [
                (d, floor - k) for k, (d, _) in enumerate(tail)
            ]
        out = args.runs / f"{args.out_name}-{split}.trec"
        write_trec_run(out, fused_run, tag=args.out_name)
        print(f"-> {out}", flush=True)


if __name__ == "__main__":
    main()
