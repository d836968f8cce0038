"""The cached contrastive loss (GradCache; Gao et al. 2021): a batch's loss and gradient in
memory bounded by a chunk of texts, not by the batch.

1. Embed the queries and the documents in chunks of at most `chunk` texts, without
   gradients (the random state before each chunk is kept).
2. Compute the loss over the whole batch from those embeddings, and its gradient with
   respect to them.
3. Embed each chunk again, with gradients and the same random state (same dropout), and
   backpropagate that chunk's part of the gradient into the encoder.

Loss and parameter gradients equal those of the uncached computation up to float
rounding; the encoder runs twice, so a step costs about a third more.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from latesearch.modeling import TokenBatch
from latesearch.training.runtime import rng_state, set_rng_state

# encode(queries, documents) -> (Q or None, D or None, mask or None)
Encode = Callable[
    [TokenBatch | None, TokenBatch | None],
    tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None],
]
# loss of the batch from (Q, D, mask)
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def cached_backward(
    encode: Encode,
    queries: TokenBatch,
    documents: TokenBatch,
    loss_of: Loss,
    chunk: int,
    *,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    no_sync: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    device: torch.device | None = None,
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """Backpropagate the batch's loss into the encoder chunk by chunk; returns the loss
    (detached). `backward(loss)` runs the loss's backward (scaling it if needed);
    `no_sync()` wraps every backward but the last (DDP's gradient synchronization);
    `context()` wraps every forward (autocast); `device` is where dropout draws from."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    device = device or torch.device("cpu")
    parts = [("q", queries, rows) for rows in _chunks(len(queries), chunk)]
    parts += [("d", documents, rows) for rows in _chunks(len(documents), chunk)]
    states, outputs, mask_parts = [], [], []
    with torch.no_grad():
        for kind, batch, rows in parts:
            states.append(rng_state(device))
            with context():
                out, mask = _encode(encode, kind, _rows(batch, rows))
            outputs.append(out)
            if mask is not None:
                mask_parts.append(mask)
    n_q = sum(kind == "q" for kind, _, _ in parts)
    Q = torch.cat(outputs[:n_q]).requires_grad_()
    D = torch.cat(outputs[n_q:]).requires_grad_()
    with no_sync():
        with context():
            loss = loss_of(Q, D, torch.cat(mask_parts))
        backward(loss)
    grads = list(torch.split(Q.grad, [r.stop - r.start for k, _, r in parts if k == "q"]))
    grads += list(torch.split(D.grad, [r.stop - r.start for k, _, r in parts if k == "d"]))
    after = rng_state(device)
    for i, ((kind, batch, rows), state, grad) in enumerate(zip(parts, states, grads, strict=True)):
        set_rng_state(state, device)
        last = i == len(parts) - 1
        with contextlib.nullcontext() if last else no_sync():
            with context():
                out, _ = _encode(encode, kind, _rows(batch, rows))
            out.backward(grad.to(out.dtype))
    set_rng_state(after, device)
    return loss.detach()


def _encode(encode: Encode, kind: str, batch: TokenBatch):
    if kind == "q":
        Q, _, _ = encode(batch, None)
        return Q, None
    _, D, mask = encode(None, batch)
    return D, mask


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(start, min(n, start + size)) for start in range(0, n, size)]


def _rows(batch: TokenBatch, rows: slice) -> TokenBatch:
    return TokenBatch(*(t[rows] for t in batch.astuple()))
