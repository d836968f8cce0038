"""Starting projections for a new ColBERT head that keep the backbone's token geometry."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from latesearch.errors import ConfigError


@torch.inference_mode()
def token_moments(
    model, texts: Sequence[str], *, batch_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """(E[h], E[h h^T]) over the backbone's output vectors of the kept document tokens of
    `texts` (markers, punctuation skipping and truncation as the model encodes documents)."""
    hidden = model.backbone.config.hidden_size
    first = torch.zeros(hidden, dtype=torch.float64)
    second = torch.zeros(hidden, hidden, dtype=torch.float64)
    count = 0
    for start in range(0, len(texts), batch_size):
        batch = model.tokenizer.documents(list(texts[start : start + batch_size])).to(model.device)
        kept = model.token_states(batch)[batch.output_mask].to(torch.float64).cpu()
        first += kept.sum(0)
        second += kept.T @ kept
        count += len(kept)
    if count == 0:
        raise ConfigError("no tokens to estimate a projection from")
    return first / count, second / count


def token_second_moment(model, texts: Sequence[str], *, batch_size: int = 32) -> torch.Tensor:
    """E[h h^T] over the kept document tokens of `texts` (see token_moments)."""
    return token_moments(model, texts, batch_size=batch_size)[1]


def pca_projection(
    second_moment: torch.Tensor, dim: int, *, remove: torch.Tensor | None = None
) -> tuple[torch.Tensor, float]:
    """The [dim, hidden] projection onto the top-`dim` eigenvectors of the (uncentered)
    second moment, and the fraction of it kept. Uncentered because the head has no bias:
    it preserves dot products, hence the cosine MaxSim of the backbone, as far as `dim`
    allows. With `remove` (a direction, typically the mean token vector), that direction is
    projected out first and maps to zero: a bias-free stand-in for centering, which stops
    the shared component of all tokens from dominating the cosines. Eigenvector signs are
    fixed (largest entry positive) for reproducibility."""
    hidden = second_moment.shape[0]
    if not 0 < dim <= hidden:
        raise ConfigError(f"dim must be in [1, {hidden}], got {dim}")
    moment = second_moment.to(torch.float64)
    total = moment.trace()
    null = torch.eye(hidden, dtype=torch.float64)
    if remove is not None:
        if remove.shape != (hidden,) or not float(remove.norm()) > 0:
            raise ConfigError(f"remove must be a non-zero vector of size {hidden}")
        u = (remove.to(torch.float64) / remove.norm()).unsqueeze(1)
        null = null - u @ u.T
        moment = null @ moment @ null
    values, vectors = torch.linalg.eigh(moment)
    top = vectors[:, -dim:].flip(1).T
    signs = torch.sign(top.gather(1, top.abs().argmax(1, keepdim=True)))
    kept = float(values[-dim:].sum() / total)
    return ((top * signs) @ null).to(torch.float32).contiguous(), kept
