"""Scratch: train only the projection + [MASK]/[Q] input rows against cached doc states."""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, "scripts/default_model/probes")
from probe import load_backbone, query_ids
from safetensors.torch import load_file

from latesearch.data import read_qrels, read_queries
from latesearch.evaluation import evaluate_run
from latesearch.scoring import maxsim, pad_documents

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=400)
ap.add_argument("--bs", type=int, default=32)
ap.add_argument("--lr-p", type=float, default=1e-4)
ap.add_argument("--lr-e", type=float, default=3e-3)
ap.add_argument("--ce", type=float, default=0.0)
ap.add_argument("--eval-every", type=int, default=100)
ap.add_argument("--train-p", type=int, default=1)
ap.add_argument("--tag", default="x")
ap.add_argument("--nomask-eval", type=int, default=0)
ap.add_argument("--vaswani", type=int, default=0)
a = ap.parse_args()
torch.manual_seed(0)
random.seed(0)
torch.set_num_threads(2)
tok, model = load_backbone()
for p in model.parameters():
    p.requires_grad_(False)
E = model.embeddings.word_embeddings.weight
MASK, QM = tok.mask_token_id, tok.convert_tokens_to_ids("[unused0]")
P = (
    load_file(".work/dm/start/model.safetensors")["linear.weight"]
    .float()
    .clone()
    .requires_grad_(bool(a.train_p))
)
mrow = E[MASK].clone().requires_grad_(True)
qrow = E[QM].clone().requires_grad_(True)
P0 = P.detach().clone()


def enc_queries(texts, grad=True):
    ids = torch.tensor(query_ids(tok, texts, QM, True))
    att = (ids != MASK).long()
    x = E[ids]
    x = torch.where((ids == MASK)[..., None], mrow, x)
    x = torch.where((ids == QM)[..., None], qrow, x)
    with torch.set_grad_enabled(grad):
        h = model(inputs_embeds=x, attention_mask=att).last_hidden_state
        return F.normalize(h @ P.T, dim=-1), ids


tr = torch.load(".work/p2/train-docs.pt")
tdocs = dict(zip(tr["ids"], tr["vecs"], strict=False))
queries = dict(
    line.rstrip("\n").split("\t", 1)
    for line in Path(".work/dm/data/queries.tsv").read_text().splitlines(True)
)
triples = [
    json.loads(line) for line in Path(".work/dm/data/triples.jsonl").read_text().splitlines(True)
]


def load_eval(cache, qf, rf):
    c = torch.load(cache)
    qrels = read_qrels(rf)
    qs = {q: t for q, t in read_queries(qf).items() if q in qrels}
    return c["ids"], c["vecs"], qrels, sorted(qs), [qs[q] for q in sorted(qs)]


evals = {
    "sf-dev": load_eval(
        ".work/p2/scifact-marker.pt", ".work/dm/data/dev_queries.tsv", ".work/dm/data/dev_qrels.txt"
    ),
    "demo": load_eval(
        ".work/p2/demo-marker.pt",
        "latesearch/resources/demo/queries.tsv",
        "latesearch/resources/demo/qrels.txt",
    ),
}
evals["vw-dev"] = load_eval(
    ".work/p2/vwdev-marker.pt", ".work/p2/vwdev_queries.tsv", ".work/p2/vwdev_qrels.txt"
)
if a.vaswani:
    evals["vaswani-TEST"] = load_eval(
        ".work/p2/vaswani-marker.pt",
        "../shared/data/vaswani/query-text.trec",
        "../shared/data/vaswani/qrels",
    )


@torch.no_grad()
def evaluate(step):
    out = {}
    for name, (dids, dvecs, qrels, qids, qtexts) in evals.items():
        Q, ids = enc_queries(qtexts, grad=False)
        qmask = torch.ones(Q.shape[:2], dtype=torch.bool)
        if a.nomask_eval:
            qmask = ids != MASK
        scores = []
        for s in range(0, len(dvecs), 512):
            D, dm = pad_documents(
                [F.normalize(d.float() @ P.T, dim=-1) for d in dvecs[s : s + 512]]
            )
            scores.append(maxsim(Q, D, dm, q_mask=qmask))
        top = torch.cat(scores, 1).topk(100, dim=1)
        run = {
            q: {dids[j]: float(v) for v, j in zip(sv.tolist(), ji.tolist(), strict=False)}
            for q, sv, ji in zip(qids, top.values, top.indices, strict=False)
        }
        out[name] = round(evaluate_run(run, qrels, ["nDCG@10"]).aggregate["nDCG@10"], 4)
    print(step, out, flush=True)
    return out


params = [{"params": [mrow, qrow], "lr": a.lr_e}] + (
    [{"params": [P], "lr": a.lr_p}] if a.train_p else []
)
opt = torch.optim.Adam(params)
log = {"args": vars(a), "evals": {0: evaluate(0)}}
t0 = time.time()
for step in range(1, a.steps + 1):
    batch = random.sample(triples, a.bs)
    Q, _ = enc_queries([queries[b[0]] for b in batch])
    docs = [F.normalize(tdocs[d].float() @ P.T, dim=-1) for b in batch for d, _ in b[1:]]
    D, dm = pad_documents(docs)
    n = len(batch[0]) - 1
    Qr = Q.repeat_interleave(n, 0)
    sim = torch.einsum("qid,qjd->qij", Qr, D).masked_fill(~dm[:, None, :], -1e4)
    s = sim.max(-1).values.sum(-1).view(len(batch), n)
    t = torch.tensor([[sc for _, sc in b[1:]] for b in batch])
    loss = F.kl_div(
        F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="batchmean", log_target=True
    )
    if a.ce:
        loss = loss + a.ce * F.cross_entropy(s, torch.zeros(len(batch), dtype=torch.long))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 25 == 0:
        print(f"step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
    if step % a.eval_every == 0:
        log["evals"][step] = evaluate(step)
log["dP"] = float((P.detach() - P0).norm() / P0.norm())
Path(f".work/p2/qtrain-{a.tag}.json").write_text(json.dumps(log, indent=1))
torch.save(
    {"P": P.detach(), "mask": mrow.detach(), "q": qrow.detach()}, f".work/p2/qtrain-{a.tag}.pt"
)
