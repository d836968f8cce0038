"""latesearch against its peers (colbert-ai 0.2.22 PLAID, PyLate 1.6 with fast-plaid, PyLate
1.6's WARP back-end) on the same documents and the same weights, CPU.

The peers run in their own virtual environments (docs/benchmarks.md, "Running the peers"):
colbert-ai (and optionally PyLate 1.2) in --peers-python, PyLate 1.6 with fast-plaid in
--fp-python (fast-plaid's wheels pin torch 2.11), PyLate's WARP (xtr-warp-rs) in
--warp-python (default: the same as --fp-python). A ColBERT-format checkpoint (colbertv2.0
layout) that every library loads:

    python benchmarks/peers.py --model .work/models/colbert-format-trained/final \\
        --peers-python /tmp/peers/bin/python --fp-python /tmp/fp/bin/python

The driver (this python) starts one long-lived worker process per system (latesearch in
this python, each peer in its environment's python, each running `peers.py worker
--system S`) and talks to them in JSON lines over pipes. Steps:

1. equal embeddings: 3 queries and 5 documents encoded by each library (max abs diff);
2. builds, one at a time, each in a fresh worker: latesearch 2-bit without the fp16 tier,
   latesearch 2-bit with it, the peers at their defaults, and the exhaustive reference
   (latesearch, uncompressed float32); build docs/s = documents / (encode + index)
   seconds, model loading excluded; peak RSS of the build process; bytes per token of the
   index proper (and of the whole folder where it keeps more, as PyLate 1.6 does);
3. search at each thread count: all workers loaded side by side with the same thread
   settings (OMP_NUM_THREADS, MKL_NUM_THREADS, RAYON_NUM_THREADS, torch threads,
   OMP_WAIT_POLICY=PASSIVE), queries encoded up front where the library allows
   (latesearch: total - last_timings.encode), every query sent at k=10 and k=100 to every
   system in rotating order; ms per query excluding query encoding, ratio to latesearch
   per query, overlap@10 and @100 with exhaustive fp32 MaxSim, nDCG@10, peak RSS while
   searching (VmHWM reset after loading), latesearch's stage timings;
4. the issue's targets, checked from those figures.

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
# system -> (environment, label); environments: ls (this python), peers, fp, warp
SYSTEMS = {
    "latesearch": ("ls", "latesearch 2-bit, no fp16 tier"),
    "latesearch-full": ("ls", "latesearch 2-bit + fp16 tier"),
    "colbert-ai": ("peers", "colbert-ai PLAID 2-bit"),
    "pylate-fp": ("fp", "PyLate 1.6 fast-plaid 4-bit"),
    "pylate-warp": ("warp", "PyLate 1.6 WARP 4-bit"),
    "pylate-1.2": ("peers", "PyLate 1.2 PLAID 2-bit"),
    "exact": ("ls", "exhaustive fp32 MaxSim"),
}
LS_SYSTEMS = ("latesearch", "latesearch-full", "exact")
DEFAULT_SEARCHED = ("latesearch", "latesearch-full", "colbert-ai", "pylate-fp", "pylate-warp")
BASE = "latesearch"  # ratios are system ms / this system's ms on the same query
KS = (10, 100)
PEER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TORCH_EXTENSIONS_DIR": "/tmp/peers-torch-ext",
}
# colbert-ai's own settings by k (Searcher.dense_search picks them when none are configured,
# but keeps the first ones; they are set before every call here)
COLBERT_SEARCH = {
    10: {"ncells": 1, "centroid_score_threshold": 0.5, "ndocs": 256},
    100: {"ncells": 2, "centroid_score_threshold": 0.45, "ndocs": 1024},
}
# the issue's targets
MAX_BYTES_PER_TOKEN = 40.0
NDCG_TOLERANCE = 0.01


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


def folder_files(folder: Path) -> dict[str, int]:
    """Relative path -> bytes of every file under `folder`."""
    return {str(p.relative_to(folder)): p.stat().st_size
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def index_bytes(system: str, files: dict[str, int]) -> int:
    """The index proper: latesearch without its text store (docs.sqlite); PyLate 1.6's
    fast-plaid and WARP folders without the raw fp32 vectors (embeddings.npy) and the
    second copy of the codes they keep (merged_*, *.compacted.*); the others' whole
    folder."""
    if system in LS_SYSTEMS:
        return sum(n for p, n in files.items() if not Path(p).name.startswith("docs.sqlite"))
    if system in ("pylate-fp", "pylate-warp"):
        return sum(n for p, n in files.items() if not raw_or_copy(p))
    return sum(files.values())


def raw_or_copy(path: str) -> bool:
    name = Path(path).name.lower()
    return "embedding" in name or name.startswith("merged_") or ".compacted." in name


# ====================================================================== workers
class Worker:
    """The worker side: one system, commands as JSON lines on stdin, replies on the
    original stdout (the libraries' own prints are moved to stderr)."""

    def __init__(self, system: str, args: argparse.Namespace) -> None:
        self.system, self.args = system, args
        self.env = SYSTEMS[system][0]
        self.docs = load_docs(Path(args.corpus), args.n_docs)
        self.ids = [d["id"] for d in self.docs]
        self.queries = [q["text"] for q in load_queries(Path(args.data), args.n_queries)[0]]
        self.model: Any = None
        self.index: Any = None
        self.encoded: Any = None

    def folder(self) -> Path:
        return Path(self.args.work) / self.system

    # ---------------------------------------------------------------- models
    def _ls_model(self) -> Any:
        if self.model is None:
            import latesearch

            self.model = latesearch.ColBERT.from_pretrained(self.args.model, device="cpu")
        return self.model

    def _pylate_model(self) -> Any:
        if self.model is None:
            from pylate import models

            self.model = models.ColBERT(model_name_or_path=self.args.model, device="cpu")
        return self.model

    def _pylate_encode(self, texts: list[str], *, is_query: bool) -> list[Any]:
        import numpy as np

        out = self._pylate_model().encode(texts, is_query=is_query, batch_size=32,
                                          show_progress_bar=False)  # fmt: skip
        return [np.asarray(e, dtype=np.float32) for e in out]

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

        return ColBERTConfig(root=str(self.folder()), query_maxlen=32, doc_maxlen=180,
                             avoid_fork_if_possible=True, **kw)  # fmt: skip

    def _run_context(self) -> Any:
        from colbert.infra import Run, RunConfig

        return Run().context(RunConfig(nranks=1, experiment="e", root=str(self.folder()),
                                       avoid_fork_if_possible=True))  # fmt: skip

    def _pylate_index(self, *, override: bool) -> Any:
        from pylate import indexes

        folder = str(self.folder())
        if self.system == "pylate-fp":
            return indexes.PLAID(index_folder=folder, index_name="idx", override=override,
                                 device="cpu", show_progress=False,
                                 num_threads=self.args.threads)  # fmt: skip
        if self.system == "pylate-warp":
            return indexes.WARP(
                index_folder=folder,
                index_name="idx",
                override=override,
                device="cpu",
                show_progress=False,
                num_threads=self.args.threads,
            )
        return indexes.PLAID(index_folder=folder, index_name="idx", override=override, nbits=2)

    # ---------------------------------------------------------------- commands
    def embed(self, msg: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        queries, docs = msg["queries"], msg["docs"]
        if self.env == "ls":
            model = self._ls_model()
            q = model.encode_queries(queries).float().numpy()
            d = [t.float().numpy() for t in model.encode_documents(docs)]
        elif self.system == "colbert-ai":
            from colbert.modeling.checkpoint import Checkpoint

            ckpt = Checkpoint(self.args.model, colbert_config=self._colbert_config())
            q = ckpt.queryFromText(queries).float().numpy()
            flat, lens = ckpt.docFromText(docs, bsize=32, keep_dims="flatten", to_cpu=True)
            d = [t.float().numpy() for t in flat.split(list(lens))]
        else:
            q = np.stack(self._pylate_encode(queries, is_query=True))
            d = self._pylate_encode(docs, is_query=False)
        np.savez(msg["out"], q=q, **{f"d{i}": x for i, x in enumerate(d)})
        return {"ok": True}

    def build(self, msg: dict[str, Any]) -> dict[str, Any]:
        import shutil

        folder = self.folder()
        if folder.exists():
            shutil.rmtree(folder)
        texts = [doc_text(d) for d in self.docs]
        out: dict[str, Any] = {}
        if self.env == "ls":
            import latesearch

            model = self._ls_model()
            fields = ({"nbits": None, "precision": 32} if self.system == "exact"
                      else {"nbits": 2, "keep_full": self.system == "latesearch-full"})  # fmt: skip
            t0 = time.perf_counter()
            index = latesearch.Index.build([dict(d) for d in self.docs], folder, model,
                                           progress=False, **fields)  # fmt: skip
            out["seconds"] = time.perf_counter() - t0
            out["n_tokens"] = int(index.store.n_embeddings)
        elif self.system == "colbert-ai":
            from colbert import Indexer

            self._colbert_extensions()
            t0 = time.perf_counter()
            with self._run_context():
                cfg = self._colbert_config(nbits=2)
                Indexer(checkpoint=self.args.model, config=cfg).index(
                    name="idx", collection=texts, overwrite=True
                )
            out["seconds"] = time.perf_counter() - t0
            meta = next(folder.rglob("metadata.json"))
            out["n_tokens"] = int(json.loads(meta.read_text())["num_embeddings"])
            folder = meta.parent  # the index itself, not the run's logs
        else:
            self._pylate_model()
            if self.system == "pylate-1.2":
                self._colbert_extensions()
            t0 = time.perf_counter()
            embs = self._pylate_encode(texts, is_query=False)
            t1 = time.perf_counter()
            index = self._pylate_index(override=True)
            index.add_documents(documents_ids=self.ids, documents_embeddings=embs)
            out["seconds"] = time.perf_counter() - t0
            out["encode_seconds"] = t1 - t0
            out["n_tokens"] = int(sum(len(e) for e in embs))
        files = folder_files(folder)
        out["bytes"] = index_bytes(self.system, files)
        out["bytes_folder"] = sum(files.values())
        out["files"] = files
        out["folder"] = str(folder)
        out["peak_rss_mib"] = peak_rss_mib()
        return out

    def load(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self.env == "ls":
            import latesearch

            self.index = latesearch.Index.load(self.folder(), self._ls_model())
            _ = self.index.model
        elif self.system == "colbert-ai":
            from colbert import Searcher

            self._colbert_extensions()
            with self._run_context():
                self.index = Searcher(index="idx", checkpoint=self.args.model,
                                      config=self._colbert_config(), verbose=0)  # fmt: skip
            self.encoded = self.index.encode(self.queries)
        else:
            if self.system == "pylate-1.2":
                from pylate import retrieve

                self._colbert_extensions()
                self.index = retrieve.ColBERT(index=self._pylate_index(override=False))
            else:
                self.index = self._pylate_index(override=False)
            self.encoded = self._pylate_encode(self.queries, is_query=True)
        for i in range(min(3, len(self.queries))):  # warm-up
            for k in KS:
                self.search({"qi": i, "k": k})
        return {"peak_rss_mib_load": peak_rss_mib(), "reset": reset_peak_rss()}

    def search(self, msg: dict[str, Any]) -> dict[str, Any]:
        qi, k = msg["qi"], msg["k"]
        if self.env == "ls":
            mode = "exact" if self.system == "exact" else "e2e"
            hits = self.index.search(self.queries[qi], k=k, mode=mode)
            t = self.index.last_timings
            return {"ids": [h.doc_id for h in hits], "ms": (t.total - t.encode) * 1e3,
                    "stages": t.to_dict()}  # fmt: skip
        if self.system == "colbert-ai":
            self.index.configure(**COLBERT_SEARCH[k])
            t0 = time.perf_counter()
            pids, _, _ = self.index.dense_search(self.encoded[qi : qi + 1], k=k)
            ms = (time.perf_counter() - t0) * 1e3
            return {"ids": [self.ids[int(p)] for p in pids], "ms": ms}
        t0 = time.perf_counter()
        if self.system == "pylate-1.2":
            res = self.index.retrieve(queries_embeddings=[self.encoded[qi]], k=k)
        else:
            res = self.index([self.encoded[qi]], k=k)
        ms = (time.perf_counter() - t0) * 1e3
        return {"ids": [str(r["id"]) for r in res[0]], "ms": ms}

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
        except Exception:  # reported to the driver
            import traceback

            out = {"error": traceback.format_exc()}
        reply.write(json.dumps(out) + "\n")


# ====================================================================== driver
def python_of(system: str, args: argparse.Namespace) -> str:
    env = SYSTEMS[system][0]
    return {"ls": sys.executable, "peers": args.peers_python, "fp": args.fp_python,
            "warp": args.warp_python or args.fp_python}[env]  # fmt: skip


def thread_env(threads: int) -> dict[str, str]:
    """The same thread settings for every system."""
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "RAYON_NUM_THREADS": n,
            "OMP_WAIT_POLICY": "PASSIVE"}  # fmt: skip


class Proc:
    """The driver side of one worker process."""

    def __init__(self, system: str, args: argparse.Namespace, threads: int, log: Path) -> None:
        peer = SYSTEMS[system][0] != "ls"
        env = dict(os.environ, **PEER_ENV) if peer else dict(os.environ)
        env.update(thread_env(threads))
        if peer:
            env.pop("PYTHONPATH", None)
        else:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        cmd = [python_of(system, args), str(Path(__file__).resolve()), "worker",
               "--system", system, "--threads", str(threads), "--model", str(args.model),
               "--work", str(args.work), "--corpus", str(args.corpus), "--data",
               str(args.data), "--n-docs", str(args.n_docs),
               "--n-queries", str(args.n_queries)]  # fmt: skip
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
    """Max abs difference of each library's embeddings from latesearch's (one system per
    environment)."""
    import numpy as np

    q = [x["text"] for x in queries[:3]]
    d = [doc_text(x) for x in docs[:5]]
    arrays, out = {}, {}
    envs = {SYSTEMS[s][0]: s for s in reversed(args.systems) if SYSTEMS[s][0] != "ls"}
    for system in ("latesearch", *envs.values()):
        path = Path(args.work) / f"embed-{system}.npz"
        try:
            proc = Proc(system, args, 2, log)
            proc.call("embed", queries=q, docs=d, out=str(path))
            proc.close()
        except SystemExit as err:
            out[system] = {"error": str(err)}
            continue
        arrays[system] = dict(np.load(path))
    ref = arrays["latesearch"]
    for system in envs.values():
        if system not in arrays:
            continue
        other = arrays[system]
        equal = all(ref[key].shape == other[key].shape for key in ref)
        diff = max(float(np.abs(ref[key] - other[key]).max()) for key in ref) if equal else None
        out[system] = {
            "max_abs_diff": diff,
            "shapes_equal": equal,
            "doc_tokens": [int(other[f"d{i}"].shape[0]) for i in range(len(d))],
        }
    out["latesearch_doc_tokens"] = [int(ref[f"d{i}"].shape[0]) for i in range(len(d))]
    return out


def builds(args: argparse.Namespace, log: Path, systems: Any) -> dict[str, Any]:
    cache = Path(args.work) / "builds.json"
    done = json.loads(cache.read_text()) if cache.exists() else {}
    for system in systems:
        if args.rebuild and system in done:
            del done[system]
        if system in done and (Path(args.work) / system).exists():
            continue
        print(f"building {system} ...", flush=True)
        try:
            proc = Proc(system, args, args.build_threads, log)
            stats = proc.call("build")
            proc.close()
        except SystemExit as err:  # reported in the results, the others go on
            print(err, flush=True)
            done[system] = {"error": str(err)}
            continue
        stats["docs_per_s"] = args.n_docs / stats["seconds"]
        stats["bytes_per_token"] = stats["bytes"] / stats["n_tokens"]
        stats["bytes_per_token_folder"] = stats["bytes_folder"] / stats["n_tokens"]
        stats["threads"] = args.build_threads
        stats["load_avg_after"] = os.getloadavg()[0]
        done[system] = stats
        cache.write_text(json.dumps(done, indent=1))
        print(f"  {system}: {stats['docs_per_s']:.2f} docs/s, "
              f"{stats['bytes_per_token']:.1f} B/token", flush=True)  # fmt: skip
    return done


def reference(args: argparse.Namespace, n: int, log: Path) -> list[list[str]]:
    """Exhaustive fp32 MaxSim's top 100 of each query."""
    proc = Proc("exact", args, args.build_threads, log)
    proc.call("load")
    top = [proc.call("search", qi=i, k=max(KS))["ids"] for i in range(n)]
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
    procs, loaded = [], {}
    for system in args.systems:
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
    ms = {(s, k): [] for s in systems for k in KS}
    overlap = {(s, k): [] for s in systems for k in KS}
    ndcg: dict[str, list[float]] = {s: [] for s in systems}
    stages = {(s, k): [] for s in systems if SYSTEMS[s][0] == "ls" for k in KS}
    loads = [os.getloadavg()[0]]
    for i, query in enumerate(queries):
        order = procs[i % len(procs) :] + procs[: i % len(procs)]
        for k in KS:
            for proc in order:
                res = proc.call("search", qi=i, k=k)
                ms[proc.system, k].append(res["ms"])
                overlap[proc.system, k].append(len(set(res["ids"][:k]) & set(exact[i][:k])) / k)
                if k == 10:
                    ndcg[proc.system].append(ndcg10(res["ids"], qrels[query["id"]]))
                if (proc.system, k) in stages:
                    stages[proc.system, k].append(res["stages"])
        loads.append(os.getloadavg()[0])
    rss = {p.system: p.call("rss")["peak_rss_mib"] for p in procs}
    for proc in procs:
        proc.close()
    out: dict[str, Any] = {
        "threads": threads,
        "load_avg_median": statistics.median(loads),
        "load_avg_max": max(loads),
        "systems": {},
        "errors": {s: v["error"] for s, v in loaded.items() if "error" in v},
    }
    for system in systems:
        row: dict[str, Any] = {
            "ndcg_at_10": statistics.fmean(ndcg[system]),
            "peak_rss_mib_searching": rss[system],
            "peak_rss_mib_loading": loaded[system]["peak_rss_mib_load"],
            "hwm_reset_after_load": loaded[system]["reset"],
        }
        for k in KS:
            row[f"k{k}"] = {"ms_median": statistics.median(ms[system, k]),
                            "ms_p95": pct(ms[system, k], 95),
                            f"overlap_at_{k}": statistics.fmean(overlap[system, k]),
                            "ms_per_query": ms[system, k]}  # fmt: skip
            if BASE in systems:
                ratios = [a / b for a, b in zip(ms[system, k], ms[BASE, k], strict=True)]
                row[f"k{k}"]["ratio_median"] = statistics.median(ratios)
                row[f"k{k}"]["ratio_p95"] = pct(ratios, 95)
            if (system, k) in stages:
                row[f"k{k}"]["stage_ms_median"] = {
                    key: statistics.median(s[key] for s in stages[system, k]) * 1e3
                    for key in ("candidates", "interaction", "gather", "score", "total",
                                "encode")}  # fmt: skip
                row[f"k{k}"]["scored_docs_median"] = statistics.median(
                    s["n_candidates"] for s in stages[system, k]
                )
        out["systems"][system] = row
    return out


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for latesearch's 2-bit index without the fp16 tier, from this
    run: faster than every peer (median per-query ratio > 1 at k=10 and k=100, every
    thread count), <= 40 bytes per text token, nDCG@10 within 0.01 of exhaustive MaxSim,
    overlap@10 no lower than the best peer's."""
    peers = [s for s in r["systems"] if SYSTEMS[s][0] != "ls"]
    bpt = r["builds"][BASE]["bytes_per_token"]
    rows = [
        {
            "target": f"<= {MAX_BYTES_PER_TOKEN:.0f} bytes per text token",
            "holds": bpt <= MAX_BYTES_PER_TOKEN,
            "figures": f"{bpt:.1f} B/token",
        }
    ]
    for rnd in r["search"]:
        sy = rnd["systems"]
        if BASE not in sy:
            continue
        t = rnd["threads"]
        for k in KS:
            ratios = {p: sy[p][f"k{k}"]["ratio_median"] for p in peers if p in sy}
            slowest = min(ratios.values(), default=float("inf"))
            rows.append(
                {
                    "target": f"faster than every peer, {t} thread(s), k={k}",
                    "holds": slowest > 1.0,
                    "figures": ", ".join(f"{p} {v:.2f}x" for p, v in ratios.items()),
                }
            )
        exact_ndcg = r["exact_ndcg_at_10"]
        mine = sy[BASE]["ndcg_at_10"]
        rows.append(
            {
                "target": f"nDCG@10 within {NDCG_TOLERANCE} of exhaustive, {t} thread(s)",
                "holds": mine >= exact_ndcg - NDCG_TOLERANCE,
                "figures": f"{mine:.3f} vs {exact_ndcg:.3f}",
            }
        )
        best = max(
            ((sy[p]["k10"]["overlap_at_10"], p) for p in peers if p in sy), default=(0.0, "none")
        )
        ours = sy[BASE]["k10"]["overlap_at_10"]
        rows.append(
            {
                "target": f"overlap@10 >= best peer's, {t} thread(s)",
                "holds": ours >= best[0],
                "figures": f"{ours:.3f} vs {best[1]} {best[0]:.3f}",
            }
        )
    return rows


def versions(python: str, packages: tuple[str, ...]) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys\nout = {}\n"
            "for p in sys.argv[1:]:\n    try:\n        out[p] = m.version(p)\n"
            "    except m.PackageNotFoundError:\n        pass\nprint(json.dumps(out))")  # fmt: skip
    try:
        out = subprocess.run([python, "-c", code, *packages], capture_output=True,
                             text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as err:
        return {"error": str(err)}
    return json.loads(out.stdout)


def markdown(r: dict[str, Any]) -> str:
    b = r["builds"]
    label = {s: v[1] for s, v in SYSTEMS.items()}
    v = r["versions"]
    lines = [
        "# latesearch vs colbert-ai PLAID, PyLate 1.6 fast-plaid and PyLate WARP (CPU)",
        "",
        f"Machine: {r['machine_line']}. latesearch: torch {r['machine']['torch']}. Peers: "
        + "; ".join(
            f"{env}: " + ", ".join(f"{p} {x}" for p, x in pkgs.items()) for env, pkgs in v.items()
        )
        + ".",
        "",
        f"SciFact, first {r['n_docs']} documents, {r['n_queries']} test queries, the same "
        f"weights in every system (`{r['model']}`). Each system at its defaults: latesearch "
        "at its engine defaults for the model (`EngineParams.for_k(k, ...)`, lookup-table "
        "scoring of the 2-bit codes), with and without the fp16 tier (`keep_full`); "
        f"colbert-ai at PLAID's settings for k ({COLBERT_SEARCH}); PyLate 1.6's "
        "`indexes.PLAID` (fast-plaid: nbits 4, n_ivf_probe 8, n_full_scores 8192) and "
        "`indexes.WARP` (xtr-warp-rs: nbits 4, search parameters chosen by xtr-warp, "
        "num_threads = the thread count). Search ms exclude query encoding (the peers' "
        "queries encoded up front; latesearch: total - last_timings.encode). Each query "
        "goes to every system at k=10 then k=100, systems in rotating order, each a "
        "long-lived worker with the same thread settings (OMP_NUM_THREADS, "
        "MKL_NUM_THREADS, RAYON_NUM_THREADS, torch threads, OMP_WAIT_POLICY=PASSIVE); "
        f"ratio = system ms / {label[BASE]} ms on the same query (median of the per-query "
        "ratios: above 1 means latesearch is faster). Overlap@k with exhaustive fp32 MaxSim "
        "(latesearch mode='exact' over an uncompressed float32 index, nDCG@10 "
        f"{r['exact_ndcg_at_10']:.3f}). Builds: encode + index, model loading excluded, "
        f"{r['build_threads']} threads, one at a time.",
        "",
        "Command:",
        "",
        "```bash",
        r["command"],
        "```",
        "",
        "## Equal embeddings (3 queries, 5 documents; max abs diff vs latesearch)",
        "",
    ]
    for system, e in r["embeddings"].items():
        if system != "latesearch_doc_tokens":
            lines.append(
                f"- {system}: "
                + (
                    e["error"].splitlines()[-1]
                    if "error" in e
                    else f"max abs diff {e['max_abs_diff']}, shapes equal {e['shapes_equal']}"
                )
            )
    lines += ["", "## Builds", "",
              "| system | build docs/s | tokens | bytes/token, index | bytes/token, folder "
              "| peak RSS MiB |", "|---|---|---|---|---|---|"]  # fmt: skip
    for system in (*r["systems"], "exact"):
        s = b.get(system, {})
        if "error" in s or not s:
            lines.append(
                f"| {label[system]} | failed: "
                f"{s.get('error', 'not built').strip().splitlines()[-1][:200]} |||||"
            )
            continue
        lines.append(f"| {label[system]} | {s['docs_per_s']:.2f} | {s['n_tokens']:,} | "
                     f"{s['bytes_per_token']:.1f} | {s['bytes_per_token_folder']:.1f} | "
                     f"{s['peak_rss_mib']:,.0f} |")  # fmt: skip
    for rnd in r["search"]:
        lines += ["", f"## Search, {rnd['threads']} thread(s) (load average median "
                  f"{rnd['load_avg_median']:.1f}, max {rnd['load_avg_max']:.1f})", "",
                  "| system | k=10 ms median / p95 | ratio k=10 | k=100 ms median / p95 | "
                  "ratio k=100 | overlap@10 | overlap@100 | nDCG@10 | peak RSS MiB |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for system, s in rnd["systems"].items():
            a, c = s["k10"], s["k100"]
            lines.append(
                f"| {label[system]} | {a['ms_median']:.1f} / {a['ms_p95']:.1f} | "
                f"{a.get('ratio_median', float('nan')):.2f} | "
                f"{c['ms_median']:.1f} / {c['ms_p95']:.1f} | "
                f"{c.get('ratio_median', float('nan')):.2f} | {a['overlap_at_10']:.3f} | "
                f"{c['overlap_at_100']:.3f} | {s['ndcg_at_10']:.3f} | "
                f"{s['peak_rss_mib_searching']:,.0f} |"
            )
        for system, err in rnd.get("errors", {}).items():
            lines.append(
                f"| {label[system]} | failed: {err.strip().splitlines()[-1][:200]} ||||||||"
            )
        for system, s in rnd["systems"].items():
            for k in KS:
                st = s[f"k{k}"].get("stage_ms_median")
                if st:
                    lines += [
                        "",
                        f"{label[system]}, k={k}, stage medians (ms): "
                        + ", ".join(
                            f"{key} {val:.1f}" for key, val in st.items() if key != "encode"
                        )
                        + f"; documents scored {s[f'k{k}']['scored_docs_median']:.0f}",
                    ]
    lines += [
        "",
        "## Targets (latesearch 2-bit, no fp16 tier)",
        "",
        "| target | holds | figures |",
        "|---|---|---|",
    ]
    for t in r["targets"]:
        lines.append(f"| {t['target']} | {'yes' if t['holds'] else 'no'} | {t['figures']} |")
    lines += [
        "",
        "Bytes per token, index: latesearch's folder without its text store "
        "(docs.sqlite); PyLate 1.6's fast-plaid and WARP folders without the raw fp32 "
        "vectors and the second copy of the codes they keep (merged_*, *.compacted.*); the others' "
        "whole index folder (PyLate's id mappings included). Folder: everything the "
        "system wrote. Peak RSS: VmHWM of the searching worker, reset after loading "
        "and warm-up (the resident index + model + what searching adds).",
        "",
    ]
    return "\n".join(lines)


def driver_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import describe, machine_info

    Path(args.work).mkdir(parents=True, exist_ok=True)
    log = Path(args.work) / "workers.log"
    docs = load_docs(Path(args.corpus), args.n_docs)
    queries, qrels = load_queries(Path(args.data), args.n_queries)
    print(f"{len(docs)} documents, {len(queries)} queries", flush=True)
    pkgs = ("pylate", "colbert-ai", "fast-plaid", "xtr-warp-rs", "faiss-cpu", "torch",
            "transformers", "sentence-transformers")  # fmt: skip
    envs = {SYSTEMS[s][0] for s in args.systems} - {"ls"}
    result: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info(),
        "versions": {e: versions(python_of(next(s for s in args.systems
                                                if SYSTEMS[s][0] == e), args), pkgs)
                     for e in sorted(envs)},
        "n_docs": len(docs), "n_queries": len(queries), "model": str(args.model),
        "build_threads": args.build_threads, "colbert_search": COLBERT_SEARCH,
        "load_avg_start": os.getloadavg(),
    }  # fmt: skip
    result["machine_line"] = describe(result["machine"])
    result["embeddings"] = check_embeddings(args, docs, queries, log)
    print("embeddings:", json.dumps(result["embeddings"]), flush=True)
    result["builds"] = builds(args, log, (*args.systems, "exact"))
    exact = reference(args, len(queries), log)
    result["exact_ndcg_at_10"] = statistics.fmean(
        ndcg10(ids, qrels[q["id"]]) for ids, q in zip(exact, queries, strict=True)
    )
    result["search"] = []
    result["systems"] = list(args.systems)
    for threads in args.threads:
        print(f"search round, {threads} thread(s)", flush=True)
        result["search"].append(search_round(args, threads, queries, exact, qrels, log))
        for system, s in result["search"][-1]["systems"].items():
            print(
                f"  {system}: "
                + ", ".join(
                    f"k={k} {s[f'k{k}']['ms_median']:.1f} ms ratio "
                    f"{s[f'k{k}'].get('ratio_median', float('nan')):.2f}"
                    for k in KS
                )
                + f", overlap@10 {s['k10']['overlap_at_10']:.3f}",
                flush=True,
            )
        result["targets"] = targets(result)
        result["load_avg_end"] = os.getloadavg()
        args.out.mkdir(parents=True, exist_ok=True)  # written after every round
        (args.out / f"{args.stem}.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / f"{args.stem}.md").write_text(markdown(result))
    print(f"wrote {args.out / args.stem}.json and .md")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "role",
        nargs="?",
        default="run",
        choices=("run", "build", "worker"),
        help="run: everything; build: only the builds; worker: internal",
    )
    p.add_argument(
        "--systems",
        nargs="+",
        default=list(DEFAULT_SEARCHED),
        choices=[s for s in SYSTEMS if s != "exact"],
        help="the systems compared (the exhaustive reference is always built)",
    )
    p.add_argument(
        "--peers-python", default="/tmp/peers/bin/python", help="colbert-ai 0.2.22 (and PyLate 1.2)"
    )
    p.add_argument("--fp-python", default="/tmp/fp/bin/python", help="PyLate 1.6 + fast-plaid")
    p.add_argument(
        "--warp-python", default=None, help="PyLate 1.6 + xtr-warp-rs (default: --fp-python)"
    )
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
    p.add_argument("--stem", default="peers-cpu", help="results file name, without suffix")
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
        builds(a, Path(a.work) / "workers.log", (*a.systems, "exact"))
    else:
        driver_main(a)
