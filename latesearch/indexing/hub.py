"""Prebuilt indexes on the Hugging Face Hub: `push` an index folder, `pull` one back.

A repository holds the index's files as they are on disk, `latesearch_hub.json`
(`HubManifest`: every file's size and SHA-256, the index folders, the query model's
reference) and a generated card (README.md). Uploads and downloads are huggingface_hub's:
`upload_folder` uploads in chunks and resumes when run again; `snapshot_download` into a
staging folder resumes an interrupted download when the pull is run again. A pulled index
is published (renamed into place) only after every file matches the hub manifest, each
index folder passes its own `verify`, and its manifest names the referenced model; a
mismatch removes the download and raises `IndexCorruptError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

from latesearch._atomic import check_replaceable, replace_folder, write_json, write_text
from latesearch._configio import read_json
from latesearch.errors import CheckpointError, ConfigError, IndexCorruptError, IndexExistsError
from latesearch.indexing.checksums import check_digests, check_records, file_record
from latesearch.indexing.files import link_or_copy
from latesearch.indexing.hub_manifest import HUB_MANIFEST, HubManifest, ModelReference
from latesearch.indexing.index_card import index_card
from latesearch.indexing.manifest import MANIFEST, Manifest
from latesearch.indexing.storage import IndexStore
from latesearch.modeling.default import DEFAULT_MODEL_DIR, backbone_path, default_model_path

REPO_TYPE = "dataset"  # an index is data; its model lives in a model repository
CARD = "README.md"
PROVENANCE = ".latesearch_hub.json"  # the hub manifest, kept hidden in a pulled folder
# files a hub repository adds beside the pushed ones
HUB_FILES = (HUB_MANIFEST, CARD, ".gitattributes")
_CACHED_MODEL = re.compile(r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<rev>[^/]+)")


def hub_api(api: Any = None, token: str | None = None) -> Any:
    """`api`, or a new `huggingface_hub.HfApi` with `token`."""
    if api is not None:
        return api
    from huggingface_hub import HfApi

    return HfApi(token=token)


# ---------------------------------------------------------------------- pushing
def push(
    folder: str | Path,
    repo_id: str,
    *,
    indexes: tuple[str, ...] = (".",),
    kind: str = "index",
    model_repo: str | None = None,
    model_revision: str | None = None,
    evaluation: dict[str, Any] | None = None,
    collection: str | None = None,
    repo_type: str = REPO_TYPE,
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload latesearch index",
    token: str | None = None,
    api: Any = None,
) -> str:
    """Verify the index in `folder` (every checksum), then upload it with its hub manifest
    and card to `repo_id`; the URL of the commit. Files of an earlier push that the index
    no longer has are deleted in the same upload. `model_repo` (and `model_revision`) name
    where the query model is published; without them the index's model must be the
    shipped default or a hub checkpoint it was loaded from."""
    folder = Path(folder)
    manifests = [_verified(folder / name) for name in indexes]
    fingerprint = manifests[0].model_fingerprint
    if any(m.model_fingerprint != fingerprint for m in manifests):
        raise IndexCorruptError(f"{folder}: its index folders were built with different models")
    model = model_reference(manifests[0], fingerprint, model_repo, model_revision)
    files = {name: file_record(folder / name) for name in _files(folder)}
    hub = HubManifest(latesearch_version=_version(), kind=kind, indexes=indexes, model=model,
                      files=files, n_docs=sum(m.n_docs for m in manifests),
                      evaluation=evaluation)  # fmt: skip
    stage = folder.with_name(f".{folder.name}.push")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        for name in files:  # hard links: nothing copied
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(folder / name, stage / name)
        hub.save(stage / HUB_MANIFEST)
        write_text(stage / CARD, index_card(repo_id, hub, manifests, collection))
        api = hub_api(api, token)
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(stage), repo_type=repo_type,
                                 revision=revision, commit_message=commit_message,
                                 delete_patterns="*")  # fmt: skip
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return str(getattr(info, "commit_url", info))


def model_reference(manifest: Manifest, fingerprint: str, repo: str | None,
                    revision: str | None) -> ModelReference:  # fmt: skip
    """Where the index's query model is published: `repo` if given, else the shipped
    default, else the hub checkpoint (and commit) its cached folder came from."""
    if repo:
        return ModelReference(fingerprint=fingerprint, repo_id=repo, revision=revision)
    source = Path(manifest.model_source or "").expanduser()
    defaults = [DEFAULT_MODEL_DIR, default_model_path()]
    with contextlib.suppress(CheckpointError):  # the backbone package is optional here
        defaults.append(backbone_path())
    if manifest.model_source and any(_same(source, d) for d in defaults):
        return ModelReference(fingerprint=fingerprint, default=True)
    cached = _CACHED_MODEL.search(source.as_posix())
    if cached:
        return ModelReference(fingerprint=fingerprint, repo_id=f"{cached['org']}/{cached['name']}",
                              revision=cached["rev"])  # fmt: skip
    raise ConfigError(
        f"the index's model ({manifest.model_source or 'unnamed'}) is a local folder: publish "
        "it (ColBERT.push_to_hub) and name it with model_repo= (--model-repo)",
        field="model_repo",
    )


# ---------------------------------------------------------------------- pulling
def pull(
    repo_id: str,
    folder: str | Path,
    *,
    revision: str | None = None,
    repo_type: str = REPO_TYPE,
    overwrite: bool = False,
    fetch_model: bool = True,
    token: str | None = None,
    api: Any = None,
) -> Path:
    """Download the index of `repo_id` (at `revision`) into `folder`, verified. The files
    arrive in `.<folder>.download/` beside it (an interrupted pull resumes there) and
    `folder` appears only once all are checked. With `fetch_model` the referenced model is
    downloaded too (a pinned revision) and the index's manifest names it, so that
    `Index.load(folder)` encodes queries with it."""
    target = Path(folder)
    if target.exists() and not overwrite:
        raise IndexExistsError(f"{target}: exists; pull with overwrite=True (--overwrite)")
    check_replaceable(target, MANIFEST, "shards.json")
    api = hub_api(api, token)
    stage = target.with_name(f".{target.name}.download")
    stage.parent.mkdir(parents=True, exist_ok=True)
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    try:
        api.snapshot_download(repo_id, repo_type=repo_type, revision=revision,
                              local_dir=str(stage))  # fmt: skip
    except Exception as err:
        err.add_note(f"latesearch: the partial download in {stage} is not an index; pulling "
                     "again resumes it")  # fmt: skip
        raise
    try:
        hub = verify_download(stage, where)
    except IndexCorruptError as err:
        shutil.rmtree(stage, ignore_errors=True)
        raise IndexCorruptError(f"{err} (the download was removed)") from None
    if fetch_model:
        _point_at_model(stage, hub, api)
    for name in HUB_FILES:
        (stage / name).unlink(missing_ok=True)
    shutil.rmtree(stage / ".cache", ignore_errors=True)
    write_json(stage / PROVENANCE, {"repo_id": repo_id, "repo_type": repo_type,
                                    "revision": revision, "hub": hub.to_dict()})  # fmt: skip
    return replace_folder(stage, target)


def fetch(
    repo_id: str,
    *,
    revision: str | None = None,
    folder: str | Path | None = None,
    repo_type: str = REPO_TYPE,
    token: str | None = None,
    api: Any = None,
) -> Path:
    """The folder of `repo_id`'s index at `revision`, pulled unless it already was: into
    `folder`, or by default a cache folder per commit (`cached_folder`)."""
    api = hub_api(api, token)
    cached = folder is None
    if cached:
        revision = resolve_commit(repo_id, revision, repo_type, api)
        folder = cached_folder(repo_id, revision, repo_type)
    target = Path(folder)
    pulled = provenance(target)
    if not pulled or (pulled["repo_id"], pulled["revision"]) != (repo_id, revision):
        pull(repo_id, target, revision=revision, repo_type=repo_type, api=api,
             overwrite=cached and target.exists())  # fmt: skip
    return target


def verify_download(folder: Path, where: str) -> HubManifest:
    """Check a downloaded repository: the hub manifest, every file's size and hash (and no
    file it does not list), each index folder's own checksums, and that each index was
    built with the referenced model. The hub manifest; IndexCorruptError otherwise."""
    path = folder / HUB_MANIFEST
    if not path.is_file():
        raise IndexCorruptError(f"{where}: no {HUB_MANIFEST} (not a latesearch index repository)")
    try:
        hub = HubManifest.load(path)
    except ConfigError as err:
        raise IndexCorruptError(f"{where}: {err}") from None
    check_records(hub.files, source=f"{where}: {HUB_MANIFEST} files")  # no path leaves
    extra = sorted(set(_files(folder)) - set(hub.files) - set(HUB_FILES))
    if extra:
        raise IndexCorruptError(f"{where}: files {extra[:5]} are not in {HUB_MANIFEST}")
    try:
        check_digests(folder, hub.files)
    except IndexCorruptError as err:
        raise IndexCorruptError(f"{where}: {err}") from None
    for name in hub.indexes:
        manifest = _verified(folder / name)
        if manifest.model_fingerprint != hub.model.fingerprint:
            raise IndexCorruptError(
                f"{where}: {name}/{MANIFEST} was built with model {manifest.model_fingerprint[:12]}"
                f", {HUB_MANIFEST} names {hub.model.fingerprint[:12]}"
            )
    return hub


def cached_folder(repo_id: str, commit: str, repo_type: str = REPO_TYPE) -> Path:
    """Where `Index.from_hub` keeps a pulled index: `$LATESEARCH_CACHE` (default
    ~/.cache/latesearch) / hub / <type>s--<org>--<name> / <commit>."""
    root = Path(os.environ.get("LATESEARCH_CACHE", "~/.cache/latesearch")).expanduser()
    return root / "hub" / f"{repo_type}s--{repo_id.replace('/', '--')}" / commit


def resolve_commit(repo_id: str, revision: str | None, repo_type: str, api: Any) -> str:
    """The commit hash `revision` (a branch, tag or hash; None: the default branch) is now."""
    info = api.repo_info(repo_id, repo_type=repo_type, revision=revision)
    return str(info.sha)


def provenance(folder: str | Path) -> dict[str, Any] | None:
    """Where a pulled folder came from: `repo_id`, `repo_type`, `revision` (as asked) and
    `hub` (its hub manifest); None for a folder not pulled."""
    path = Path(folder) / PROVENANCE
    return read_json(path, error=IndexCorruptError) if path.is_file() else None


def _point_at_model(folder: Path, hub: HubManifest, api: Any) -> None:
    """Make each index manifest's `model_source` the referenced model on this machine."""
    if hub.model.default:
        source = str(default_model_path())
    else:
        source = api.snapshot_download(hub.model.repo_id, revision=hub.model.revision)
    for name in hub.indexes:
        manifest = Manifest.read(folder / name)
        manifest.model_source = str(source)
        manifest.write(folder / name)


def _verified(folder: Path) -> Manifest:
    """An index folder re-hashed against its own checksums; its manifest."""
    with IndexStore.open(folder) as store:
        store.verify()
        return store.manifest


def _files(folder: Path) -> list[str]:
    """Every file below `folder` but hidden ones (staging, huggingface_hub's `.cache`)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".")
                                             for part in p.relative_to(folder).parts))  # fmt: skip


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("latesearch")
    except PackageNotFoundError:
        return "unknown"
