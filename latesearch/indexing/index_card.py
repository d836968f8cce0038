"""The card (README.md) of a prebuilt index on the Hub: what it holds, how it was built,
the model that searches it, the evaluation it was checked with, and how to use it."""

from __future__ import annotations

from typing import Any

from latesearch.indexing.hub_manifest import HubManifest
from latesearch.indexing.manifest import Manifest

SETTINGS = ("nbits", "n_centroids", "pool_factor", "keep_full", "precision", "doc_maxlen")


def index_card(repo_id: str, hub: HubManifest, manifests: list[Manifest],
               collection: str | None = None) -> str:  # fmt: skip
    """The card's Markdown, with YAML front matter."""
    first = manifests[0]
    tokens = sum(m.n_embeddings for m in manifests)
    vector_bytes = sum(_vector_bytes(hub, name, m) for name, m in zip(hub.indexes, manifests,
                                                                    strict=True))  # fmt: skip
    total = sum(int(r["bytes"]) for r in hub.files.values())
    name = collection or _collection_name(first) or repo_id.split("/")[-1]
    lines = [
        "---", "library_name: latesearch",
        "tags: [latesearch, colbert, late-interaction, retrieval, prebuilt-index]",
        f"pretty_name: {name} (latesearch index)", "---", "",
        f"# {name}: a prebuilt latesearch index", "",
        f"A ColBERT late-interaction index of **{name}** built with latesearch "
        f"{hub.latesearch_version}.", "",
        "| | |", "|---|---|",
        f"| documents | {hub.n_docs:,} |",
        f"| token vectors | {tokens:,} |",
        f"| bytes a token (vectors) | {vector_bytes / max(tokens, 1):.1f} |",
        f"| size | {total / 2**20:.1f} MiB in {len(hub.files)} files |",
        f"| kind | {hub.kind}" + (f", {len(hub.indexes)} shards" if hub.kind == "sharded"
                                  else "") + " |",
        f"| query model | {hub.model.describe()} (fingerprint `{hub.model.fingerprint[:12]}`) |",
        f"| components | {', '.join(_components(hub)) or 'none'} |",
        "",
        "## Build settings", "", "| setting | value |", "|---|---|",
        *[f"| {key} | {value} |" for key, value in _settings(first).items()],
        "",
    ]  # fmt: skip
    if hub.evaluation:
        lines += ["## Evaluation", "", "| measure | value |", "|---|---|",
                  *[f"| {k} | {v} |" for k, v in evaluation_rows(hub.evaluation)], ""]  # fmt: skip
    lines += [
        "## Use", "", "```python", "from latesearch import Index", "",
        f'index = Index.from_hub("{repo_id}")   # downloaded, verified, cached',
        'hits = index.search("a question", k=10)', "```", "", "```bash",
        f"latesearch pull {repo_id} indexes/{repo_id.split('/')[-1]}", "```", "",
        "Every file is checked against `latesearch_hub.json` (size and SHA-256) and the "
        "index's own checksums before it is used, and the query model must have the "
        "fingerprint above.", "",
    ]  # fmt: skip
    return "\n".join(lines)


def evaluation_rows(evaluation: dict[str, Any]) -> list[tuple[str, Any]]:
    """(measure, value) rows of an evaluation: a flat mapping, or what `latesearch evaluate
    --json` prints (its data, mode and means; a preset's rows per set)."""
    if isinstance(evaluation.get("aggregate"), dict):
        head = [(k, evaluation[k]) for k in ("data", "mode", "k") if k in evaluation]
        return head + [(k, _number(v)) for k, v in evaluation["aggregate"].items()]
    if isinstance(evaluation.get("rows"), list):
        metrics = evaluation.get("metrics") or []
        head = [(k, evaluation[k]) for k in ("preset", "mode", "k") if k in evaluation]
        return head + [(f"{row.get('set')} {m}", _number(row.get(m)))
                       for row in evaluation["rows"] for m in metrics]  # fmt: skip
    return [(k, _number(v)) for k, v in evaluation.items()]


def _number(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _collection_name(manifest: Manifest) -> str | None:
    path = manifest.collection.get("path") if isinstance(manifest.collection, dict) else None
    return str(path).replace("\\", "/").rstrip("/").split("/")[-1] if path else None


def _settings(manifest: Manifest) -> dict[str, Any]:
    config = manifest.config.to_dict()
    flat = {**config, **config.get("codec", {})}
    shown = {key: flat[key] for key in SETTINGS if key in flat}
    shown["dim"] = manifest.dim
    shown["compressed"] = manifest.compressed
    return shown


def _vector_bytes(hub: HubManifest, folder: str, manifest: Manifest) -> int:
    prefix = "" if folder == "." else f"{folder}/"
    names = {prefix + n for c in manifest.chunks for n in (c.embeddings, c.codes, c.residuals)
             if n}  # fmt: skip
    return sum(int(hub.files[n]["bytes"]) for n in names if n in hub.files)


def _components(hub: HubManifest) -> list[str]:
    found = {path.split("/")[-2] for path in hub.files if path.endswith("/checksums.json")}
    return sorted(found)
