"""Table 4 of the paper: index footprint against effectiveness for embedding dimension
{128, 48, 24} (+ the backbone's 384) and 16/32-bit storage.

No trained projections to 48 or 24 dims exist, so the projections are derived, and named in
the results: "model" = the model's own projection (for the built-in default: its seeded
random orthogonal 384->128 matrix), truncated to its first d rows (orthonormal rows, so
still a projection); "pca" = the top-d principal axes of the collection's document token
states (centered covariance, applied without centering). Each configuration scores every
document exactly (MaxSim over all token embeddings: no ANN, no BM25), so only the
representation differs. The backbone's token states are encoded once (cached under
.work/eval/table4/). Footprint = embeddings only (tokens x dim x bytes), analytically.
Default collection: Vaswani (11,429 short abstracts, 93 queries), chosen to keep it
affordable on CPU. Usage: python benchmarks/table4.py [--model CKPT] [--collections vaswani]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

METRICS = "MRR@10 nDCG@10 R@100 R@1000 AP"
K = 1000


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.set_defaults(collections=["vaswani"])
    p.add_argument("--dims", type=int, nargs="+", default=[128, 48, 24])
    p.add_argument("--projections", nargs="+", default=["model", "pca"],
                   choices=["model", "pca"])  # fmt: skip
    p.add_argument("--stem", default="table4")
    args = p.parse_args()
    common.setup(args)
    from latesearch.evaluation import format_table

    machine = common.machine_info()
    colbert = common.load_model(args.model)
    label = common.model_label(args.model, colbert)
    results: dict[str, Any] = {"machine": machine, "model": label, "metrics": METRICS.split(),
                               "footprint": "tokens x dim x bytes (embeddings only)",
                               "scoring": "exact MaxSim over every document",
                               "collections": {}}  # fmt: skip
    md_rows = []
    for name in args.collections:
        coll = common.collection(name, args.data)
        rows = collection_rows(coll, colbert, args)
        results["collections"][name] = rows
        for row in rows["configs"]:
            md = {"collection": name, "projection": row["projection"], "dim": row["dim"],
                  "bits": row["bits"], "MiB": f"{row['bytes'] / 2**20:.0f}",
                  "bytes/doc": f"{row['bytes'] / rows['n_docs']:.0f}"}  # fmt: skip
            for s, eff in row["effectiveness"].items():
                md[f"nDCG@10 {s}"] = eff["nDCG@10"]
            md["R@100"] = row["effectiveness"][rows["sets"][0]]["R@100"]
            md_rows.append(md)
    columns = list(dict.fromkeys(k for r in md_rows for k in r))
    text = common.header(
        "Table 4: footprint vs effectiveness (dimension, storage precision)", machine, label,
        "Exhaustive MaxSim (no ANN). Projections derived, not trained: 'model' = the "
        "model's projection truncated to d rows (built-in default: seeded random orthogonal); "
        "'pca' = PCA of the collection's document token states; 'none' = the backbone's "
        "384-d states. Footprint: embeddings only.",
    )  # fmt: skip
    common.write_results(args.out, args.stem, results,
                         f"{text}\n{format_table(md_rows, columns)}\n")  # fmt: skip


def collection_rows(coll, colbert, args) -> dict[str, Any]:
    from latesearch.evaluation import evaluate_run

    sets = coll.eval_sets()
    ids, states, doclens = doc_states(coll, colbert)
    qids = list(sets[0].queries)
    q_states, q_mask = query_states(colbert, [sets[0].queries[q] for q in qids])
    n_tokens = int(doclens.sum())
    configs = []
    projections: dict[str, torch.Tensor] = {}
    hidden = states.shape[1]
    for d in args.dims:
        if "model" in args.projections and d <= colbert.linear.weight.shape[0]:
            projections[f"model:{d}"] = colbert.linear.weight.detach().float()[:d]
        if "pca" in args.projections:
            projections[f"pca:{d}"] = pca_axes(states, d)
    projections[f"none:{hidden}"] = torch.eye(hidden)
    for key, P in projections.items():
        kind, dim = key.split(":")
        for bits in (16, 32):
            started = time.perf_counter()
            run = exact_run(ids, states, doclens, q_states, q_mask, P, bits, qids)
            eff = {s.name: evaluate_run(run, s.qrels, METRICS).aggregate for s in sets}
            configs.append({"projection": kind, "dim": int(dim), "bits": bits,
                            "bytes": n_tokens * int(dim) * bits // 8, "effectiveness": eff,
                            "seconds": time.perf_counter() - started})  # fmt: skip
            print(key, bits, {s: round(e["nDCG@10"], 4) for s, e in eff.items()}, flush=True)
    return {"n_docs": len(ids), "n_tokens": n_tokens, "sets": [s.name for s in sets],
            "configs": configs}  # fmt: skip


@torch.inference_mode()
def doc_states(coll, colbert, batch_size: int = 64) -> tuple[list[str], torch.Tensor, np.ndarray]:
    """(doc ids, (n_tokens, hidden) float32 backbone states of the kept document tokens,
    doclens), encoded as the model encodes documents; cached."""
    from latesearch.data import read_collection

    cache = common.WORK / "table4" / f"{coll.name}-{colbert.fingerprint()[:12]}.pt"
    if cache.is_file():
        saved = torch.load(cache)
        return saved["ids"], saved["states"], saved["doclens"].numpy()
    docs = [(d.doc_id, d.full_text()) for d in read_collection(coll.corpus)]
    ids = [d for d, _ in docs]
    id_lists = colbert.tokenizer.document_ids([t for _, t in docs])
    order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]), reverse=True)
    per_doc: list[torch.Tensor | None] = [None] * len(ids)
    started = time.perf_counter()
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = colbert.tokenizer.pad_documents([id_lists[i] for i in rows])
        hidden = colbert.backbone(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state.float()
        for j, i in enumerate(rows):
            per_doc[i] = hidden[j][batch.output_mask[j].bool()].clone()
    print(f"encoded {len(ids)} {coll.name} documents in {time.perf_counter() - started:.0f} s")
    doclens = torch.tensor([t.shape[0] for t in per_doc])
    states = torch.cat(per_doc)  # type: ignore[arg-type]
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    torch.save({"ids": ids, "states": states, "doclens": doclens}, tmp)
    tmp.replace(cache)
    return ids, states, doclens.numpy()


@torch.inference_mode()
def query_states(colbert, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(nq, Lq, hidden) backbone states of the queries as the model encodes them, and the
    (nq, Lq) mask of scored positions."""
    batch = colbert.tokenizer.queries(texts)
    hidden = colbert.backbone(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask
    ).last_hidden_state.float()
    return hidden, batch.output_mask.bool()


def pca_axes(states: torch.Tensor, d: int, sample: int = 200_000) -> torch.Tensor:
    """(d, hidden) top principal axes of the token states (a fixed-seed sample)."""
    g = torch.Generator().manual_seed(0)
    rows = torch.randperm(states.shape[0], generator=g)[:sample]
    x = states[rows].double()
    x = x - x.mean(0)
    eigvals, eigvecs = torch.linalg.eigh(x.T @ x / x.shape[0])
    return eigvecs[:, eigvals.argsort(descending=True)[:d]].T.float().contiguous()


def project(x: torch.Tensor, P: torch.Tensor, bits: int) -> torch.Tensor:
    """Normalized projections, rounded to the storage precision, back in float32."""
    out = F.normalize(x @ P.T, dim=-1)
    return out.half().float() if bits == 16 else out


@torch.inference_mode()
def exact_run(ids, states, doclens, q_states, q_mask, P, bits: int, qids, chunk: int = 2048):
    """Top-K of every query by exact MaxSim against every document."""
    from latesearch.scoring import maxsim, pad_documents

    Q = project(q_states, P, bits) * q_mask.unsqueeze(-1)
    offsets = np.concatenate([[0], np.cumsum(doclens)])
    order = np.argsort(doclens, kind="stable")  # similar lengths together: little padding
    scores = torch.empty(Q.shape[0], len(ids))
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        docs = [states[offsets[i] : offsets[i + 1]] for i in rows]
        D, mask = pad_documents([project(t, P, bits) for t in docs])
        scores[:, torch.from_numpy(rows)] = maxsim(Q, D, mask, q_mask)
    top = torch.topk(scores, min(K, len(ids)), dim=1)
    return {
        qid: {ids[j]: float(s) for s, j in zip(vals, idx, strict=True)}
        for qid, vals, idx in zip(qids, top.values.tolist(), top.indices.tolist(), strict=True)
    }


if __name__ == "__main__":
    main()
