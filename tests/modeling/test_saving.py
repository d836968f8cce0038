"""Saving: the files colbert-ai, PyLate and latesearch read back alike, the model card,
push_to_hub (with a fake hub), and fingerprints unchanged by later config fields."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from latesearch import ColBERT
from latesearch.modeling.colbert import LATER_FIELDS, fingerprint_config
from latesearch.modeling.config import ColBERTConfig
from latesearch.modeling.default import DEFAULT_MODEL_DIR
from latesearch.modeling.delta import DELTA_FILE, file_sha256
from latesearch.modeling.head import ProjectionHead, head_layers
from latesearch.modeling.saving import push_to_hub

QUERIES = ["what is late interaction?", "cat and dog"]
DOCS = ["colbert is a late interaction model.", "the cat sat in the house"]
# the shipped default (v18) and its fingerprint, as recorded by the indexing benchmark
# (benchmarks/results/indexing-cpu.json, "model_fingerprint") and the prebuilt indexes
DEFAULT_DELTA_SHA256 = "2ab7704c66207939f9eeed37f1f3cd3d00279d64e82dddc9575f216309419d05"
DEFAULT_FINGERPRINT = "5196871aa4b9f7e6286d13ccf249c334fab786c2358adc085b2219e662acaaf3"
TWO_LAYERS = [
    {"in_features": 32, "out_features": 24, "bias": True, "activation": "tanh"},
    {"in_features": 24, "out_features": 16, "residual": True},
]


def read_json(path: Path):
    """A JSON file's content."""
    return json.loads(path.read_text(encoding="utf-8"))


def random_state(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Random tensors for every weight of a module, drawn from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=generator)
            for k, v in sorted(module.state_dict().items())}


def build_model(folder: Path, *, seed: int = 0, **settings) -> ColBERT:
    """A ColBERT over the tiny BERT in `folder` (dim 16, lengths 12/24 unless `settings`
    say otherwise) with random head weights."""
    from transformers import AutoModel, AutoTokenizer

    config = ColBERTConfig(**{"dim": 16, "query_maxlen": 12, "doc_maxlen": 24, **settings})
    head = random_state(ProjectionHead(head_layers(config, 32)), seed)
    return ColBERT(AutoModel.from_pretrained(str(folder)),
                   AutoTokenizer.from_pretrained(str(folder)), config, head, device="cpu")


def assert_same_embeddings(a: ColBERT, b: ColBERT) -> None:
    torch.testing.assert_close(a.encode_queries(QUERIES), b.encode_queries(QUERIES),
                               atol=1e-6, rtol=0)
    for x, y in zip(a.encode_documents(DOCS), b.encode_documents(DOCS), strict=True):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0)


def remove(folder: Path, *names: str) -> None:
    """Delete files and folders of a checkpoint (to leave one library's files only)."""
    for name in names:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


@pytest.fixture(scope="module")
def plain(tiny_bert_dir) -> ColBERT:
    """The paper's head, without markers or [MASK] expansion (as the shipped default)."""
    return build_model(tiny_bert_dir, markers=False, query_augmentation=False, seed=1)


@pytest.fixture(scope="module")
def two_layer(tiny_bert_dir) -> ColBERT:
    """A head of two Dense layers (bias, tanh; a residual projection), as mxbai-edge's."""
    return build_model(tiny_bert_dir, head=TWO_LAYERS, seed=2, query_augmentation=False)


# ---------------------------------------------------------------- the paper's head
def test_settings_without_markers_or_expansion_are_written_for_every_library(plain, tmp_path):
    folder = plain.save_pretrained(tmp_path / "ckpt")
    meta = read_json(folder / "artifact.metadata")
    assert meta["markers"] is False and meta["query_augmentation"] is False
    assert (meta["dim"], meta["query_maxlen"], meta["doc_maxlen"]) == (16, 12, 24)
    assert meta["skiplist_lookup"] == "encode" and meta["strip_text"] is False
    pylate = read_json(folder / "config_sentence_transformers.json")
    assert (pylate["query_prefix"], pylate["document_prefix"]) == ("", "")
    assert pylate["do_query_expansion"] is False
    assert (pylate["query_length"], pylate["document_length"]) == (12, 24)
    assert read_json(folder / "sentence_bert_config.json") == \
        {"max_seq_length": 24, "do_lower_case": False}
    assert read_json(folder / "latesearch_config.json") == plain.config.to_dict()
    assert read_json(folder / "config.json")["architectures"] == ["HF_ColBERT"]
    modules = read_json(folder / "modules.json")
    assert [(m["path"], m["type"]) for m in modules] == [
        ("", "sentence_transformers.models.Transformer"), ("1_Dense", "pylate.models.Dense.Dense")]
    assert read_json(folder / "1_Dense" / "config.json") == {
        "in_features": 32, "out_features": 16, "bias": False,
        "activation_function": "torch.nn.modules.linear.Identity"}  # PyLate 1.2 reads it
    weight = plain.linear.weight.detach()
    assert torch.equal(load_file(folder / "1_Dense" / "model.safetensors")["linear.weight"], weight)
    assert torch.equal(load_file(folder / "model.safetensors")["linear.weight"], weight)


def test_markers_and_expansion_are_written_as_prefixes(tiny_bert_dir, tmp_path):
    model = build_model(tiny_bert_dir, attend_to_mask_tokens=True, mask_punctuation=False)
    folder = model.save_pretrained(tmp_path / "ckpt")
    pylate = read_json(folder / "config_sentence_transformers.json")
    assert (pylate["query_prefix"], pylate["document_prefix"]) == ("[unused0]", "[unused1]")
    assert pylate["do_query_expansion"] and pylate["attend_to_expansion_tokens"]
    assert pylate["skiplist_words"] == []
    meta = read_json(folder / "artifact.metadata")
    assert (meta["query_token_id"], meta["doc_token_id"]) == ("[unused0]", "[unused1]")
    assert meta["markers"] is True and meta["mask_punctuation"] is False


@pytest.mark.parametrize("kept, layout", [
    (("artifact.metadata",), "colbert-ai"),  # colbert-ai's files only
    (("modules.json", "1_Dense", "config_sentence_transformers.json"), "pylate"),
    (("latesearch_config.json",), "latesearch"),  # an older latesearch checkpoint
])
def test_each_librarys_files_alone_encode_the_same(plain, tmp_path, kept, layout):
    folder = plain.save_pretrained(tmp_path / "ckpt")
    own = {"artifact.metadata", "modules.json", "1_Dense", "config_sentence_transformers.json",
           "latesearch_config.json", "README.md"}
    remove(folder, *(own - set(kept)))
    loaded = ColBERT.from_pretrained(folder, device="cpu")
    assert loaded.layout == layout
    assert_same_embeddings(plain, loaded)
    if layout == "pylate":  # PyLate's own text handling: stripped, vocabulary skiplist
        pylate = {"strip_text": True, "skiplist_lookup": "vocabulary"}
        assert loaded.config == dataclasses.replace(plain.config, **pylate)
    else:
        assert loaded.config == plain.config


def test_lowercase_is_written_as_do_lower_case(tiny_bert_dir, tmp_path):
    model = build_model(tiny_bert_dir, lowercase=True, strip_text=True,
                        skiplist_lookup="vocabulary")
    folder = model.save_pretrained(tmp_path / "ckpt")
    assert read_json(folder / "sentence_bert_config.json")["do_lower_case"] is True
    assert read_json(folder / "artifact.metadata")["lowercase"] is True
    remove(folder, "latesearch_config.json", "artifact.metadata")
    loaded = ColBERT.from_pretrained(folder, device="cpu")
    assert loaded.layout == "pylate" and loaded.config == model.config


# ---------------------------------------------------------------- heads of several layers
def test_a_multi_layer_head_is_saved_as_pylate_dense_folders(two_layer, tmp_path):
    folder = two_layer.save_pretrained(tmp_path / "ckpt")
    assert not (folder / "artifact.metadata").exists()
    weights = load_file(folder / "model.safetensors")
    assert "linear.weight" not in weights and all(k.startswith("bert.") for k in weights)
    assert read_json(folder / "config.json")["architectures"] == ["BertModel"]
    assert read_json(folder / "1_Dense" / "config.json") == {
        "in_features": 32, "out_features": 24, "bias": True,
        "activation_function": "torch.nn.modules.activation.Tanh"}
    assert read_json(folder / "2_Dense" / "config.json") == {
        "in_features": 24, "out_features": 16, "bias": False,
        "activation_function": "torch.nn.modules.linear.Identity", "use_residual": True}
    head = two_layer.head.state_dict()
    first, second = (load_file(folder / f"{i}_Dense" / "model.safetensors") for i in (1, 2))
    assert sorted(first) == ["linear.bias", "linear.weight"]
    assert torch.equal(first["linear.bias"], head["linear.bias"])
    assert sorted(second) == ["linear.weight", "residual.weight"]
    assert torch.equal(second["residual.weight"], head["residuals.1.weight"])
    assert [m["path"] for m in read_json(folder / "modules.json")] == ["", "1_Dense", "2_Dense"]


@pytest.mark.parametrize("drop", [(), ("latesearch_config.json",)])
def test_a_multi_layer_head_round_trips(two_layer, tmp_path, drop):
    folder = two_layer.save_pretrained(tmp_path / "ckpt")
    remove(folder, *drop)
    loaded = ColBERT.from_pretrained(folder, device="cpu")
    assert loaded.layout == ("pylate" if drop else "latesearch")
    assert loaded.config.head == two_layer.config.head
    assert_same_embeddings(two_layer, loaded)
    if not drop:  # the same model: the same fingerprint
        assert loaded.fingerprint() == two_layer.fingerprint()


def test_hofstaetter_like_settings_round_trip(tiny_bert_dir, tmp_path):
    head = [{"in_features": 32, "out_features": 16, "bias": True}]
    model = build_model(tiny_bert_dir, head=head, markers=False, normalize=False,
                        query_mask_tokens=8, attend_to_mask_tokens=True, query_maxlen=20)
    folder = model.save_pretrained(tmp_path / "ckpt")
    assert not (folder / "artifact.metadata").exists()  # a head with bias: not colbert-ai's
    loaded = ColBERT.from_pretrained(folder, device="cpu")
    assert loaded.config == model.config
    assert_same_embeddings(model, loaded)
    card = (folder / "README.md").read_text()
    assert "PyLate cannot encode this model as latesearch does" in card
    assert "it normalizes every vector" in card and "dot product (unnormalized)" in card


# ---------------------------------------------------------------- model card
def front_matter(card: str) -> dict[str, object]:
    """The README's YAML front matter (`key: value` lines and `- item` lists)."""
    lines = card.split("\n")
    assert lines[0] == "---"
    end = lines.index("---", 1)
    data: dict[str, object] = {}
    key = ""
    for line in lines[1:end]:
        if line.startswith("- "):
            data.setdefault(key, []).append(line[2:])
        else:
            key, _, value = line.partition(": ")
            key = key.rstrip(":")
            if value:
                data[key] = value
    return data


def test_model_card_has_front_matter_and_settings(plain, tmp_path):
    folder = plain.save_pretrained(tmp_path / "ckpt", base_model="google-bert/bert-base-uncased")
    card = (folder / "README.md").read_text()
    meta = front_matter(card)
    assert meta["base_model"] == "google-bert/bert-base-uncased"
    assert meta["library_name"] == "latesearch"
    assert {"ColBERT", "PyLate", "sentence-transformers"} <= set(meta["tags"])
    assert "| dimension | 16 |" in card
    assert "| query length | 12 tokens |" in card and "| document length | 24 tokens |" in card
    assert "| markers | none (the backbone's own `[CLS] text [SEP]`) |" in card
    assert "| query augmentation ([MASK] expansion) | no |" in card
    assert "| projection head | one bias-free linear layer 32 -> 16 |" in card
    assert "colbert-ai always adds markers" in card
    settings = card.split("```json\n")[1].split("\n```")[0]
    assert json.loads(settings) == plain.config.to_dict()


def test_model_card_names_markers_and_omits_a_local_base(two_layer, tmp_path):
    folder = two_layer.save_pretrained(tmp_path / "ckpt")
    card = (folder / "README.md").read_text()
    assert "base_model" not in front_matter(card)  # the backbone came from a local folder
    assert "| markers | '[unused0]' / '[unused1]' inserted after the first token |" in card
    assert "| projection head | 32 -> 24 + bias, tanh; 24 -> 16, residual |" in card
    assert "models.ColBERT(" in card  # PyLate encodes it as latesearch does


# ---------------------------------------------------------------- push_to_hub
class FakeHub:
    """Stands for huggingface_hub.HfApi: records each call and, at upload, the folder's
    files (the folder is temporary)."""

    made: list[FakeHub] = []

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.calls: list[tuple[str, dict]] = []
        FakeHub.made.append(self)

    def create_repo(self, repo_id: str, **kwargs) -> None:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, *, repo_id: str, folder_path: str, commit_message: str):
        root = Path(folder_path)
        files = {p.relative_to(root).as_posix(): p.read_bytes()
                 for p in sorted(root.rglob("*")) if p.is_file()}
        self.calls.append(("upload_folder", {"repo_id": repo_id, "folder": root, "files": files,
                                             "commit_message": commit_message}))
        return SimpleNamespace(commit_url=f"https://hub.example/{repo_id}/commit/1")


def saved_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_push_to_hub_uploads_what_saving_writes(plain, tmp_path):
    hub = FakeHub()
    url = push_to_hub(lambda f: plain.save_pretrained(f, base_model="org/base"), "me/tiny",
                      private=True, commit_message="first", api=hub)
    assert url == "https://hub.example/me/tiny/commit/1"
    assert [name for name, _ in hub.calls] == ["create_repo", "upload_folder"]
    assert hub.calls[0][1] == {"repo_id": "me/tiny", "private": True, "exist_ok": True}
    upload = hub.calls[1][1]
    assert (upload["repo_id"], upload["commit_message"]) == ("me/tiny", "first")
    assert not upload["folder"].exists()  # the temporary folder is gone afterwards
    local = saved_files(plain.save_pretrained(tmp_path / "ckpt", base_model="org/base"))
    assert upload["files"].keys() == local.keys()
    for name in ("model.safetensors", "artifact.metadata", "README.md",
                 "1_Dense/model.safetensors"):
        assert upload["files"][name] == local[name]


def test_colbert_push_to_hub_passes_token_and_base_model(plain, monkeypatch):
    import huggingface_hub

    FakeHub.made.clear()
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    url = plain.push_to_hub("me/tiny", token="t0k", base_model="org/base")
    assert url.endswith("/me/tiny/commit/1")
    [hub] = FakeHub.made
    assert hub.token == "t0k"
    assert hub.calls[0][1]["private"] is None
    files = hub.calls[1][1]["files"]
    assert front_matter(files["README.md"].decode())["base_model"] == "org/base"
    assert hub.calls[1][1]["commit_message"] == "Upload latesearch ColBERT model"


# ---------------------------------------------------------------- fingerprints
LATER_VALUES = {
    "strip_text": True, "lowercase": True, "query_mask_tokens": 4, "skiplist": ["!"],
    "skiplist_lookup": "vocabulary", "drop_cls": True, "normalize": False,
    "head": [{"in_features": 32, "out_features": 128, "bias": True}],
    "doc_pooling": {"pool_factor": 2},
}  # fmt: skip


def test_later_fields_count_only_when_set():
    assert set(LATER_VALUES) == set(LATER_FIELDS)
    assert not set(fingerprint_config(ColBERTConfig())) & set(LATER_FIELDS)
    first_release = {f.name for f in dataclasses.fields(ColBERTConfig)} - set(LATER_FIELDS)
    assert set(fingerprint_config(ColBERTConfig())) == first_release
    for field, value in LATER_VALUES.items():
        changed = fingerprint_config(ColBERTConfig(**{field: value}))
        assert field in changed, field


@pytest.mark.parametrize("field", ["lowercase", "skiplist_lookup", "normalize"])
def test_a_later_field_changes_a_models_fingerprint(tiny_bert_dir, plain, field):
    settings = {"markers": False, "query_augmentation": False}
    same = build_model(tiny_bert_dir, seed=1, **settings)
    assert same.fingerprint() == plain.fingerprint()
    changed = build_model(tiny_bert_dir, seed=1, **settings, **{field: LATER_VALUES[field]})
    assert changed.fingerprint() != plain.fingerprint()


@pytest.mark.slow
@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / DELTA_FILE).is_file(), reason="no default shipped")
def test_the_default_models_fingerprint_is_the_recorded_one():
    manifest = read_json(DEFAULT_MODEL_DIR / DELTA_FILE)
    # the first release's fields only: the manifest predates the later ones
    assert set(manifest["colbert_config"]) == \
        {f.name for f in dataclasses.fields(ColBERTConfig)} - set(LATER_FIELDS)
    if file_sha256(DEFAULT_MODEL_DIR / "delta.safetensors") != DEFAULT_DELTA_SHA256:
        pytest.fail("the shipped default model changed: record its new fingerprint here")
    model = ColBERT.from_pretrained(device="cpu")
    assert model.fingerprint() == DEFAULT_FINGERPRINT
