"""The query encoder of an index: the model it was built with, checked by fingerprint."""

from __future__ import annotations

import os
from typing import Any

import torch

from latesearch.errors import ModelMismatchError as ModelMismatchError  # its old home
from latesearch.indexing import IndexStore
from latesearch.modeling import ColBERT, resolve_device


def load_index_model(
    store: IndexStore,
    model: ColBERT | str | os.PathLike | None = None,
    *,
    device: str | torch.device | None = None,
    check: bool = True,
) -> ColBERT:
    """The model to encode queries for `store`: `model` (a ColBERT or a checkpoint path) or
    else the manifest's `model_source`, loaded with the index's ColBERT config.

    Unless `check` is False, its fingerprint must equal the manifest's `model_fingerprint`.
    """
    if isinstance(model, ColBERT):  # used as it is (never moved): scoring may be elsewhere
        _check(store, model, check)
        return model
    source = model if model is not None else store.manifest.model_source
    if not source:
        raise ModelMismatchError(f"{store.folder}: the manifest names no model; pass model=")
    overrides: dict[str, Any] = dict(store.manifest.colbert_config)
    loaded = ColBERT.from_pretrained(source, device=resolve_device(device), **overrides)
    if not check or loaded.fingerprint() == store.manifest.model_fingerprint:
        return loaded
    # An index built from a ColBERT object with a doc_maxlen override stores the
    # fingerprint of the model's own config: accept that as well.
    plain = ColBERT.from_pretrained(source, device=resolve_device(device))
    _check(store, plain, check)
    return plain


def _check(store: IndexStore, model: ColBERT, check: bool) -> None:
    expected = store.manifest.model_fingerprint
    found = model.fingerprint()
    if check and found != expected:
        raise ModelMismatchError(
            f"{store.folder}: the query model (fingerprint {found[:12]}, from "
            f"{getattr(model, 'source', '?')}) is not the model this index was built with "
            f"(fingerprint {expected[:12]}, from {store.manifest.model_source or '?'}); "
            "pass the right model, or check_model=False to search anyway"
        )
