"""Probe: mask 'sink' dimension. Reserve one output dim for [MASK] positions, a direction
of the hidden space where mask states are large and document token states small."""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, "scripts/default_model/probes")
from probe import encode_ids, load_backbone, pca, query_ids, search

from latesearch.data import read_collection, read_qrels, read_queries
from latesearch.evaluation import evaluate_run

torch.set_num_threads(2)
corpus, queries_f, qrels_f, cache = sys.argv[1:5]
tok, model = load_backbone()
qm = tok.convert_tokens_to_ids("[unused0]")
dids = [d.doc_id for d in read_collection(corpus)]
qrels = read_qrels(qrels_f)
queries = {q: t for q, t in read_queries(queries_f).items() if q in qrels}
qids = sorted(queries)
dvecs = torch.load(cache)
# fit queries: training queries (never dev/test)
train_q = [
    line.split("\t", 1)[1].strip()
    for line in Path(".work/dm/data/queries.tsv").read_text().splitlines(True)
][:2000:4]


def enc_q(texts):
    lists = query_ids(tok, texts, qm, True)
    vecs = encode_ids(model, lists, skip=torch.tensor([-1]), attend_mask_ids=tok.mask_token_id)
    masks = [torch.tensor(ids) == tok.mask_token_id for ids in lists]
    return vecs, masks


tv, tm = enc_q(train_q)
H_m = torch.cat([v[m] for v, m in zip(tv, tm, strict=False)]).double()
H_q = torch.cat([v[~m] for v, m in zip(tv, tm, strict=False)]).double()
allv = torch.cat([d.float() for d in dvecs])
idx = torch.randperm(len(allv), generator=torch.Generator().manual_seed(0))[:200000]
X = allv[idx].double()
S_d = X.T @ X / len(X)
mu_m = H_m.mean(0)
print("mask norm", H_m.norm(dim=1).mean().item(), "doc norm", X.norm(dim=1).mean().item())
P128, kept = pca(dvecs, 128)
P127, _ = pca(dvecs, 127)
qv, qmask = enc_q([queries[q] for q in qids])
results = {}


def run_eval(name, P):
    top = search(qv, dvecs, P)
    run = {
        q: {dids[j]: float(s) for s, j in zip(sv.tolist(), ji.tolist(), strict=False)}
        for q, sv, ji in zip(qids, top.values, top.indices, strict=False)
    }
    r = evaluate_run(run, qrels, ["nDCG@10", "R@100"]).aggregate
    results[name] = r
    print(name, {m: round(v, 4) for m, v in r.items()}, flush=True)


# baselines: no masks
qv_full = qv
qv = [v[~m] for v, m in zip(qv_full, qmask, strict=False)]
run_eval("nomask-384", None)
run_eval("nomask-pca128", P128)
qv = qv_full
run_eval("mask-384", None)
run_eval("mask-pca128", P128)
for lam in (1e-3, 1e-2, 1e-1):
    w = torch.linalg.solve(
        S_d + lam * torch.eye(384, dtype=torch.float64) * S_d.trace() / 384, mu_m
    )
    w = w / w.norm()
    ratio = ((H_m @ w) ** 2).mean() / ((X @ w) ** 2).mean()
    print(
        f"lam {lam}: mask/doc energy ratio along w {ratio.item():.1f}; "
        f"mean w.h_m {(H_m @ w).mean():.3f} std {(H_m @ w).std():.3f}; "
        f"doc w.h rms {((X @ w) ** 2).mean().sqrt():.3f}"
    )
    for alpha in (3.0, 10.0, 30.0):
        P = torch.cat([P127, (alpha * w).float()[None]])
        run_eval(f"sink-lam{lam}-a{alpha}", P)
Path(sys.argv[5]).write_text(json.dumps(results, indent=1))
