"""Token offsets (`modeling.offsets`) through everything the tokenizer does to a text, for
the tokenizer families that load here: BERT WordPiece (lowercasing, accents stripped),
XLM-R-style SentencePiece (Unigram) and ModernBERT-style byte-level BPE (cased, or
lowercased by the config). Property tests: every word's span re-tokenizes to its tokens,
each token's span ends where the word's tokens up to it end, and the stored tokens are
exactly those whose vectors the encoder keeps."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latesearch.modeling import ColBERTConfig, ColBERTTokenizer
from latesearch.modeling.offsets import document_tokens, query_tokens

WORDS = ["the", "cat", "dog", "late", "interaction", "model", "search", "of", "a", "is"]
MARKERS = ["[QueryMarker]", "[DocumentMarker]"]
TEXT = st.text(alphabet=st.sampled_from([*"catdoglesrmi", *"CATÉé", " ", " ", ",", ".", "-",
                                         "!", "\t"]), max_size=60)  # fmt: skip
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def wordpiece(folder: Path):
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
             *string.punctuation, *WORDS, *string.ascii_lowercase, "é",
             *[f"##{c}" for c in string.ascii_lowercase], "##s", "##é"]  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    return BertTokenizerFast(str(folder / "vocab.txt"))


def unigram():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import XLMRobertaTokenizerFast

    vocab = ["<s>", "<pad>", "</s>", "<unk>", *[f"▁{w}" for w in WORDS], "▁",
             *string.punctuation, *string.ascii_letters, "É", "é", "<mask>"]  # fmt: skip
    pieces = [(p, -2.0 if p.startswith("▁") and len(p) > 1 else -6.0) for p in vocab]
    tok = Tokenizer(models.Unigram(pieces, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    hf = XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                 sep_token="</s>", cls_token="<s>", unk_token="<unk>",
                                 pad_token="<pad>", mask_token="<mask>")  # fmt: skip
    hf.add_special_tokens({"additional_special_tokens": MARKERS})
    return hf


def byte_bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [" ".join(WORDS), "The Cat, the DOG. Late-interaction model!", "café É"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
    )
    hf.add_tokens(["[Q] ", "[D] "])
    return hf


@pytest.fixture(scope="module")
def families(tmp_path_factory) -> dict[str, ColBERTTokenizer]:
    """ColBERT tokenizers of each family, with short lengths (truncation is common)."""
    short = {"doc_maxlen": 16, "query_maxlen": 10}
    return {
        "wordpiece": ColBERTTokenizer(wordpiece(tmp_path_factory.mktemp("wp")),
                                      ColBERTConfig(**short)),  # fmt: skip
        "unigram": ColBERTTokenizer(unigram(), ColBERTConfig(
            **short, query_token=MARKERS[0], doc_token=MARKERS[1])),
        "bpe": ColBERTTokenizer(byte_bpe(), ColBERTConfig(
            **short, query_token="[Q] ", doc_token="[D] ", skiplist_lookup="vocabulary")),
        "bpe-lowercase-stripped": ColBERTTokenizer(byte_bpe(), ColBERTConfig(
            **short, query_token="[Q] ", doc_token="[D] ", lowercase=True, strip_text=True,
            markers=False, drop_cls=True)),
    }  # fmt: skip


FAMILIES = ["wordpiece", "unigram", "bpe", "bpe-lowercase-stripped"]


def retokenized(tokenizer: ColBERTTokenizer, text: str) -> list[int]:
    """`text`'s token ids, lowercased where the config says (a span is never stripped: its
    leading space is part of a byte-level BPE token)."""
    text = text.lower() if tokenizer.config.lowercase else text
    return tokenizer.hf(text, add_special_tokens=False)["input_ids"]


def check_document(tokenizer: ColBERTTokenizer, text: str) -> None:
    tokens = document_tokens(tokenizer, text)
    ids = tokenizer.document_ids([text])[0]
    kept = tokenizer.pad_documents([ids]).output_mask[0]
    assert [t.token_id for t in tokens] == [i for i, k in zip(ids, kept.tolist(), strict=True) if k]
    assert [t.position for t in tokens] == kept.nonzero().flatten().tolist()
    content = [t for t in tokens if t.kind == "text"]
    assert all(t.token_id not in tokenizer.skiplist for t in content)
    # the tokenizer's words (as its pre-tokenizer cut them), truncated as the document is
    encoded = tokenizer._content([text], tokenizer.config.doc_maxlen, offsets=True)
    words = encoded.word_ids(0)[: tokenizer.config.doc_maxlen - tokenizer.frame]
    all_ids = encoded["input_ids"][0][: len(words)]
    spans = {t.position: (t.start, t.end) for t in content}
    first = len(tokenizer.head_ids) + (1 if tokenizer.config.markers else 0)
    for word in set(words):
        at = [i for i, w in enumerate(words) if w == word]
        start = min(spans.get(first + i, (len(text), 0))[0] for i in at)
        for n, i in enumerate(at):
            if first + i not in spans:  # punctuation of the skiplist: not stored
                continue
            token_start, token_end = spans[first + i]
            assert start <= token_start <= token_end <= len(text)
            # the word's text up to this token's end re-tokenizes to its tokens up to it
            # and those sharing its end (a character of several bytes is several tokens, a
            # character lowercased to several maybe several words)
            found = [j for j in range(len(words)) if first + j in spans]
            begin = min(j for j in found if spans[first + j][0] == start)
            while begin and first + begin - 1 not in spans and words[begin - 1] == word:
                begin -= 1  # a piece of the word the skiplist dropped (SentencePiece's "▁")
            last = max(j for j in found if spans[first + j][1] == token_end)
            assert retokenized(tokenizer, text[start:token_end]) == all_ids[begin : last + 1], (
                text,
                text[start:token_end],
                n,
            )


@pytest.mark.parametrize("family", FAMILIES)
@SETTINGS
@given(text=TEXT)
def test_document_spans_retokenize_to_their_tokens(families, family, text):
    check_document(families[family], text)


@pytest.mark.parametrize("family", FAMILIES)
def test_truncation_titles_and_punctuation(families, family):
    tokenizer = families[family]
    text = "The Cat, of late-interaction! " * 6
    check_document(tokenizer, text)
    tokens = document_tokens(tokenizer, text)
    assert max(t.end for t in tokens if t.kind == "text") < len(text) // 2  # truncated
    if family == "wordpiece":  # colbert-ai's skiplist: the comma and "!" are not stored
        assert "," not in [t.token for t in tokens] and "!" not in [t.token for t in tokens]
    assert [t.kind for t in tokens][-1] == "special"


def test_lowercasing_that_changes_lengths_keeps_original_offsets(families):
    tokenizer = families["bpe-lowercase-stripped"]
    text = "  İİ Cat DOG  "
    tokens = document_tokens(tokenizer, text)
    assert tokens[0].kind == "text"  # drop_cls, no markers
    # "İ" lowercases to two characters (i and a combining dot): its tokens span it alone
    dotted = [t for t in tokens if t.start is not None and t.start < 4]
    assert {(t.start, t.end) for t in dotted} == {(2, 3), (3, 4)}
    assert [text[t.start : t.end] for t in tokens if t.token == "cat"] == ["Cat"]
    assert max(t.end for t in tokens if t.end) == text.index("DOG") + 3
    check_document(tokenizer, text)


@pytest.mark.parametrize("family", FAMILIES)
def test_query_tokens_label_markers_and_masks(families, family):
    tokenizer = families[family]
    query = "late cat?"
    tokens = query_tokens(tokenizer, query)
    batch = tokenizer.queries([query])
    assert len(tokens) == int(batch.output_mask.sum())
    assert [t.token_id for t in tokens] == batch.input_ids[0][batch.output_mask[0]].tolist()
    kinds = [t.kind for t in tokens]
    assert ("marker" in kinds) == tokenizer.config.markers
    assert kinds[-1] == "mask" and "text" in kinds
    for t in tokens:
        assert (t.start is None) == (t.kind != "text")
        if t.kind == "text" and query[t.start : t.end].strip():
            assert retokenized(tokenizer, query[t.start : t.end])[-1:] == [t.token_id] or (
                family == "wordpiece" and t.token.startswith("##")
            )
