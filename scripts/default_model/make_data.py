"""Training data for the default model: supervised SciFact train pairs plus weak
supervision from collections' text, every example scored by the untrained backbone's raw
384-d MaxSim (the teacher: no markers, no [MASK]), optionally fused with BM25, for
distillation.

Writes to OUT: collection.jsonl, queries.tsv, triples.jsonl (ColBERTv2 form
`[qid, [pos, score], [neg, score], ...]`), and a SciFact dev split cut from the *training*
judgements (dev_queries.tsv, dev_qrels.txt). SciFact's test judgements are read only to
keep test-relevant documents out of the weak pairs; Vaswani's queries and judgements are
never read.

python scripts/default_model/make_data.py --scifact ../shared/data/scifact \
    --vaswani ../shared/data/vaswani/doc-text.trec --out .work/dm/data3 --teacher-scale tokens

(rebuild.sh gives the options of each data set the default model uses.)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from latesearch.data import read_collection, read_qrels, read_queries
from latesearch.indexing.components.bm25 import BM25Index
from latesearch.modeling.default import backbone_path

PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def load_backbone():
    """The pip-installed all-MiniLM-L6-v2 (tokenizer, transformer), the teacher's encoder."""
    path = backbone_path()
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    return tok, model


def doc_ids(tok, texts, marker, maxlen):
    """Token ids of documents: [CLS] (marker) text [SEP], cut to `maxlen`."""
    body = tok(texts, add_special_tokens=False, truncation=False)["input_ids"]
    room = maxlen - 2 - (marker is not None)
    pre = [tok.cls_token_id] + ([marker] if marker is not None else [])
    return [pre + ids[:room] + [tok.sep_token_id] for ids in body]


def query_ids(tok, texts, marker, augment, qmax=32):
    """Token ids of queries: [CLS] (marker) text [SEP], padded with [MASK] if `augment`."""
    body = tok(texts, add_special_tokens=False)["input_ids"]
    pre = [tok.cls_token_id] + ([marker] if marker is not None else [])
    lists = []
    for ids in body:
        seq = (pre + ids)[: qmax - 1] + [tok.sep_token_id]
        if augment:
            seq = seq + [tok.mask_token_id] * (qmax - len(seq))
        lists.append(seq)
    return lists


@torch.inference_mode()
def encode_ids(model, id_lists, skip, batch=64):
    """The backbone's 384-d token states (fp16) of each id list, `skip` ids dropped."""
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
        hidden = model(input_ids=ids, attention_mask=att).last_hidden_state
        for j, i in enumerate(rows):
            out[i] = hidden[j][keep[j]].half()
    return out


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 6]


def bm25_standardized(rows, queries, sources, bm25, chunk: int = 64) -> list[list[float]]:
    """Per row, z-scores of BM25 for its documents, standardized over every document of
    the query's collection (unmatched documents score 0). A positive that is not a corpus
    document (an abstract without its title, a text without its span) cannot be scored: it
    takes its best negative's z-score (the margin then keeps it on top)."""
    found: list[list[float]] = [[] for _ in rows]
    for domain in ("sf", "vw"):
        index = bm25[domain]
        mine = [i for i, r in enumerate(rows) if r[2].startswith(f"{domain}:")]
        for start in range(0, len(mine), chunk):
            part = mine[start : start + chunk]
            hits = index.search([queries[rows[i][0]] for i in part], len(index))
            for i, row_hits in zip(part, hits, strict=True):
                qid, pos_id, *negs = rows[i]
                score = dict(row_hits)
                values = list(score.values())
                mean = sum(values) / len(index)
                var = sum(v * v for v in values) / len(index) - mean * mean
                std = math.sqrt(var) if var > 0 else 1.0
                z = [(score.get(n.split(":", 1)[1], 0.0) - mean) / std for n in negs]
                pos = (score.get(sources[i], 0.0) - mean) / std
                found[i] = [pos if pos_id.startswith(f"{domain}:") else max(z), *z]
    return found


def weak_positives(value: str) -> dict[str, str]:
    """`rest`, `source`, or per domain `sf=rest,vw=source` -> {"sf": ..., "vw": ...}."""
    if value in ("rest", "source"):
        return {"sf": value, "vw": value}
    parts = [part.split("=", 1) for part in value.split(",")]
    found = dict(part for part in parts if len(part) == 2)
    if (
        len(found) != len(parts)
        or set(found) != {"sf", "vw"}
        or not set(found.values()) <= {"rest", "source"}
    ):
        raise argparse.ArgumentTypeError(
            f"expected rest, source or sf=rest|source,vw=rest|source, got {value!r}"
        )
    return found


def forced_kinds(value: str) -> set[str]:
    """`all`, `judged`, or a comma list of query-id prefixes among sf, sft, vws."""
    named = {"all": {"sf", "sft", "vws"}, "judged": {"sf"}}
    if value in named:
        return named[value]
    kinds = set(value.split(","))
    if not kinds <= named["all"]:
        raise argparse.ArgumentTypeError(
            f"expected all, judged or a comma list of sf, sft, vws, got {value!r}"
        )
    return kinds


def dev_vaswani_docs(dev: Path) -> set[str]:
    """The Vaswani documents judged in a make_dev.py folder (its span queries' sources)."""
    judged = read_qrels(dev / "qrels.txt").values()
    return {doc[3:] for docs in judged for doc in docs if doc.startswith("vw:")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scifact", required=True)
    ap.add_argument("--vaswani", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dev-queries", type=int, default=150)
    ap.add_argument("--weak-per-domain", type=int, default=500)
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--depth", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--margin", type=float, default=1.0)
    ap.add_argument(
        "--weak-positive",
        type=weak_positives,
        default="rest",
        help="a weak pair's positive: the document without its title/span (rest) or "
        "the whole source document (source: a corpus document the teacher scores as it is); "
        "per domain as sf=rest,vw=source",
    )
    ap.add_argument(
        "--force",
        type=forced_kinds,
        default="all",
        help="lift the positive above the best negative + margin in every example (all, "
        "the default), only in SciFact's judged pairs (judged: weak examples keep the teacher's "
        "own scores, pure distillation), or in the kinds listed by query-id prefix: sf "
        "(judged), sft (SciFact titles), vws (Vaswani spans), e.g. sf,sft",
    )
    ap.add_argument(
        "--teacher-scale",
        choices=["32", "tokens"],
        default="32",
        help="teacher scores as a sum over 32 positions (students with [MASK] augmentation) "
        "or over the query's own tokens (students without it, as the default model)",
    )
    ap.add_argument(
        "--teacher-bm25",
        type=float,
        default=0.0,
        help="fuse BM25 into the teacher: raw + W * std(raw) * z(BM25), both standardized per "
        "query over the query's collection (the default model's data: 0.2)",
    )
    ap.add_argument(
        "--stat-docs",
        type=int,
        default=256,
        help="random documents per domain "
        "that estimate the raw teacher's per-query mean and spread",
    )
    ap.add_argument(
        "--exclude-dev",
        help="a make_dev.py folder whose Vaswani documents are kept out of the weak pairs and "
        "the negatives (needed when --weak-per-domain goes beyond the dev set's data)",
    )
    args = ap.parse_args()
    if args.teacher_bm25 < 0:
        ap.error(f"--teacher-bm25 must be >= 0, got {args.teacher_bm25}")
    if args.stat_docs < 2:
        ap.error(f"--stat-docs must be >= 2 (a spread needs two scores), got {args.stat_docs}")
    rng = random.Random(args.seed)
    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sf = Path(args.scifact)

    sf_docs = {d.doc_id: d for d in read_collection(sf / "corpus.jsonl")}
    vw_docs = {d.doc_id: d for d in read_collection(args.vaswani)}
    sf_queries = read_queries(sf / "queries.jsonl")
    train = read_qrels(sf / "qrels" / "train.tsv")
    test_docs = {d for docs in read_qrels(sf / "qrels" / "test.tsv").values() for d in docs}

    qids = sorted(train)
    rng.shuffle(qids)
    dev, sup = sorted(qids[: args.dev_queries]), sorted(qids[args.dev_queries :])
    dev_docs = {d for q in dev for d in train[q]}
    with open(out / "dev_queries.tsv", "w") as f:
        f.writelines(f"{q}\t{sf_queries[q]}\n" for q in dev)
    with open(out / "dev_qrels.txt", "w") as f:
        f.writelines(f"{q} 0 {d} {r}\n" for q in dev for d, r in train[q].items() if r > 0)

    collection: dict[str, str] = {}
    queries: dict[str, str] = {}
    examples: list[tuple[str, str, str, str]] = []  # qid, positive pid, domain, source doc
    for q in sup:
        for d, r in train[q].items():
            if r > 0:
                queries[f"sf:{q}"] = sf_queries[q]
                collection[f"sf:{d}"] = sf_docs[d].full_text()
                examples.append((f"sf:{q}", f"sf:{d}", "sf", d))
    # weak pairs, SciFact: title -> abstract (documents relevant to test or dev queries excluded)
    pool = [d for d, doc in sf_docs.items() if doc.title and d not in test_docs | dev_docs]
    for d in rng.sample(pool, min(args.weak_per_domain, len(pool))):
        queries[f"sft:{d}"] = sf_docs[d].title
        if args.weak_positive["sf"] == "source":
            collection[f"sf:{d}"] = sf_docs[d].full_text()
            examples.append((f"sft:{d}", f"sf:{d}", "sf", d))
        else:
            collection[f"sfa:{d}"] = sf_docs[d].text
            examples.append((f"sft:{d}", f"sfa:{d}", "sf", d))
    # weak pairs, Vaswani (no titles, no punctuation): a span of 6-12 words -> the rest
    held_out = dev_vaswani_docs(Path(args.exclude_dev)) if args.exclude_dev else set()
    pool = [d for d, doc in vw_docs.items() if len(doc.text.split()) >= 30 and d not in held_out]
    for d in rng.sample(pool, min(args.weak_per_domain, len(pool))):
        words = vw_docs[d].text.split()
        n = rng.randint(6, 12)
        start = rng.randrange(0, len(words) - n)
        queries[f"vws:{d}"] = " ".join(words[start : start + n])
        if args.weak_positive["vw"] == "source":
            collection[f"vw:{d}"] = vw_docs[d].full_text()
            examples.append((f"vws:{d}", f"vw:{d}", "vw", d))
        else:
            collection[f"vwr:{d}"] = " ".join(words[:start] + words[start + n :])
            examples.append((f"vws:{d}", f"vwr:{d}", "vw", d))

    # BM25 hard negatives from the query's own collection, the source document excluded
    bm25 = {
        "sf": BM25Index.build((d, doc.full_text()) for d, doc in sf_docs.items()),
        "vw": BM25Index.build((d, doc.full_text()) for d, doc in vw_docs.items()),
    }
    texts = {"sf": sf_docs, "vw": vw_docs}
    rows = []
    sources: list[str] = []  # per row: the corpus document its positive comes from
    for domain in ("sf", "vw"):
        chunk = [e for e in examples if e[2] == domain]
        found = bm25[domain].search([queries[e[0]] for e in chunk], args.depth)
        for (qid, pos, _, source), hits in zip(chunk, found, strict=True):
            exclude = {source} | (held_out if domain == "vw" else set())
            if qid.startswith("sf:"):
                exclude |= set(train[qid[3:]])
            cands = [d for d, _ in hits if d not in exclude]
            if len(cands) < args.negatives:
                continue
            negs = rng.sample(cands[: max(args.negatives, 10)], args.negatives)
            for d in negs:
                collection[f"{domain}:{d}"] = texts[domain][d].full_text()
            rows.append([qid, pos, *[f"{domain}:{d}" for d in negs]])
            sources.append(source)
    print(f"{len(rows)} examples, {len(queries)} queries, {len(collection)} documents")

    # teacher: raw MaxSim over the backbone's 384-d token states
    tok, model = load_backbone()
    skip = torch.tensor(sorted(tok.convert_tokens_to_ids(list(PUNCT))))
    pids = sorted(collection)
    stat_pids = (
        {
            domain: [f"{domain}:{d}" for d in rng.sample(sorted(texts[domain]), args.stat_docs)]
            for domain in ("sf", "vw")
        }
        if args.teacher_bm25
        else {}
    )
    # the statistics' documents not already in the collection are encoded too, not written
    doc_text = dict(collection)
    for domain, ps in stat_pids.items():
        doc_text.update({p: texts[domain][p.split(":", 1)[1]].full_text() for p in ps})
    all_pids = pids + sorted(set(doc_text) - set(pids))
    dvec = encode_ids(model, doc_ids(tok, [doc_text[p] for p in all_pids], None, 180), skip)
    dvec = {p: F.normalize(v.float(), dim=-1) for p, v in zip(all_pids, dvec, strict=True)}
    used_q = sorted({r[0] for r in rows})
    qvec = encode_ids(
        model, query_ids(tok, [queries[q] for q in used_q], None, False), torch.tensor([-1])
    )
    qvec = {q: F.normalize(v.float(), dim=-1) for q, v in zip(used_q, qvec, strict=True)}
    bm25_z = bm25_standardized(rows, queries, sources, bm25) if args.teacher_bm25 else []
    order = list(range(len(rows)))
    rng.shuffle(order)
    with open(out / "triples.jsonl", "w") as f:
        for i in order:
            qid, *docs = rows[i]
            # mean over query tokens, times the number of positions the student scores
            scale = 32 if args.teacher_scale == "32" else len(qvec[qid])

            def raw(d: str, qid: str = qid, scale: int = scale) -> float:
                return float((qvec[qid] @ dvec[d].T).max(1).values.mean()) * scale

            sims = [raw(d) for d in docs]
            if args.teacher_bm25:
                spread = statistics.pstdev(raw(d) for d in stat_pids[docs[1][:2]])
                sims = [
                    s + args.teacher_bm25 * spread * z for s, z in zip(sims, bm25_z[i], strict=True)
                ]
            # the known positive stays on top, the teacher only ordering what is below it
            # (in the example kinds --force names: all by default)
            if qid.split(":", 1)[0] in args.force:
                sims[0] = max(sims[0], max(sims[1:]) + args.margin)
            pairs = [[d, round(s, 4)] for d, s in zip(docs, sims, strict=True)]
            f.write(json.dumps([qid, *pairs]) + "\n")
    with open(out / "queries.tsv", "w") as f:
        f.writelines(f"{q}\t{t}\n" for q, t in sorted(queries.items()))
    with open(out / "collection.jsonl", "w") as f:
        f.writelines(json.dumps({"_id": p, "text": collection[p]}) + "\n" for p in pids)


if __name__ == "__main__":
    main()
