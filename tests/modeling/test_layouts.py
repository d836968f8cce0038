"""Other libraries' checkpoint layouts, read from tiny random checkpoints built here (BERT,
DistilBERT, ModernBERT, XLM-RoBERTa): token ids and embeddings against hand computations."""

from __future__ import annotations

import json
import shutil
import string
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from latesearch import ColBERT
from latesearch.errors import CheckpointError, ConfigError
from latesearch.modeling.checkpoints import detect_layout
from latesearch.modeling.colbert import new_projection
from latesearch.modeling.config import ColBERTConfig
from latesearch.modeling.head import ProjectionHead, simplified
from latesearch.modeling.layouts import colbert_ai_metadata, pylate_values

HIDDEN = 32
WORDS = ["the", "a", "of", "and", "cat", "dog", "what", "is", "late", "interaction", "model"]
BERT_VOCAB = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
              *string.punctuation, *WORDS, "##s"]
XLMR_MARKERS = ["[QueryMarker]", "[DocumentMarker]"]
XLMR_VOCAB = ["<s>", "<pad>", "</s>", "<unk>", *[f"▁{w}" for w in WORDS], "▁",
              *string.punctuation, *string.ascii_lowercase, "<mask>", *XLMR_MARKERS]
PYLATE_PREFIXES = ["[Q] ", "[D] "]
QUERIES = ["what is late interaction?", "cat and dog"]
DOCS = ["the cat and the dog.", "cat ."]
BPE_CORPUS = [*QUERIES, *DOCS, "Cat AND Dog", "the model of a late interaction"]

Expected = tuple[list[int], list[int], list[bool]]  # ids, attention, scored rows


# ---------------------------------------------------------------- tiny backbones
def bert_ids(*tokens: str) -> list[int]:
    """Ids of tokens, read off the hand-written BERT vocabulary."""
    return [BERT_VOCAB.index(t) for t in tokens]


def xlmr_ids(*tokens: str) -> list[int]:
    """Ids of tokens, read off the hand-written XLM-R vocabulary."""
    return [XLMR_VOCAB.index(t) for t in tokens]


def wordpiece_tokenizer(folder: Path, cls_name: str = "BertTokenizerFast"):
    """A lowercasing WordPiece tokenizer over BERT_VOCAB, saved into `folder`."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    tokenizer = getattr(transformers, cls_name)(str(folder / "vocab.txt"))
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def unigram_tokenizer(folder: Path):
    """An XLM-R-style SentencePiece (Unigram) tokenizer over XLMR_VOCAB, markers added."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    scores = {"▁": -3.0, **{p: -4.0 for p in string.punctuation},
              **{c: -6.0 for c in string.ascii_lowercase}}
    pieces = [(p, scores.get(p, -2.0 if p.startswith("▁") else 0.0))
              for p in XLMR_VOCAB[: XLMR_VOCAB.index("<mask>") + 1]]
    tok = Tokenizer(models.Unigram(pieces, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    tokenizer.add_special_tokens({"additional_special_tokens": XLMR_MARKERS})
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def bpe_tokenizer(folder: Path):
    """A ModernBERT-style cased byte-level BPE tokenizer, PyLate's prefixes added."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(BPE_CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        pad_token="[PAD]", mask_token="[MASK]", model_input_names=["input_ids", "attention_mask"])
    tokenizer.add_tokens(PYLATE_PREFIXES)  # as PyLate does when it creates the model
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def write_bert(folder: Path) -> Path:
    """A random 2-layer BERT (with its pooler) and its WordPiece tokenizer."""
    from transformers import BertConfig, BertModel

    tokenizer = wordpiece_tokenizer(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=2 * HIDDEN, max_position_embeddings=256,
    )).save_pretrained(str(folder))
    return folder


def write_distilbert(folder: Path) -> Path:
    """A random 2-layer DistilBERT and its WordPiece tokenizer."""
    from transformers import DistilBertConfig, DistilBertModel

    tokenizer = wordpiece_tokenizer(folder, "DistilBertTokenizerFast")
    torch.manual_seed(1)
    DistilBertModel(DistilBertConfig(
        vocab_size=len(tokenizer), dim=HIDDEN, n_layers=2, n_heads=2, hidden_dim=2 * HIDDEN,
    )).save_pretrained(str(folder))
    return folder


def write_modernbert(folder: Path) -> Path:
    """A random 2-layer ModernBERT and its byte-level BPE tokenizer."""
    from transformers import ModernBertConfig, ModernBertModel

    tokenizer = bpe_tokenizer(folder)
    torch.manual_seed(2)
    ModernBertModel(ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN,
        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=256,
        global_attn_every_n_layers=2, local_attention=16,
        pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )).save_pretrained(str(folder))
    return folder


def write_xlmr(folder: Path) -> Path:
    """A random 2-layer XLM-RoBERTa and its SentencePiece tokenizer."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    tokenizer = unigram_tokenizer(folder)
    assert len(tokenizer) == len(XLMR_VOCAB)
    torch.manual_seed(3)
    XLMRobertaModel(XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=2 * HIDDEN, max_position_embeddings=130,
        type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    """A tiny BERT saved as a plain Hugging Face folder."""
    return write_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def distilbert_dir(tmp_path_factory) -> Path:
    """A tiny DistilBERT saved as a plain Hugging Face folder."""
    return write_distilbert(tmp_path_factory.mktemp("distilbert"))


@pytest.fixture(scope="module")
def modernbert_dir(tmp_path_factory) -> Path:
    """A tiny ModernBERT saved as a plain Hugging Face folder."""
    return write_modernbert(tmp_path_factory.mktemp("modernbert"))


@pytest.fixture(scope="module")
def xlmr_dir(tmp_path_factory) -> Path:
    """A tiny XLM-RoBERTa saved as a plain Hugging Face folder."""
    return write_xlmr(tmp_path_factory.mktemp("xlmr"))


def random_tensor(*shape: int, seed: int) -> torch.Tensor:
    """A standard normal tensor from its own seeded generator."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- their layouts
def write_json(path: Path, data) -> None:
    """Write `data` as JSON."""
    path.write_text(json.dumps(data), encoding="utf-8")


def write_wrapped(folder: Path, base: Path, prefix: str, extra: dict[str, torch.Tensor],
                  *, architectures: list[str] | None = None, drop: tuple[str, ...] = ()) -> Path:
    """`base`'s files with its weights renamed `prefix.*` plus `extra` tensors, as a ColBERT
    wrapper (colbert-ai's HF_ColBERT, Vespa's, Hofstätter's) saves them."""
    shutil.copytree(base, folder)
    state = {f"{prefix}.{k}": v for k, v in load_file(str(base / "model.safetensors")).items()}
    state = {k: v for k, v in state.items() if not k.startswith(drop)}
    save_file(state | extra, str(folder / "model.safetensors"))
    if architectures is not None:
        config = json.loads((folder / "config.json").read_text())
        write_json(folder / "config.json", config | {"architectures": architectures})
    return folder


def write_colbert_ai(folder: Path, base: Path, prefix: str, linear: torch.Tensor,
                     metadata: dict, *, drop: tuple[str, ...] = ()) -> Path:
    """colbert-ai's layout: HF_ColBERT weights (`prefix.` backbone, `linear.weight`) and
    artifact.metadata."""
    write_wrapped(folder, base, prefix, {"linear.weight": linear},
                  architectures=["HF_ColBERT"], drop=drop)
    write_json(folder / "artifact.metadata", metadata)
    return folder


def write_pylate(folder: Path, base: Path, denses: list[tuple[dict, dict]], settings: dict,
                 *, body: str = "", lowercase: bool | None = None) -> Path:
    """PyLate's layout: modules.json, the Transformer (in `body`), `i_Dense` folders of
    (config, tensors), config_sentence_transformers.json."""
    shutil.copytree(base, folder / body, dirs_exist_ok=True)
    if lowercase is not None:
        write_json(folder / body / "sentence_bert_config.json",
                   {"max_seq_length": 64, "do_lower_case": lowercase})
    modules = [{"idx": 0, "name": "0", "path": body,
                "type": "sentence_transformers.models.Transformer"}]
    for i, (config, tensors) in enumerate(denses, start=1):
        dense = folder / f"{i}_Dense"
        dense.mkdir()
        write_json(dense / "config.json", config)
        save_file(tensors, str(dense / "model.safetensors"))
        modules.append({"idx": i, "name": str(i), "path": dense.name,
                        "type": "pylate.models.Dense.Dense"})
    write_json(folder / "modules.json", modules)
    write_json(folder / "config_sentence_transformers.json", settings)
    return folder


def one_dense(weight: torch.Tensor) -> list[tuple[dict, dict]]:
    """PyLate's default head: one bias-free Dense (Identity activation by default)."""
    out_features, in_features = weight.shape
    config = {"in_features": in_features, "out_features": out_features, "bias": False}
    return [(config, {"linear.weight": weight})]


# ---------------------------------------------------------------- hand computations
def dense(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
          activation: Callable | None = None, residual: torch.Tensor | bool = False):
    """One dense layer by hand: x @ W.T + b, the activation, then the residual connection
    (a tensor: a projection of x; True: x itself)."""
    y = x @ weight.T + (0 if bias is None else bias)
    y = y if activation is None else activation(y)
    if isinstance(residual, torch.Tensor):
        return y + x @ residual.T
    return y + x if residual else y


def reference_rows(folder: Path, ids: list[int], attention: list[int],
                   head: Callable, *, normalize: bool = True) -> torch.Tensor:
    """The backbone in `folder` (loaded by transformers itself) over ids, then the head
    by hand, then L2 normalization: one row per position."""
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        states = backbone(input_ids=torch.tensor([ids]),
                          attention_mask=torch.tensor([attention])).last_hidden_state[0]
        out = head(states)
    return F.normalize(out, dim=-1) if normalize else out


def check_queries(model: ColBERT, texts: list[str], expected: list[Expected], folder: Path,
                  head: Callable, *, normalize: bool = True) -> None:
    """`model`'s query ids, attention and scored rows are `expected`'s, the padding beyond
    is neither attended nor scored, and the scored embeddings equal the hand computation."""
    batch = model.tokenizer.queries(texts)
    Q, mask = model.encode_queries(texts, return_mask=True)
    assert Q.shape[1] == max(len(ids) for ids, _, _ in expected)
    for row, (ids, attention, scored) in enumerate(expected):
        n = len(ids)
        assert batch.input_ids[row, :n].tolist() == ids
        assert (batch.input_ids[row, n:] == model.tokenizer.pad_id).all()
        assert batch.attention_mask[row].tolist() == attention + [0] * (Q.shape[1] - n)
        assert mask[row].tolist() == scored + [False] * (Q.shape[1] - n)
        want = reference_rows(folder, ids, attention, head, normalize=normalize)
        torch.testing.assert_close(Q[row][mask[row]], want[torch.tensor(scored)],
                                   atol=1e-5, rtol=0)
        assert not Q[row][~mask[row]].any()


def check_documents(model: ColBERT, texts: list[str], expected: list[tuple[list[int], list[bool]]],
                    folder: Path, head: Callable, *, normalize: bool = True) -> None:
    """`model`'s document ids and kept rows are `expected`'s; the kept embeddings equal the
    hand computation."""
    assert model.tokenizer.document_ids(texts) == [ids for ids, _ in expected]
    D = model.encode_documents(texts)
    for row, (ids, kept) in enumerate(expected):
        want = reference_rows(folder, ids, [1] * len(ids), head, normalize=normalize)
        torch.testing.assert_close(D[row], want[torch.tensor(kept)], atol=1e-5, rtol=0)


def masks(n: int, kind: str = "bert") -> list[int]:
    """n mask token ids of the BERT ("bert") or XLM-R ("xlmr") vocabulary."""
    return bert_ids("[MASK]") * n if kind == "bert" else xlmr_ids("<mask>") * n


# ---------------------------------------------------------------- colbert-ai: BERT
COLBERT_AI_META = {"query_token_id": "[unused0]", "doc_token_id": "[unused1]",
                   "query_token": "[Q]", "doc_token": "[D]", "query_maxlen": 12,
                   "doc_maxlen": 24, "dim": 16, "similarity": "cosine",
                   "mask_punctuation": True, "attend_to_mask_tokens": False, "nbits": 2,
                   "checkpoint": "colbert-ir/colbertv2.0"}


@pytest.fixture(scope="module")
def bert_linear() -> torch.Tensor:
    return random_tensor(16, HIDDEN, seed=10)


@pytest.fixture(scope="module")
def colbert_ai_bert(tmp_path_factory, bert_dir, bert_linear) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "colbert-ai-bert"
    return write_colbert_ai(folder, bert_dir, "bert", bert_linear, COLBERT_AI_META)


def test_bert_colbert_ai_ids_and_embeddings(colbert_ai_bert, bert_dir, bert_linear):
    model = ColBERT.from_pretrained(colbert_ai_bert, device="cpu")
    assert model.layout == "colbert-ai"
    assert (model.config.dim, model.config.query_maxlen, model.config.doc_maxlen) == (16, 12, 24)
    query = bert_ids("[CLS]", "[unused0]", "what", "is", "late", "interaction", "?", "[SEP]")
    short = bert_ids("[CLS]", "[unused0]", "cat", "and", "dog", "[SEP]")
    expected = [(query + masks(4), [1] * 8 + [0] * 4, [True] * 12),
                (short + masks(6), [1] * 6 + [0] * 6, [True] * 12)]
    head = partial(dense, weight=bert_linear)
    check_queries(model, QUERIES, expected, bert_dir, head)
    doc = bert_ids("[CLS]", "[unused1]", "the", "cat", "and", "the", "dog", ".", "[SEP]")
    doc2 = bert_ids("[CLS]", "[unused1]", "cat", ".", "[SEP]")
    check_documents(model, DOCS, [(doc, [True] * 7 + [False, True]),
                                  (doc2, [True, True, True, False, True])], bert_dir, head)


def test_overrides_replace_and_validate_checkpoint_settings(colbert_ai_bert):
    model = ColBERT.from_pretrained(colbert_ai_bert, device="cpu", query_maxlen=8,
                                    attend_to_mask_tokens=True)
    batch = model.tokenizer.queries(["cat and dog"])
    assert batch.input_ids[0].tolist() == \
        bert_ids("[CLS]", "[unused0]", "cat", "and", "dog", "[SEP]") + masks(2)
    assert batch.attention_mask.all()
    with pytest.raises(CheckpointError, match="query_maxlen must be an integer >= 4"):
        ColBERT.from_pretrained(colbert_ai_bert, device="cpu", query_maxlen=2)
    with pytest.raises(CheckpointError, match="flavour"):
        ColBERT.from_pretrained(colbert_ai_bert, device="cpu", flavour="x")


def test_pooler_tensors_are_optional_and_zeroed(tmp_path, colbert_ai_bert, bert_dir,
                                                bert_linear):
    folder = write_colbert_ai(tmp_path / "no-pooler", bert_dir, "bert", bert_linear,
                              COLBERT_AI_META, drop=("bert.pooler.",))
    assert not any(k.startswith("bert.pooler") for k in load_file(folder / "model.safetensors"))
    model = ColBERT.from_pretrained(folder, device="cpu")
    pooler = model.backbone.pooler.dense
    assert not pooler.weight.any() and not pooler.bias.any()
    full = ColBERT.from_pretrained(colbert_ai_bert, device="cpu")
    torch.testing.assert_close(model.encode_queries(QUERIES), full.encode_queries(QUERIES),
                               atol=0, rtol=0)


def test_a_missing_encoder_tensor_is_named(tmp_path, bert_dir, bert_linear):
    missing = "encoder.layer.1.output.dense.weight"
    folder = write_colbert_ai(tmp_path / "broken", bert_dir, "bert", bert_linear,
                              COLBERT_AI_META, drop=(f"bert.{missing}",))
    with pytest.raises(CheckpointError, match=r"lack 1 backbone tensors.*" + missing):
        ColBERT.from_pretrained(folder, device="cpu")


@pytest.mark.parametrize("layout", ["colbert-ai", "hf"])
def test_auto_map_needs_trust_remote_code(tmp_path, bert_dir, bert_linear, layout):
    folder = tmp_path / "remote"
    if layout == "colbert-ai":
        write_colbert_ai(folder, bert_dir, "bert", bert_linear, COLBERT_AI_META)
    else:
        shutil.copytree(bert_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    auto_map = {"AutoModel": "modeling_remote.RemoteModel"}
    write_json(folder / "config.json", config | {"auto_map": auto_map})
    assert detect_layout(folder) == layout
    with pytest.raises(CheckpointError, match=r"config\.json: .*AutoModel.*trust_remote_code=True"):
        ColBERT.from_pretrained(folder, device="cpu")
    # trusted, transformers looks for the model's code: this folder has none to run
    with pytest.raises(CheckpointError, match="cannot build the backbone.*modeling_remote.py"):
        ColBERT.from_pretrained(folder, device="cpu", trust_remote_code=True)


def test_vespa_colbert_is_read_as_colbert_ai(tmp_path, bert_dir):
    linear = random_tensor(32, HIDDEN, seed=11)
    folder = write_wrapped(tmp_path / "vespa", bert_dir, "bert", {"linear.weight": linear},
                           architectures=["VespaColBERT"])
    assert detect_layout(folder) == "colbert-ai"
    model = ColBERT.from_pretrained(folder, device="cpu")
    assert model.layout == "colbert-ai"
    assert (model.config.dim, model.config.query_maxlen, model.config.doc_maxlen) == (32, 32, 180)
    assert model.config.markers and model.config.query_augmentation
    query = bert_ids("[CLS]", "[unused0]", "cat", "and", "dog", "[SEP]") + masks(26)
    check_queries(model, ["cat and dog"], [(query, [1] * 6 + [0] * 26, [True] * 32)], bert_dir,
                  partial(dense, weight=linear))


# ---------------------------------------------------------------- XLM-RoBERTa
XLMR_META = COLBERT_AI_META | {"query_token_id": "[QueryMarker]",
                               "doc_token_id": "[DocumentMarker]",
                               "attend_to_mask_tokens": True}


def test_xlmr_colbert_ai_markers_are_added_tokens(tmp_path, xlmr_dir):
    linear = random_tensor(16, HIDDEN, seed=12)
    folder = write_colbert_ai(tmp_path / "jina-like", xlmr_dir, "roberta", linear, XLMR_META)
    model = ColBERT.from_pretrained(folder, device="cpu")
    assert model.layout == "colbert-ai"
    query = xlmr_ids("<s>", "[QueryMarker]", "▁what", "▁is", "▁late", "▁interaction", "?",
                     "</s>")
    short = xlmr_ids("<s>", "[QueryMarker]", "▁cat", "▁and", "▁dog", "</s>")
    head = partial(dense, weight=linear)
    check_queries(model, QUERIES, [(query + masks(4, "xlmr"), [1] * 12, [True] * 12),
                                   (short + masks(6, "xlmr"), [1] * 12, [True] * 12)],
                  xlmr_dir, head)
    # colbert-ai skips the first token of each punctuation mark encoded as text: for this
    # SentencePiece vocabulary that is the bare "▁", so "." itself is kept
    assert model.tokenizer.skiplist == frozenset(xlmr_ids("▁"))
    doc = xlmr_ids("<s>", "[DocumentMarker]", "▁the", "▁cat", "▁and", "▁the", "▁dog", ".",
                   "</s>")
    doc2 = xlmr_ids("<s>", "[DocumentMarker]", "▁cat", "▁", ".", "</s>")
    check_documents(model, DOCS, [(doc, [True] * 9), (doc2, [True] * 3 + [False, True, True])],
                    xlmr_dir, head)


def test_a_saved_card_offers_pylate_only_when_pylate_encodes_alike(tmp_path, xlmr_dir):
    linear = random_tensor(16, HIDDEN, seed=12)
    source = write_colbert_ai(tmp_path / "jina-like", xlmr_dir, "roberta", linear, XLMR_META)
    model = ColBERT.from_pretrained(source, device="cpu")
    folder = model.save_pretrained(tmp_path / "saved")
    for name in ("latesearch_config.json", "artifact.metadata"):
        (folder / name).unlink()
    as_pylate = ColBERT.from_pretrained(folder, device="cpu")  # PyLate's reading of the files
    assert as_pylate.layout == "pylate"
    pairs = zip(model.encode_documents(DOCS), as_pylate.encode_documents(DOCS), strict=True)
    alike = all(a.shape == b.shape and torch.allclose(a, b, atol=1e-6) for a, b in pairs)
    assert alike or "PyLate cannot encode this model" in (folder / "README.md").read_text()


def test_xlmr_plain_backbone_without_markers(xlmr_dir):
    with pytest.raises(CheckpointError, match=r"query_token='\[unused0\]'"):
        ColBERT.from_pretrained(xlmr_dir, device="cpu", doc_maxlen=64)
    model = ColBERT.from_pretrained(xlmr_dir, device="cpu", dim=8, markers=False,
                                    query_augmentation=False, doc_maxlen=64)
    assert model.layout == "hf"
    assert model.tokenizer.document_ids(["cat and dog"]) == \
        [xlmr_ids("<s>", "▁cat", "▁and", "▁dog", "</s>")]


def test_xlmr_bge_m3_drops_cls_keeps_bias_and_punctuation(tmp_path, xlmr_dir):
    folder = tmp_path / "bge-m3"
    shutil.copytree(xlmr_dir, folder)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    weight, bias = random_tensor(HIDDEN, HIDDEN, seed=13), random_tensor(HIDDEN, seed=14)
    torch.save({"weight": weight, "bias": bias}, folder / "colbert_linear.pt")
    torch.save({"weight": random_tensor(1, HIDDEN, seed=15), "bias": torch.zeros(1)},
               folder / "sparse_linear.pt")
    # BAAI/bge-m3 also ships sentence-transformers' modules (no Dense: not a PyLate model)
    write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"}])
    assert detect_layout(folder) == "bge-m3"
    model = ColBERT.from_pretrained(folder, device="cpu")
    assert model.layout == "bge-m3"
    cfg = model.config
    assert (cfg.dim, cfg.query_maxlen, cfg.doc_maxlen) == (HIDDEN, 128, 128)
    assert not cfg.markers and not cfg.query_augmentation and cfg.drop_cls
    query = xlmr_ids("<s>", "▁what", "▁is", "▁late", "▁interaction", "?", "</s>")
    short = xlmr_ids("<s>", "▁cat", "▁and", "▁dog", "</s>")
    head = partial(dense, weight=weight, bias=bias)
    check_queries(model, QUERIES, [(query, [1] * 7, [False] + [True] * 6),
                                   (short, [1] * 5, [False] + [True] * 4)], xlmr_dir, head)
    doc = xlmr_ids("<s>", "▁the", "▁cat", "▁and", "▁the", "▁dog", ".", "</s>")
    doc2 = xlmr_ids("<s>", "▁cat", "▁", ".", "</s>")
    check_documents(model, DOCS, [(doc, [False] + [True] * 7), (doc2, [False] + [True] * 4)],
                    xlmr_dir, head)


# ---------------------------------------------------------------- DistilBERT
def test_distilbert_hofstaetter_appends_eight_attended_masks_unnormalized(tmp_path,
                                                                         distilbert_dir):
    folder = tmp_path / "hofstaetter"
    weight, bias = random_tensor(16, HIDDEN, seed=16), random_tensor(16, seed=17)
    folder.mkdir()
    write_json(folder / "config.json", {"architectures": ["ColBERT"], "model_type": "ColBERT",
                                        "bert_model": str(distilbert_dir),
                                        "compression_dim": 16, "dropout": 0.0})
    state = {f"bert_model.{k}": v
             for k, v in load_file(str(distilbert_dir / "model.safetensors")).items()}
    save_file(state | {"compressor.weight": weight, "compressor.bias": bias},
              str(folder / "model.safetensors"))
    assert detect_layout(folder) == "hofstaetter"
    model = ColBERT.from_pretrained(folder, device="cpu")
    assert model.layout == "hofstaetter"
    assert not model.config.normalize and model.config.query_mask_tokens == 8
    query = bert_ids("[CLS]", "what", "is", "late", "interaction", "?", "[SEP]") + masks(8)
    short = bert_ids("[CLS]", "cat", "and", "dog", "[SEP]") + masks(8)
    head = partial(dense, weight=weight, bias=bias)
    check_queries(model, QUERIES, [(query, [1] * 15, [True] * 15),
                                   (short, [1] * 13, [True] * 13)],
                  distilbert_dir, head, normalize=False)
    doc = bert_ids("[CLS]", "the", "cat", "and", "the", "dog", ".", "[SEP]")
    doc2 = bert_ids("[CLS]", "cat", ".", "[SEP]")
    check_documents(model, DOCS, [(doc, [True] * 8), (doc2, [True] * 4)], distilbert_dir, head,
                    normalize=False)
    assert not torch.allclose(model.encode_documents(DOCS)[0].norm(dim=-1), torch.ones(8))


def test_distilbert_plain_backbone_gets_markers_and_seeded_projection(distilbert_dir):
    model = ColBERT.from_pretrained(distilbert_dir, device="cpu", dim=16, query_maxlen=10,
                                    doc_maxlen=20)
    assert model.layout == "hf"
    query = bert_ids("[CLS]", "[unused0]", "cat", "and", "dog", "[SEP]") + masks(4)
    weight = new_projection(HIDDEN, 16)
    check_queries(model, ["cat and dog"], [(query, [1] * 6 + [0] * 4, [True] * 10)],
                  distilbert_dir, partial(dense, weight=weight))
    doc = bert_ids("[CLS]", "[unused1]", "cat", ".", "[SEP]")
    check_documents(model, ["cat ."], [(doc, [True, True, True, False, True])], distilbert_dir,
                    partial(dense, weight=weight))


# ---------------------------------------------------------------- ModernBERT / PyLate
PYLATE_SETTINGS = {"query_prefix": "[Q] ", "document_prefix": "[D] ", "query_length": 12,
                   "document_length": 24, "attend_to_expansion_tokens": False,
                   "skiplist_words": list(string.punctuation)}


def two_dense_head() -> tuple[list[tuple[dict, dict]], Callable]:
    """mxbai-edge-colbert's head: Dense 32 -> 24 (bias, tanh), Dense 24 -> 16 with a
    residual projection; the Dense folders and the same head by hand."""
    w1, b1 = random_tensor(24, HIDDEN, seed=20), random_tensor(24, seed=21)
    w2, r2 = random_tensor(16, 24, seed=22), random_tensor(16, 24, seed=23)
    denses = [
        ({"in_features": HIDDEN, "out_features": 24, "bias": True,
          "activation_function": "torch.nn.modules.activation.Tanh"},
         {"linear.weight": w1, "linear.bias": b1}),
        ({"in_features": 24, "out_features": 16, "bias": False, "use_residual": True},
         {"linear.weight": w2, "residual.weight": r2}),
    ]
    return denses, lambda x: dense(dense(x, w1, b1, torch.tanh), w2, residual=r2)


def prefix_id(tokenizer_folder: Path, prefix: str) -> int:
    """The id PyLate gave a prefix when it added it as a token (in added_tokens)."""
    added = json.loads((tokenizer_folder / "tokenizer.json").read_text())["added_tokens"]
    return next(t["id"] for t in added if t["content"] == prefix)


def bpe_ids(folder: Path, text: str) -> list[int]:
    """The BPE tokenizer's own ids for a text (no special tokens)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder)).encode(text, add_special_tokens=False)


def test_modernbert_pylate_two_dense_residual_no_expansion(tmp_path, modernbert_dir):
    denses, head = two_dense_head()
    settings = PYLATE_SETTINGS | {"do_query_expansion": False}
    folder = write_pylate(tmp_path / "mxbai-like", modernbert_dir, denses, settings)
    model = ColBERT.from_pretrained(folder, device="cpu")
    assert model.layout == "pylate"
    assert model.config.dim == 16 and len(model.config.head) == 2
    assert model.config.query_token == "[Q] " and not model.config.query_augmentation
    cls, sep, pad = 1, 2, 3  # the BPE trainer's special tokens, in order after [UNK]
    q, d = prefix_id(modernbert_dir, "[Q] "), prefix_id(modernbert_dir, "[D] ")
    assert model.tokenizer.pad_id == pad
    first = [cls, q, *bpe_ids(modernbert_dir, QUERIES[0]), sep]
    second = [cls, q, *bpe_ids(modernbert_dir, QUERIES[1]), sep]
    check_queries(model, QUERIES, [(first, [1] * len(first), [True] * len(first)),
                                   (second, [1] * len(second), [True] * len(second))],
                  modernbert_dir, head)
    dot = bpe_ids(modernbert_dir, ".")
    assert len(dot) == 1
    doc = [cls, d, *bpe_ids(modernbert_dir, DOCS[0]), sep]
    check_documents(model, DOCS[:1], [(doc, [t not in dot for t in doc])], modernbert_dir, head)


@pytest.mark.parametrize("lowercase", [True, False])
def test_pylate_do_lower_case_lowercases_texts(tmp_path, modernbert_dir, lowercase):
    folder = write_pylate(tmp_path / "lower", modernbert_dir,
                          one_dense(random_tensor(16, HIDDEN, seed=24)),
                          PYLATE_SETTINGS | {"do_query_expansion": False}, lowercase=lowercase)
    model = ColBERT.from_pretrained(folder, device="cpu")
    assert model.config.lowercase is lowercase
    ids = model.tokenizer.document_ids(["Cat AND Dog"])[0][2:-1]
    lower, cased = bpe_ids(modernbert_dir, "cat and dog"), bpe_ids(modernbert_dir, "Cat AND Dog")
    assert lower != cased
    assert ids == (lower if lowercase else cased)


def test_pylate_strips_texts(tmp_path, modernbert_dir):
    folder = write_pylate(tmp_path / "strip", modernbert_dir,
                          one_dense(random_tensor(16, HIDDEN, seed=25)), PYLATE_SETTINGS)
    spaced = "  cat and dog  "
    assert bpe_ids(modernbert_dir, spaced) != bpe_ids(modernbert_dir, spaced.strip())
    model = ColBERT.from_pretrained(folder, device="cpu")
    assert model.tokenizer.document_ids([spaced]) == model.tokenizer.document_ids(["cat and dog"])
    unstripped = ColBERT.from_pretrained(folder, device="cpu", strip_text=False)
    assert unstripped.tokenizer.document_ids([spaced])[0][2:-1] == bpe_ids(modernbert_dir, spaced)


def test_bert_pylate_in_0_transformer_with_expansion_and_own_skiplist(tmp_path, bert_dir):
    weight = random_tensor(16, HIDDEN, seed=26)
    settings = PYLATE_SETTINGS | {"query_prefix": "[unused0]", "document_prefix": "[unused1]",
                                  "attend_to_expansion_tokens": True,
                                  "skiplist_words": ["dogs", "cat"]}
    folder = write_pylate(tmp_path / "answerai-like", bert_dir, one_dense(weight), settings,
                          body="0_Transformer")
    assert not (folder / "config.json").exists()
    model = ColBERT.from_pretrained(folder, device="cpu")
    assert model.layout == "pylate" and model.config.simple_head
    query = bert_ids("[CLS]", "[unused0]", "cat", "and", "dog", "[SEP]") + masks(6)
    head = partial(dense, weight=weight)
    check_queries(model, ["cat and dog"], [(query, [1] * 12, [True] * 12)], bert_dir, head)
    # skiplist words are vocabulary entries: "cat" is skipped, "dogs" is not a token of its
    # own (it maps to [UNK]), so "dog" is kept; "." is not in this skiplist
    doc = bert_ids("[CLS]", "[unused1]", "the", "cat", "and", "the", "dog", ".", "[SEP]")
    check_documents(model, DOCS[:1], [(doc, [True] * 3 + [False] + [True] * 5)], bert_dir, head)
    assert model.tokenizer.skiplist == frozenset(bert_ids("[UNK]", "cat"))


def test_pylate_prefix_on_one_side_only_is_rejected(tmp_path, bert_dir):
    settings = PYLATE_SETTINGS | {"document_prefix": ""}
    folder = write_pylate(tmp_path / "one-sided", bert_dir,
                          one_dense(random_tensor(16, HIDDEN, seed=27)), settings)
    with pytest.raises(CheckpointError, match="prefix on one side only"):
        ColBERT.from_pretrained(folder, device="cpu")


def test_pylate_without_prefixes_or_expansion(tmp_path, bert_dir):
    settings = PYLATE_SETTINGS | {"query_prefix": "", "document_prefix": "",
                                  "do_query_expansion": False}
    folder = write_pylate(tmp_path / "plain", bert_dir,
                          one_dense(random_tensor(16, HIDDEN, seed=28)), settings)
    model = ColBERT.from_pretrained(folder, device="cpu")
    batch = model.tokenizer.queries(QUERIES)
    assert batch.input_ids.tolist() == [
        bert_ids("[CLS]", "what", "is", "late", "interaction", "?", "[SEP]"),
        bert_ids("[CLS]", "cat", "and", "dog", "[SEP]", "[PAD]", "[PAD]"),
    ]


def test_pylate_values_defaults_and_checks():
    values = pylate_values({}, "cfg")
    assert (values["query_token"], values["doc_token"]) == ("[Q] ", "[D] ")
    assert (values["query_maxlen"], values["doc_maxlen"]) == (32, 180)
    assert values["query_augmentation"] and not values["attend_to_mask_tokens"]
    assert values["skiplist"] == list(string.punctuation)
    assert values["skiplist_lookup"] == "vocabulary" and values["strip_text"]
    nulls = pylate_values({"query_prefix": None, "document_prefix": None, "query_length": None},
                          "cfg")
    assert (nulls["query_token"], nulls["query_maxlen"]) == ("[Q] ", 32)
    # attending to expansion tokens means nothing without expansion
    off = pylate_values({"do_query_expansion": False, "attend_to_expansion_tokens": True}, "c")
    assert not off["query_augmentation"] and not off["attend_to_mask_tokens"]
    assert not pylate_values({"skiplist_words": []}, "cfg")["mask_punctuation"]
    with pytest.raises(CheckpointError, match="cfg: expected a JSON object"):
        pylate_values([], "cfg")


# ---------------------------------------------------------------- metadata and head
def test_colbert_ai_metadata_records_every_encoding_setting():
    config = ColBERTConfig(dim=24, query_maxlen=16, markers=False, query_augmentation=False,
                           lowercase=True, skiplist=["!"], normalize=False)
    meta = colbert_ai_metadata(config)
    assert meta["query_token_id"] == "[unused0]" and meta["doc_token_id"] == "[unused1]"
    assert (meta["dim"], meta["query_maxlen"], meta["checkpoint_format"]) == \
        (24, 16, "colbertv2.0")
    assert meta["markers"] is False and meta["query_augmentation"] is False
    assert meta["lowercase"] is True and meta["normalize"] is False
    assert meta["skiplist"] == ["!"] and meta["skiplist_lookup"] == "encode"


def test_projection_head_equals_the_layers_by_hand():
    layers = [
        {"in_features": 8, "out_features": 8, "bias": True, "activation": "relu",
         "residual": True},
        {"in_features": 8, "out_features": 6, "bias": True, "activation": "gelu",
         "residual": False},
        {"in_features": 6, "out_features": 4, "bias": False, "activation": "sigmoid",
         "residual": True},
    ]
    head = ProjectionHead(layers)
    assert sorted(head.residuals) == ["2"]  # same width: the identity, no weights
    state = {k: random_tensor(*v.shape, seed=30 + i)
             for i, (k, v) in enumerate(sorted(head.state_dict().items()))}
    head.load(state, "test")
    x = random_tensor(3, 8, seed=40)
    h = dense(x, state["linear.weight"], state["linear.bias"], torch.relu, residual=True)
    h = dense(h, state["layers.0.weight"], state["layers.0.bias"], F.gelu)
    h = dense(h, state["layers.1.weight"], None, torch.sigmoid,
              residual=state["residuals.2.weight"])
    torch.testing.assert_close(head(x), h, atol=1e-6, rtol=0)
    lacks = r"src: the projection head lacks \['layers.0.bias'\]"
    with pytest.raises(CheckpointError, match=lacks):
        head.load({k: v for k, v in state.items() if k != "layers.0.bias"}, "src")


def test_simplified_head_is_empty_only_for_the_papers_layer():
    paper = [{"in_features": 32, "out_features": 16, "bias": False}]
    assert simplified(paper, 32, 16) == ()
    assert simplified([paper[0] | {"bias": True}], 32, 16) == (paper[0] | {"bias": True},)
    assert len(simplified([paper[0] | {"activation": "tanh"}], 32, 16)) == 1


# ---------------------------------------------------------------- tokenization settings
def test_query_mask_tokens_are_appended_after_truncation(distilbert_dir):
    model = ColBERT.from_pretrained(distilbert_dir, device="cpu", markers=False,
                                    query_mask_tokens=3, query_maxlen=7)
    batch = model.tokenizer.queries(["what is late interaction?", "cat"])
    assert batch.input_ids.tolist() == [
        bert_ids("[CLS]", "what", "is", "[SEP]") + masks(3),
        bert_ids("[CLS]", "cat", "[SEP]") + masks(3) + bert_ids("[PAD]"),
    ]
    # masks not attended unless attend_to_mask_tokens; every real token and mask scored
    assert batch.attention_mask.tolist() == [[1] * 4 + [0] * 3, [1] * 3 + [0] * 4]
    assert batch.output_mask.tolist() == [[True] * 7, [True] * 6 + [False]]
    assert model.tokenizer.query_lengths(["what is late interaction?", "cat"]) == [7, 6]


def test_drop_cls_unscores_position_zero(bert_dir):
    model = ColBERT.from_pretrained(bert_dir, device="cpu", drop_cls=True, markers=False,
                                    query_augmentation=False, mask_punctuation=False)
    queries, docs = model.tokenizer.queries(["cat"]), model.tokenizer.documents(["cat ."])
    assert queries.output_mask.tolist() == [[False, True, True]]
    assert docs.output_mask.tolist() == [[False, True, True, True]]


def test_skiplist_lookup_encode_takes_a_words_first_token(bert_dir):
    words = {"skiplist": ["dogs", "cat"], "markers": False}
    encode = ColBERT.from_pretrained(bert_dir, device="cpu", **words)
    vocabulary = ColBERT.from_pretrained(bert_dir, device="cpu", skiplist_lookup="vocabulary",
                                         **words)
    assert encode.tokenizer.skiplist == frozenset(bert_ids("dog", "cat"))
    assert vocabulary.tokenizer.skiplist == frozenset(bert_ids("[UNK]", "cat"))


def test_lowercase_override_lowercases_before_a_cased_tokenizer(modernbert_dir):
    model = ColBERT.from_pretrained(modernbert_dir, device="cpu", markers=False, dim=8,
                                    lowercase=True)
    assert model.tokenizer.document_ids(["Cat AND Dog"])[0][1:-1] == \
        bpe_ids(modernbert_dir, "cat and dog")


def test_lengths_past_a_roberta_backbones_positions_are_rejected(xlmr_dir):
    # 130 positions, 2 reserved by XLM-R's padding offset: 128 tokens at most
    with pytest.raises(ConfigError, match="doc_maxlen=129"):
        ColBERT.from_pretrained(xlmr_dir, device="cpu", dim=8, markers=False,
                                query_augmentation=False, doc_maxlen=129)
