"""Padded document batches for MaxSim: from a list of (n_i, dim) tensors, or gathered from a
flat token matrix (the on-disk layout: all token embeddings concatenated, with per-document
offsets) with one vectorised index, no Python loop per document or token."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

Device = str | torch.device | None


def pad_documents(
    docs: Sequence[torch.Tensor],
    *,
    pad_to: int | None = None,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(D (nd, L, dim), mask (nd, L) bool, True = real token) from (n_i, dim) documents.

    L is the longest document, or pad_to (which must be at least that). device and dtype
    default to those of the first document. Zero-length documents are allowed.
    """
    if len(docs) == 0:
        raise ValueError("pad_documents needs at least one document (the dim is unknown)")
    tensors = [torch.as_tensor(d) for d in docs]
    device = torch.device(device) if device is not None else tensors[0].device
    dtype = dtype or tensors[0].dtype
    dim = tensors[0].shape[-1]
    for i, t in enumerate(tensors):
        if t.dim() != 2 or t.shape[1] != dim:
            raise ValueError(f"document {i} has shape {tuple(t.shape)}, expected (n, {dim})")
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
    width = _width(lengths, pad_to)
    out = torch.zeros((len(tensors), width, dim), dtype=dtype, device=device)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    if lengths.sum() > 0:
        out[mask.to(device)] = torch.cat([t.to(device=device, dtype=dtype) for t in tensors])
    return out, mask.to(device)


def pad_from_flat(
    flat: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | np.ndarray | Sequence[int],
    offsets: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    *,
    pad_to: int | None = None,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather documents from flat (total, dim) into (D (nd, L, dim), mask (nd, L)).

    Document i is rows offsets[i] : offsets[i] + lengths[i] of flat; offsets default to the
    documents lying back to back from row 0. flat may be a tensor or a NumPy array / memmap
    (only the rows asked for are read). device defaults to flat's (CPU for NumPy), dtype to
    flat's.
    """
    lens = _as_long(lengths)
    if lens.dim() != 1:
        raise ValueError(f"lengths must be 1-D, got shape {tuple(lens.shape)}")
    starts = torch.cumsum(lens, 0) - lens if offsets is None else _as_long(offsets)
    if starts.shape != lens.shape:
        raise ValueError(f"offsets has shape {tuple(starts.shape)}, lengths {tuple(lens.shape)}")
    if flat.ndim != 2:
        raise ValueError(f"flat must be (total, dim), got shape {tuple(flat.shape)}")
    total, dim = flat.shape
    if lens.numel():
        if int(lens.min()) < 0 or int(starts.min()) < 0:
            raise ValueError("lengths and offsets must be >= 0")
        ends = starts + lens
        if int(ends.max()) > total:
            bad = int(torch.nonzero(ends > total)[0, 0])
            raise ValueError(
                f"document {bad} spans rows {int(starts[bad])}:{int(ends[bad])} "
                f"but flat has {total} rows"
            )
    width = _width(lens, pad_to)
    positions = torch.arange(width)
    mask = positions[None, :] < lens[:, None]  # (nd, width)
    rows = (starts[:, None] + positions[None, :])[mask]  # real rows, in (doc, position) order
    if isinstance(flat, np.ndarray):
        gathered = torch.from_numpy(np.ascontiguousarray(flat[rows.numpy()]))
        src_device = torch.device("cpu")
    else:
        gathered = flat.index_select(0, rows.to(flat.device))
        src_device = flat.device
    device = torch.device(device) if device is not None else src_device
    dtype = dtype or gathered.dtype
    out = torch.zeros((lens.numel(), width, dim), dtype=dtype, device=device)
    mask = mask.to(device)
    out[mask] = gathered.to(device=device, dtype=dtype)
    return out, mask


def _as_long(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.long)
    return torch.as_tensor(np.asarray(x, dtype=np.int64))


def _width(lengths: torch.Tensor, pad_to: int | None) -> int:
    longest = int(lengths.max()) if lengths.numel() else 0
    if pad_to is None:
        return longest
    if pad_to < longest:
        raise ValueError(f"pad_to={pad_to} is shorter than the longest document ({longest})")
    return int(pad_to)
