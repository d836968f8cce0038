"""Offline indexing (paper Section 3.4): every document encoded once into a durable,
memory-mappable on-disk index."""

from latesearch.indexing.builder import IndexExistsError, build_index
from latesearch.indexing.config import IndexConfig
from latesearch.indexing.manifest import FORMAT_VERSION, ChunkInfo, Manifest
from latesearch.indexing.storage import IndexStore, UnknownDocumentError, building_folder
from latesearch.indexing.summary import BuildSummary

__all__ = [
    "FORMAT_VERSION",
    "BuildSummary",
    "ChunkInfo",
    "IndexConfig",
    "IndexExistsError",
    "IndexStore",
    "Manifest",
    "UnknownDocumentError",
    "build_index",
    "building_folder",
]
