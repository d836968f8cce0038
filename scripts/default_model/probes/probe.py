"""Step-0 probe for the default model recipe (issue 7): how much do [D]/[Q] markers, [MASK]
augmentation and a 384->128 projection cost the untrained backbone, on dev queries?

Document hidden states (384-d, fp16) are computed once per marker setting and cached; the
query side and the projections are cheap, so many variants are scored in seconds.
Usage: python scripts/default_model/probe.py --corpus C --queries Q --qrels R [--limit-queries N]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from latesearch.data import read_collection, read_qrels, read_queries
from latesearch.evaluation import evaluate_run
from latesearch.modeling.default import backbone_path
from latesearch.modeling.projection import pca_projection
from latesearch.scoring import maxsim, pad_documents

PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def load_backbone():
    path = backbone_path()
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    return tok, model


def doc_ids(tok, texts, marker, maxlen):
    body = tok(texts, add_special_tokens=False, truncation=False)["input_ids"]
    room = maxlen - 2 - (marker is not None)
    pre = [tok.cls_token_id] + ([marker] if marker is not None else [])
    return [pre + ids[:room] + [tok.sep_token_id] for ids in body]


@torch.inference_mode()
def encode_ids(model, id_lists, skip, batch=64, attend_mask_ids=None):
    order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]), reverse=True)
    out = [None] * len(id_lists)
    for s in range(0, len(order), batch):
        rows = order[s : s + batch]
        width = max(len(id_lists[i]) for i in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        att = torch.zeros(len(rows), width, dtype=torch.long)
        for j, i in enumerate(rows):
            ids[j, : len(id_lists[i])] = torch.tensor(id_lists[i])
            att[j, : len(id_lists[i])] = 1
        keep = att.bool() & ~torch.isin(ids, skip)
        if attend_mask_ids is not None:  # [MASK] positions are scored but not attended to
            att = att & ~(ids == attend_mask_ids)
        hidden = model(input_ids=ids, attention_mask=att).last_hidden_state
        for j, i in enumerate(rows):
            out[i] = hidden[j][keep[j]].half()
    return out


def query_ids(tok, texts, marker, augment, qmax=32):
    body = tok(texts, add_special_tokens=False)["input_ids"]
    pre = [tok.cls_token_id] + ([marker] if marker is not None else [])
    lists = []
    for ids in body:
        seq = (pre + ids)[: qmax - 1] + [tok.sep_token_id]
        if augment:
            seq = seq + [tok.mask_token_id] * (qmax - len(seq))
        lists.append(seq)
    return lists


def project(vectors, P):
    x = vectors.float()
    if P is not None:
        x = x @ P.T
    return F.normalize(x, dim=-1)


def search(qvecs, dvecs, P, k=100, chunk=256):
    docs = [project(d, P) for d in dvecs]
    Q, q_mask = pad_documents([project(q, P) for q in qvecs])
    scores = torch.cat(
        [
            maxsim(Q, *pad_documents(docs[s : s + chunk]), q_mask=q_mask)
            for s in range(0, len(docs), chunk)
        ],
        dim=1,
    )
    return scores.topk(min(k, len(docs)), dim=1)


def pca(dvecs, dim, sample=200_000, seed=0):
    """PCA head (latesearch.modeling.projection) from a sample of cached token states."""
    allv = torch.cat([d.float() for d in dvecs])
    idx = torch.randperm(len(allv), generator=torch.Generator().manual_seed(seed))[:sample]
    x = allv[idx].double()
    return pca_projection(x.T @ x / len(x), dim)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--qrels", required=True)
    ap.add_argument("--limit-queries", type=int, default=0)
    ap.add_argument("--cache", default=".work/probe")
    ap.add_argument("--out", required=True)
    ap.add_argument("--doc-variants", default="raw,marker")
    args = ap.parse_args()
    torch.set_num_threads(2)
    tok, model = load_backbone()
    q_marker, d_marker = tok.convert_tokens_to_ids(["[unused0]", "[unused1]"])
    skip = torch.tensor(sorted(tok.convert_tokens_to_ids(list(PUNCT))))
    docs = list(read_collection(args.corpus))
    dids = [d.doc_id for d in docs]
    texts = [d.full_text() for d in docs]
    qrels = read_qrels(args.qrels)
    queries = {q: t for q, t in read_queries(args.queries).items() if q in qrels}
    qids = sorted(queries)
    if args.limit_queries:
        qids = sorted(random.Random(0).sample(qids, min(args.limit_queries, len(qids))))
    qtexts = [queries[q] for q in qids]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    results = {}
    stem = Path(args.corpus).parent.name
    for dname, dmark in (("raw", None), ("marker", d_marker)):
        if dname not in args.doc_variants.split(","):
            continue
        f = cache / f"{stem}-{dname}.pt"
        if f.exists():
            dvecs = torch.load(f)
        else:
            t0 = time.time()
            dvecs = encode_ids(model, doc_ids(tok, texts, dmark, 180), skip)
            torch.save(dvecs, f)
            print(f"encoded {dname} docs in {time.time() - t0:.0f}s", flush=True)
        P128, kept = pca(dvecs, 128)
        Prand = torch.empty(128, 384)
        torch.nn.init.orthogonal_(Prand, generator=torch.Generator().manual_seed(12345))
        print(f"PCA-128 keeps {kept:.3f} of the second moment", flush=True)
        for qname, qmark, aug in (
            ("raw", None, False),
            ("qmarker", q_marker, False),
            ("mask", None, True),
            ("qmarker+mask", q_marker, True),
        ):
            qv = encode_ids(
                model,
                query_ids(tok, qtexts, qmark, aug),
                skip=torch.tensor([-1]),
                attend_mask_ids=tok.mask_token_id if aug else None,
            )
            for pname, P in (("384", None), ("pca128", P128), ("rand128", Prand)):
                top = search(qv, dvecs, P)
                run = {
                    q: {dids[j]: float(s) for s, j in zip(sv.tolist(), ji.tolist(), strict=True)}
                    for q, sv, ji in zip(qids, top.values, top.indices, strict=True)
                }
                r = evaluate_run(run, qrels, ["nDCG@10", "R@100"]).aggregate
                key = f"doc:{dname} query:{qname} proj:{pname}"
                results[key] = r
                print(key, {m: round(v, 4) for m, v in r.items()}, flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
