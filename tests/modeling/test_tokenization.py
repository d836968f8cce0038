"""Token ids match colbert-ai's tensorizers: markers by id, [MASK] padding, skiplist."""

from __future__ import annotations

import string

import pytest
import torch

from latesearch.errors import InputError

TEXTS = [
    "what is late interaction?",
    "colbert, the model: fast search!",
    "a " * 60,
    "x",
]


def colbert_ai_queries(hf, texts, maxlen, marker_id):
    """colbert-ai's QueryTokenizer.tensorize, restated: '. ' placeholder replaced by [Q]."""
    obj = hf(
        [". " + t for t in texts],
        padding="max_length",
        truncation=True,
        return_tensors="pt",
        max_length=maxlen,
    )
    ids, mask = obj["input_ids"], obj["attention_mask"]
    ids[:, 1] = marker_id
    ids[ids == hf.pad_token_id] = hf.mask_token_id
    return ids, mask


def colbert_ai_documents(hf, texts, maxlen, marker_id):
    """colbert-ai's DocTokenizer.tensorize, restated."""
    obj = hf(
        [". " + t for t in texts],
        padding="longest",
        truncation="longest_first",
        return_tensors="pt",
        max_length=maxlen,
    )
    ids = obj["input_ids"]
    ids[:, 1] = marker_id
    return ids, obj["attention_mask"]


def test_query_ids_equal_colbert_ai(tiny_colbert):
    tok = tiny_colbert.tokenizer
    batch = tok.queries(TEXTS)
    ids, mask = colbert_ai_queries(tok.hf, TEXTS, 12, tok.query_token_id)
    assert torch.equal(batch.input_ids, ids)
    assert torch.equal(batch.attention_mask, mask)
    assert batch.output_mask.all()  # every position scored (query augmentation)
    assert (batch.input_ids[:, 0] == tok.head_ids[0]).all()
    assert (batch.input_ids[:, 1] == tok.query_token_id).all()
    # the long query is truncated with [SEP] last
    assert batch.input_ids[2, -1] == tok.tail_ids[-1]


def test_document_ids_equal_colbert_ai(tiny_colbert):
    tok = tiny_colbert.tokenizer
    batch = tok.documents(TEXTS)
    ids, mask = colbert_ai_documents(tok.hf, TEXTS, 24, tok.doc_token_id)
    assert torch.equal(batch.input_ids, ids)
    assert torch.equal(batch.attention_mask, mask)
    assert batch.input_ids.shape[1] == 24  # truncated at doc_maxlen, padded to batch longest


def test_document_output_mask_skips_punctuation_and_padding(tiny_colbert):
    tok = tiny_colbert.tokenizer
    batch = tok.documents(["colbert, the model: fast search!", "x"])
    punct = {tok.hf.convert_tokens_to_ids(c) for c in string.punctuation}
    for ids, att, keep in zip(*batch.astuple(), strict=True):
        for token, a, k in zip(ids.tolist(), att.tolist(), keep.tolist(), strict=True):
            assert k == (bool(a) and token not in punct)


def test_attend_to_mask_tokens(tiny_bert_dir):
    from latesearch import ColBERT

    model = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", attend_to_mask_tokens=True)
    batch = model.tokenizer.queries(["late interaction"])
    assert batch.attention_mask.all()


def test_no_augmentation_pads_with_pad(tiny_bert_dir):
    from latesearch import ColBERT

    model = ColBERT.from_pretrained(tiny_bert_dir, device="cpu", query_augmentation=False)
    batch = model.tokenizer.queries(["late interaction", "a much longer query about search"])
    tok = model.tokenizer
    assert batch.input_ids.shape[1] < 32
    assert (batch.input_ids[0][batch.attention_mask[0] == 0] == tok.pad_id).all()
    assert torch.equal(batch.output_mask, batch.attention_mask.bool())


def test_empty_document_keeps_markers(tiny_colbert):
    tok = tiny_colbert.tokenizer
    ids = tok.document_ids(["", "   "])
    assert ids == [[*tok.head_ids, tok.doc_token_id, *tok.tail_ids]] * 2


@pytest.mark.parametrize("bad", [[""], ["   \n"], [None], [3], "a string, not a list"])
def test_bad_queries_are_rejected(tiny_colbert, bad):
    with pytest.raises(InputError):
        tiny_colbert.tokenizer.queries(bad)


def test_bad_documents_are_rejected(tiny_colbert):
    with pytest.raises(InputError, match="document 1"):
        tiny_colbert.tokenizer.document_ids(["fine", None])


def test_without_markers_ids_are_the_plain_tokenizers(tiny_bert_dir):
    from latesearch import ColBERT

    model = ColBERT.from_pretrained(
        tiny_bert_dir, device="cpu", markers=False, query_augmentation=False, doc_maxlen=12
    )
    tok = model.tokenizer
    plain = [tok.hf(t, truncation=True, max_length=12)["input_ids"] for t in TEXTS]
    assert tok.document_ids(TEXTS) == plain
    batch = tok.queries(TEXTS)
    for row, text in enumerate(TEXTS):
        expected = tok.hf(text, truncation=True, max_length=32)["input_ids"]
        assert batch.input_ids[row][batch.attention_mask[row].bool()].tolist() == expected
    assert tok.query_lengths(["x"]) == [3]


def test_a_single_string_is_named_as_queries(tiny_colbert):
    with pytest.raises(InputError, match="^queries must be a list of strings"):
        tiny_colbert.tokenizer.queries("one string")


@pytest.mark.parametrize("augmentation", [True, False])
def test_no_queries_encode_to_zero_rows(tiny_bert_dir, augmentation):
    from latesearch import ColBERT

    model = ColBERT.from_pretrained(
        tiny_bert_dir, device="cpu", dim=16, query_maxlen=12, query_augmentation=augmentation
    )
    Q, mask = model.encode_queries([], return_mask=True)
    width = 12 if augmentation else 0
    assert Q.shape == (0, width, 16) and mask.shape == (0, width) and mask.dtype == torch.bool
    assert model.encode_queries([]).shape == (0, width, 16)


def test_queries_and_documents_tokenized_at_once_keep_their_own_truncation(tiny_colbert):
    from concurrent.futures import ThreadPoolExecutor

    tok = tiny_colbert.tokenizer
    long = " ".join(["protein"] * 400)
    want_q, want_d = tok.queries([long] * 8), tok.documents([long] * 8)
    with ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(tok.queries if n % 2 else tok.documents, [long] * 8)
                for n in range(64)]  # fmt: skip
        for n, job in enumerate(jobs):
            got, want = job.result(), (want_q if n % 2 else want_d)
            assert torch.equal(got.input_ids, want.input_ids)
