"""Training losses over late-interaction scores.

The paper's loss (Section 3.3) is a softmax cross-entropy over each query's scores for
[positive, negative]; with n-way negatives it is over [positive, negative_1..negative_k].
In-batch negatives (ColBERTv2 practice) add a cross-entropy of every query against every
document of its (micro-)batch. Distillation (ColBERTv2) replaces the n-way cross-entropy by
the KL divergence from a teacher's score distribution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latesearch.scoring import maxsim, maxsim_pairs


def nway_scores(
    Q: torch.Tensor, D: torch.Tensor, d_mask: torch.Tensor, nway: int, similarity: str
) -> torch.Tensor:
    """(n, nway) scores; documents are grouped per query: [pos, neg_1, ..., neg_k]."""
    n = Q.shape[0]
    if D.shape[0] != n * nway:
        raise ValueError(f"expected {n * nway} documents for {n} queries, got {D.shape[0]}")
    pairs = maxsim_pairs(Q.repeat_interleave(nway, dim=0), D, d_mask, similarity=similarity)
    return pairs.view(n, nway)


def all_pairs_scores(
    Q: torch.Tensor, D: torch.Tensor, d_mask: torch.Tensor, similarity: str
) -> torch.Tensor:
    """(n, m) scores of every query against every document of the batch."""
    return maxsim(Q, D, d_mask, similarity=similarity)


def pairwise_softmax_ce(scores: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the positive in column 0 (the paper's pairwise softmax loss)."""
    target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores.float(), target)


def in_batch_ce(scores: torch.Tensor, nway: int) -> torch.Tensor:
    """Cross-entropy of each query over all documents of the batch (its positive at
    column ``i * nway``; other queries' positives and negatives are negatives)."""
    n = scores.shape[0]
    target = torch.arange(n, device=scores.device) * nway
    return F.cross_entropy(scores.float(), target)


def distillation_kl(
    scores: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL(teacher || student) over each query's [pos, negs...] score distributions."""
    student = F.log_softmax(scores.float() / temperature, dim=-1)
    target = F.log_softmax(teacher.float().to(scores.device) / temperature, dim=-1)
    return F.kl_div(student, target, reduction="batchmean", log_target=True)
