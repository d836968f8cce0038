"""Would weighting query tokens by their rarity help late interaction? Scores the
multi-domain dev set (make_dev.py) with S(q, d) = sum_i w(t_i) max_j q_i . d_j, where t_i is
the token at query position i and w(t) = idf(t)^p, idf over the dev collection's document
tokens (BM25's idf). p = 0 is plain MaxSim. Markers, [CLS] and [SEP] take the query's mean
content weight. Writes benchmarks/results/default-model/probe-query-weights.json.

python scripts/default_model/probes/query_weights.py --dev .work/dm/dev NAME=MODEL ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from latesearch import ColBERT
from latesearch._atomic import write_json
from latesearch.training.devset import DevSet

sys.path.insert(0, "scripts/default_model")
from evaluate_dev import domain_scores, machine_info  # noqa: E402

OUT = Path("benchmarks/results/default-model/probe-query-weights.json")
POWERS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def document_frequencies(model: ColBERT, texts: list[str]) -> tuple[torch.Tensor, int]:
    """(vocab,) number of documents containing each token id, and the document count."""
    df = torch.zeros(len(model.tokenizer.hf), dtype=torch.float64)  # added tokens too
    for ids in model.tokenizer.document_ids(texts):
        df[torch.tensor(sorted(set(ids)))] += 1
    return df, len(texts)


@torch.inference_mode()
def token_maxima(model: ColBERT, dev: DevSet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(queries, L, documents) max_j q_i . d_j, the (queries, L) token ids and output mask."""
    queries = list(dev.queries.values())
    batch = model.tokenizer.queries(queries)
    Q = model.encode_queries(queries)[:, : batch.input_ids.shape[1]]
    docs = model.encode_documents(list(dev.documents.values()))
    M = torch.empty(Q.shape[0], Q.shape[1], len(docs))
    for j, D in enumerate(docs):
        M[:, :, j] = (Q @ D.T).amax(-1)
    return M, batch.input_ids, batch.output_mask


def weighted_scores(M, ids, mask, idf, power, specials) -> torch.Tensor:
    w = idf[ids].float().pow(power) * mask
    content = mask & ~torch.isin(ids, specials)
    mean = (w * content).sum(1, keepdim=True) / content.sum(1, keepdim=True).clamp(min=1)
    w = torch.where(content, w, mean * mask)
    return (M * w.unsqueeze(-1)).sum(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", required=True)
    ap.add_argument("models", nargs="+", help="NAME=MODEL_DIR")
    args = ap.parse_args()
    torch.set_num_threads(2)
    d = Path(args.dev)
    dev = DevSet.load(str(d / "queries.tsv"), str(d / "qrels.txt"), str(d / "collection.jsonl"))
    results = {}
    for spec in args.models:
        name, _, path = spec.partition("=")
        model = ColBERT.from_pretrained(path, device="cpu", doc_maxlen=128)
        df, n = document_frequencies(model, list(dev.documents.values()))
        idf = torch.log1p((n - df + 0.5) / (df + 0.5))
        tok = model.tokenizer
        specials = torch.tensor([tok.cls_id, tok.sep_id, tok.query_token_id, tok.pad_id])
        M, ids, mask = token_maxima(model, dev)
        for p in POWERS:
            run = dev.top_k(weighted_scores(M, ids, mask, idf, p, specials), 100)
            scores = {k: round(v, 4) for k, v in domain_scores(run, dev.qrels).items()}
            results[f"{name} p={p}"] = scores
            print(f"{name} p={p}", scores, flush=True)
    write_json(
        OUT,
        {
            "what": "query-token weights w(t) = idf(t)^p on the multi-domain dev set "
            "(nDCG@10 per domain, mean of 3 'macro', pooled 'all'); idf over the dev "
            "collection; scripts/default_model/probes/query_weights.py",
            "machine": machine_info(),
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
