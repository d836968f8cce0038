"""Shared fixtures: tiny random BERT checkpoints built on the fly (no network, no ../shared)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import torch

WORDS = (
    "the a an of to in is was for on with as by at from and or not this that it be are "
    "late interaction query document passage search retrieval model bert colbert token "
    "vector index score rank fast slow cat dog house tree river city music science data "
    "protein cell gene drug study result effect patient disease energy physics particle "
    "what how why when who which where ##s ##ing ##ed"
).split()
SPECIALS = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_tiny_bert(folder: Path, *, hidden: int = 32, seed: int = 0) -> Path:
    """A random 2-layer BERT with a small WordPiece vocabulary, saved as a plain HF folder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIALS + list(string.punctuation) + WORDS
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=256,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """Path of a tiny random BERT checkpoint (plain Hugging Face layout)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_colbert(tiny_bert_dir):
    """A ColBERT over the tiny BERT: dim 16, short lengths, CPU, float32."""
    from latesearch import ColBERT

    return ColBERT.from_pretrained(
        tiny_bert_dir, device="cpu", dim=16, query_maxlen=12, doc_maxlen=24
    )


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster of this machine's CPUs (at most 2), started once for the tests
    that need it; the `ray` module."""
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture
def kill_once(ray_cluster):
    """kill_once(prefix) -> a callback (any arguments) that, the first time it is called,
    kills the first live actor whose name starts with `prefix`, leaving Ray to restart it;
    the callback's `killed` lists the pids it killed."""

    def make(prefix: str):
        def callback(*_args) -> None:
            if callback.killed:
                return
            names = sorted(n for n in ray_cluster.util.list_named_actors()
                           if n.startswith(prefix))  # fmt: skip
            actor = ray_cluster.get_actor(names[0])
            callback.killed.append(ray_cluster.get(actor.pid.remote()))
            ray_cluster.kill(actor, no_restart=False)

        callback.killed = []
        return callback

    return make


@pytest.fixture
def shipped_for(monkeypatch, tmp_path):
    """Make the default model's shipped calibration one for `model_fingerprint` (a tiny
    model's), breakpoints (0, 0) (0.5, 0.4) (1, 1): `shipped_for(fingerprint)`."""
    from latesearch.indexing.components import calibration

    def ship(model_fingerprint: str):
        fake = calibration.Calibration((0.0, 0.5, 1.0), (0.0, 0.4, 1.0), queries=7, pairs=70,
                                       model_fingerprint=model_fingerprint,
                                       fitted_on="dev questions")  # fmt: skip
        monkeypatch.setattr(calibration, "SHIPPED_FILE", fake.save(tmp_path / "shipped.json"))
        calibration.shipped_calibration.cache_clear()
        return fake

    yield ship
    calibration.shipped_calibration.cache_clear()
