"""Where the windows of a long document start, and the tokens of a windowed document."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from latesearch.modeling.offsets import document_tokens
from latesearch.modeling.tokenization import window_starts


@given(st.integers(0, 500), st.integers(1, 64), st.data())
def test_windows_cover_every_token_stride_apart(n, window, data):
    stride = data.draw(st.integers(1, window))
    starts = window_starts(n, window, stride)
    assert starts[0] == 0 and starts == sorted(set(starts))
    covered = set().union(*(range(a, min(a + window, n)) for a in starts))
    assert covered == set(range(n))
    steps = zip(starts[:-2], starts[1:-1], strict=True)  # all but the last: it ends the text
    assert all(b - a == stride for a, b in steps)
    assert all(a + window <= max(n, window) for a in starts)  # none runs past the end
    if n <= window:
        assert starts == [0]


def test_window_tokens_re_tokenize_to_their_text(tiny_colbert):
    tokenizer = tiny_colbert.tokenizer
    text = "  Late interaction, scored per token: the cat sat on the mat. " * 6 + "end "
    tokens = document_tokens(tokenizer, text, (12, 8, 64))
    windows = sorted({t.window for t in tokens})
    n_content = len(tokenizer.hf(text.strip().lower(), add_special_tokens=False)["input_ids"])
    assert windows == list(range(len(window_starts(n_content, 12, 8))))
    for t in tokens:
        if t.kind == "text":
            piece = tokenizer.hf.convert_ids_to_tokens(
                tokenizer.hf(text[t.start : t.end], add_special_tokens=False)["input_ids"]
            )
            assert piece[-1].lstrip("#") == t.token.lstrip("#")
    last = max(t.end for t in tokens if t.kind == "text")
    assert last == len(text.rstrip())  # the windows reach the end of the text
    window = tokenizer.config.doc_maxlen - tokenizer.frame  # the first window: truncation
    first = [t for t in document_tokens(tokenizer, text, (window, 4, 64)) if t.window == 0]
    assert first == document_tokens(tokenizer, text)
    capped = document_tokens(tokenizer, text, (12, 8, 2))
    assert max(t.window for t in capped) == 1
