"""Starting projections for a new ColBERT head that keep the backbone's token geometry."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from latesearch.errors import ConfigError


@torch.inference_mode()
def token_second_moment(model, texts: Sequence[str], *, batch_size: int = 32) -> torch.Tensor:
    """E[h h^T] over the backbone's output vectors of the kept document tokens of `texts`
    (markers, punctuation skipping and truncation as the model encodes documents)."""
    hidden = model.backbone.config.hidden_size
    total = torch.zeros(hidden, hidden, dtype=torch.float64)
    count = 0
    for start in range(0, len(texts), batch_size):
        batch = model.tokenizer.documents(list(texts[start : start + batch_size])).to(model.device)
        states = model.backbone(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
        kept = states[batch.output_mask].to(torch.float64).cpu()
        total += kept.T @ kept
        count += len(kept)
    if count == 0:
        raise ConfigError("no tokens to estimate a projection from")
    return total / count


def pca_projection(second_moment: torch.Tensor, dim: int) -> tuple[torch.Tensor, float]:
    """The [dim, hidden] projection onto the top-`dim` eigenvectors of the (uncentered)
    second moment, and the fraction of it kept. Uncentered because the head has no bias:
    it preserves dot products, hence the cosine MaxSim of the backbone, as far as `dim`
    allows. Eigenvector signs are fixed (largest entry positive) for reproducibility."""
    hidden = second_moment.shape[0]
    if not 0 < dim <= hidden:
        raise ConfigError(f"dim must be in [1, {hidden}], got {dim}")
    values, vectors = torch.linalg.eigh(second_moment.to(torch.float64))
    top = vectors[:, -dim:].flip(1).T
    signs = torch.sign(top.gather(1, top.abs().argmax(1, keepdim=True)))
    kept = float(values[-dim:].sum() / values.sum())
    return (top * signs).to(torch.float32).contiguous(), kept
