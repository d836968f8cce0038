"""Probe: a 128-d head distilled from the backbone's own 384-d token MaxSim, backbone frozen.

Starts from a start model's head (start3: the mean-free PCA head) and trains only it so that
the student's cosine MaxSim over the in-batch documents matches the same backbone's 384-d
cosine MaxSim (KL between the two softmaxes per query). Domain-agnostic: the target is the
zero-shot scorer itself, never a judgement. Writes the start with the new head.

PYTHONPATH=scripts/default_model/probes python scripts/default_model/probes/head_distill.py \
    --start .work/dm/start3 --data .work/dm/data6 --out .work/dm/start-hd
python scripts/default_model/evaluate_dev.py --dev .work/dm/dev \
    "probe: v3 start with a head distilled from the raw 384-d MaxSim (step 0)=.work/dm/start-hd"
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from latesearch import ColBERT
from latesearch.data import read_id_triples, read_queries
from latesearch.scoring import maxsim, pad_documents
from latesearch.training.data import load_texts


@torch.inference_mode()
def states(model: ColBERT, batch) -> list[torch.Tensor]:
    """The backbone's output vectors of the scored positions, one (n_i, hidden) per text."""
    hidden = model.token_states(batch)
    return [h[m].clone() for h, m in zip(hidden, batch.output_mask, strict=True)]


def encode(model: ColBERT, texts: list[str], *, queries: bool, size: int = 64) -> list:
    out = []
    for start in range(0, len(texts), size):
        chunk = texts[start : start + size]
        batch = (model.tokenizer.queries(chunk) if queries else
                 model.tokenizer.pad_documents(model.tokenizer.document_ids(chunk)))
        out.extend(states(model, batch))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--examples", type=int, default=600)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--tau", type=float, default=0.5)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = ColBERT.from_pretrained(args.start, device="cpu", doc_maxlen=128)
    data = Path(args.data)
    dtext = load_texts(str(data / "collection.jsonl"), "raise")
    triples = read_id_triples(data / "triples.jsonl", read_queries(data / "queries.tsv"), dtext)
    rows = random.Random(0).sample(list(triples), args.examples)
    doc_ids = sorted({d for r in rows for d in r.doc_ids})
    t0 = time.time()
    dstates = dict(zip(doc_ids, encode(model, [dtext[d] for d in doc_ids], queries=False),
                       strict=True))
    qstates = encode(model, [r.query for r in rows], queries=True)
    print(f"encoded {len(doc_ids)} documents, {len(rows)} queries in {time.time() - t0:.0f} s")
    W = model.linear.weight.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([W], lr=args.lr)
    order = list(range(len(rows)))
    for step in range(1, args.steps + 1):
        pick = random.Random(step).sample(order, args.batch)
        docs = sorted({d for i in pick for d in rows[i].doc_ids})
        D, dmask = pad_documents([dstates[d] for d in docs])
        Q, qmask = pad_documents([qstates[i] for i in pick])
        with torch.no_grad():
            teacher = maxsim(F.normalize(Q, dim=-1), F.normalize(D, dim=-1), dmask, qmask)
        student = maxsim(F.normalize(Q @ W.T, dim=-1), F.normalize(D @ W.T, dim=-1), dmask, qmask)
        loss = F.kl_div(
            F.log_softmax(student / args.tau, -1),
            F.log_softmax(teacher / args.tau, -1),
            log_target=True,
            reduction="batchmean",
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0 or step == 1:
            print(f"step {step:4d}  kl {loss.item():.4f}  {time.time() - t0:.0f} s", flush=True)
    with torch.no_grad():
        model.linear.weight.copy_(W)
    model.save_pretrained(args.out)
    print(f"head-distilled start -> {args.out}")


if __name__ == "__main__":
    main()
