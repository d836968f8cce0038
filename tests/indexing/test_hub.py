"""Prebuilt indexes on the Hub (`indexing.hub`, `Index.push_to_hub` / `from_hub`, the
`push` / `pull` commands) against a local folder-backed stand-in of `HfApi`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latesearch import Index, ShardedIndex
from latesearch.errors import ConfigError, IndexCorruptError, IndexExistsError
from latesearch.indexing import hub
from latesearch.indexing.hub_manifest import HUB_MANIFEST, HubManifest
from latesearch.indexing.manifest import Manifest
from latesearch.modeling.default import default_model_path

from .conftest import make_docs, write_jsonl
from .hub_standin import Interrupted, LocalHub

MODEL_REPO = "tests/tiny-colbert"
REPO = "tests/tiny-index"
SETTINGS = {"n_centroids": 8, "chunk_size": 16, "bm25": True}
EVALUATION = {"dataset": "tiny", "nDCG@10": 0.5}


@pytest.fixture(scope="module")
def published(tmp_path_factory, tiny_colbert):
    """(stand-in hub holding the tiny model and an index of 40 documents, the index)."""
    root = tmp_path_factory.mktemp("hub")
    api = LocalHub(root / "remote")
    tiny_colbert.push_to_hub(MODEL_REPO, api=api)
    corpus = write_jsonl(root / "corpus.jsonl", make_docs(40))
    index = Index.build(corpus, root / "index", tiny_colbert, progress=False, **SETTINGS)
    index.push_to_hub(REPO, model_repo=MODEL_REPO, evaluation=EVALUATION, api=api)
    return api, index


@pytest.fixture
def api(published, tmp_path):
    """A fresh copy of the published stand-in hub (tests may tamper with it)."""
    import shutil

    copy = LocalHub(tmp_path / "remote")
    shutil.copytree(published[0].root, copy.root)
    return copy


def test_push_uploads_the_files_a_manifest_and_a_card(published):
    api, index = published
    remote = api.files(REPO)
    hub_manifest = HubManifest.load(remote / HUB_MANIFEST)
    local = sorted(p.relative_to(index.folder).as_posix() for p in index.folder.rglob("*")
                   if p.is_file() and not p.name.startswith("."))  # fmt: skip
    assert sorted(hub_manifest.files) == local
    assert hub_manifest.model.repo_id == MODEL_REPO
    assert hub_manifest.model.fingerprint == index.store.manifest.model_fingerprint
    card = (remote / "README.md").read_text()
    assert "library_name: latesearch" in card and "| documents | 40 |" in card
    assert "| nDCG@10 | 0.5 |" in card and "| nbits | 2 |" in card and "bm25" in card
    assert f'Index.from_hub("{REPO}")' in card


def test_from_hub_verifies_and_searches_as_the_original(published, api, tmp_path,
                                                       monkeypatch):  # fmt: skip
    monkeypatch.setenv("LATESEARCH_CACHE", str(tmp_path / "cache"))
    _, original = published
    pulled = Index.from_hub(REPO, api=api)
    assert pulled.folder.parent == tmp_path / "cache" / "hub" / "datasets--tests--tiny-index"
    assert pulled.folder.name == api.repo_info(REPO, repo_type="dataset").sha
    for mode in ("e2e", "rerank", "exact"):
        want = original.search("late interaction model", k=5, mode=mode)
        assert pulled.search("late interaction model", k=5, mode=mode) == want
    assert pulled.verify().complete  # hub files left out of the index folder
    assert "tiny-colbert" in Manifest.read(pulled.folder).model_source
    count = len(api.downloaded)
    again = Index.from_hub(REPO, api=api)  # the pulled copy is reused
    assert again.folder == pulled.folder and len(api.downloaded) == count


def test_a_tampered_file_is_refused_and_nothing_is_left(api, tmp_path):
    remote = api.files(REPO, revision=None)
    victim = sorted(remote.glob("chunks/*.residuals.npy"))[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    target = tmp_path / "pulled"
    with pytest.raises(IndexCorruptError, match=r"residuals.npy: checksum mismatch.*removed"):
        hub.pull(REPO, target, api=api)
    assert not target.exists() and not list(tmp_path.glob(".pulled*"))


@pytest.mark.parametrize("damage", ["missing", "extra", "model", "no manifest", "escape"])
def test_incomplete_or_inconsistent_repositories_are_refused(api, tmp_path, damage):
    remote = api.files(REPO)
    if damage == "missing":
        (remote / "docs.sqlite").unlink()
    elif damage == "extra":
        (remote / "chunks" / "99999.codes.npy").write_bytes(b"x")
    elif damage == "model":
        data = json.loads((remote / HUB_MANIFEST).read_text())
        data["model"]["fingerprint"] = "0" * 64
        (remote / HUB_MANIFEST).write_text(json.dumps(data))
    elif damage == "escape":
        data = json.loads((remote / HUB_MANIFEST).read_text())
        data["files"]["../outside"] = {"bytes": 1, "sha256": "0" * 64}
        (remote / HUB_MANIFEST).write_text(json.dumps(data))
    else:
        (remote / HUB_MANIFEST).unlink()
    message = {
        "missing": "docs.sqlite: missing",
        "extra": "not in latesearch_hub.json",
        "model": "was built with model",
        "no manifest": "not a latesearch index",
        "escape": "malformed checksum entry",
    }
    with pytest.raises(IndexCorruptError, match=message[damage]):
        hub.pull(REPO, tmp_path / "pulled", api=api)
    assert not (tmp_path / "pulled").exists() and not list(tmp_path.glob(".pulled*"))


def test_an_interrupted_download_resumes(api, tmp_path):
    target = tmp_path / "pulled"
    api.fail_after = 5
    with pytest.raises(Interrupted) as caught:
        hub.pull(REPO, target, api=api)
    assert "resumes" in "".join(caught.value.__notes__)
    assert not target.exists() and (tmp_path / ".pulled.download").is_dir()
    first = list(api.downloaded)
    hub.pull(REPO, target, api=api)
    assert not set(first) & set(api.downloaded[len(first) :])  # nothing fetched twice
    assert Index.load(target).search("late interaction", k=3)
    assert not (tmp_path / ".pulled.download").exists()


def test_pull_never_replaces_a_folder_it_did_not_pull(api, published, tmp_path):
    with pytest.raises(IndexExistsError):
        hub.pull(REPO, published[1].folder, api=api)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(IndexExistsError):
        Index.from_hub(REPO, folder=other, api=api)
    assert (other / "notes.txt").read_text() == "keep me"


def test_push_refuses_a_local_model_and_a_damaged_index(published, api, tmp_path):
    _, index = published
    with pytest.raises(ConfigError, match="model_repo"):
        index.push_to_hub("tests/other", api=api)
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(index.folder, broken)
    victim = sorted(broken.glob("chunks/*.codes.npy"))[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum mismatch"):
        hub.push(broken, "tests/broken", model_repo=MODEL_REPO, api=api)
    assert not (api.root / "dataset" / "tests" / "broken").exists()
    assert not list(tmp_path.glob(".broken.push"))


def test_a_second_push_removes_files_the_index_no_longer_has(api, published, tmp_path):
    _, index = published
    import shutil

    copy = tmp_path / "index"
    shutil.copytree(index.folder, copy)
    smaller = Index.load(copy)
    shutil.rmtree(copy / "bm25")
    smaller.store.manifest.seal(copy)  # the index without its BM25 component
    hub.push(copy, REPO, model_repo=MODEL_REPO, api=api)
    assert not (api.files(REPO) / "bm25").exists()
    assert (api.files(REPO) / "manifest.json").is_file()


def test_the_card_shows_evaluate_json_output():
    from latesearch.indexing.index_card import evaluation_rows

    run = {"data": "scifact/test", "mode": "e2e", "aggregate": {"nDCG@10": 0.70921, "AP": 0.6}}
    assert evaluation_rows(run) == [("data", "scifact/test"), ("mode", "e2e"),
                                    ("nDCG@10", 0.7092), ("AP", 0.6)]  # fmt: skip
    preset = {
        "preset": "nanobeir",
        "metrics": ["nDCG@10"],
        "rows": [{"set": "NanoA", "nDCG@10": 0.5}, {"set": "mean", "nDCG@10": 0.25}],
    }
    assert evaluation_rows(preset)[1:] == [("NanoA nDCG@10", 0.5), ("mean nDCG@10", 0.25)]


def test_model_references():
    fp = "f" * 64
    default = Manifest.__new__(Manifest)
    default.model_source = str(default_model_path())
    assert hub.model_reference(default, fp, None, None).default
    cached = Manifest.__new__(Manifest)
    cached.model_source = "/h/.cache/huggingface/hub/models--org--name/snapshots/abc123"
    ref = hub.model_reference(cached, fp, None, None)
    assert (ref.repo_id, ref.revision, ref.default) == ("org/name", "abc123", False)
    assert hub.model_reference(cached, fp, "me/model", "v1").repo_id == "me/model"


def test_a_sharded_index_round_trips(tmp_path, tiny_colbert, published, api, monkeypatch):
    monkeypatch.setenv("LATESEARCH_CACHE", str(tmp_path / "cache"))
    corpus = write_jsonl(tmp_path / "corpus.jsonl", make_docs(30))
    sharded = ShardedIndex.build(corpus, tmp_path / "sharded", tiny_colbert, n_shards=2,
                                 progress=False, n_centroids=8)  # fmt: skip
    sharded.push_to_hub("tests/sharded", model_repo=MODEL_REPO, api=api)
    pulled = ShardedIndex.from_hub("tests/sharded", api=api)
    from latesearch.cli.main import main

    monkeypatch.setattr(hub, "hub_api", lambda api_=None, token=None: api)
    assert main(["push", str(tmp_path / "sharded"), "tests/sharded-cli", "--model-repo",
                 MODEL_REPO]) == 0  # fmt: skip
    pushed = HubManifest.load(api.files("tests/sharded-cli") / HUB_MANIFEST)
    assert (pushed.kind, pushed.indexes) == ("sharded", ("shard-000", "shard-001"))
    want = sharded.search("late interaction", k=5, mode="exact")
    assert pulled.search("late interaction", k=5, mode="exact") == want
    remote = api.files("tests/sharded")
    assert "2 shards" in (remote / "README.md").read_text()
    victim = sorted(remote.glob("shard-001/chunks/*.codes.npy"))[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError):
        hub.pull("tests/sharded", tmp_path / "again", api=api)
    sharded.close()
    pulled.close()


def test_the_push_and_pull_commands(api, published, tmp_path, monkeypatch, capsys):
    from latesearch.cli.main import main

    monkeypatch.setattr(hub, "hub_api", lambda api_=None, token=None: api)
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"nDCG@10": 0.25}))
    index_dir = str(published[1].folder)
    assert main(["push", index_dir, "tests/cli", "--model-repo", MODEL_REPO,
                 "--evaluation", str(evaluation), "--collection", "Tiny"]) == 0  # fmt: skip
    assert "tests/cli" in json.loads(capsys.readouterr().out)["repo"]
    card = (api.files("tests/cli") / "README.md").read_text()
    assert "# Tiny: a prebuilt latesearch index" in card and "| nDCG@10 | 0.25 |" in card
    assert main(["pull", "tests/cli", str(tmp_path / "pulled")]) == 0
    assert json.loads(capsys.readouterr().out)["n_docs"] == 40
    assert main(["pull", "tests/cli", str(tmp_path / "pulled")]) == 2  # exists
    assert main(["push", index_dir, "tests/cli2"]) == 2  # local model, no --model-repo
    assert "model_repo" in capsys.readouterr().err
    assert Path(tmp_path / "pulled" / "manifest.json").is_file()
