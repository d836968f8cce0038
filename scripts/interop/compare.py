"""latesearch against the reference libraries, checkpoint family by checkpoint family.

For each family a tiny random checkpoint (small vocabulary, 2 layers, hidden 32-48) is
built offline in the layout its own library writes, then a few fixed queries and documents
(punctuation, unicode, surrounding spaces, texts past the length limits) are encoded by
latesearch (`ColBERT.from_pretrained(folder)`) and by the reference, and the largest
absolute difference of the embeddings, shape mismatches and token-id mismatches are
recorded. Both directions: latesearch reading their checkpoints, and their libraries
reading checkpoints latesearch saved (including the shipped default model).

References: colbert-ai 0.2.22 `Checkpoint.queryFromText/docFromText`, PyLate 1.6.0
`ColBERT.encode`, BGE-M3's multi-vector output re-implemented from FlagEmbedding's code
(FlagEmbedding itself is not installed), Hofstätter's `ColBERT` class from its model card,
Vespa's col-minilm layout (`VespaColBERT`) read by colbert-ai. Needs the side environment
of scripts/interop/setup.sh; a family that fails is recorded with its error.

    /tmp/interop-venv/bin/python scripts/interop/compare.py [--only NAME ...]

Writes benchmarks/results/interop.json and interop.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import shutil
import string
import sys
import tempfile
import traceback
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))
from _machine import describe, machine_info  # noqa: E402

TOLERANCE = 1e-5
QUERY_MAXLEN, DOC_MAXLEN = 16, 32  # small, so that the long texts are truncated
QUERIES = [
    "what is late interaction?",
    "How do proteins fold, in 3 steps?!",
    "  Café naïve résumé: Zürich & 東京 🙂  ",
    "which model scores every query token against every document token, and why does "
    "that beat a single vector on long and noisy passages with many rare terms?",
]
DOCUMENTS = [
    "ColBERT encodes queries and documents into bags of token embeddings.",
    "Proteins fold (mostly) spontaneously; chaperones help -- sometimes!",
    "  Ünïcödé text: naïve café, Zürich & 東京 -- “quoted” … 🙂  ",
    " ".join(["late interaction keeps one vector per token, then sums the best matches."] * 6),
    "...!?",
]
SPECIALS = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# ------------------------------------------------------------------ encodings and comparison
@dataclass
class Encoded:
    """What a library scores with: per text, the rows and the token id behind each row."""

    queries: list[torch.Tensor]
    documents: list[torch.Tensor]
    query_ids: list[list[int]] | None
    document_ids: list[list[int]] | None
    tokens: Callable[[list[int]], list[str]] | None = None


def compare(ours: Encoded, theirs: Encoded) -> dict:
    """Per side: max |diff| over texts whose shapes agree; shape and token-id mismatches."""
    out = {}
    for side, ids in (("queries", "query_ids"), ("documents", "document_ids")):
        diffs, shapes, id_mismatches = [], [], []
        for i, (a, b) in enumerate(zip(getattr(ours, side), getattr(theirs, side), strict=True)):
            a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
            if a.shape != b.shape:
                shapes.append({"text": i, "ours": list(a.shape), "theirs": list(b.shape)})
            else:
                diffs.append(float((a - b).abs().max()) if a.numel() else 0.0)
            ours_ids, their_ids = getattr(ours, ids), getattr(theirs, ids)
            if ours_ids is not None and their_ids is not None and ours_ids[i] != their_ids[i]:
                id_mismatches.append(_first_difference(i, ours_ids[i], their_ids[i], theirs.tokens))
        out[side] = {"max_abs_diff": max(diffs) if diffs else None, "compared": len(diffs),
                     "shape_mismatches": shapes, "id_mismatches": id_mismatches}
    return out


def _first_difference(text: int, ours: list[int], theirs: list[int], tokens) -> dict:
    pairs = zip(ours, theirs, strict=False)  # lengths may differ
    at = next((k for k, (x, y) in enumerate(pairs) if x != y), min(len(ours), len(theirs)))
    window = slice(max(0, at - 1), at + 3)
    item = {"text": text, "position": at, "len_ours": len(ours), "len_theirs": len(theirs),
            "ours": ours[window], "theirs": theirs[window]}
    if tokens is not None:
        item["ours_tokens"], item["theirs_tokens"] = tokens(ours[window]), tokens(theirs[window])
    return item


def rows_of(padded: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    return [padded[i][mask[i][: padded.shape[1]].bool()] for i in range(len(padded))]


@contextlib.contextmanager
def quiet():
    """colbert-ai prints; keep the run's output readable."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# ------------------------------------------------------------------ the three encoders
def encode_latesearch(folder: Path | None, **overrides) -> Encoded:
    from latesearch import ColBERT

    model = ColBERT.from_pretrained(folder, device="cpu", **overrides)
    q, q_mask = model.encode_queries(QUERIES, return_mask=True)
    docs = model.encode_documents(DOCUMENTS)
    try:  # token ids behind the rows (tokenizer API of latesearch.modeling.tokenization)
        qb, db = model.tokenizer.queries(QUERIES), model.tokenizer.documents(DOCUMENTS)
        query_ids = [r.tolist() for r in rows_of(qb.input_ids, qb.output_mask)]
        document_ids = [r.tolist() for r in rows_of(db.input_ids, db.output_mask)]
    except Exception:  # noqa: BLE001 - ids are a diagnostic only
        query_ids = document_ids = None
    return Encoded(rows_of(q, q_mask), docs, query_ids, document_ids,
                   model.tokenizer.hf.convert_ids_to_tokens)


def encode_pylate(folder: Path, **kwargs) -> Encoded:
    from pylate import models

    model = models.ColBERT(model_name_or_path=str(folder), device="cpu", **kwargs)
    q = model.encode(QUERIES, is_query=True, convert_to_numpy=False)
    d = model.encode(DOCUMENTS, is_query=False, convert_to_numpy=False)
    qo = model.encode(QUERIES, is_query=True, output_value=None, convert_to_numpy=False)
    do = model.encode(DOCUMENTS, is_query=False, output_value=None, convert_to_numpy=False)
    ids = [[x[m.bool()].tolist() for x, m in zip(o["input_ids"], o["masks"], strict=True)]
           for o in (qo, do)]
    return Encoded(list(q), list(d), ids[0], ids[1], model.tokenizer.convert_ids_to_tokens)


def colbert_ai_checkpoint(folder: Path, **config):
    from colbert.infra import ColBERTConfig
    from colbert.modeling.checkpoint import Checkpoint
    from colbert.modeling.colbert import ColBERT as ColBERTModule

    # it compiles a C++ scoring extension on CPU (needs g++); encoding does not use it
    ColBERTModule.try_load_torch_extensions = classmethod(lambda cls, use_gpu: None)
    with quiet():
        return Checkpoint(str(folder), colbert_config=ColBERTConfig(**config), verbose=0)


def encode_colbert_ai(folder: Path, **config) -> Encoded:
    ck = colbert_ai_checkpoint(folder, **config)
    with quiet():
        q = ck.queryFromText(QUERIES)
        docs = ck.docFromText(DOCUMENTS, keep_dims=False)
        q_ids, _ = ck.query_tokenizer.tensorize(QUERIES)
        d_ids, _ = ck.doc_tokenizer.tensorize(DOCUMENTS)
    keep = torch.tensor(ck.mask(d_ids, skiplist=getattr(ck, "skiplist", {})))
    return Encoded(list(q), list(docs), q_ids.tolist(), [r.tolist() for r in rows_of(d_ids, keep)],
                   ck.raw_tokenizer.convert_ids_to_tokens)


# ------------------------------------------------------------------ tiny tokenizers
def corpus() -> list[str]:
    return [*QUERIES, *DOCUMENTS, "the a of to in is and or for with on by at from"]


def wordpiece_tokenizer(folder: Path, cls_name: str = "BertTokenizerFast"):
    """A WordPiece vocabulary from the first texts' words, single letters and ##letters
    (other words split into pieces), punctuation, CJK characters; emoji stay [UNK]."""
    import transformers

    def plain(text: str) -> str:
        return "".join(c for c in unicodedata.normalize("NFD", text.lower())
                       if unicodedata.category(c) != "Mn")

    words = sorted({w for t in QUERIES[:2] + DOCUMENTS[:2] for w in re.findall(r"\w+", plain(t))})
    letters = list(string.ascii_lowercase + string.digits)
    cjk = sorted({c for t in corpus() for c in t if "\u4e00" <= c <= "\u9fff"})
    vocab = [*SPECIALS, *string.punctuation, *letters, *[f"##{c}" for c in letters], *cjk,
             *[w for w in words if w not in letters]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = getattr(transformers, cls_name)(str(folder / "vocab.txt"))
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def unigram_tokenizer(folder: Path, extra_special: tuple[str, ...] = ()):
    """An XLM-RoBERTa-style SentencePiece (Unigram, Metaspace) tokenizer trained on the texts:
    <s>=0 <pad>=1 </s>=2 <unk>=3 ... <mask> last."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import XLMRobertaTokenizerFast

    # the vocabulary is derived, not trained: tokenizers' Unigram trainer gives another
    # vocabulary on every run, and the comparison must be the same from run to run
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    words: dict[str, int] = {}
    for text in corpus():
        for word in unicodedata.normalize("NFKC", text).split():
            words[word] = words.get(word, 0) + 1
    total = sum(words.values())
    chars = sorted({c for word in words for c in word})
    pieces = [(f"\u2581{w}", math.log(n / total)) for w, n in sorted(words.items()) if n > 1]
    pieces += [("\u2581", -6.0)] + [(c, -8.0) for c in chars]
    tok = Tokenizer(models.Unigram([(t, 0.0) for t in specials] + pieces, unk_id=3))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.add_special_tokens(["<mask>", *extra_special])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=512)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def bpe_tokenizer(folder: Path):
    """A ModernBERT-style byte-level BPE tokenizer trained on the texts ([CLS] ... [SEP])."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    tok.train_from_iterator(corpus() * 3, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        pad_token="[PAD]", mask_token="[MASK]", model_max_length=8192,
        model_input_names=["input_ids", "attention_mask"])
    tokenizer.save_pretrained(str(folder))
    return tokenizer


# ------------------------------------------------------------------ tiny backbones
def bert_base(folder: Path, *, hidden: int = 32, positions: int = 128, seed: int = 0) -> Path:
    from transformers import BertConfig, BertModel

    tok = wordpiece_tokenizer(folder)
    torch.manual_seed(seed)
    BertModel(BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=positions,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )).save_pretrained(str(folder))
    return folder


def distilbert_base(folder: Path, *, hidden: int = 32, seed: int = 0) -> Path:
    from transformers import DistilBertConfig, DistilBertModel

    tok = wordpiece_tokenizer(folder, "DistilBertTokenizerFast")
    torch.manual_seed(seed)
    DistilBertModel(DistilBertConfig(
        vocab_size=len(tok), dim=hidden, n_layers=2, n_heads=2, hidden_dim=2 * hidden,
        max_position_embeddings=512, dropout=0.0, attention_dropout=0.0,
    )).save_pretrained(str(folder))
    return folder


def xlmr_base(folder: Path, *, hidden: int = 32, seed: int = 0, extra_special=(),
              safe: bool = True) -> Path:
    from transformers import XLMRobertaConfig, XLMRobertaModel

    tok = unigram_tokenizer(folder, tuple(extra_special))
    torch.manual_seed(seed)
    XLMRobertaModel(XLMRobertaConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=130, type_vocab_size=1,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    ), add_pooling_layer=False).save_pretrained(str(folder), safe_serialization=safe)
    return folder


def modernbert_base(folder: Path, *, hidden: int = 32, seed: int = 0) -> Path:
    from transformers import ModernBertConfig, ModernBertModel

    tok = bpe_tokenizer(folder)
    torch.manual_seed(seed)
    ModernBertModel(ModernBertConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=256,
        global_attn_every_n_layers=2, local_attention=16,
        pad_token_id=tok.pad_token_id, cls_token_id=tok.cls_token_id,
        sep_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id, attn_implementation="sdpa",
    )).save_pretrained(str(folder))
    return folder


# ------------------------------------------------------------------ their layouts
def colbert_ai_save(base: Path, folder: Path, seed: int = 1, **config) -> Path:
    """colbert-ai's own writer: Checkpoint over the base (new random `linear`), `.save`."""
    torch.manual_seed(seed)
    ck = colbert_ai_checkpoint(base, checkpoint=str(base), **config)
    with quiet():
        ck.save(str(folder))
    return folder


def pylate_save(base: Path, folder: Path, dense: list[dict], *, lower: bool = False,
                seed: int = 1, **settings) -> Path:
    """PyLate's own writer: ColBERT(modules=[Transformer, Dense...]).save."""
    from pylate import models
    from sentence_transformers.models import Transformer

    torch.manual_seed(seed)
    transformer = Transformer(str(base))
    transformer.do_lower_case = lower
    hidden = transformer.get_word_embedding_dimension()
    layers = []
    for spec in dense:
        layers.append(models.Dense(in_features=hidden, **spec))
        hidden = spec["out_features"]
    model = models.ColBERT(modules=[transformer, *layers], device="cpu", **settings)
    model.save(str(folder))
    return folder


def subfolder_transformer(folder: Path) -> Path:
    """Move the Transformer's files of a PyLate folder into 0_Transformer/ (the layout of
    older sentence-transformers, e.g. answerai-colbert-small-v1's PyLate files)."""
    body = folder / "0_Transformer"
    body.mkdir()
    keep = {"modules.json", "config_sentence_transformers.json", "README.md", "0_Transformer"}
    for path in list(folder.iterdir()):
        if path.name not in keep and not path.name.endswith("_Dense"):
            shutil.move(str(path), body / path.name)
    modules = json.loads((folder / "modules.json").read_text())
    modules[0]["path"] = "0_Transformer"
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    return folder


def bge_m3_save(folder: Path, seed: int = 1) -> Path:
    """BGE-M3: XLM-R weights (pytorch_model.bin), colbert_linear.pt (hidden -> hidden, with
    bias), sparse_linear.pt, as FlagEmbedding's `save` writes them."""
    xlmr_base(folder, safe=False)
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    torch.manual_seed(seed)
    torch.save(torch.nn.Linear(hidden, hidden).state_dict(), folder / "colbert_linear.pt")
    torch.save(torch.nn.Linear(hidden, 1).state_dict(), folder / "sparse_linear.pt")
    return folder


def encode_bge_m3(folder: Path) -> Encoded:
    """FlagEmbedding's M3Embedder colbert path: tokenize with truncation (max 512, here the
    tiny model's 128 positions), pad, last hidden state, colbert_linear(states[:, 1:]) *
    mask[:, 1:], normalize, keep the first (tokens - 1) rows (drops <s>, keeps </s>)."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    linear = torch.nn.Linear(model.config.hidden_size, model.config.hidden_size)
    linear.load_state_dict(torch.load(folder / "colbert_linear.pt", map_location="cpu"))
    maxlen = min(512, model.config.max_position_embeddings - 2)

    def encode(texts):
        inputs = tok.pad([tok(t, truncation=True, max_length=maxlen) for t in texts],
                         padding=True, return_tensors="pt")
        with torch.no_grad():
            states = model(**inputs, return_dict=True).last_hidden_state
            vecs = linear(states[:, 1:]) * inputs["attention_mask"][:, 1:, None].float()
            vecs = torch.nn.functional.normalize(vecs, dim=-1)
        n = inputs["attention_mask"].sum(-1)
        return ([vecs[i][: n[i] - 1] for i in range(len(texts))],
                [inputs["input_ids"][i][1 : n[i]].tolist() for i in range(len(texts))])

    (q, q_ids), (d, d_ids) = encode(QUERIES), encode(DOCUMENTS)
    return Encoded(q, d, q_ids, d_ids, tok.convert_ids_to_tokens)


def hofstaetter_classes():
    """The model card's classes (sebastian-hofstaetter/colbert-distilbert-margin_mse-T2-msmarco)."""
    from transformers import AutoModel, PretrainedConfig, PreTrainedModel

    class ColBERTConfig(PretrainedConfig):
        model_type = "ColBERT"
        bert_model: str
        compression_dim: int = 768
        dropout: float = 0.0
        return_vecs: bool = False
        trainable: bool = True

    class ColBERT(PreTrainedModel):
        config_class = ColBERTConfig
        base_model_prefix = "bert_model"

        def __init__(self, cfg) -> None:
            super().__init__(cfg)
            self.bert_model = AutoModel.from_pretrained(cfg.bert_model)
            self.compressor = torch.nn.Linear(self.bert_model.config.hidden_size,
                                              cfg.compression_dim)

        def forward_representation(self, tokens):
            return self.compressor(self.bert_model(**tokens)[0])

    return ColBERTConfig, ColBERT


def hofstaetter_save(folder: Path, base: Path, seed: int = 1) -> Path:
    config_class, model_class = hofstaetter_classes()
    torch.manual_seed(seed)
    hidden = json.loads((base / "config.json").read_text())["dim"]
    config = config_class(bert_model=str(base), compression_dim=hidden)
    model_class(config).save_pretrained(str(folder))
    return folder


def encode_hofstaetter(folder: Path, base: Path) -> Encoded:
    """Card + notebook: tokenizer(text); queries get 8 [MASK] (attended) appended; the
    compressor's output, unnormalized, every row."""
    from transformers import AutoTokenizer

    _, model_class = hofstaetter_classes()
    model = model_class.from_pretrained(str(folder)).eval()
    tok = AutoTokenizer.from_pretrained(str(base))

    def encode(text, augment):
        ids = tok(text)["input_ids"] + ([tok.mask_token_id] * 8 if augment else [])
        batch = {"input_ids": torch.tensor([ids]),
                 "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
        with torch.no_grad():
            return model.forward_representation(batch)[0], ids

    q = [encode(t, True) for t in QUERIES]
    d = [encode(t, False) for t in DOCUMENTS]
    return Encoded([v for v, _ in q], [v for v, _ in d], [i for _, i in q], [i for _, i in d],
                   tok.convert_ids_to_tokens)


def vespa_save(folder: Path, base: Path, dim: int = 32, seed: int = 1) -> Path:
    """vespa-engine/col-minilm's class: BertPreTrainedModel with `bert` and `linear`
    (hidden -> 32, no bias), saved by save_pretrained (no artifact.metadata)."""
    from transformers import AutoTokenizer, BertModel, BertPreTrainedModel

    class VespaColBERT(BertPreTrainedModel):
        def __init__(self, config):
            super().__init__(config)
            self.bert = BertModel(config)
            self.linear = torch.nn.Linear(config.hidden_size, dim, bias=False)
            self.post_init()

    torch.manual_seed(seed)
    model = VespaColBERT.from_pretrained(str(base))  # bert.* from the base, linear new
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(folder))
    return folder


# ------------------------------------------------------------------ the families
LATESEARCH_LENGTHS = {"query_maxlen": QUERY_MAXLEN, "doc_maxlen": DOC_MAXLEN}
COLBERT_LENGTHS = {"query_maxlen": QUERY_MAXLEN, "doc_maxlen": DOC_MAXLEN}
PYLATE_LENGTHS = {"query_length": QUERY_MAXLEN, "document_length": DOC_MAXLEN}


@dataclass
class Family:
    name: str
    example: str  # the hub checkpoints it stands for
    layout: str
    direction: str  # "theirs -> latesearch" or "latesearch -> theirs"
    build: Callable[[Path], Path | None]  # returns the folder latesearch and the reference read
    references: dict[str, Callable[[Path], Encoded]]
    note: str = ""
    cannot: dict[str, str] | None = None  # reference -> why it cannot express the model


def families(work: Path) -> list[Family]:
    bases: dict[str, Path] = {}

    def base(kind: str, **kw) -> Path:
        key = kind + json.dumps(kw, sort_keys=True)
        if key not in bases:
            maker = {"bert": bert_base, "distilbert": distilbert_base, "xlmr": xlmr_base,
                     "modernbert": modernbert_base}[kind]
            bases[key] = maker(work / f"base-{len(bases)}-{kind}", **kw)
        return bases[key]

    jina_markers = ("[QueryMarker]", "[DocumentMarker]")
    pylate_default_dense = [{"out_features": 16, "bias": False}]
    two_dense = [{"out_features": 24, "bias": True},
                 {"out_features": 16, "bias": False, "use_residual": True}]
    saved: dict[str, Path] = {}

    def latesearch_saved(name: str, source: Path | None, **overrides) -> Callable[[Path], Path]:
        def build(folder: Path) -> Path:
            from latesearch import ColBERT

            ColBERT.from_pretrained(source, device="cpu", **overrides).save_pretrained(folder)
            saved[name] = folder
            return folder
        return build

    return [
        Family("colbert-ai-bert", "colbert-ir/colbertv2.0", "colbert-ai", "theirs -> latesearch",
               lambda f: colbert_ai_save(base("bert"), f, dim=16, **COLBERT_LENGTHS),
               {"colbert-ai": encode_colbert_ai, "pylate": encode_pylate}),
        Family("colbert-ai-bert-attend", "answerdotai/answerai-colbert-small-v1 (main branch)",
               "colbert-ai", "theirs -> latesearch",
               lambda f: colbert_ai_save(base("bert", hidden=48), f, dim=24,
                                         attend_to_mask_tokens=True, **COLBERT_LENGTHS),
               {"colbert-ai": encode_colbert_ai, "pylate": encode_pylate},
               "attend_to_mask_tokens=true"),
        Family("colbert-ai-xlmr-markers", "jinaai/jina-colbert-v2 (plain XLM-R instead of Jina's "
               "remote code)", "colbert-ai", "theirs -> latesearch",
               lambda f: colbert_ai_save(base("xlmr", extra_special=jina_markers), f, dim=16,
                                         query_token_id=jina_markers[0],
                                         doc_token_id=jina_markers[1],
                                         attend_to_mask_tokens=True, **COLBERT_LENGTHS),
               {"colbert-ai": encode_colbert_ai, "pylate": encode_pylate},
               "markers [QueryMarker]/[DocumentMarker] (added tokens), attend_to_mask_tokens"),
        Family("vespa-col-minilm", "vespa-engine/col-minilm, vespa-engine/colbert-medium",
               "VespaColBERT (bert.* + linear.weight, no metadata)", "theirs -> latesearch",
               lambda f: vespa_save(f, base("bert", hidden=48, positions=512)),
               {"colbert-ai": lambda f: encode_colbert_ai(
                   f, checkpoint=str(f), dim=32, query_maxlen=32, doc_maxlen=180)},
               "reference: colbert-ai reading the folder (dim 32, lengths 32/180)"),
        Family("pylate-bert", "lightonai/colbertv2.0 (PyLate files)", "pylate",
               "theirs -> latesearch",
               lambda f: pylate_save(base("bert"), f, pylate_default_dense, **PYLATE_LENGTHS),
               {"pylate": encode_pylate}, "prefixes '[Q] '/'[D] ' added as new tokens"),
        Family("pylate-bert-0_Transformer", "answerdotai/answerai-colbert-small-v1 (PyLate files)",
               "pylate, Transformer in 0_Transformer/", "theirs -> latesearch",
               lambda f: subfolder_transformer(
                   pylate_save(base("bert"), f, pylate_default_dense, **PYLATE_LENGTHS)),
               {"pylate": encode_pylate}),
        Family("pylate-bert-plain", "a PyLate model without prefixes or expansion", "pylate",
               "theirs -> latesearch",
               lambda f: pylate_save(base("bert"), f, pylate_default_dense, query_prefix="",
                                     document_prefix="", do_query_expansion=False,
                                     **PYLATE_LENGTHS),
               {"pylate": encode_pylate}),
        Family("pylate-modernbert", "lightonai/GTE-ModernColBERT-v1", "pylate",
               "theirs -> latesearch",
               lambda f: pylate_save(base("modernbert"), f, pylate_default_dense,
                                     **PYLATE_LENGTHS),
               {"pylate": encode_pylate}),
        Family("pylate-modernbert-2dense", "mixedbread-ai/mxbai-edge-colbert-v0-17m/-32m, "
               "lightonai/LateOn-Code-edge", "pylate", "theirs -> latesearch",
               lambda f: pylate_save(base("modernbert"), f, two_dense,
                                     do_query_expansion=False, **PYLATE_LENGTHS),
               {"pylate": encode_pylate},
               "2 Dense (bias; residual), no query expansion"),
        Family("pylate-modernbert-lowercase", "mixedbread-ai/mxbai-edge-colbert-v0-32m "
               "(do_lower_case)", "pylate", "theirs -> latesearch",
               lambda f: pylate_save(base("modernbert"), f, pylate_default_dense, lower=True,
                                     do_query_expansion=False, **PYLATE_LENGTHS),
               {"pylate": encode_pylate}, "sentence_bert_config do_lower_case=true"),
        Family("pylate-xlmr", "a PyLate model over XLM-RoBERTa", "pylate", "theirs -> latesearch",
               lambda f: pylate_save(base("xlmr"), f, pylate_default_dense, **PYLATE_LENGTHS),
               {"pylate": encode_pylate}),
        Family("bge-m3", "BAAI/bge-m3 (multi-vector)", "bge-m3", "theirs -> latesearch",
               bge_m3_save, {"flagembedding-math": encode_bge_m3},
               "reference re-implemented from FlagEmbedding's M3 code (not installed)"),
        Family("hofstaetter", "sebastian-hofstaetter/colbert-distilbert-margin_mse-T2-msmarco",
               "hofstaetter", "theirs -> latesearch",
               lambda f: hofstaetter_save(f, base("distilbert")),
               {"model-card": lambda f: encode_hofstaetter(f, base("distilbert"))},
               "config bert_model = the local DistilBERT folder"),
        Family("latesearch-paper-head", "latesearch over a plain BERT (dim 16)", "latesearch",
               "latesearch -> theirs",
               lambda f: latesearch_saved("paper", base("bert"), dim=16, **LATESEARCH_LENGTHS)(f),
               {"colbert-ai": encode_colbert_ai, "pylate": encode_pylate}),
        Family("latesearch-default", "latesearch.ColBERT.from_pretrained() (shipped default)",
               "latesearch", "latesearch -> theirs", latesearch_saved("default", None),
               {"pylate": encode_pylate, "colbert-ai": encode_colbert_ai},
               "markers=False, query_augmentation=False",
               {"colbert-ai": "colbert-ai always inserts the markers and pads queries with "
                              "[MASK]; it cannot express markers=False or "
                              "query_augmentation=False"}),
        Family("latesearch-from-2dense", "latesearch re-saving the 2-Dense PyLate model",
               "latesearch", "latesearch -> theirs",
               lambda f: latesearch_saved("2dense", work / "pylate-modernbert-2dense")(f),
               {"pylate": encode_pylate}),
    ], bases


def run_family(family: Family, work: Path) -> list[dict]:
    folder = work / family.name
    row = {"family": family.name, "example": family.example, "layout": family.layout,
           "direction": family.direction, "note": family.note}
    try:
        built = family.build(folder)
    except Exception as err:  # noqa: BLE001
        return [row | {"reference": "-", "status": "build error", "error": _error(err)}]
    rows = []
    try:
        ours = encode_latesearch(built)
        ours_error = None
    except Exception as err:  # noqa: BLE001
        ours, ours_error = None, _error(err)
    for ref_name, encode in family.references.items():
        item = row | {"reference": ref_name}
        try:
            theirs = encode(built)
        except Exception as err:  # noqa: BLE001
            rows.append(item | {"status": "reference error", "error": _error(err)})
            continue
        if ours is None:
            rows.append(item | {"status": "latesearch error", "error": ours_error})
            continue
        result = compare(ours, theirs)
        item |= result
        item["status"] = "ok" if _clean(result) else "mismatch"
        if item["status"] == "mismatch" and family.cannot and ref_name in family.cannot:
            item["status"] = "not expressible"
            item["error"] = family.cannot[ref_name]
        rows.append(item)
    clean = [r["reference"] for r in rows if r["status"] == "ok"]
    for r in rows:  # latesearch matches one reference exactly: the references disagree
        if r["status"] == "mismatch" and clean:
            r["status"] = f"mismatch (references disagree; latesearch matches {clean[0]})"
    return rows


def _clean(result: dict) -> bool:
    return all(not s["shape_mismatches"] and not s["id_mismatches"]
               and s["max_abs_diff"] is not None and s["max_abs_diff"] < TOLERANCE
               for s in result.values())


def _error(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames)), "")
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}" \
           f" [{where}]"


# ------------------------------------------------------------------ report
def versions() -> dict:
    import importlib.metadata as md

    import latesearch

    found = {p: md.version(p) for p in ("torch", "transformers", "tokenizers",
                                        "sentence-transformers", "pylate", "colbert-ai",
                                        "latesearch")}
    return found | {"latesearch from": str(Path(latesearch.__file__).parent)}


def _fmt(side: dict | None) -> str:
    if not side:
        return "-"
    diff = side["max_abs_diff"]
    text = "-" if diff is None else f"{diff:.1e}"
    extras = []
    if side["shape_mismatches"]:
        extras.append(f"{len(side['shape_mismatches'])} shape")
    if side["id_mismatches"]:
        extras.append(f"{len(side['id_mismatches'])} ids")
    return text + (f" ({', '.join(extras)})" if extras else "")


SINGULAR = {"queries": "query", "documents": "document"}


def write_markdown(report: dict, path: Path) -> None:
    lines = [
        "# Embeddings against the reference libraries, family by family",
        "",
        f"Machine: {describe(report['machine'])}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".",
        "",
        "Tiny random checkpoints (2 layers, hidden 32-48, small vocabularies) built offline in "
        "each family's own layout by its own library; "
        f"{len(QUERIES)} queries and {len(DOCUMENTS)} documents (punctuation, unicode, "
        f"surrounding spaces, texts past query_maxlen {QUERY_MAXLEN} / doc_maxlen "
        f"{DOC_MAXLEN}). Cells: the largest |ours - theirs| over the texts whose shapes "
        "agree (fp32), then the number of texts whose shapes or scored token ids differ. "
        f"ok = every shape and id equal and both differences < {TOLERANCE:g}.",
        "",
        "| family | stands for | direction | reference | queries | documents | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        status = r["status"] + (f": {r['error']}" if r.get("error") else "")
        lines.append(f"| {r['family']} | {r['example']} | {r['direction']} | {r['reference']} "
                     f"| {_fmt(r.get('queries'))} | {_fmt(r.get('documents'))} "
                     f"| {status.replace('|', '/')} |")
    lines += ["", "## First differing token per text", ""]
    for r in report["rows"]:
        for side in ("queries", "documents"):
            for m in (r.get(side) or {}).get("id_mismatches", [])[:3]:
                lines.append(
                    f"- {r['family']} / {r['reference']}, {SINGULAR[side]} {m['text']}: position "
                    f"{m['position']}, ours {m.get('ours_tokens', m['ours'])} "
                    f"vs theirs {m.get('theirs_tokens', m['theirs'])} (lengths "
                    f"{m['len_ours']} / {m['len_theirs']})")
    notes = [f"- {r['family']}: {r['note']}" for r in report["rows"] if r.get("note")]
    lines += ["", "## Notes", "", *dict.fromkeys(notes), *report["skipped"], "",
              f"Regenerate with: `{report['command']}`", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


SKIPPED = [
    "- not built: jinaai/jina-colbert-v1-en and jina-colbert-v2 with Jina's own remote code "
    "(JinaBERT / xlm-roberta-flash-implementation are not reachable offline; the XLM-R row "
    "stands in for v2's layout and markers)",
    "- not built: vjeronymo2/mColBERT (its files could not be read; layout unconfirmed)",
    "- out of scope: vidore/colqwen2 (a vision-language model)",
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", help="family names to run (default: all)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--keep", type=Path, help="build the checkpoints here and keep them")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    work = args.keep or Path(tempfile.mkdtemp(prefix="latesearch-interop-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        chosen, _ = families(work)
        for family in chosen:
            if args.only and family.name not in args.only:
                continue
            print(f"== {family.name}", flush=True)
            for row in run_family(family, work):
                rows.append(row)
                print(f"   {row['reference']}: {row['status']} q={_fmt(row.get('queries'))} "
                      f"d={_fmt(row.get('documents'))} {row.get('error', '')}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    report = {"benchmark": "interop", "machine": machine_info(), "versions": versions(),
              "tolerance": TOLERANCE, "query_maxlen": QUERY_MAXLEN, "doc_maxlen": DOC_MAXLEN,
              "queries": QUERIES, "documents": DOCUMENTS, "rows": rows, "skipped": SKIPPED,
              "command": "python scripts/interop/compare.py"
              + (f" --only {' '.join(args.only)}" if args.only else "")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "interop.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    write_markdown(report, args.out / "interop.md")
    print(f"wrote {args.out / 'interop.json'} and interop.md")


if __name__ == "__main__":
    main()
