"""Fault injection: what a damaged file or a kill -9 does to an index.

On the demo collection (409 docstrings, the default model, compressed with the fp16 tier
and bm25/, groups and chunks of 64 documents so that kills land between chunks):

- byte flips: for each file of the index, --flips times, a copy with 1-8 random bytes
  flipped (or, one time in four, truncated) is opened, verified, and searched in every
  mode. Outcomes: refused on open, caught by verify, harmless (searches work and give the
  original's answers), silent (searches differ and nothing complained), or a raw
  exception (a bug);
- kill -9 during a build, --kills times, at a random moment: the target folder is then
  absent (nothing published) or a complete index; `--resume` finishes the build, and the
  result must equal an uninterrupted build's answers;
- kill -9 during an update (add 40 documents, delete 5), --kills times: the index must
  then open, verify, and hold either the old or the new documents, nothing in between.

    python tests/stress/faults.py [--flips 10] [--kills 10]

Writes benchmarks/results/faults-cpu.json and .md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # _common
from _common import REPO, RESULTS, write_results  # noqa: E402
from _machine import describe, machine_info  # noqa: E402

DEMO = REPO / "latesearch" / "resources" / "demo" / "collection.jsonl"
QUERIES = ["read a json file", "sort a list", "open a zip file", "current time"]
BUILD = ["--bm25", "--group-size", "64", "--chunk-size", "64", "--quiet"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flips", type=int, default=10, help="damaged copies per file (10)")
    p.add_argument("--kills", type=int, default=10, help="kills during builds and updates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        docs = [json.loads(line) for line in DEMO.read_text().splitlines()]
        base, extra = docs[:300], docs[300:340]
        write_jsonl(work / "base.jsonl", base)
        write_jsonl(work / "extra.jsonl", extra)
        started = time.perf_counter()
        cli("index", str(work / "base.jsonl"), str(work / "reference"), *BUILD)
        build_seconds = time.perf_counter() - started
        reference = answers(work / "reference")
        flips = flip_files(work / "reference", reference, args.flips, rng, work)
        builds = kill_builds(work, reference, build_seconds, args.kills, rng)
        updates = kill_updates(work, args.kills, rng, [d["_id"] for d in base[:5]])
        update_seconds = updates.pop()
    payload = {"benchmark": "faults", "machine": machine_info(), "build_seconds":
               round(build_seconds, 1), "update_seconds": update_seconds, "flips": flips,
               "builds": builds, "updates": updates}  # fmt: skip
    write_results(args.out, "faults-cpu", payload, markdown(payload))
    print(markdown(payload))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def cli(*argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "latesearch", *argv], capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"latesearch {' '.join(argv)} failed: {done.stderr[-800:]}")
    return done


def answers(folder: Path) -> dict[str, list[str]]:
    """Top-5 ids per query and mode, from a fresh process (the index as a user opens it)."""
    code = (
        "import json, sys\nfrom latesearch import Index\n"
        "index = Index.load(sys.argv[1])\nindex.store.verify()\nout = {}\n"
        "for mode in ('e2e', 'rerank', 'exact'):\n"
        "    for q in json.loads(sys.argv[2]):\n"
        "        out[mode + ':' + q] = [h.doc_id for h in index.search(q, k=5, mode=mode)]\n"
        "print(json.dumps({'n_docs': len(index), 'answers': out}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(folder), json.dumps(QUERIES)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout)


def flip_files(index: Path, reference: dict[str, Any], n: int, rng: random.Random,
               work: Path) -> dict[str, Any]:  # fmt: skip
    from latesearch import Index
    from latesearch.errors import LatesearchError
    from latesearch.indexing import IndexStore

    files = sorted(p.relative_to(index) for p in index.rglob("*") if p.is_file())
    model = Index.load(index).model
    outcomes: dict[str, dict[str, int]] = {}
    for name in files:
        counts = outcomes.setdefault(str(name), {})
        for _ in range(n):
            copy = work / "damaged"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(index, copy)
            damage(copy / name, rng)
            outcome = "harmless"
            try:
                store = IndexStore.open(copy)
            except LatesearchError:
                outcome = "refused on open"
            except Exception as err:  # noqa: BLE001 (counted: a bug)
                outcome = f"raw {type(err).__name__}"
            else:
                try:
                    store.verify()
                    got = {}
                    searching = Index(store, model)
                    for mode in ("e2e", "rerank", "exact"):
                        for q in QUERIES:
                            hits = searching.search(q, k=5, mode=mode, return_text=True)
                            got[f"{mode}:{q}"] = [h.doc_id for h in hits]
                    if got != reference["answers"]:
                        outcome = "silent (answers differ)"
                except LatesearchError as err:
                    outcome = "caught by verify" if "checksum" in str(err) else "refused on use"
                except Exception as err:  # noqa: BLE001
                    outcome = f"raw {type(err).__name__}"
                finally:
                    store.close()
            counts[outcome] = counts.get(outcome, 0) + 1
    return outcomes


def damage(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    if not data:
        return
    if rng.random() < 0.25:
        del data[rng.randrange(len(data)) :]
    else:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    path.write_bytes(bytes(data))


def run_and_kill(argv: list[str], delay: float) -> bool:
    """Run `latesearch ARGV`; kill -9 it after `delay` seconds unless it ended. Killed?"""
    proc = subprocess.Popen([sys.executable, "-m", "latesearch", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode == -signal.SIGKILL


def kill_builds(work: Path, reference: dict[str, Any], seconds: float, n: int,
                rng: random.Random) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for i in range(n):
        target = work / f"build-{i}"
        delay = rng.uniform(0.1, 1.0) * seconds
        killed = run_and_kill(["index", str(work / "base.jsonl"), str(target), *BUILD], delay)
        published = target.is_dir()
        state = answers(target) if published else None
        row = {"kill_after_s": round(delay, 1), "killed": killed, "published": published,
               "published_complete": None if state is None else state == reference}
        if not published:
            cli("index", str(work / "base.jsonl"), str(target), *BUILD, "--resume")
        row["after_resume_equal"] = answers(target) == reference
        rows.append(row)
    return rows


def kill_updates(work: Path, n: int, rng: random.Random, delete: list[str]) -> list[Any]:
    """The rows of `n` killed updates, then the seconds of an uninterrupted one (timed
    first, to place the kills inside the update)."""
    timed = work / "update-timed"
    shutil.copytree(work / "reference", timed)
    started = time.perf_counter()
    cli("update", str(timed), "--add", str(work / "extra.jsonl"), "--delete", *delete, "--quiet")
    seconds = round(time.perf_counter() - started, 1)
    rows: list[Any] = []
    for i in range(n):
        folder = work / f"update-{i}"
        shutil.copytree(work / "reference", folder)
        before = answers(folder)
        started = time.perf_counter()
        delay = rng.uniform(0.1, 1.0) * seconds
        killed = run_and_kill(["update", str(folder), "--add", str(work / "extra.jsonl"),
                               "--delete", *delete, "--quiet"], delay)  # fmt: skip
        after = answers(folder)
        n_docs = after.get("n_docs")
        rows.append({"kill_after_s": round(delay, 1), "killed": killed,
                     "update_seconds": round(time.perf_counter() - started, 1),
                     "opens_and_verifies": "error" not in after,
                     "documents": n_docs, "old": n_docs == before.get("n_docs") and after == before,
                     "new": n_docs == before.get("n_docs", 0) + 40 - len(delete)})  # fmt: skip
    return [*rows, seconds]


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Fault injection ({describe(r['machine'])})", "",
             "Demo collection (300 docstrings), default model, compressed index with the fp16 "
             f"tier and bm25/, groups and chunks of 64 documents (build {r['build_seconds']} "
             "s).", "", "## Byte flips and truncations", "",
             "| file | outcomes |", "|---|---|"]  # fmt: skip
    for name, counts in r["flips"].items():
        lines.append(f"| {name} | " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
                     + " |")  # fmt: skip
    b = r["builds"]
    lines += ["", "## kill -9 during a build", "",
              "Kills at a random moment within the uninterrupted build's time. "
              f"{sum(x['killed'] for x in b)} of {len(b)} builds killed; published after a "
              f"kill: {sum(x['published'] and x['killed'] for x in b)}; every published one "
              f"complete: {all(x['published_complete'] in (None, True) for x in b)}; "
              f"equal to an uninterrupted build after `--resume`: "
              f"{sum(x['after_resume_equal'] for x in b)} of {len(b)}."]  # fmt: skip
    u = r["updates"]
    lines += ["", "## kill -9 during an update", "",
              f"An uninterrupted update takes {r['update_seconds']} s; kills at a random "
              "moment within it. "
              f"{sum(x['killed'] for x in u)} of {len(u)} updates killed; the index opened and "
              f"verified afterwards: {sum(x['opens_and_verifies'] for x in u)} of {len(u)}; "
              f"held the old version: {sum(x['old'] for x in u)}, the new: "
              f"{sum(x['new'] for x in u)}, neither: "
              f"{sum(not (x['old'] or x['new']) for x in u)}."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
