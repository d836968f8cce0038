"""`latesearch serve --workers 2`: two processes on one port, each with its own model,
answering like one; their metrics summed; SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")


def test_workers_share_the_port_and_sum_their_metrics(index):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "latesearch", "serve", str(index.folder), "--port", "0",
         "--quiet", "--workers", "2", "-k", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "(2 workers;" in line, (line, proc.stderr.read() if proc.poll() else "")
        url = line.split(" at ")[1].split()[0]
        expected = [h.doc_id for h in index.search("protein cell", k=3)]
        for _ in range(6):
            with urllib.request.urlopen(url + "/search?q=protein+cell", timeout=120) as answer:
                assert [h["doc_id"] for h in json.loads(answer.read())["hits"]] == expected
        with urllib.request.urlopen(url + "/metrics", timeout=60) as answer:
            text = answer.read().decode()
        counted = [line for line in text.splitlines()
                   if line.startswith("latesearch_requests_total{") and 'status="200"' in line
                   and 'route="/search"' in line]  # fmt: skip
        assert counted and float(counted[0].rsplit(" ", 1)[1]) == 6
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
