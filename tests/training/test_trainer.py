"""End-to-end mechanics on the tiny BERT: learning, exact resume, checkpoints, dev eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from latesearch import ColBERT, train
from latesearch.errors import ConfigError, LatesearchError
from latesearch.training import checkpointing as ckpt
from latesearch.training.loss import nway_scores, pairwise_softmax_ce


@torch.no_grad()
def toy_loss(model: ColBERT, rows) -> float:
    """The paper's loss over the whole toy set, dropout off."""
    model.eval()
    Q = model.forward_queries(model.tokenizer.queries([r[0] for r in rows]))
    D, mask = model.forward_documents(model.tokenizer.documents([d for r in rows for d in r[1:]]))
    return float(pairwise_softmax_ce(nway_scores(Q, D, mask, 2, model.config.similarity)))


def test_loss_goes_down(tmp_path, tiny_bert_dir, toy_triples, toy_rows, small_config):
    config = small_config(
        triples=toy_triples,
        base_model=tiny_bert_dir,
        output=tmp_path / "run",
        steps=25,
        batch_size=8,
        lr=2e-3,
        in_batch_negatives=True,
        warmup_steps=2,
    )
    result = train(config)
    start = ColBERT.from_pretrained(tiny_bert_dir, dim=16, query_maxlen=12, doc_maxlen=24)
    before = toy_loss(start, toy_rows)
    after = toy_loss(ColBERT.from_pretrained(result.final), toy_rows)
    assert after < 0.5 * before, (before, after)
    records = ckpt.JsonlLog(tmp_path / "run" / ckpt.LOSS_LOG).read()
    assert [r["step"] for r in records] == list(range(1, 26))
    assert records[-1]["lr"] == 0.0  # linear decay to zero


def _weights(folder) -> dict[str, torch.Tensor]:
    return ColBERT.from_pretrained(folder, device="cpu").state_dict()


def _interrupt_at(step: int):
    def progress(record):
        if record.get("step") == step:
            raise KeyboardInterrupt

    return progress


def test_resume_reproduces_uninterrupted_run(tmp_path, dropout_bert, toy_triples, small_config):
    common = dict(
        triples=toy_triples,
        base_model=dropout_bert,
        negatives_per_query=1,
        grad_accum=2,
        warmup_steps=2,
        weight_decay=0.01,
        projection_lr=3e-3,
        anchor_weight=0.1,
    )
    straight = train(small_config(output=tmp_path / "a", **common))
    interrupted = small_config(output=tmp_path / "b", save_every=3, log_every=1, **common)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, progress=_interrupt_at(4))  # step 4 done, not saved
    resumed = train(interrupted.replace(resume=True))
    assert resumed.steps == 6
    a, b = _weights(straight.final), _weights(resumed.final)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = _weights(tmp_path / "b" / "checkpoints" / "step-000003")
    assert any(not torch.equal(a[k], start[k]) for k in a)  # it did train past step 3
    losses = [r["loss"] for r in ckpt.JsonlLog(tmp_path / "a" / ckpt.LOSS_LOG).read()]
    resumed_losses = [r["loss"] for r in ckpt.JsonlLog(tmp_path / "b" / ckpt.LOSS_LOG).read()]
    assert losses == resumed_losses


def test_resume_ignores_incomplete_checkpoint_and_truncates_log(
    tmp_path, tiny_bert_dir, toy_triples, small_config
):
    config = small_config(
        triples=toy_triples, base_model=tiny_bert_dir, output=tmp_path, steps=4, save_every=2
    )
    train(config)
    # simulate a crash while writing step 4: marker missing, extra log line
    partial = tmp_path / "checkpoints" / "step-000004"
    (partial / ckpt.COMPLETE).unlink()
    with open(tmp_path / ckpt.LOSS_LOG, "a") as handle:
        handle.write('{"step": 5, "loss": 1.0}\n{"step": 6, "lo')
    assert ckpt.latest_checkpoint(tmp_path).name == "step-000002"
    result = train(config.replace(resume=True))
    assert result.steps == 4
    assert [r["step"] for r in ckpt.JsonlLog(tmp_path / ckpt.LOSS_LOG).read()] == [1, 2, 3, 4]
    assert ckpt.is_complete(partial)


def test_output_of_another_run_is_protected(tmp_path, tiny_bert_dir, toy_triples, small_config):
    config = small_config(triples=toy_triples, base_model=tiny_bert_dir, output=tmp_path, steps=1)
    train(config)
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(config)
    with pytest.raises(ConfigError, match="lr"):
        train(config.replace(resume=True, lr=1.0))


def test_checkpoint_layout_loads(tmp_path, tiny_bert_dir, toy_triples, small_config):
    config = small_config(
        triples=toy_triples,
        base_model=tiny_bert_dir,
        output=tmp_path,
        steps=2,
        save_every=1,
        keep_last=1,
    )
    result = train(config)
    folders = [p.name for _, p in ckpt.list_checkpoints(tmp_path)]
    assert folders == ["step-000002"]  # keep_last pruned step 1
    step = tmp_path / "checkpoints" / "step-000002"
    for name in (
        "model.safetensors",
        "artifact.metadata",
        "config.json",
        "trainer_state.pt",
        "train_config.json",
        "COMPLETE",
    ):
        assert (step / name).is_file(), name
    model = ColBERT.from_pretrained(step)
    assert model.config.dim == 16 and model.config.doc_maxlen == 24
    assert json.loads((result.final / "train_config.json").read_text())["steps"] == 2
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_qrels_with_bm25_negatives_and_dev_eval(tmp_path, tiny_bert_dir, toy_beir, small_config):
    config = small_config(
        qrels=toy_beir["qrels"],
        queries=toy_beir["queries"],
        collection=toy_beir["collection"],
        mine_negatives="bm25",
        mine_depth=5,
        negatives_per_query=2,
        base_model=tiny_bert_dir,
        output=tmp_path,
        steps=4,
        batch_size=3,
        eval_every=2,
        dev_queries=toy_beir["queries"],
        dev_qrels=toy_beir["qrels"],
        dev_collection=toy_beir["collection"],
    )
    seen = []
    result = train(config, progress=seen.append)
    evals = ckpt.JsonlLog(tmp_path / ckpt.EVAL_LOG).read()
    assert [e["step"] for e in evals] == [2, 4]
    assert set(evals[0]) == {"step", "nDCG@10", "RR@10"}
    assert result.best is not None and ckpt.is_complete(tmp_path / "best")
    assert any("eval" in record for record in seen)
    assert (tmp_path / "mined_negatives.jsonl").is_file()


def test_dev_average_groups_picks_best_by_the_mean_over_prefixes(
    tmp_path, tiny_bert_dir, toy_beir, small_config
):
    # the toy queries split into two groups of unequal size by an id prefix
    queries = [json.loads(line) for line in Path(toy_beir["queries"]).read_text().splitlines()]
    renamed = {q["_id"]: ("a:" if i < 2 else "b:") + q["_id"] for i, q in enumerate(queries)}
    (tmp_path / "dev_queries.jsonl").write_text(
        "".join(json.dumps({"_id": renamed[q["_id"]], "text": q["text"]}) + "\n" for q in queries)
    )
    lines = Path(toy_beir["qrels"]).read_text().splitlines()
    (tmp_path / "dev_qrels.tsv").write_text(
        "\n".join(
            [lines[0]]
            + [renamed[line.split("\t")[0]] + line[line.index("\t") :] for line in lines[1:]]
        )
        + "\n"
    )
    config = small_config(
        qrels=toy_beir["qrels"],
        queries=toy_beir["queries"],
        collection=toy_beir["collection"],
        mine_negatives="bm25",
        mine_depth=5,
        negatives_per_query=2,
        base_model=tiny_bert_dir,
        output=tmp_path / "run",
        steps=3,
        batch_size=3,
        eval_every=1,
        dev_queries=tmp_path / "dev_queries.jsonl",
        dev_qrels=tmp_path / "dev_qrels.tsv",
        dev_collection=toy_beir["collection"],
        dev_average="groups",
    )
    result = train(config)
    evals = ckpt.JsonlLog(tmp_path / "run" / ckpt.EVAL_LOG).read()
    for e in evals:
        assert e["nDCG@10"] == pytest.approx((e["nDCG@10/a"] + e["nDCG@10/b"]) / 2)
    assert result.best["nDCG@10"] == max(e["nDCG@10"] for e in evals)


def test_dev_average_is_validated(small_config):
    with pytest.raises(ConfigError, match="dev_average"):
        small_config(dev_average="macro")


def test_doc_chunk_trains_the_same_model(
    tmp_path, tiny_bert_dir, toy_triples, small_config, monkeypatch
):
    """Encoding a step's documents in length-sorted chunks changes nothing but speed (the
    tiny BERT has no dropout, so the runs must agree)."""
    seen = []
    original = ColBERT.forward_documents

    def spy(self, batch, *, chunk_size=None):
        seen.append(chunk_size)
        return original(self, batch, chunk_size=chunk_size)

    monkeypatch.setattr(ColBERT, "forward_documents", spy)
    finals = []
    for chunk in (None, 3):
        config = small_config(
            triples=toy_triples,
            base_model=tiny_bert_dir,
            output=tmp_path / f"run-{chunk}",
            steps=3,
            batch_size=4,
            negatives_per_query=1,
            in_batch_negatives=True,
            doc_chunk=chunk,
        )
        finals.append(_weights(train(config).final))
    assert seen == [None] * 3 + [3] * 3
    assert finals[0].keys() == finals[1].keys()
    for name, tensor in finals[0].items():
        assert torch.allclose(tensor, finals[1][name], atol=1e-5), name
    saved = json.loads((tmp_path / "run-3" / "train_config.json").read_text())
    assert saved["doc_chunk"] == 3
    with pytest.raises(ConfigError, match="doc_chunk"):
        small_config(triples=toy_triples, doc_chunk=0)


def test_a_run_that_saved_only_its_config_does_not_block_the_next(
    tmp_path, tiny_bert_dir, toy_triples, small_config
):
    config = small_config(triples=toy_triples, base_model=tiny_bert_dir, output=tmp_path,
                          steps=1)  # fmt: skip
    with pytest.raises(LatesearchError):  # a model that cannot load: fails after setup
        train(config.replace(base_model=str(tmp_path.parent / "no-such-model")))
    assert [p.name for p in tmp_path.iterdir()] == ["train_config.json"]
    assert train(config).steps == 1


def test_best_checkpoint_by_the_chosen_metric_over_beir_dev_sets(
    tmp_path, tiny_bert_dir, toy_triples, small_config
):
    from latesearch.training.devset import DevSuite

    from .test_devset import two_beir_sets

    config = small_config(
        triples=toy_triples, base_model=tiny_bert_dir, output=tmp_path / "run", steps=4,
        lr=5e-3, eval_every=1, dev_beir=two_beir_sets(tmp_path), dev_metric="RR@10",
    )  # fmt: skip
    result = train(config)
    evals = ckpt.JsonlLog(tmp_path / "run" / ckpt.EVAL_LOG).read()
    assert [e["step"] for e in evals] == [1, 2, 3, 4]
    for e in evals:
        assert e["RR@10"] == pytest.approx((e["RR@10/NanoA"] + e["RR@10/NanoB"]) / 2)
    best = max(evals, key=lambda e: e["RR@10"])  # the first of equals
    assert result.best == best
    assert json.loads((tmp_path / "run" / "best" / ckpt.COMPLETE).read_text()) == best
    again = DevSuite.load(config).evaluate(ColBERT.from_pretrained(tmp_path / "run" / "best"))
    assert again["RR@10"] == pytest.approx(best["RR@10"])  # best/ is that step's model
    assert len({round(e["nDCG@10"], 6) for e in evals}) > 1  # the runs did differ


def test_dev_data_is_checked(small_config, toy_triples):
    with pytest.raises(ConfigError, match="eval_every > 0 needs dev data"):
        small_config(triples=toy_triples, eval_every=5)
    with pytest.raises(ConfigError, match="dev_qrels is required"):
        small_config(triples=toy_triples, dev_queries="q.tsv")
    with pytest.raises(ConfigError, match="dev_metric"):
        small_config(triples=toy_triples, dev_metric="MAP")
