"""Training losses over late-interaction scores.

The paper's loss (Section 3.3) is a softmax cross-entropy over each query's scores for
[positive, negative]; with n-way negatives it is over [positive, negative_1..negative_k].
In-batch negatives (ColBERTv2 practice) add a cross-entropy of every query against every
document of its (micro-)batch, or under DDP of every rank's micro-batch (gathered).
Distillation (ColBERTv2) replaces the n-way cross-entropy by the KL divergence from a
teacher's score distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


def in_batch_ce(scores: torch.Tensor, nway: int, first: int = 0) -> torch.Tensor:
    """Cross-entropy of each query over all documents of the batch (its positive at
    column ``first + i * nway``; other queries' positives and negatives are negatives).
    `first`: the column of this process's first document when the columns hold the
    documents of every rank."""
    n = scores.shape[0]
    target = first + torch.arange(n, device=scores.device) * nway
    return F.cross_entropy(scores.float(), target)


@dataclass
class Objective:
    """The loss of a batch from its embeddings: queries Q (n, Lq, dim) and their documents
    D (n * nway, Ld, dim), grouped per query as [pos, neg_1, ..., neg_k].

    The n-way part is the pairwise softmax cross-entropy, or with `distill` the KL to the
    teacher's scores. `in_batch` adds the cross-entropy of each query over every document
    of the batch; `gather` (under DDP) turns the local documents into every rank's, in rank
    order, with the column of the first local one: `(D_all, mask_all, first)`.
    """

    nway: int
    similarity: str
    in_batch: bool = False
    distill: bool = False
    temperature: float = 1.0
    gather: (
        Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, int]] | None
    ) = None

    def __call__(
        self,
        Q: torch.Tensor,
        D: torch.Tensor,
        d_mask: torch.Tensor,
        teacher: torch.Tensor | None = None,
    ) -> torch.Tensor:
        n, nway = Q.shape[0], self.nway
        every = None
        if self.in_batch:
            D_all, mask_all, first = (
                (D, d_mask, 0) if self.gather is None else self.gather(D, d_mask)
            )
            every = all_pairs_scores(Q, D_all, mask_all, self.similarity)
            rows = torch.arange(n, device=every.device)
            own = every[:, first : first + n * nway].view(n, n, nway)[rows, rows]
        else:
            own = nway_scores(Q, D, d_mask, nway, self.similarity)
        loss = own.new_zeros((), dtype=torch.float32)
        if self.distill:
            if teacher is None:
                raise ValueError("distillation needs the teacher's scores of every example")
            loss = loss + distillation_kl(own, teacher, self.temperature)
        elif nway > 1:
            loss = loss + pairwise_softmax_ce(own)
        if every is not None:
            loss = loss + in_batch_ce(every, nway, first)
        return loss


def distillation_kl(
    scores: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL(teacher || student) over each query's [pos, negs...] score distributions."""
    student = F.log_softmax(scores.float() / temperature, dim=-1)
    target = F.log_softmax(teacher.float().to(scores.device) / temperature, dim=-1)
    return F.kl_div(student, target, reduction="batchmean", log_target=True)
