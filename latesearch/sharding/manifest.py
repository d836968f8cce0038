"""`ShardsManifest`: what makes a folder a sharded index (shards.json): the shard folders,
in order, and how documents are routed to them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from latesearch._configio import JsonConfig
from latesearch.errors import ConfigError

SHARDS_MANIFEST = "shards.json"
FORMAT_VERSION = 1
ROUTINGS = ("blake2b",)  # a document's shard: its id's 64-bit BLAKE2b hash modulo n_shards


@dataclass(frozen=True)
class ShardsManifest(JsonConfig):
    """A sharded index: `shards` are folder names (relative to the sharded index's folder)
    of ordinary latesearch indexes, each loadable and searchable alone."""

    shards: tuple[str, ...]
    routing: str = "blake2b"
    model_fingerprint: str = ""
    format_version: int = FORMAT_VERSION

    def validate(self) -> None:
        if not self.shards or not all(s and Path(s).name == s for s in self.shards):
            raise ConfigError(f"ShardsManifest.shards must be folder names, got {self.shards!r}")
        if len(set(self.shards)) != len(self.shards):
            raise ConfigError(f"ShardsManifest.shards names a folder twice: {self.shards!r}")
        if self.routing not in ROUTINGS:
            raise ConfigError(f"ShardsManifest.routing must be one of {ROUTINGS}, "
                              f"got {self.routing!r}")  # fmt: skip
        if self.format_version != FORMAT_VERSION:
            raise ConfigError(f"ShardsManifest.format_version {self.format_version!r} is not "
                              f"supported (this latesearch reads {FORMAT_VERSION})")  # fmt: skip

    @property
    def n_shards(self) -> int:
        return len(self.shards)


def shard_name(i: int) -> str:
    return f"shard-{i:03d}"
