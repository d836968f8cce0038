"""MaxSim kernels against a naive Python loop, padding helpers, dtypes and devices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latesearch.scoring import (
    flops_maxsim,
    maxsim,
    maxsim_pairs,
    pad_documents,
    pad_from_flat,
)

DIM = 16
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


def naive(q: torch.Tensor, d: torch.Tensor, similarity: str, q_keep=None) -> float:
    """sum_i max_j sim(q_i, d_j) over real tokens only (q (Lq, dim), d (n, dim))."""
    q, d = q.double(), d.double()
    if d.shape[0] == 0:
        return -math.inf
    total = 0.0
    for i in range(q.shape[0]):
        if q_keep is not None and not bool(q_keep[i]):
            continue
        best = -math.inf
        for j in range(d.shape[0]):
            dot, sq = float(q[i] @ d[j]), float(((q[i] - d[j]) ** 2).sum())
            best = max(best, dot if similarity == "cosine" else -sq)
        total += best
    return total


def rand_tokens(gen: torch.Generator, n: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, DIM, generator=gen), dim=-1)


def make_docs(seed: int = 0, lengths=(1, 7, 3, 12, 1, 5)) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [rand_tokens(gen, n) for n in lengths]


def make_queries(seed: int = 1, nq: int = 3, Lq: int = 6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([rand_tokens(gen, Lq) for _ in range(nq)])


@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_one_query_matches_naive(similarity):
    docs, Q = make_docs(), make_queries()[0]
    D, mask = pad_documents(docs)
    scores = maxsim(Q, D, mask, similarity=similarity)
    assert scores.shape == (len(docs),) and scores.dtype == torch.float32
    expected = torch.tensor([naive(Q, d, similarity) for d in docs])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-4, check_dtype=False)


@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_many_queries_all_pairs(similarity):
    docs, Q = make_docs(), make_queries(nq=4)
    D, mask = pad_documents(docs)
    scores = maxsim(Q, D, mask, similarity=similarity)
    assert scores.shape == (4, len(docs))
    expected = torch.tensor([[naive(q, d, similarity) for d in docs] for q in Q])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-4, check_dtype=False)


@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_pairs_match_naive(similarity):
    docs = make_docs()
    Q = make_queries(nq=len(docs))
    D, mask = pad_documents(docs)
    scores = maxsim_pairs(Q, D, mask, similarity=similarity)
    expected = torch.tensor([naive(q, d, similarity) for q, d in zip(Q, docs, strict=True)])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-4, check_dtype=False)


@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_heavy_padding_never_wins(similarity):
    # one-token documents padded to 200 with padding rows that would win if not masked
    docs = make_docs(lengths=(1, 1, 1))
    Q = make_queries()[0]
    D, mask = pad_documents(docs, pad_to=200)
    assert D.shape == (3, 200, DIM) and int(mask.sum()) == 3
    D[~mask] = Q[0] if similarity == "l2" else 100.0
    expected = torch.tensor([naive(Q, d, similarity) for d in docs])
    for scores in (
        maxsim(Q, D, mask, similarity=similarity),
        maxsim_pairs(Q.expand(3, -1, -1), D, mask, similarity=similarity),
    ):
        torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-4, check_dtype=False)


def test_q_mask_tokens_contribute_zero():
    docs, Q = make_docs(), make_queries(nq=2)
    D, mask = pad_documents(docs)
    q_mask = torch.tensor([[1, 1, 0, 1, 0, 0], [0, 1, 1, 1, 1, 1]], dtype=torch.bool)
    for similarity in ("cosine", "l2"):
        scores = maxsim(Q, D, mask, q_mask, similarity=similarity)
        expected = torch.tensor(
            [[naive(q, d, similarity, k) for d in docs] for q, k in zip(Q, q_mask, strict=True)]
        )
        torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-4, check_dtype=False)
        one = maxsim(Q[1], D, mask, q_mask[1], similarity=similarity)
        torch.testing.assert_close(one, scores[1])
        pairs = maxsim_pairs(Q[[0, 1]], D[:2], mask[:2], q_mask, similarity=similarity)
        torch.testing.assert_close(pairs, torch.stack([scores[0, 0], scores[1, 1]]))


def test_empty_document_scores_minus_inf():
    docs = make_docs(lengths=(3, 0, 2))
    Q = make_queries(nq=3)
    D, mask = pad_documents(docs)
    for similarity in ("cosine", "l2"):
        scores = maxsim(Q, D, mask, similarity=similarity)
        assert torch.isneginf(scores[:, 1]).all() and torch.isfinite(scores[:, [0, 2]]).all()
        pairs = maxsim_pairs(Q, D, mask, similarity=similarity)
        assert torch.isneginf(pairs[1]) and torch.isfinite(pairs[[0, 2]]).all()
    only_empty, m = pad_documents([torch.zeros(0, DIM)])
    assert only_empty.shape == (1, 0, DIM)
    assert torch.isneginf(maxsim(Q[0], only_empty, m)).all()


@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_mini_batching_gives_identical_results(similarity):
    docs = make_docs(seed=3, lengths=tuple(range(1, 30)))
    Q = make_queries(nq=5)
    D, mask = pad_documents(docs)
    full = maxsim(Q, D, mask, similarity=similarity)
    settings = ({"batch_size": 1}, {"batch_size": 4}, {"max_elements": 1}, {"max_elements": 500})
    for kwargs in settings:
        torch.testing.assert_close(maxsim(Q, D, mask, similarity=similarity, **kwargs), full)
    pairs_q = Q.repeat(6, 1, 1)[: len(docs)]
    pairs = maxsim_pairs(pairs_q, D, mask, similarity=similarity)
    for kwargs in ({"batch_size": 1}, {"batch_size": 7}, {"max_elements": 10}):
        got = maxsim_pairs(pairs_q, D, mask, similarity=similarity, **kwargs)
        torch.testing.assert_close(got, pairs)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_half_inputs_accumulate_in_float32(dtype, similarity):
    docs, Q = make_docs(), make_queries(nq=2)
    D, mask = pad_documents(docs)
    ref = maxsim(Q, D, mask, similarity=similarity)
    scores = maxsim(Q.to(dtype), D.to(dtype), mask, similarity=similarity)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, ref, rtol=2e-2, atol=5e-2)
    pairs = maxsim_pairs(Q.to(dtype), D[:2].to(dtype), mask[:2], similarity=similarity)
    torch.testing.assert_close(pairs, ref[[0, 1], [0, 1]], rtol=2e-2, atol=5e-2)


def test_gradients_flow_through_pairs():
    docs = make_docs(lengths=(2, 5))
    Q = make_queries(nq=2).requires_grad_()
    D, mask = pad_documents(docs)
    maxsim_pairs(Q, D, mask).sum().backward()
    assert Q.grad is not None and torch.isfinite(Q.grad).all()


def test_pad_from_flat_equals_pad_documents():
    docs = make_docs(lengths=(4, 1, 0, 9, 2))
    flat = torch.cat(docs)
    lengths = [d.shape[0] for d in docs]
    expected = pad_documents(docs)
    for got in (
        pad_from_flat(flat, lengths),
        pad_from_flat(flat.numpy(), np.array(lengths)),
        pad_from_flat(flat, torch.tensor(lengths), torch.tensor([0, 4, 5, 5, 14])),
    ):
        torch.testing.assert_close(got[0], expected[0])
        assert torch.equal(got[1], expected[1])
    # a subset, in another order, as an index's gather does with global offsets
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    pick = np.array([3, 0, 4])
    D, mask = pad_from_flat(flat, np.array(lengths)[pick], offsets[pick], pad_to=10)
    D2, mask2 = pad_documents([docs[i] for i in pick], pad_to=10)
    torch.testing.assert_close(D, D2)
    assert torch.equal(mask, mask2)
    half, _ = pad_from_flat(flat, lengths, dtype=torch.float16)
    assert half.dtype == torch.float16


def test_padding_errors():
    docs = make_docs(lengths=(3, 5))
    with pytest.raises(ValueError, match="pad_to"):
        pad_documents(docs, pad_to=4)
    with pytest.raises(ValueError, match="document 1"):
        pad_documents([docs[0], torch.zeros(2, DIM + 1)])
    with pytest.raises(ValueError, match="document 1 spans rows 3:9"):
        pad_from_flat(torch.cat(docs), [3, 6])


def test_input_errors():
    D, mask = pad_documents(make_docs())
    Q = make_queries()
    with pytest.raises(ValueError, match="similarity"):
        maxsim(Q, D, mask, similarity="dot")
    with pytest.raises(ValueError, match="dimension mismatch"):
        maxsim(Q[..., :4], D, mask)
    with pytest.raises(ValueError, match="d_mask"):
        maxsim(Q, D, mask[:, :2])
    with pytest.raises(ValueError, match="as many queries"):
        maxsim_pairs(Q, D, mask)


def test_flops():
    assert flops_maxsim(32, 180, 128, 1000) == 32 * 180 * 128 * 1000
    assert flops_maxsim(32, 180, 128, 10, nq=2) == 2 * 32 * 180 * 128 * 10


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("similarity", ["cosine", "l2"])
def test_cuda_matches_cpu(dtype, similarity):
    docs, Q = make_docs(), make_queries(nq=3)
    D, mask = pad_documents(docs)
    ref = maxsim(Q, D, mask, similarity=similarity)
    Dc, mc = pad_from_flat(torch.cat(docs).cuda(), [d.shape[0] for d in docs], dtype=dtype)
    assert Dc.is_cuda and mc.is_cuda
    scores = maxsim(Q.to("cuda", dtype), Dc, mc, similarity=similarity)
    assert scores.is_cuda and scores.dtype == torch.float32
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 5e-2}
    torch.testing.assert_close(scores.cpu(), ref, **tol)
    pairs = maxsim_pairs(Q.to("cuda", dtype), Dc[:3], mc[:3], similarity=similarity)
    torch.testing.assert_close(pairs.cpu(), ref[[0, 1, 2], [0, 1, 2]], **tol)


def test_half_precision_widening_is_exact_for_every_bit_pattern():
    import numpy as np

    from latesearch.scoring.precision import as_float32

    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    np.testing.assert_array_equal(as_float32(halves.reshape(256, 256)),
                                  halves.astype(np.float32).reshape(256, 256))  # fmt: skip
    assert as_float32(halves[::7]).dtype == np.float32  # strided input
    floats = np.array([[1.5, -2.0]], dtype=np.float64)
    assert as_float32(floats).dtype == np.float32


def test_segment_maxsim_equals_padded_maxsim():
    from latesearch.scoring.maxsim import segment_maxsim

    g = torch.Generator().manual_seed(3)
    lengths = np.array([4, 0, 1, 7, 2])
    Q = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    flat = F.normalize(torch.randn(int(lengths.sum()), 8, generator=g), dim=-1)
    D = torch.zeros(len(lengths), int(lengths.max()), 8)
    mask = torch.arange(D.shape[1])[None, :] < torch.from_numpy(lengths)[:, None]
    D[mask] = flat
    got = segment_maxsim(flat @ Q.T, lengths)
    np.testing.assert_allclose(got, maxsim(Q, D, mask).numpy(), rtol=1e-5, atol=1e-6)
    assert got[1] == -np.inf  # no tokens
    assert segment_maxsim(flat @ Q[:0].T, lengths).tolist() == [0, -np.inf, 0, 0, 0]

