"""Offline indexing (paper Section 3.4): every document encoded once into a durable,
memory-mappable on-disk index."""

from latesearch.indexing.builder import build_index
from latesearch.indexing.checksums import VerifyReport
from latesearch.indexing.config import (
    CodecConfig,
    DenseViewConfig,
    EncodingRun,
    IndexConfig,
    RayConfig,
)
from latesearch.indexing.convert import compress_index
from latesearch.indexing.files import IndexBusyError, IndexExistsError
from latesearch.indexing.manifest import FORMAT_VERSION, ChunkInfo, Manifest
from latesearch.indexing.storage import IndexStore, UnknownDocumentError, building_folder
from latesearch.indexing.summary import BuildSummary
from latesearch.indexing.updating import (
    ComponentUpdater,
    IndexChange,
    UpdateSummary,
    update_index,
    updating_folder,
)

__all__ = [
    "FORMAT_VERSION",
    "BuildSummary",
    "ChunkInfo",
    "CodecConfig",
    "ComponentUpdater",
    "DenseViewConfig",
    "EncodingRun",
    "IndexBusyError",
    "IndexChange",
    "IndexConfig",
    "IndexExistsError",
    "IndexStore",
    "Manifest",
    "RayConfig",
    "UnknownDocumentError",
    "UpdateSummary",
    "VerifyReport",
    "build_index",
    "compress_index",
    "building_folder",
    "update_index",
    "updating_folder",
]
