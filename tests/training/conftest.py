"""Fixtures of the training tests: toy data over the tiny BERT's vocabulary, a fast config
factory, and a tiny BERT with dropout on."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

TOPICS = [
    ("cat", "dog house"),
    ("protein", "gene cell"),
    ("music", "city river"),
    ("physics", "particle energy"),
    ("drug", "patient disease"),
    ("tree", "river city"),
]


def _toy_rows() -> list[tuple[str, str, str]]:
    return [
        (f"what {a}", f"the {a} {ta}", f"the {b} {tb}")
        for (a, ta), (b, tb) in itertools.permutations(TOPICS, 2)
    ]


def _small_config(**overrides: Any):
    from latesearch import TrainConfig

    values: dict[str, Any] = dict(
        steps=6,
        batch_size=4,
        lr=1e-3,
        dim=16,
        query_maxlen=12,
        doc_maxlen=24,
        device="cpu",
        precision="fp32",
        log_every=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def small_config():
    """A factory of fast TrainConfigs for the tiny BERT (CPU, fp32)."""
    return _small_config


@pytest.fixture(scope="session")
def toy_rows() -> list[tuple[str, str, str]]:
    """(query, positive, negative) rows: the positive shares the query's topic word."""
    return _toy_rows()


@pytest.fixture(scope="session")
def toy_triples(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("toy") / "triples.tsv"
    path.write_text("".join("\t".join(r) + "\n" for r in _toy_rows()), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def toy_beir(tmp_path_factory) -> dict[str, Path]:
    """Queries, collection and qrels (BEIR files) over the toy topics."""
    folder = tmp_path_factory.mktemp("beir")
    docs = {f"d{i}": f"the {a} {t}" for i, (a, t) in enumerate(TOPICS)}
    pairs = itertools.permutations(TOPICS, 2)
    docs.update({f"x{i}": f"a {b} study of {a} data" for i, ((a, _), (b, _)) in enumerate(pairs)})
    queries = {f"q{i}": f"what {a}" for i, (a, _) in enumerate(TOPICS)}
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    (folder / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(TOPICS)))
    )
    return {
        "collection": folder / "corpus.jsonl",
        "queries": folder / "queries.jsonl",
        "qrels": folder / "qrels.tsv",
    }


@pytest.fixture(scope="session")
def dropout_bert(tmp_path_factory, tiny_bert_dir) -> Path:
    """The tiny BERT with dropout on, so that resuming must restore the dropout RNG."""
    folder = tmp_path_factory.mktemp("dropout-bert") / "bert"
    shutil.copytree(tiny_bert_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    (folder / "config.json").write_text(json.dumps(config))
    return folder
