"""Probe: what input embedding should the query-augmentation [MASK] positions start from?

Replaces the [MASK] input id at the augmentation positions by another token's id (the same as
copying that token's word embedding into [MASK]'s row) and scores dev queries with cached
document states (from probe.py). Usage: probe_mask.py --corpus C --queries Q --qrels R --out F
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
from probe import load_backbone, pca, query_ids, search

from latesearch.data import read_collection, read_qrels, read_queries
from latesearch.evaluation import evaluate_run


def main():
    ap = argparse.ArgumentParser()
    for name in ("--corpus", "--queries", "--qrels", "--out"):
        ap.add_argument(name, required=True)
    ap.add_argument("--limit-queries", type=int, default=0)
    ap.add_argument("--cache", default=".work/probe")
    args = ap.parse_args()
    torch.set_num_threads(2)
    tok, model = load_backbone()
    q_marker = tok.convert_tokens_to_ids("[unused0]")
    dids = [d.doc_id for d in read_collection(args.corpus)]
    qrels = read_qrels(args.qrels)
    queries = {q: t for q, t in read_queries(args.queries).items() if q in qrels}
    qids = sorted(queries)
    if args.limit_queries:
        qids = sorted(random.Random(0).sample(qids, min(args.limit_queries, len(qids))))
    dvecs = torch.load(Path(args.cache) / f"{Path(args.corpus).parent.name}-marker.pt")
    P128, _ = pca(dvecs, 128)
    results = {}
    for fill in ("[MASK]", "[SEP]", "[CLS]", "[PAD]", "[unused0]", "."):
        fill_id = tok.convert_tokens_to_ids(fill)
        lists = query_ids(tok, [queries[q] for q in qids], q_marker, True)
        for seq in lists:
            n_real = seq.index(tok.sep_token_id) + 1
            seq[n_real:] = [fill_id] * (len(seq) - n_real)
        # the augmentation positions are scored but not attended to, whatever their token
        qv = []
        for seq in lists:
            n_real = seq.index(tok.sep_token_id) + 1
            ids = torch.tensor([seq])
            att = torch.zeros_like(ids)
            att[0, :n_real] = 1
            with torch.inference_mode():
                qv.append(model(input_ids=ids, attention_mask=att).last_hidden_state[0].half())
        for pname, P in (("384", None), ("pca128", P128)):
            top = search(qv, dvecs, P)
            run = {
                q: {dids[j]: float(s) for s, j in zip(sv.tolist(), ji.tolist(), strict=True)}
                for q, sv, ji in zip(qids, top.values, top.indices, strict=True)
            }
            r = evaluate_run(run, qrels, ["nDCG@10", "R@100"]).aggregate
            results[f"fill:{fill} proj:{pname}"] = r
            print(fill, pname, {m: round(v, 4) for m, v in r.items()}, flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
