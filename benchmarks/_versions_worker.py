"""One side of benchmarks/versions.py: loads the latesearch its PYTHONPATH names, opens the
index, encodes the queries once, then times searches on request.

Protocol: one JSON object a line on stdin, one answer a line on the original stdout (all
other output goes to stderr). Requests: {"op": "time", "mode": m, "k": k} runs one pass
over the queries, one query per call, and answers the seconds of each call and the top
ids; {"op": "quit"}. The first answer, unasked, describes this side. Uses only what every
version compared has: `Index.load`, `Index.search` (with `encoded=` where it exists),
`model.encode_queries(texts, return_mask=True)`.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library output cannot corrupt the protocol
    folder, model, threads = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
    queries = json.loads(sys.stdin.readline())

    import torch

    import latesearch
    from latesearch import Index

    index = Index.load(folder, model)
    _ = index.model  # loaded before the thread count changes (see _common.setup)
    torch.set_num_threads(threads)
    encoded_ok = "encoded" in inspect.signature(Index.search).parameters
    Q, mask = index.model.encode_queries(queries, return_mask=True)
    send(protocol, {"latesearch": latesearch.__file__, "encoded": encoded_ok,
                    "components": list(index.components), "n_docs": len(index)})  # fmt: skip
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        exclude = request["exclude_encoding"]
        seconds, tops = [], []
        for i, text in enumerate(queries):
            extra = {"encoded": (Q[i : i + 1], mask[i : i + 1])} if exclude else {}
            start = time.perf_counter()
            hits = index.search(text, k=request["k"], mode=request["mode"], **extra)
            seconds.append(time.perf_counter() - start)
            tops.append([h.doc_id for h in hits])
        send(protocol, {"seconds": seconds, "tops": tops})


def send(protocol, message: dict) -> None:
    protocol.write(json.dumps(message) + "\n")


if __name__ == "__main__":
    main()
