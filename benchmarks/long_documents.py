"""Long documents: overlapping windows against truncation, a known-item test on manual
pages.

Documents: manual pages of section 1 shipped by this machine's Debian packages (Debian
main: free licences; the Google Cloud CLI's thousands of generated pages left out),
rendered to plain text by `man`, in sorted order; kept are those
whose text is at least 3 windows long (so that most of it lies past the truncation) and
at most `--max-windows` windows, until `--docs` of them.
Queries (known-item): one per document, from a passage deep inside it: a point drawn
uniformly (seeded) in the document's second half, the 24 words from there, of which the
first 8 distinct words of 4 or more letters, in order, joined by spaces. The document it
came from is the one relevant answer (others may contain the words too: man pages share
phrasing, which makes the test harder, never easier).
Systems, one model and `--doc-maxlen` for all: `truncation` (the default: each document
cut at doc_maxlen), `windows, union` (window = doc_maxlen less the special tokens, stride
half of it; MaxSim over every window's vectors: what the index does), `windows, best`
(the same vectors, each document scored by its best window alone, computed here from the
stored vectors). Exhaustive MaxSim (mode "exact") for all, so that only the scoring
differs; queries timed one at a time, the two indexes interleaved.
Reported: recall@10, MRR (over the top 100), build time, stored vectors and bytes, query
latency.

    python benchmarks/long_documents.py [--docs 100] [--doc-maxlen 128] [--max-windows 16]

Writes benchmarks/results/long-documents-cpu.json and .md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

MAN = Path("/usr/share/man/man1")
WORK = common.REPO / ".work" / "long-documents"
K, DEPTH, QUERY_WORDS, PASSAGE = 10, 100, 8, 24
_WORD = re.compile(r"[A-Za-z]{4,}")


def main() -> None:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--doc-maxlen", type=int, default=128)
    parser.add_argument("--max-windows", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.setup(args)
    colbert = common.load_model(args.model)
    tokenizer = colbert.tokenizer
    window = args.doc_maxlen - tokenizer.frame
    stride = window // 2
    load_before = os.getloadavg()
    started = time.perf_counter()
    docs = manual_pages(tokenizer, args.docs, window, stride, args.max_windows)
    queries = known_items(docs, args.seed)
    print(f"{len(docs)} pages, {len(queries)} queries ({time.perf_counter() - started:.0f} s)",
          flush=True)  # fmt: skip
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    settings = {"nbits": None, "doc_maxlen": args.doc_maxlen, "progress": False, "ann": False}
    systems: dict[str, Any] = {}
    indexes = {}
    for name, extra in (("truncation", {}), ("windows", {"window": window,
                        "window_stride": stride, "max_windows": args.max_windows})):  # fmt: skip
        from latesearch import Index

        start = time.perf_counter()
        indexes[name] = Index.build(
            [(d[0], d[1]) for d in docs], WORK / name, colbert, **settings, **extra
        )
        store = indexes[name].store
        systems[name] = {"build_s": round(time.perf_counter() - start, 1),
                         "vectors": int(store.n_embeddings),
                         "bytes": sum(p.stat().st_size for p in (WORK / name).rglob("*")
                                      if p.is_file())}  # fmt: skip
        print(name, systems[name], flush=True)
    ranks: dict[str, list[int | None]] = {"truncation": [], "windows, union": [],
                                          "windows, best": []}  # fmt: skip
    times: dict[str, list[float]] = {"truncation": [], "windows, union": []}
    best = BestWindow(indexes["windows"], colbert, (window, stride, args.max_windows))
    for doc_id, query in queries:
        for name, label in (("truncation", "truncation"), ("windows", "windows, union")):
            start = time.perf_counter()
            hits = indexes[name].search(query, k=DEPTH, mode="exact")
            times[label].append(time.perf_counter() - start)
            ranks[label].append(rank_of(doc_id, [h.doc_id for h in hits]))
        ranks["windows, best"].append(rank_of(doc_id, best.ranking(query)[:DEPTH]))
    rows = {}
    for label, found in ranks.items():
        rows[label] = {
            "recall@10": round(float(np.mean([r is not None and r <= K for r in found])), 4),
            "mrr": round(float(np.mean([1 / r if r else 0.0 for r in found])), 4),
            "query_ms_p50": (
                round(1000 * float(np.median(times[label])), 1) if label in times else None
            ),  # fmt: skip
        }
    payload = {
        "benchmark": "long-documents", "machine": common.machine_info(),
        "model": common.model_label(args.model, colbert), "command": common.command(),
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "documents": len(docs), "queries": len(queries),
        "doc_tokens_mean": round(float(np.mean([d[3] for d in docs])), 1),
        "doc_maxlen": args.doc_maxlen, "window": window, "stride": stride,
        "max_windows": args.max_windows, "indexes": systems, "results": rows,
        "example_queries": [q for _, q in queries[:5]],
    }  # fmt: skip
    print(rows, flush=True)
    common.write_results(args.out, "long-documents-cpu", payload, markdown(payload))


def manual_pages(tokenizer: Any, n: int, window: int, stride: int,
                 most: int) -> list[tuple[str, str, str, int]]:  # fmt: skip
    """(id, text, title, tokens) of up to `n` rendered manual pages of the wanted length."""
    shortest, longest = 3 * window, window + (most - 1) * stride
    out = []
    for path in sorted(MAN.glob("*.1.gz")):
        if path.name.startswith("gcloud"):  # thousands of generated near-duplicates
            continue
        if not 1_500 <= path.stat().st_size <= 16_000:  # compressed: skips most misfits
            continue
        text = render(path)
        if not text:
            continue
        tokens = len(tokenizer.hf(text, add_special_tokens=False)["input_ids"])
        if shortest <= tokens <= longest:
            name = path.name.removesuffix(".1.gz")
            out.append((name, text, name, tokens))
        if len(out) == n:
            break
    return out


def render(path: Path) -> str:
    """A manual page as plain text (`man`, 100 columns, overstriking removed)."""
    env = {**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": "", "LANG": "C.UTF-8"}
    done = subprocess.run(["man", "-l", "-P", "cat", str(path)], capture_output=True,
                          env=env, timeout=30, check=False)  # fmt: skip
    text = re.sub(r".\x08", "", done.stdout.decode("utf-8", errors="replace"))
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def known_items(docs: list, seed: int) -> list[tuple[str, str]]:
    """(doc id, query) per document: words of a passage from its second half."""
    rng = np.random.default_rng(seed)
    out = []
    for doc_id, text, _, _ in docs:
        words = text.split()
        start = int(rng.integers(len(words) // 2, max(len(words) - PASSAGE, len(words) // 2 + 1)))
        chosen: list[str] = []
        for word in words[start : start + PASSAGE]:
            for token in _WORD.findall(word):
                if token.lower() not in (c.lower() for c in chosen):
                    chosen.append(token)
        if len(chosen) >= 3:
            out.append((doc_id, " ".join(chosen[:QUERY_WORDS])))
    return out


def rank_of(doc_id: str, ranking: list[str]) -> int | None:
    return ranking.index(doc_id) + 1 if doc_id in ranking else None


class BestWindow:
    """Documents scored by their best window alone, from a windowed index's vectors."""

    def __init__(self, index: Any, colbert: Any, windows: tuple[int, int, int]) -> None:
        from latesearch.modeling.offsets import document_tokens

        store = index.store
        n = store.n_docs
        self.colbert, self.ids = colbert, list(store.doc_ids)
        flat, lens = store.flat(np.arange(n), source="full")
        self.vectors = np.asarray(flat, dtype=np.float32)
        docs = store.documents(range(n))
        starts, owner = [], []
        at = 0
        for i, doc in enumerate(docs):
            text = f"{doc['title']} {doc['text']}" if doc["title"] else doc["text"]
            labels = [t.window for t in document_tokens(colbert.tokenizer, text, windows)]
            if len(labels) != int(lens[i]):
                raise RuntimeError(f"{doc['doc_id']}: {len(labels)} tokens, {lens[i]} vectors")
            for w in sorted(set(labels)):
                starts.append(at + labels.index(w))
                owner.append(i)
            at += len(labels)
        self.starts, self.owner = np.array(starts), np.array(owner)

    def ranking(self, query: str) -> list[str]:
        Q, mask = self.colbert.encode_queries([query], return_mask=True)
        q = Q[0][mask[0]].float().numpy()
        per_window = np.maximum.reduceat(q @ self.vectors.T, self.starts, axis=1).sum(0)
        scores = np.full(len(self.ids), -np.inf)
        np.maximum.at(scores, self.owner, per_window)
        order = np.lexsort((np.arange(len(scores)), -scores))
        return [self.ids[i] for i in order]


def markdown(p: dict[str, Any]) -> str:
    lines = [
        common.header(
            "Long documents: windows against truncation (known-item, man pages)",
            p["machine"],
            p["model"],
            f"Load average before / after: {p['load_average_before_after']}.  ",
        ),
        f"{p['documents']} manual pages (section 1, this machine's Debian packages), "
        f"{p['doc_tokens_mean']} tokens on average; {p['queries']} known-item queries, one "
        f"per page, from a passage in its second half (8 words of 4+ letters of 24 "
        f"consecutive words). doc_maxlen {p['doc_maxlen']}; windows of {p['window']} "
        f"tokens, stride {p['stride']}, at most {p['max_windows']}. Exhaustive MaxSim.",
        "",
        "| system | recall@10 | MRR | query p50 (ms) | vectors | bytes | build (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, row in p["results"].items():
        idx = p["indexes"]["truncation" if label == "truncation" else "windows"]
        ms = "-" if row["query_ms_p50"] is None else row["query_ms_p50"]
        lines.append(f"| {label} | {row['recall@10']} | {row['mrr']} | {ms} | "
                     f"{idx['vectors']:,} | {idx['bytes']:,} | {idx['build_s']} |")  # fmt: skip
    lines += ["", "Example queries: " + "; ".join(f"`{q}`" for q in p["example_queries"]), "",
              f"Regenerate with: `{p['command']}`", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
