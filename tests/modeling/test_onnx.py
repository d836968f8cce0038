"""The ONNX Runtime encoder backend: same embeddings as torch (fp32), int8 close, the
cache (reuse, invalidation, damage, location), the missing-extra error, Index and CLI."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch

from latesearch import ColBERT
from latesearch.errors import ConfigError
from latesearch.modeling import onnx

QUERIES = ["what is late interaction?", "cat", "protein cell gene drug study result effect",
           "the river city", "music", "data model", "how fast is colbert"]  # fmt: skip
DOCS = [
    "colbert is a late interaction model.",
    "the cat sat in the house",
    "",
    "protein cell gene drug study result effect patient disease " * 8,
    "a",
    "music science data energy physics particle",
]
OVERRIDES = {"dim": 16, "query_maxlen": 12, "doc_maxlen": 24}


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory):
    """Every export of this module goes to a private cache, never a shared model folder."""
    folder = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(onnx.CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def ort():
    return pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def torch_model(tiny_bert_dir):
    return ColBERT.from_pretrained(tiny_bert_dir, device="cpu", **OVERRIDES)


@pytest.fixture(scope="module")
def onnx_model(ort, tiny_bert_dir):
    return ColBERT.from_pretrained(tiny_bert_dir, device="cpu", backend="onnx", **OVERRIDES)


def test_fp32_queries_and_documents_equal_torch(torch_model, onnx_model):
    assert onnx_model.backend == "onnx" and onnx_model.onnx_encoder.precision == "fp32"
    for n in (1, 3, len(QUERIES)):
        expected = torch_model.encode_queries(QUERIES[:n])
        found = onnx_model.encode_queries(QUERIES[:n])
        assert found.shape == expected.shape
        assert torch.allclose(found, expected, atol=1e-5)
    for batch_size in (1, 4, 64):
        expected = torch_model.encode_documents(DOCS, batch_size=batch_size)
        found = onnx_model.encode_documents(DOCS, batch_size=batch_size)
        for want, got in zip(expected, found, strict=True):
            assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)


def test_fp32_pooled_output_equals_torch(torch_model, onnx_model):
    want_q, want_mask, want_pooled = torch_model.encode_queries_and_pooled(QUERIES)
    got_q, got_mask, got_pooled = onnx_model.encode_queries_and_pooled(QUERIES)
    assert torch.equal(got_mask, want_mask)
    assert torch.allclose(got_q, want_q, atol=1e-5)
    assert torch.allclose(got_pooled, want_pooled, atol=1e-5)
    batch = torch_model.tokenizer.documents(DOCS)
    with torch.inference_mode():
        want_d, want_p = torch_model.embed_and_pool(batch)
        got_d, got_p = onnx_model.embed_and_pool(batch)
    assert torch.allclose(got_d, want_d, atol=1e-5) and torch.allclose(got_p, want_p, atol=1e-5)


def test_threads_stop_spinning_after_a_run(onnx_model):
    """Busy-waiting runtime threads would slow the search stages that follow on the CPU."""
    options = onnx_model.onnx_encoder.session.get_session_options()
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"


def test_passes_with_gradients_run_in_torch(onnx_model):
    batch = onnx_model.tokenizer.queries(QUERIES[:2])
    with torch.enable_grad():
        assert onnx_model.forward_queries(batch).requires_grad


def test_the_cache_is_reused(ort, onnx_model, tiny_bert_dir, monkeypatch):
    assert onnx_model.onnx_encoder.path.parent.parent == onnx.cache_root(onnx_model)

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx, "export", no_export)
    again = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", backend="onnx", **OVERRIDES)
    assert not again.onnx_encoder.exported
    assert again.onnx_encoder.path == onnx_model.onnx_encoder.path
    meta = json.loads((again.onnx_encoder.path.parent / onnx.META_FILE).read_text())
    assert meta["key"]["fingerprint"] == onnx_model.fingerprint()
    assert meta["key"]["onnxruntime"] == ort.__version__
    assert not [p for p in again.onnx_encoder.path.parent.parent.iterdir()
                if p.name.startswith(".")]  # fmt: skip  # no staging folder left


def test_changed_weights_export_again(ort, tiny_bert_dir, torch_model, onnx_model):
    changed = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", **OVERRIDES)
    with torch.no_grad():
        changed.linear.weight.mul_(-1.0)
    onnx.attach_onnx(changed)
    assert changed.onnx_encoder.exported
    assert changed.onnx_encoder.path != onnx_model.onnx_encoder.path
    expected = torch_model.encode_queries(QUERIES)
    assert torch.allclose(changed.encode_queries(QUERIES), -expected, atol=1e-5)
    onnx.detach_onnx(changed)
    assert changed.backend == "torch" and changed.onnx_encoder is None
    assert torch.allclose(changed.encode_queries(QUERIES), -expected, atol=1e-6)


def test_a_damaged_entry_is_exported_again(ort, tiny_bert_dir, torch_model, tmp_path):
    model = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", **OVERRIDES)
    first = onnx.load_encoder(model, cache_dir=tmp_path)
    size = first.path.stat().st_size
    first.path.write_bytes(b"\0" * size)  # same size: only the runtime can tell
    second = onnx.load_encoder(model, cache_dir=tmp_path)
    assert second.exported and second.path == first.path
    onnx.attach_onnx(model, cache_dir=tmp_path)
    expected = torch_model.encode_queries(QUERIES)
    assert torch.allclose(model.encode_queries(QUERIES), expected, atol=1e-5)


def test_int8_runs_and_is_close(ort, tiny_bert_dir, torch_model):
    model = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", backend="onnx",
                                    onnx_precision="int8", onnx_threads=1, **OVERRIDES)  # fmt: skip
    encoder = model.onnx_encoder
    assert (encoder.precision, encoder.threads, model.onnx_precision) == ("int8", 1, "int8")
    assert encoder.path.parent.name.startswith("int8-")
    import onnx as onnx_lib

    ops = [node.op_type for node in onnx_lib.load(str(encoder.path)).graph.node]
    # every weight MatMul quantized: 2 layers x (query, key, value, output, FFN in, out) + head
    assert ops.count("MatMulNBits") == 2 * 6 + 1 and "DynamicQuantizeLinear" not in ops
    expected, mask = torch_model.encode_queries(QUERIES, return_mask=True)
    found = model.encode_queries(QUERIES)
    cosine = (found * expected).sum(-1)[mask] / found.norm(dim=-1)[mask]
    assert cosine.min() > 0.99
    for want, got in zip(torch_model.encode_documents(DOCS), model.encode_documents(DOCS),
                         strict=True):  # fmt: skip
        assert got.shape == want.shape and (got * want).sum(-1).min() > 0.99


def test_missing_onnxruntime_says_how_to_install(tiny_bert_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(ConfigError, match=r'pip install "latesearch\[onnx\]"'):
        ColBERT.from_pretrained(tiny_bert_dir, device="cpu", backend="onnx", **OVERRIDES)
    from latesearch import Index

    with pytest.raises(ConfigError, match=r"latesearch\[onnx\]"):
        Index(None, backend="onnx")  # before anything is loaded


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"backend": "onxx"}, "backend"), ({"backend": "onnx", "onnx_precision": "int4"},
     "onnx_precision"), ({"backend": "onnx", "onnx_threads": 0}, "onnx_threads")],
)  # fmt: skip
def test_bad_options(tiny_bert_dir, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        ColBERT.from_pretrained(tiny_bert_dir, device="cpu", **kwargs)


def test_cache_location(ort, tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(onnx.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = shutil.copytree(tiny_bert_dir, tmp_path / "model")
    model = ColBERT.from_pretrained(folder, device="cpu", **OVERRIDES)
    assert onnx.cache_root(model) == folder.resolve() / onnx.FOLDER_NAME  # writable
    assert onnx.cache_root(model, tmp_path / "x") == tmp_path / "x"
    model.source = str(onnx.PACKAGE / "resources")  # never written into the package
    assert onnx.cache_root(model) == tmp_path / "xdg" / "latesearch" / "onnx"
    del model.source  # a model built in memory
    assert onnx.cache_root(model) == tmp_path / "xdg" / "latesearch" / "onnx"


@pytest.fixture(scope="module")
def index_folder(tmp_path_factory, torch_model):
    from latesearch import Index

    folder = tmp_path_factory.mktemp("onnx-index") / "index"
    docs = [{"_id": f"d{i}", "text": text} for i, text in enumerate(DOCS * 3)]
    Index.build(docs, folder, torch_model, progress=False)
    return folder


def test_index_load_with_the_onnx_backend(ort, index_folder):
    from latesearch import Index

    torch_index = Index.load(index_folder)
    onnx_index = Index.load(index_folder, backend="onnx")
    for query in QUERIES[:3]:
        want, got = torch_index.search(query, k=5), onnx_index.search(query, k=5)
        assert [h.doc_id for h in got] == [h.doc_id for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-4)
    assert onnx_index.model.backend == "onnx" and onnx_index.model.onnx_encoder is not None
    assert onnx_index.reloaded().model is onnx_index.model
    assert getattr(torch_index.model, "onnx_encoder", None) is None


def test_cli_search_with_the_onnx_backend(ort, index_folder, capsys):
    from latesearch.cli.main import main

    def hits(*extra: str) -> list[dict]:
        assert main(["search", str(index_folder), QUERIES[0], "-k", "4", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)["hits"]

    want = hits()
    for got in (hits("--backend", "onnx"),
                hits("--backend", "onnx", "--onnx-precision", "int8", "--onnx-threads", "1")):
        assert len(got) == len(want)
    got = hits("--backend", "onnx")
    assert [h["doc_id"] for h in got] == [h["doc_id"] for h in want]
    assert [h["score"] for h in got] == pytest.approx([h["score"] for h in want], abs=1e-4)


def _tiny_backbone(folder, tiny_bert_dir, architecture: str):
    """A random 2-layer backbone of `architecture` with the tiny BERT's tokenizer."""
    import transformers

    vocab = len(transformers.AutoTokenizer.from_pretrained(str(tiny_bert_dir)))
    common = {"vocab_size": vocab, "hidden_size": 32, "num_attention_heads": 2,
              "pad_token_id": 0}  # fmt: skip
    configs = {
        "distilbert": lambda: transformers.DistilBertConfig(
            vocab_size=vocab, dim=32, n_layers=2, n_heads=2, hidden_dim=64, pad_token_id=0),
        "xlm-roberta": lambda: transformers.XLMRobertaConfig(
            **common, num_hidden_layers=2, intermediate_size=64, max_position_embeddings=130),
        "modernbert": lambda: transformers.ModernBertConfig(
            **common, num_hidden_layers=2, intermediate_size=64, max_position_embeddings=128,
            global_attn_every_n_layers=2, local_attention=16),
    }
    torch.manual_seed(3)
    transformers.AutoModel.from_config(configs[architecture]()).save_pretrained(str(folder))
    for path in tiny_bert_dir.iterdir():
        if path.name not in ("config.json", "model.safetensors"):
            shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.parametrize("architecture", ["distilbert", "xlm-roberta", "modernbert"])
def test_fp32_equals_torch_on_other_architectures(ort, tiny_bert_dir, tmp_path, architecture):
    folder = _tiny_backbone(tmp_path / architecture, tiny_bert_dir, architecture)
    reference = ColBERT.from_pretrained(folder, device="cpu", **OVERRIDES)
    exported = ColBERT.from_pretrained(folder, device="cpu", backend="onnx", **OVERRIDES)
    assert torch.allclose(exported.encode_queries(QUERIES), reference.encode_queries(QUERIES),
                          atol=1e-5)  # fmt: skip
    docs = zip(exported.encode_documents(DOCS), reference.encode_documents(DOCS), strict=True)
    for ours, theirs in docs:
        assert ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-5)


def test_int8_with_a_4bit_only_onnxruntime_says_which_version(ort, tiny_bert_dir, tmp_path,
                                                             monkeypatch):  # fmt: skip
    from onnxruntime.quantization import matmul_nbits_quantizer

    class FourBitOnly:  # the quantizer of onnxruntime < 1.24: no `bits`
        def __init__(self, model, block_size=128, is_symmetric=False, accuracy_level=None):
            raise AssertionError("not to be reached")

    monkeypatch.setattr(matmul_nbits_quantizer, "MatMulNBitsQuantizer", FourBitOnly)
    model = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", **OVERRIDES)
    with pytest.raises(ConfigError, match=r"int8 needs onnxruntime >= 1\.24"):
        onnx.attach_onnx(model, "int8", cache_dir=tmp_path)
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["fp32"]  # no int8 left
