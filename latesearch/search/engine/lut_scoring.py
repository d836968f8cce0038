"""Stage 5 from lookup tables (as WARP, Scheerer et al., SIGIR 2025): exact MaxSim of the
surviving documents from their centroid codes and packed residuals, with no decompressed
(n, dim) vectors and no matrix product against them.

A decompressed token is d = (c + r) / ||c + r||: its centroid c plus its quantized residual
r, re-normalized (`ResidualCodec.decompress`). So for a query token q,
q.d = (q.c + q.r) / ||c + r||, where

- q.c is the query-centroid score of stage 1 (`centroid_scores.CentroidScores`);
- q.r is a sum over the packed bytes: byte position j (8 / nbits dimensions) holding byte
  value b adds T[j, b] = sum over its dimensions of q[dim] * weight(bucket of dim in b). The
  tables of every query token, (packed_dim * 256, Lq), are built once per query; a token's
  q.r for all query tokens is then one `embedding_bag` sum of its packed_dim table rows;
- ||c + r|| is the norm `decompress` divides by: read from the chunk's stored norms (one
  byte a token, written when the chunk was coded), or, for chunks coded before norms were
  stored, computed as `decompress` computes it (the residual decoded through the codec's
  byte table, plus the centroid: once the largest cost of this stage). Skipping it is not
  an option: on 2,000 SciFact documents at 2 bits the norms range from 0.84 to 1.07,
  moving a query token's similarity by up to 0.05, enough to reorder documents.

The result equals decompress-and-multiply (`residual_scoring`) to float rounding: the same
products, summed in another order.
"""

from __future__ import annotations

import numpy as np
import torch

from latesearch.compressed.codec import ResidualCodec
from latesearch.indexing import IndexStore
from latesearch.scoring.maxsim import segment_maxsim
from latesearch.search.engine.centroid_scores import CentroidScores
from latesearch.search.timing import SearchTimings


def applies(store: IndexStore, Q: torch.Tensor, similarity: str, source: str) -> bool:
    """Whether lookup tables can score this search: cosine similarity on CPU over the
    residuals (an index without its fp16 vectors, or `source="residual"`)."""
    return (
        similarity == "cosine"
        and Q.device.type == "cpu"
        and store.codec is not None
        and store.check_source(source) == "residual"
    )


def lut_scores(
    store: IndexStore,
    Q: torch.Tensor,
    q_mask: torch.Tensor,
    docs: np.ndarray,
    centroid_scores: CentroidScores | np.ndarray,
    *,
    timings: SearchTimings,
) -> np.ndarray:
    """(n_docs,) MaxSim scores of one query Q (1, Lq, dim) against `docs`, given the
    query's real tokens' scores against the centroids (a `CentroidScores`, or every
    centroid's, (n_centroids, Lq) float32). The tables hold the rows of the documents'
    own centroids only."""
    if isinstance(centroid_scores, np.ndarray):
        centroid_scores = CentroidScores.of_matrix(centroid_scores)
    codec = store.codec
    assert codec is not None
    lengths = store.doclens[docs].astype(np.int64)
    with timings.stage("gather"):
        codes, packed, norms = store.vectors.coded(docs)
    with timings.stage("score"):
        qT = Q[0][q_mask[0]].detach().to(torch.float32).T.contiguous()
        used, local = distinct(codes, centroid_scores.known.size)
        rows = torch.from_numpy(centroid_scores.rows(used))
        sim = token_scores(codec, qT, local, packed, norms, rows)
        out = segment_maxsim(sim, lengths)
    timings.n_candidates += docs.size
    return out


def distinct(codes: np.ndarray, n_centroids: int) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct centroids of `codes`, ascending; each code's position among them),
    by a mark per centroid: linear in the codes and the centroids, where `np.unique`'s sort
    cost ~17 ms for the 250,000 codes of k=100's survivors."""
    present = np.zeros(n_centroids, dtype=bool)
    present[codes] = True
    used = np.flatnonzero(present)
    position = np.empty(n_centroids, dtype=np.int64)
    position[used] = np.arange(used.size)
    return used, position[codes]


def token_scores(codec: ResidualCodec, qT: torch.Tensor, codes: np.ndarray, packed: np.ndarray,
                 norms: np.ndarray, centroid_scores: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """(n, Lq) float32 dot products of the decompressed tokens (`codes` (n,), `packed`
    (n, packed_dim), `norms` (n,): what decompressing divides by) with the query's tokens
    qT (dim, Lq), given the centroids' scores (rows indexed by `codes`, Lq): one
    `embedding_bag` sums, per token, its packed_dim table rows and its centroid's row
    (appended to the tables), then a division by the token norms."""
    n, width = codes.shape[0], codec.packed_dim
    tables = torch.cat([query_tables(codec, qT), centroid_scores])
    rows = torch.empty((n, width + 1), dtype=torch.int32)
    byte_rows = torch.arange(width, dtype=torch.int32) * 256
    torch.add(torch.from_numpy(packed), byte_rows, out=rows[:, :width])
    rows[:, width] = torch.from_numpy(codes) + width * 256
    sim = torch.nn.functional.embedding_bag(rows, tables, mode="sum")
    sim /= torch.from_numpy(norms)[:, None]
    return sim


def query_tables(codec: ResidualCodec, qT: torch.Tensor) -> torch.Tensor:
    """(packed_dim * 256, Lq) float32: row j * 256 + b holds, for every query token, the dot
    product of its dimensions in byte position j with the residual weights byte b encodes."""
    per = 8 // codec.nbits  # dimensions per byte
    weights = torch.from_numpy(codec.byte_table)  # (256, per)
    by_byte = qT.reshape(codec.packed_dim, per, qT.shape[1])  # (packed_dim, per, Lq)
    return torch.einsum("bk,jkl->jbl", weights, by_byte).reshape(-1, qT.shape[1]).contiguous()
