"""`add_field_indexes`: give metadata fields of a finished index a field index, published
as a new version of the folder the way an update is: staged in `<folder>.updating/` (every
file hard-linked but the doc store, which is copied and indexed, and the manifest), then
renamed onto the old one. A crash before that rename leaves the old index as it was."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from latesearch._atomic import replace_folder
from latesearch.indexing.checksums import file_record
from latesearch.indexing.config import IndexConfig
from latesearch.indexing.docstore import DocStoreWriter, check_field_name
from latesearch.indexing.files import folder_bytes, link_or_copy, writer_lock
from latesearch.indexing.manifest import DOCSTORE, MANIFEST
from latesearch.indexing.storage import IndexStore
from latesearch.indexing.updating import updating_folder


def add_field_indexes(folder: str | os.PathLike, fields: Iterable[str]) -> IndexStore:
    """Index the metadata `fields` of the index at `folder` (those indexed already are
    left as they are), record them in its IndexConfig's `filter_fields`, and return the
    index reopened. InputError (field "filter_fields") names a field that cannot be one."""
    folder, fields = Path(folder), list(dict.fromkeys(fields))
    for name in fields:
        check_field_name(name)
    with writer_lock(folder):
        old = IndexStore.open(folder)
        try:
            new = [name for name in fields if name not in old.indexed_fields]
            if new:
                _publish(old, new)
        finally:
            old.close()
    return IndexStore.open(folder)


def _publish(old: IndexStore, fields: list[str]) -> None:
    stage = updating_folder(old.folder)
    shutil.rmtree(stage, ignore_errors=True)  # left by an interrupted update
    try:
        for path in sorted(old.folder.rglob("*")):
            name = path.relative_to(old.folder)
            if path.is_file() and str(name) not in (DOCSTORE, MANIFEST) and not any(
                    part.startswith(".") for part in name.parts):  # fmt: skip
                (stage / name).parent.mkdir(parents=True, exist_ok=True)
                link_or_copy(path, stage / name)
        old.verify_file(DOCSTORE)  # never carry damaged texts into a new version
        shutil.copyfile(old.folder / DOCSTORE, stage / DOCSTORE)
        writer = DocStoreWriter(stage / DOCSTORE)
        try:
            writer.index_fields(fields)
        finally:
            writer.close()
        manifest = old.manifest
        config = IndexConfig.from_dict(manifest.index_config, source="index_config")
        config = config.replace(filter_fields=[*config.filter_fields, *fields])
        dataclasses.replace(
            manifest,
            index_config=config.to_dict(),
            files={**manifest.files, DOCSTORE: file_record(stage / DOCSTORE)},
            stats={**manifest.stats, "bytes_on_disk": folder_bytes(stage)},
        ).write(stage)
        replace_folder(stage, old.folder)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
