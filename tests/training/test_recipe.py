"""The recipe's parts: losses, schedule, projection learning rate, gradient accumulation,
mixed precision, seeds."""

from __future__ import annotations

import pytest
import torch

from latesearch import ColBERT, train
from latesearch.errors import ConfigError
from latesearch.training.loss import in_batch_ce, pairwise_softmax_ce
from latesearch.training.optim import build_optimizer, linear_schedule
from latesearch.training.runtime import resolve_precision


def _weights(folder) -> dict[str, torch.Tensor]:
    return ColBERT.from_pretrained(folder, device="cpu").state_dict()


def test_losses_put_the_positive_first():
    scores = torch.tensor([[5.0, 1.0, 0.0], [0.0, 4.0, 0.0]])  # query 1 prefers a negative
    per_query = torch.nn.functional.cross_entropy(scores, torch.tensor([0, 0]), reduction="none")
    assert pairwise_softmax_ce(scores) == pytest.approx(float(per_query.mean()))
    assert per_query[0] < per_query[1]
    # in-batch: 2 queries x 2 documents each; query i's positive is column 2 * i
    every = torch.tensor([[9.0, 0.0, 0.0, 0.0], [0.0, 0.0, 9.0, 0.0]])
    assert float(in_batch_ce(every, nway=2)) < 1e-3
    assert float(in_batch_ce(every.flip(0), nway=2)) > 8


def test_linear_warmup_then_decay_and_projection_lr(tiny_colbert, small_config, tmp_path):
    config = small_config(
        triples=tmp_path / "t.tsv",
        lr=1e-4,
        projection_lr=1e-2,
        warmup_steps=4,
        steps=12,
        weight_decay=0.1,
    )
    optimizer = build_optimizer(tiny_colbert, config)
    groups = optimizer.param_groups
    assert sorted(g["lr"] for g in groups) == [1e-4, 1e-4, 1e-2]
    projection = next(g for g in groups if g["lr"] == 1e-2)
    assert [p.shape for p in projection["params"]] == [tiny_colbert.linear.weight.shape]
    assert sorted(g["weight_decay"] for g in groups) == [0.0, 0.1, 0.1]  # no decay on norms
    schedule = linear_schedule(optimizer, 4, 12)
    seen = []
    for _ in range(12):
        seen.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert seen[:6] == pytest.approx([2.5e-5, 5e-5, 7.5e-5, 1e-4, 1e-4, 1e-4 * 7 / 8])
    assert schedule.get_last_lr()[0] == 0.0


def test_gradient_accumulation_matches_one_big_batch(
    tmp_path, tiny_bert_dir, toy_triples, small_config
):
    common = dict(
        triples=toy_triples, base_model=tiny_bert_dir, steps=3, batch_size=4, max_grad_norm=0.5
    )
    one = train(small_config(output=tmp_path / "one", **common))
    two = train(small_config(output=tmp_path / "two", grad_accum=2, **common))
    a, b = _weights(one.final), _weights(two.final)
    start = ColBERT.from_pretrained(tiny_bert_dir, dim=16).state_dict()
    assert any(not torch.allclose(a[k], start[k]) for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4, msg=key)


def test_seed_changes_the_run_and_repeats_it(tmp_path, dropout_bert, toy_triples, small_config):
    common = dict(triples=toy_triples, base_model=dropout_bert, steps=2)
    a = _weights(train(small_config(output=tmp_path / "a", **common)).final)
    b = _weights(train(small_config(output=tmp_path / "b", **common)).final)
    c = _weights(train(small_config(output=tmp_path / "c", seed=7, **common)).final)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)  # other dropout masks


def test_bf16_autocast_trains(tmp_path, tiny_bert_dir, toy_triples, small_config):
    result = train(
        small_config(
            triples=toy_triples,
            base_model=tiny_bert_dir,
            steps=2,
            precision="bf16",
            output=tmp_path,
        )
    )
    weights = _weights(result.final)
    assert all(w.dtype == torch.float32 for w in weights.values())  # master weights fp32
    assert result.last_loss is not None and result.last_loss == result.last_loss  # not NaN


def test_precision_resolution():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="fp16"):
        resolve_precision("fp16", cpu)


def test_train_layers_freezes_embeddings_and_lower_layers(tiny_colbert):
    import copy

    from latesearch.errors import ConfigError
    from latesearch.training.optim import freeze_lower_layers, trainable_parameters

    model = copy.deepcopy(tiny_colbert)
    freeze_lower_layers(model, 1)
    names = [name for name, _ in trainable_parameters(model)]
    assert "head.linear.weight" in names
    top = "backbone.encoder.layer.1."
    assert all(n == "head.linear.weight" or n.startswith(top) for n in names)
    assert any(n.startswith("backbone.encoder.layer.1.") for n in names)
    with pytest.raises(ConfigError, match="train_layers"):
        freeze_lower_layers(copy.deepcopy(tiny_colbert), 3)
