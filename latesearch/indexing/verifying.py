"""Re-hashing an open index against its checksums (`IndexStore.verify`): the chunks'
arrays against their manifest records, the codec and inverted file, the other files of
the index, and each component folder against its own checksums."""

from __future__ import annotations

from typing import TYPE_CHECKING

from latesearch.compressed.arrays import chunk_digest, file_digest
from latesearch.errors import IndexCorruptError
from latesearch.indexing.checksums import (
    CHECKSUMS,
    VerifyReport,
    check_digests,
    component_records,
    damaged,
    files_under,
)
from latesearch.indexing.manifest import MANIFEST, component_dirs
from latesearch.indexing.pooling import span_arrays

if TYPE_CHECKING:
    from latesearch.indexing.storage import IndexStore


def verify_index(store: IndexStore) -> VerifyReport:
    """Re-hash every file of the index against its checksums (reads the whole index);
    IndexCorruptError names the first that differs. The report counts what was read
    and lists the files no checksum covers (written by an older latesearch)."""
    manifest = store.manifest
    report, covered = VerifyReport(), {MANIFEST}  # the manifest is validated on open
    for i, info in enumerate(manifest.chunks):
        report.bytes += verify_chunk(store, i)
        covered.update(name for name, digest in info.digests().items() if digest)
    report.bytes += verify_codec(store)
    covered.update((manifest.codec or {}).get("sha256", {}))
    report.bytes += check_digests(store.folder, manifest.files)
    covered.update(manifest.files)
    for component in component_dirs(store.folder):
        records = component_records(component)
        if records is not None:
            report.bytes += check_digests(component, records)
            prefix = f"{component.name}/"
            covered.update(prefix + name for name in [*records, CHECKSUMS])
    present = [n for n in files_under(store.folder) if not n.startswith(".")]
    report.unchecked = [n for n in present if n not in covered]
    report.files = len(present) - len(report.unchecked)
    return report


def verify_chunk(store: IndexStore, i: int) -> int:
    """Re-hash chunk `i`'s vectors, codes, residuals, norms, doclens and pooled vectors against
    the manifest; the bytes hashed."""
    info = store.manifest.chunks[i]
    span = slice(info.first_doc, info.first_doc + info.n_docs)
    stored = store.vectors.chunk_arrays(i)
    arrays = [(info.embeddings, stored["embeddings"], info.sha256),
              (info.doclens, store.doclens[span], info.doclens_sha256)]  # fmt: skip
    if "codes" in stored:
        arrays += [(info.codes, stored["codes"], info.codes_sha256),
                   (info.residuals, stored["residuals"], info.residuals_sha256),
                   (info.norms, stored.get("norms"), info.norms_sha256)]  # fmt: skip
    arrays.append((info.dense, store.dense_view.chunk(i), info.dense_sha256))
    arrays += span_arrays(store.folder, info)  # a pooled index's token spans
    hashed = 0
    for name, array, expected in arrays:
        if array is not None and expected:
            if chunk_digest(array) != expected:
                raise IndexCorruptError(damaged(store.folder / name))
            hashed += array.nbytes
    return hashed


def verify_codec(store: IndexStore) -> int:
    """Re-hash the codec and inverted-file files of a compressed index; bytes hashed."""
    hashed = 0
    for name, expected in (store.manifest.codec or {}).get("sha256", {}).items():
        path = store.folder / name
        if not path.is_file() or file_digest(path) != expected:
            raise IndexCorruptError(damaged(path) if path.is_file() else f"{path}: missing")
        hashed += path.stat().st_size
    return hashed


def verify_file(store: IndexStore, name: str) -> None:
    """Re-hash one file recorded in the manifest's `files` (nothing where it has no
    record: an index written before every file had one)."""
    if name in store.manifest.files:
        check_digests(store.folder, {name: store.manifest.files[name]})
