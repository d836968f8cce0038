"""latesearch against its PLAID peers (PyLate 1.2, colbert-ai 0.2.22) on the same documents
and the same weights, CPU.

Needs the peers' virtual environment of docs/benchmarks.md (PyLate 1.2.0 and
colbert-ai 0.2.22 in e.g. /tmp/peers) and a ColBERT-format checkpoint (colbertv2.0 layout)
that all three libraries load:

    python benchmarks/peers.py --peers-python /tmp/peers/bin/python \\
        --model .work/models/colbert-format

(peers-cpu.md: the trained checkpoint of benchmarks/_common.py,
`make_colbert_format_trained`, re-saved with `ColBERT.from_pretrained(...).save_pretrained`
into .work/models/colbert-format-trained-peers, the files PyLate 1.2 reads.)

The driver (this python) starts one long-lived worker process per system (latesearch in
this python, the peers in the peers' python, each running `peers.py worker --system S`)
and talks to them in JSON lines over pipes. Steps:

1. equal embeddings: 3 queries and 5 documents encoded by each library (max abs diff);
2. builds, one at a time, each in a fresh worker: latesearch nbits=2, latesearch nbits=2 +
   keep_full, PyLate PLAID (nbits 2), colbert-ai PLAID (nbits 2), and the exhaustive
   reference (latesearch, uncompressed float32); build docs/s = documents / (encode + index)
   seconds, model loading excluded; peak RSS of the build process; bytes per token on disk
   (index folder minus the text store);
3. search at each thread count: all workers loaded side by side, queries encoded up front
   where the library allows (latesearch: total - last_timings.encode), every query sent
   to every system in rotating order; ms per query excluding query encoding, ratio to
   latesearch per query, overlap@10 with exhaustive fp32 MaxSim, peak RSS while searching
   (VmHWM reset after loading).

Builds are reused from --work (build stats in builds.json) unless --rebuild.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"
LS_SYSTEMS = ("latesearch", "latesearch-full", "exact")
PEER_SYSTEMS = ("pylate", "colbert-ai")
SEARCHED = ("latesearch", "latesearch-full", "latesearch-full-plaid", "pylate", "colbert-ai")
# searched, not built: the index of another system, searched with other settings
SEARCH_ONLY = {"latesearch-full-plaid": "latesearch-full"}
PEER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TORCH_EXTENSIONS_DIR": "/tmp/peers-torch-ext",
}
COLBERT_SEARCH = {"ncells": 1, "centroid_score_threshold": 0.5, "ndocs": 256}
LS_SEARCH = {"latesearch-full-plaid": COLBERT_SEARCH}  # the others: the engine's defaults


# ====================================================================== shared helpers
def load_docs(corpus: Path, n: int) -> list[dict[str, str]]:
    docs = []
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                docs.append({"id": str(row["_id"]), "title": row.get("title") or "",
                             "text": row.get("text") or ""})  # fmt: skip
            if len(docs) == n:
                break
    return docs


def doc_text(doc: dict[str, str]) -> str:
    """Title and text joined by one space (latesearch's default `title_join`)."""
    return f"{doc['title']} {doc['text']}" if doc["title"] else doc["text"]


def load_queries(data: Path, n: int) -> tuple[list[dict[str, str]], dict[str, set[str]]]:
    """The first `n` test queries (those judged in qrels/test.tsv) and their judgements."""
    qrels: dict[str, set[str]] = {}
    with open(data / "qrels" / "test.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(qid, set()).add(did)
    queries = []
    with open(data / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if str(row["_id"]) in qrels:
                queries.append({"id": str(row["_id"]), "text": row["text"]})
    return queries[:n], qrels


def peak_rss_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")
        return True
    except OSError:
        return False


def folder_bytes(folder: Path, exclude: tuple[str, ...] = ()) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*")
               if p.is_file() and not p.name.startswith(exclude))  # fmt: skip


# ====================================================================== workers
class Worker:
    """The worker side: one system, commands as JSON lines on stdin, replies on the
    original stdout (the libraries' own prints are moved to stderr)."""

    def __init__(self, system: str, args: argparse.Namespace) -> None:
        self.system, self.args = system, args
        self.docs = load_docs(Path(args.corpus), args.n_docs)
        self.queries = [q["text"] for q in load_queries(Path(args.data), args.n_queries)[0]]
        self.model: Any = None
        self.index: Any = None
        self.encoded: Any = None

    # ---------------------------------------------------------------- latesearch
    def _ls_model(self) -> Any:
        if self.model is None:
            import latesearch

            self.model = latesearch.ColBERT.from_pretrained(self.args.model, device="cpu")
        return self.model

    def _ls_fields(self) -> dict[str, Any]:
        if self.system == "exact":
            return {"nbits": None, "precision": 32}
        return {"nbits": 2, "keep_full": self.system == "latesearch-full"}

    # ---------------------------------------------------------------- peers
    def _pylate_model(self) -> Any:
        if self.model is None:
            from pylate import models

            self.model = models.ColBERT(model_name_or_path=self.args.model, device="cpu")
        return self.model

    def _colbert_extensions(self) -> None:
        """Compile / load colbert-ai's C++ extensions before any clock starts."""
        from colbert.indexing.codecs.residual import ResidualCodec
        from colbert.modeling.colbert import ColBERT
        from colbert.search.index_storage import IndexScorer
        from colbert.search.strided_tensor import StridedTensor

        ResidualCodec.try_load_torch_extensions(use_gpu=False)
        IndexScorer.try_load_torch_extensions(use_gpu=False)
        StridedTensor.try_load_torch_extensions(use_gpu=False)
        ColBERT.try_load_torch_extensions(use_gpu=False)

    def _colbert_config(self, **kw: Any) -> Any:
        from colbert.infra import ColBERTConfig

        return ColBERTConfig(root=self.folder(), query_maxlen=32, doc_maxlen=180,
                             avoid_fork_if_possible=True, **kw)  # fmt: skip

    def _run_context(self) -> Any:
        from colbert.infra import Run, RunConfig

        return Run().context(RunConfig(nranks=1, experiment="e", root=str(self.folder()),
                                       avoid_fork_if_possible=True))  # fmt: skip

    def folder(self) -> Path:
        return Path(self.args.work) / SEARCH_ONLY.get(self.system, self.system)

    # ---------------------------------------------------------------- commands
    def embed(self, msg: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        queries, docs = msg["queries"], msg["docs"]
        if self.system == "latesearch":
            model = self._ls_model()
            q = model.encode_queries(queries).float().numpy()
            d = [t.float().numpy() for t in model.encode_documents(docs)]
        elif self.system == "pylate":
            model = self._pylate_model()
            q = np.stack([np.asarray(e, dtype=np.float32)
                          for e in model.encode(queries, is_query=True)])  # fmt: skip
            d = [np.asarray(e, dtype=np.float32) for e in model.encode(docs, is_query=False)]
        else:
            from colbert.modeling.checkpoint import Checkpoint

            ckpt = Checkpoint(self.args.model, colbert_config=self._colbert_config())
            q = ckpt.queryFromText(queries).float().numpy()
            flat, lens = ckpt.docFromText(docs, bsize=32, keep_dims="flatten", to_cpu=True)
            d = [t.float().numpy() for t in flat.split(list(lens))]
        np.savez(msg["out"], q=q, **{f"d{i}": x for i, x in enumerate(d)})
        return {"ok": True}

    def build(self, msg: dict[str, Any]) -> dict[str, Any]:
        import shutil

        folder = self.folder()
        if folder.exists():
            shutil.rmtree(folder)
        texts = [doc_text(d) for d in self.docs]
        ids = [d["id"] for d in self.docs]
        out: dict[str, Any] = {}
        if self.system in LS_SYSTEMS:
            import latesearch

            model = self._ls_model()
            t0 = time.perf_counter()
            index = latesearch.Index.build([dict(d) for d in self.docs], folder, model,
                                           progress=False, **self._ls_fields())  # fmt: skip
            out["seconds"] = time.perf_counter() - t0
            out["n_tokens"] = int(index.store.n_embeddings)
            text_store = ("docs.sqlite",)
        elif self.system == "pylate":
            from pylate import indexes

            model = self._pylate_model()
            self._colbert_extensions()
            t0 = time.perf_counter()
            embs = model.encode(texts, is_query=False, batch_size=32)
            t1 = time.perf_counter()
            index = indexes.PLAID(index_folder=str(folder), index_name="idx", override=True,
                                  nbits=2)  # fmt: skip
            index.add_documents(documents_ids=ids, documents_embeddings=embs)
            out["seconds"] = time.perf_counter() - t0
            out["encode_seconds"] = t1 - t0
            out["n_tokens"] = int(sum(len(e) for e in embs))
            text_store = ()
        else:
            from colbert import Indexer

            self._colbert_extensions()
            t0 = time.perf_counter()
            with self._run_context():
                cfg = self._colbert_config(nbits=2)
                Indexer(checkpoint=self.args.model, config=cfg).index(
                    name="idx", collection=texts, overwrite=True)
            out["seconds"] = time.perf_counter() - t0
            meta = next(folder.rglob("metadata.json"))
            out["n_tokens"] = int(json.loads(meta.read_text())["num_embeddings"])
            text_store = ()
            folder = meta.parent  # the index itself, not the run's logs
        out["bytes"] = folder_bytes(folder, text_store)
        out["folder"] = str(folder)
        out["text_store_excluded"] = list(text_store)
        out["peak_rss_mib"] = peak_rss_mib()
        return out

    def load(self, msg: dict[str, Any]) -> dict[str, Any]:
        folder = self.folder()
        if self.system in LS_SYSTEMS or self.system in SEARCH_ONLY:
            import latesearch

            self.index = latesearch.Index.load(folder, self._ls_model())
            _ = self.index.model
        elif self.system == "pylate":
            from pylate import indexes, retrieve

            model = self._pylate_model()
            self._colbert_extensions()
            self.index = retrieve.ColBERT(index=indexes.PLAID(
                index_folder=str(folder), index_name="idx", override=False, nbits=2))
            self.encoded = model.encode(self.queries, is_query=True)
        else:
            from colbert import Searcher

            self._colbert_extensions()
            with self._run_context():
                self.index = Searcher(index="idx", checkpoint=self.args.model,
                                      config=self._colbert_config(), verbose=0)  # fmt: skip
            self.index.configure(**COLBERT_SEARCH)
            self.encoded = self.index.encode(self.queries)
            self.ids = [d["id"] for d in self.docs]
        for i in range(min(3, len(self.queries))):  # warm-up
            self.search({"qi": i, "k": 10})
        return {"peak_rss_mib_load": peak_rss_mib(), "reset": reset_peak_rss()}

    def search(self, msg: dict[str, Any]) -> dict[str, Any]:
        qi, k = msg["qi"], msg.get("k", 10)
        if self.system in LS_SYSTEMS or self.system in SEARCH_ONLY:
            mode = "exact" if self.system == "exact" else "e2e"
            hits = self.index.search(self.queries[qi], k=k, mode=mode,
                                     **LS_SEARCH.get(self.system, {}))  # fmt: skip
            t = self.index.last_timings
            return {"ids": [h.doc_id for h in hits], "scores": [h.score for h in hits],
                    "ms": (t.total - t.encode) * 1e3, "stages": t.to_dict()}  # fmt: skip
        if self.system == "pylate":
            t0 = time.perf_counter()
            res = self.index.retrieve(queries_embeddings=[self.encoded[qi]], k=k)
            ms = (time.perf_counter() - t0) * 1e3
            return {"ids": [str(r["id"]) for r in res[0]],
                    "scores": [float(r["score"]) for r in res[0]], "ms": ms}  # fmt: skip
        t0 = time.perf_counter()
        pids, _, scores = self.index.dense_search(self.encoded[qi : qi + 1], k=k)
        ms = (time.perf_counter() - t0) * 1e3
        return {"ids": [self.ids[int(p)] for p in pids], "scores": [float(s) for s in scores],
                "ms": ms}  # fmt: skip

    def rss(self, msg: dict[str, Any]) -> dict[str, Any]:
        return {"peak_rss_mib": peak_rss_mib()}


def worker_main(args: argparse.Namespace) -> None:
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # the libraries' prints go to stderr
    sys.stdout = sys.stderr
    import torch

    torch.set_num_threads(args.threads)
    worker = Worker(args.system, args)
    reply.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        try:
            out = getattr(worker, msg["cmd"])(msg)
        except Exception:  # reported to the driver, which stops
            import traceback

            out = {"error": traceback.format_exc()}
        reply.write(json.dumps(out) + "\n")


# ====================================================================== driver
class Proc:
    """The driver side of one worker process."""

    def __init__(self, system: str, args: argparse.Namespace, threads: int, log: Path) -> None:
        python = args.peers_python if system in PEER_SYSTEMS else sys.executable
        env = dict(os.environ, **PEER_ENV) if system in PEER_SYSTEMS else dict(os.environ)
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        if system not in PEER_SYSTEMS:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                              env.get("PYTHONPATH")]))
        cmd = [python, str(Path(__file__).resolve()), "worker", "--system", system,
               "--threads", str(threads), "--model", str(args.model), "--work", str(args.work),
               "--corpus", str(args.corpus), "--data", str(args.data),
               "--n-docs", str(args.n_docs), "--n-queries", str(args.n_queries)]  # fmt: skip
        self.system = system
        self.log = open(log, "a", encoding="utf-8")  # noqa: SIM115
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.log, text=True, env=env, bufsize=1)  # fmt: skip
        self._read()

    def _read(self) -> dict[str, Any]:
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.system} died; see {self.log.name}")
        out = json.loads(line)
        if "error" in out:
            raise SystemExit(f"worker {self.system} failed:\n{out['error']}")
        return out

    def call(self, cmd: str, **kw: Any) -> dict[str, Any]:
        self.p.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.p.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            pass
        self.p.wait(timeout=120)
        self.log.close()


def check_embeddings(args: argparse.Namespace, docs: list[dict[str, str]],
                     queries: list[dict[str, str]], log: Path) -> dict[str, Any]:  # fmt: skip
    import numpy as np

    q = [x["text"] for x in queries[:3]]
    d = [doc_text(x) for x in docs[:5]]
    arrays = {}
    for system in ("latesearch", *PEER_SYSTEMS):
        path = Path(args.work) / f"embed-{system}.npz"
        proc = Proc(system, args, 2, log)
        proc.call("embed", queries=q, docs=d, out=str(path))
        proc.close()
        arrays[system] = dict(np.load(path))
    ref = arrays["latesearch"]
    out: dict[str, Any] = {}
    for system in PEER_SYSTEMS:
        other = arrays[system]
        shapes_equal = all(ref[key].shape == other[key].shape for key in ref)
        diff = max(float(np.abs(ref[key] - other[key]).max()) for key in ref) \
            if shapes_equal else None
        out[system] = {"max_abs_diff": diff, "shapes_equal": shapes_equal,
                       "doc_tokens": [int(other[f"d{i}"].shape[0]) for i in range(len(d))]}
    out["latesearch_doc_tokens"] = [int(ref[f"d{i}"].shape[0]) for i in range(len(d))]
    return out


def builds(args: argparse.Namespace, log: Path, systems: Any = None) -> dict[str, Any]:
    cache = Path(args.work) / "builds.json"
    done = json.loads(cache.read_text()) if cache.exists() else {}
    for system in systems or (*LS_SYSTEMS, *PEER_SYSTEMS):
        if args.rebuild and system in done:
            del done[system]
        if system in done and (Path(args.work) / system).exists():
            continue
        print(f"building {system} ...", flush=True)
        proc = Proc(system, args, args.build_threads, log)
        stats = proc.call("build")
        proc.close()
        stats["docs_per_s"] = args.n_docs / stats["seconds"]
        stats["bytes_per_token"] = stats["bytes"] / stats["n_tokens"]
        stats["threads"] = args.build_threads
        stats["load_avg_after"] = os.getloadavg()[0]
        done[system] = stats
        cache.write_text(json.dumps(done, indent=1))
        print(f"  {system}: {stats['docs_per_s']:.2f} docs/s, "
              f"{stats['bytes_per_token']:.1f} B/token", flush=True)  # fmt: skip
    return done


def reference(args: argparse.Namespace, n: int, log: Path) -> list[list[str]]:
    proc = Proc("exact", args, args.build_threads, log)
    proc.call("load")
    top = [proc.call("search", qi=i, k=10)["ids"] for i in range(n)]
    proc.close()
    return top


def ndcg10(ids: list[str], relevant: set[str]) -> float:
    import math

    dcg = sum(1 / math.log2(r + 2) for r, d in enumerate(ids[:10]) if d in relevant)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def search_round(args: argparse.Namespace, threads: int, queries: list[dict[str, str]],
                 exact: list[list[str]], qrels: dict[str, set[str]],
                 log: Path) -> dict[str, Any]:  # fmt: skip
    procs = []
    loaded: dict[str, Any] = {}
    for system in SEARCHED:
        print(f"  loading {system} ({threads} threads) ...", flush=True)
        try:
            proc = Proc(system, args, threads, log)
            loaded[system] = proc.call("load")
        except SystemExit as err:  # reported in the results, the others go on
            print(err, flush=True)
            loaded[system] = {"error": str(err)}
            continue
        procs.append(proc)
    systems = [p.system for p in procs]
    ms: dict[str, list[float]] = {s: [] for s in SEARCHED}
    overlap: dict[str, list[float]] = {s: [] for s in SEARCHED}
    ndcg: dict[str, list[float]] = {s: [] for s in SEARCHED}
    stages: list[dict[str, Any]] = []
    loads = []
    for i, query in enumerate(queries):
        order = procs[i % len(procs):] + procs[: i % len(procs)]
        for proc in order:
            res = proc.call("search", qi=i, k=10)
            ms[proc.system].append(res["ms"])
            overlap[proc.system].append(len(set(res["ids"]) & set(exact[i])) / 10)
            ndcg[proc.system].append(ndcg10(res["ids"], qrels[query["id"]]))
            if proc.system == "latesearch":
                stages.append(res["stages"])
        loads.append(os.getloadavg()[0])
    rss = {p.system: p.call("rss")["peak_rss_mib"] for p in procs}
    for proc in procs:
        proc.close()
    out: dict[str, Any] = {"threads": threads, "load_avg_median": statistics.median(loads),
                           "systems": {}, "errors": {s: v["error"] for s, v in loaded.items()
                                                     if "error" in v}}  # fmt: skip
    base = ms["latesearch"]
    for system in systems:
        ratios = [a / b for a, b in zip(ms[system], base, strict=True)]
        out["systems"][system] = {
            "ms_median": statistics.median(ms[system]),
            "ms_p95": pct(ms[system], 95),
            "ratio_vs_latesearch_median": statistics.median(ratios),
            "ratio_vs_latesearch_p95": pct(ratios, 95),
            "overlap_at_10": statistics.fmean(overlap[system]),
            "ndcg_at_10": statistics.fmean(ndcg[system]),
            "peak_rss_mib_searching": rss[system],
            "peak_rss_mib_loading": loaded[system]["peak_rss_mib_load"],
            "hwm_reset_after_load": loaded[system]["reset"],
            "ms_per_query": ms[system],
        }
    out["latesearch_stage_ms_median"] = {
        k: statistics.median(s[k] for s in stages) * 1e3
        for k in ("encode", "candidates", "interaction", "gather", "score", "total")
    }
    return out


def versions(python: str) -> dict[str, str]:
    code = ("import importlib.metadata as m, json;"
            "print(json.dumps({p: m.version(p) for p in ('pylate', 'colbert-ai', 'faiss-cpu',"
            " 'torch', 'transformers', 'sentence-transformers')}))")  # fmt: skip
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def markdown(r: dict[str, Any]) -> str:
    b, names = r["builds"], {"latesearch": "latesearch nbits=2",
                             "latesearch-full": "latesearch nbits=2 keep_full",
                             "latesearch-full-plaid": "latesearch nbits=2 keep_full, "
                                                      "PLAID's k=10 setting",
                             "pylate": "PyLate 1.2 PLAID", "colbert-ai": "colbert-ai PLAID"}
    lines = [
        "# latesearch vs PyLate PLAID vs colbert-ai PLAID (CPU)", "",
        f"Machine: {r['machine_line']}. Peers: PyLate {r['versions']['pylate']}, colbert-ai "
        f"{r['versions']['colbert-ai']}, faiss-cpu {r['versions']['faiss-cpu']}, torch "
        f"{r['versions']['torch']} (peers' venv); latesearch torch {r['machine']['torch']}, "
        f"faiss {r['machine'].get('faiss')}.", "",
        f"SciFact, first {r['n_docs']} documents, {r['n_queries']} test queries, k=10, same "
        "weights in all three (`" + r["model"] + "`). colbert-ai at PLAID's k=10 setting "
        f"({COLBERT_SEARCH}); PyLate with its PLAID defaults; latesearch at its engine "
        "defaults for this model (EngineParams.for_k(10, query_augmentation=...)) and, "
        "keep_full, at colbert-ai's setting. Search ms exclude query encoding (queries encoded up "
        "front for the peers; latesearch: total - last_timings.encode). Systems interleaved "
        "per query in rotating order, each a long-lived worker; ratio = system ms / "
        "latesearch ms on the same query (median and p95 of the per-query ratios). "
        "Overlap@10 with exhaustive fp32 MaxSim (latesearch mode='exact', uncompressed "
        "float32 index). Builds: encode + index, model loading excluded, "
        f"{r['build_threads']} threads, one at a time.", "",
        "Command:", "", "```bash", r["command"], "```", "",
        "## Equal embeddings (3 queries, 5 documents; max abs diff vs latesearch)", "",
    ]
    for system in PEER_SYSTEMS:
        e = r["embeddings"][system]
        lines.append(f"- {system}: max abs diff {e['max_abs_diff']}, "
                     f"shapes equal {e['shapes_equal']}")  # fmt: skip
    lines += ["", "## Builds", "",
              "| system | build docs/s | tokens | bytes/token on disk | peak RSS MiB |",
              "|---|---|---|---|---|"]  # fmt: skip
    for system in (*SEARCHED, "exact"):
        if system in SEARCH_ONLY:
            continue
        s = b[system]
        lines.append(f"| {names.get(system, 'exact fp32 reference')} | {s['docs_per_s']:.2f} | "
                     f"{s['n_tokens']:,} | {s['bytes_per_token']:.1f} | "
                     f"{s['peak_rss_mib']:,.0f} |")  # fmt: skip
    for rnd in r["search"]:
        lines += ["", f"## Search, {rnd['threads']} thread(s) (median load average "
                  f"{rnd['load_avg_median']:.1f})", "",
                  "| system | ms median | ms p95 | ratio vs latesearch median | ratio p95 | "
                  "overlap@10 | nDCG@10 | peak RSS searching MiB |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for system, s in rnd["systems"].items():
            lines.append(
                f"| {names[system]} | {s['ms_median']:.1f} | {s['ms_p95']:.1f} | "
                f"{s['ratio_vs_latesearch_median']:.2f} | {s['ratio_vs_latesearch_p95']:.2f} | "
                f"{s['overlap_at_10']:.3f} | {s['ndcg_at_10']:.3f} | "
                f"{s['peak_rss_mib_searching']:,.0f} |")
        for system, err in rnd.get("errors", {}).items():
            lines.append(f"| {names[system]} | failed: {err.splitlines()[-1][:200]} |")
        st = rnd["latesearch_stage_ms_median"]
        lines.append("")
        lines.append("latesearch stages, median ms: " + ", ".join(
            f"{k} {v:.1f}" for k, v in st.items()))
    lines += ["", "Bytes per token: the index folder minus the text store (latesearch's "
              "docs.sqlite); PyLate's folder includes its id-mapping database. Peak RSS "
              "searching: VmHWM of the worker, reset after loading and warm-up (so it is "
              "the resident index + model + what searching adds).", ""]
    return "\n".join(lines)


def driver_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import describe, machine_info

    Path(args.work).mkdir(parents=True, exist_ok=True)
    log = Path(args.work) / "workers.log"
    docs = load_docs(Path(args.corpus), args.n_docs)
    queries, qrels = load_queries(Path(args.data), args.n_queries)
    print(f"{len(docs)} documents, {len(queries)} queries", flush=True)
    result: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info(),
        "versions": versions(args.peers_python),
        "n_docs": len(docs), "n_queries": len(queries), "model": str(args.model),
        "build_threads": args.build_threads, "colbert_search": COLBERT_SEARCH,
    }  # fmt: skip
    result["machine_line"] = describe(result["machine"])
    result["embeddings"] = check_embeddings(args, docs, queries, log)
    print("embeddings:", json.dumps(result["embeddings"]), flush=True)
    result["builds"] = builds(args, log)
    exact = reference(args, len(queries), log)
    result["search"] = []
    for threads in args.threads:
        print(f"search round, {threads} thread(s)", flush=True)
        result["search"].append(search_round(args, threads, queries, exact, qrels, log))
        for system, s in result["search"][-1]["systems"].items():
            print(f"  {system}: {s['ms_median']:.1f} ms, ratio "
                  f"{s['ratio_vs_latesearch_median']:.2f}, overlap {s['overlap_at_10']:.3f}",
                  flush=True)  # fmt: skip
        args.out.mkdir(parents=True, exist_ok=True)  # written after every round
        (args.out / "peers-cpu.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / "peers-cpu.md").write_text(markdown(result))
    print(f"wrote {args.out / 'peers-cpu.json'} and peers-cpu.md")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("role", nargs="?", default="run", choices=("run", "build", "worker"),
                   help="run: everything; build: only the builds (--systems); worker: internal")
    p.add_argument("--systems", nargs="+", default=[*LS_SYSTEMS, *PEER_SYSTEMS],
                   help="(build) the systems to build")
    p.add_argument("--peers-python", default="/tmp/peers/bin/python")
    p.add_argument("--model", default=str(REPO / ".work" / "models" / "colbert-format"))
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--corpus", default=None, help="default: DATA/corpus.jsonl")
    p.add_argument("--n-docs", type=int, default=2000)
    p.add_argument("--n-queries", type=int, default=100)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--build-threads", type=int, default=2)
    p.add_argument("--work", default=str(REPO / ".work" / "peers"))
    p.add_argument("--rebuild", action="store_true", help="rebuild indexes even if present")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--system", default=None, help="(worker) the system it runs")
    args = p.parse_args()
    args.corpus = args.corpus or str(Path(args.data) / "corpus.jsonl")
    if args.role == "worker":
        args.threads = args.threads[0]
    return args


if __name__ == "__main__":
    a = parse_args()
    if a.role == "worker":
        worker_main(a)
    elif a.role == "build":
        Path(a.work).mkdir(parents=True, exist_ok=True)
        builds(a, Path(a.work) / "workers.log", a.systems)
    else:
        driver_main(a)
