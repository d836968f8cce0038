"""`HubManifest` (`latesearch_hub.json`): what a prebuilt index on the Hugging Face Hub
holds, written by `push` and checked by `pull` before the index is used: every file with
its size and SHA-256, the index folders in it, and the model that encodes its queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from latesearch._configio import JsonConfig
from latesearch.errors import ConfigError

HUB_MANIFEST = "latesearch_hub.json"
HUB_FORMAT = 1


@dataclass(frozen=True)
class ModelReference(JsonConfig):
    """The query model of a prebuilt index: a hub checkpoint (`repo_id` at `revision`, a
    commit hash or tag), or latesearch's shipped default model (`default`); `fingerprint`
    is the index manifest's `model_fingerprint`, checked against the loaded model."""

    fingerprint: str
    repo_id: str | None = None
    revision: str | None = None
    default: bool = False

    def validate(self) -> None:
        if self.default == (self.repo_id is not None):
            raise ConfigError("ModelReference: give either repo_id or default, not both",
                              field="repo_id")  # fmt: skip

    def describe(self) -> str:
        if self.default:
            return "latesearch's default model"
        return self.repo_id + (f" @ {self.revision}" if self.revision else "")


@dataclass(frozen=True)
class HubManifest(JsonConfig):
    """`files`: `{path: {"bytes", "sha256"}}` of every file of the repository but this one
    and the card; `indexes`: the index folders in it ("." for one index, the shard folders
    of a sharded one), each verified with its own checksums too."""

    file_name = HUB_MANIFEST

    latesearch_version: str
    kind: str
    indexes: tuple[str, ...]
    model: ModelReference
    files: dict[str, Any]
    n_docs: int
    evaluation: dict[str, Any] | None = None
    format_version: int = HUB_FORMAT

    def validate(self) -> None:
        if self.format_version != HUB_FORMAT:
            raise ConfigError(f"HubManifest.format_version {self.format_version!r} is not "
                              f"supported (this latesearch reads {HUB_FORMAT})",
                              field="format_version")  # fmt: skip
        if self.kind not in ("index", "sharded"):
            self._bad("kind", '"index" or "sharded"')
        if not self.indexes or any(".." in i.split("/") or i.startswith("/")
                                   for i in self.indexes):  # fmt: skip
            self._bad("indexes", "relative folder names")
