"""Indexes managed over HTTP: created from posted documents by a background job (polled,
cancelled, resumed after a kill -9 of the server), listed, deleted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from latesearch import Client  # noqa: E402
from latesearch.errors import AuthError, InputError, NotFoundError  # noqa: E402
from latesearch.serving import RunningServer, ServeConfig  # noqa: E402
from latesearch.serving.catalog import Catalog  # noqa: E402

KEY = "s3cret"
WORDS = "late interaction query search protein cell study music city river data".split()


def documents(n: int) -> list[dict]:
    return [{"id": f"n{i}", "text": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(6)),
             "title": f"new {i}", "metadata": {"year": 2000 + i % 5}}
            for i in range(n)]  # fmt: skip


@pytest.fixture
def server(tmp_path, tiny_colbert, index):
    catalog = Catalog(ServeConfig(), api_key=KEY, root=tmp_path / "root", model=tiny_colbert)
    (tmp_path / "root").mkdir()
    catalog.add("docs", index)
    catalog.start_jobs()
    with RunningServer(catalog, port=0, quiet=True) as server:
        yield server, catalog
    catalog.close()


def test_create_poll_search_then_delete(server, tiny_colbert):
    server, catalog = server
    with Client(server.url, api_key=KEY) as client:
        job = client.create_index("fresh", documents(20), config={"nbits": 2}, bm25=True)
        assert job["status"] in ("queued", "running") and job["index"] == "fresh"
        done = client.wait_job(job["id"], poll=0.1, timeout=120)
        assert done["status"] == "done" and done["progress"] == 1.0, done
        assert "fresh" in [row["name"] for row in client.indexes()]
        fresh = Client(server.url, index="fresh")
        expected = catalog.get("fresh").index.search("protein cell", k=5, mode="hybrid")
        hits = fresh.search("protein cell", k=5, mode="hybrid")
        assert [h.doc_id for h in hits] == [h.doc_id for h in expected] and len(hits) == 5
        assert fresh.health()["documents"] == 20
        with pytest.raises(InputError, match="served already"):
            client.create_index("fresh", documents(2))
        folder = catalog.root / "fresh"
        assert (folder / "manifest.json").is_file()
        with pytest.raises(InputError, match="index root"):
            client.delete_index("docs", delete_files=True)  # not under the root: refused
        assert client.delete_index("fresh", delete_files=True)["files_deleted"] is True
        assert not folder.exists() and "fresh" not in catalog.services
        with pytest.raises(NotFoundError):
            fresh.search("protein")
        assert client.delete_index("docs")["files_deleted"] is False  # unloaded only
        assert client.indexes() == []
        fresh.close()


def test_writes_need_the_key_and_bad_requests_name_their_field(server):
    server, catalog = server
    with Client(server.url) as anonymous:
        with pytest.raises(AuthError):
            anonymous.create_index("x", documents(2))
        with pytest.raises(AuthError):
            anonymous.delete_index("docs")
    with Client(server.url, api_key=KEY) as client:
        with pytest.raises(InputError) as caught:
            client.create_index("y", documents(2), config={"nbits": 3})
        assert caught.value.field == "config.nbits"
        answer = httpx.post(f"{server.url}/indexes/y", headers={"X-API-Key": KEY},
                            json={"documents": [*documents(2), documents(1)[0]]})  # fmt: skip
        assert answer.status_code == 400 and answer.json()["field"] == "documents.2.id"
        with pytest.raises(InputError) as caught:
            client.create_index("bad name!", documents(2))
        assert caught.value.field == "name"
        with pytest.raises(NotFoundError):
            client.job("nope")
        catalog.config = ServeConfig(max_documents=1)  # the server's --max-documents
        with pytest.raises(InputError, match="at most 1") as caught:
            client.create_index("z", documents(2))
        assert caught.value.field == "documents"
    assert not any((catalog.root / ".jobs").glob("*.jsonl"))  # nothing was queued


def test_cancel_leaves_nothing(server):
    server, catalog = server
    with Client(server.url, api_key=KEY) as client:
        small = {"batch_size": 2, "group_size": 2, "chunk_size": 2}
        job = client.create_index("gone", documents(30), config=small)
        client.cancel_job(job["id"])
        final = client.wait_job(job["id"], poll=0.05, timeout=120)
        assert final["status"] == "cancelled" and final["cancel_requested"]
        assert "gone" not in [row["name"] for row in client.indexes()]
        assert not (catalog.root / "gone").exists()
        assert not (catalog.root / "gone.building").exists()
        # the name is free again
        again = client.wait_job(client.create_index("gone", documents(3))["id"], timeout=120)
        assert again["status"] == "done"


def test_a_killed_server_resumes_its_build(tmp_path, tiny_colbert):
    model = tiny_colbert.save_pretrained(tmp_path / "model")
    root = tmp_path / "root"
    root.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LATESEARCH_API_KEY": KEY,
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    command = [sys.executable, "-m", "latesearch", "serve", "--index-root", str(root),
               "--model", str(model), "--port", "0", "--quiet"]  # fmt: skip

    def start() -> tuple[subprocess.Popen, str]:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)  # fmt: skip
        line = proc.stdout.readline()
        assert " at http://" in line, (line, proc.stderr.read() if proc.poll() else "")
        return proc, line.split(" at ")[1].split()[0]

    proc, url = start()
    try:
        with Client(url, api_key=KEY) as client:
            small = {"batch_size": 2, "group_size": 2, "chunk_size": 2}
            job = client.create_index("big", documents(150), config=small)
            deadline = time.monotonic() + 120
            while client.job(job["id"])["documents_done"] < 10:  # some chunks are saved
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    record = json.loads((root / ".jobs" / f"{job['id']}.json").read_text())
    assert record["status"] == "running" and record["documents_done"] < 150
    assert (root / "big.building" / "progress.json").is_file()

    proc, url = start()
    try:
        with Client(url, api_key=KEY) as client:
            done = client.wait_job(job["id"], poll=0.1, timeout=300)
            assert done["status"] == "done" and done["resumed"] == 1, done
            big = Client(url, index="big")
            assert big.health()["documents"] == 150
            assert len(big.search("protein cell", k=10)) == 10
            big.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (root / "big.building").exists()


def test_the_async_client_manages_indexes(server):
    from latesearch import AsyncClient

    server, catalog = server

    async def manage() -> None:
        async with AsyncClient(server.url, api_key=KEY) as client:
            job = await client.create_index("quick", documents(6))
            assert (await client.wait_job(job["id"], poll=0.05, timeout=120))["status"] == "done"
            assert sorted(r["name"] for r in await client.indexes()) == ["docs", "quick"]
            assert (await client.job(job["id"]))["documents"] == 6
            await client.delete_index("quick", delete_files=True)
            assert [r["name"] for r in await client.indexes()] == ["docs"]

    asyncio.run(manage())
    assert not (catalog.root / "quick").exists()
