"""Documents indexed in overlapping windows: each window encoded as a document of its own,
the document scored by MaxSim over the union of its windows' vectors, its explanation
naming the best window and its highlights taken from it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latesearch import Index
from latesearch.errors import ConfigError
from latesearch.modeling.tokenization import window_starts
from latesearch.search.explain import full_text

QUERY = "dog tree search"
WINDOW, STRIDE = 12, 8


def window_vectors(model, text: str) -> list[torch.Tensor]:
    """Each window's kept vectors, encoded straight from the model (the brute force)."""
    tok = model.tokenizer
    content = tok.hf(tok.prepared(text), add_special_tokens=False)["input_ids"]
    out = []
    for a in window_starts(len(content), WINDOW, STRIDE):
        batch = tok.pad_documents([tok.assemble(content[a : a + WINDOW], tok.doc_token_id)])
        with torch.inference_mode():
            embedded, kept = model.forward_documents(batch)
        out.append(embedded[0][kept[0]])
    return out


def whole_word(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to the words it cuts."""
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_'-"):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] in "_'-"):
        end += 1
    return start, end


@pytest.fixture(scope="module")
def windowed(tmp_path_factory, tiny_colbert):
    folder = tmp_path_factory.mktemp("windows")
    rows = [{"_id": f"L{i}", "title": "late cat" if i % 2 else "",
             "text": " ".join(["colbert the dog; search of a tree!", "a gene study"][j % 2]
                              for j in range(2 + 3 * i))}
            for i in range(6)]  # fmt: skip
    rows.append({"_id": "short", "title": "", "text": "a dog"})
    path = folder / "long.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = Index.build(path, folder / "ix", tiny_colbert, nbits=None, precision=32,
                        window=WINDOW, window_stride=STRIDE, progress=False)  # fmt: skip
    return index, {r["_id"]: r for r in rows}


def test_vectors_are_the_windows_vectors_in_turn(windowed, tiny_colbert):
    index, rows = windowed
    for doc_id, row in rows.items():
        text = full_text(row["title"], row["text"], " ")
        expected = torch.cat(window_vectors(tiny_colbert, text))
        i = index.store.doc_index(doc_id)
        stored, mask = index.store.gather(np.array([i]))
        got = stored[0][mask[0]]
        assert got.shape == expected.shape
        assert torch.allclose(got.float(), expected.float(), atol=1e-4)
    assert index.store.summary.truncated_docs == 0


def test_scores_are_maxsim_over_the_union_and_name_the_best_window(windowed, tiny_colbert):
    index, rows = windowed
    Q, mask = tiny_colbert.encode_queries([QUERY], return_mask=True)
    q = Q[0][mask[0]]
    hits = index.search(QUERY, k=len(rows), mode="exact", explain=True)
    assert len(hits) == len(rows)
    for hit in hits:
        row = rows[hit.doc_id]
        windows = window_vectors(tiny_colbert, full_text(row["title"], row["text"], " "))
        union = (q @ torch.cat(windows).T).max(dim=1).values.sum().item()
        assert hit.score == pytest.approx(union, abs=1e-4)
        e = hit.explanation
        assert sum(m.similarity for m in e.matches) == pytest.approx(hit.score, rel=1e-5)
        per_window = [(q @ w.T).max(dim=1).values.sum().item() for w in windows]
        assert e.window_score == pytest.approx(max(per_window), abs=1e-4)
        assert per_window[e.window] == pytest.approx(max(per_window), abs=1e-4)
        for m in e.matches:  # spans point into the stored text, in the window named
            if m.field == "text":
                assert 0 <= m.start < m.end <= len(hit.text)
        if e.window_start is not None:
            assert 0 <= e.window_start < e.window_end <= len(hit.text)
            lo, hi = whole_word(hit.text, e.window_start, e.window_end)
            for h in hit.highlights:  # the best window's words
                assert h.field == "title" or lo <= h.start < h.end <= hi


def test_a_short_document_is_one_window_as_without_windows(windowed, tiny_colbert, tmp_path):
    index, _ = windowed
    plain = Index.build([("short", "a dog")], tmp_path / "p", tiny_colbert, nbits=None,
                        precision=32, progress=False)  # fmt: skip
    ours = index.search(QUERY, k=10, mode="exact", explain=True)
    theirs = plain.search(QUERY, k=1, mode="exact", explain=True)[0]
    short = next(h for h in ours if h.doc_id == "short")
    assert short.score == pytest.approx(theirs.score, abs=1e-5)
    assert short.explanation.window == 0


def test_windows_survive_an_update_and_bad_settings_are_refused(windowed, tmp_path,
                                                                tiny_colbert):  # fmt: skip
    index, _ = windowed
    added = Index.load(index.folder, tiny_colbert)
    added.add([("new", "colbert the dog; search of a tree! " * 6)])
    assert added.store.manifest.config.windows == (WINDOW, STRIDE, 64)
    i = added.store.doc_index("new")
    assert int(added.store.doclens[i]) == sum(
        len(w) for w in window_vectors(tiny_colbert, "colbert the dog; search of a tree! " * 6)
    )
    with pytest.raises(ConfigError, match="window"):
        Index.build([("a", "b")], tmp_path / "big", tiny_colbert, window=500, progress=False)
    with pytest.raises(ConfigError, match="window"):
        Index.build([("a", "b")], tmp_path / "d", tiny_colbert, window=8, dense="pooled",
                    progress=False)  # fmt: skip
