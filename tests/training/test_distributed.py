"""Data parallel training as under torchrun, with 2 CPU processes on the gloo backend: each
rank trains on its own shard of every batch, and the result equals one process taking the
whole batch in two accumulation steps; with in-batch negatives gathered across ranks, it
equals one process taking the whole batch at once."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as mp

from latesearch import ColBERT, TrainConfig, train
from latesearch.training import checkpointing as ckpt


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, config: dict, port: int) -> None:
    import os

    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    train(TrainConfig(**config))


@pytest.mark.slow
def test_two_ranks_equal_one_process_with_accumulation(
    tmp_path, tiny_bert_dir, toy_triples, small_config
):
    common = dict(
        triples=toy_triples, base_model=tiny_bert_dir, steps=3, batch_size=4, save_every=2
    )
    single = train(small_config(output=tmp_path / "single", grad_accum=2, **common))
    config = small_config(output=tmp_path / "ddp", **common).to_dict()
    mp.start_processes(
        _rank_main, args=(config, _free_port()), nprocs=2, join=True, start_method="spawn"
    )
    a = ColBERT.from_pretrained(single.final).state_dict()
    b = ColBERT.from_pretrained(tmp_path / "ddp" / "final").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4, msg=key)
    state = ckpt.load_trainer_state(tmp_path / "ddp" / "checkpoints" / "step-000002")
    assert state["world_size"] == 2 and len(state["rng"]) == 2  # every rank's RNG kept
    losses = [r["loss"] for r in ckpt.JsonlLog(tmp_path / "ddp" / ckpt.LOSS_LOG).read()]
    single_losses = [
        json.loads(line)["loss"]
        for line in (tmp_path / "single" / ckpt.LOSS_LOG).read_text().splitlines()
    ]
    assert losses == pytest.approx(single_losses, rel=1e-4)  # mean over ranks is logged


def _losses(folder) -> list[float]:
    return [r["loss"] for r in ckpt.JsonlLog(folder / ckpt.LOSS_LOG).read()]


@pytest.mark.slow
def test_negatives_gathered_across_ranks_equal_one_process_with_the_whole_batch(
    tmp_path, tiny_bert_dir, toy_triples, small_config
):
    """Each rank's 2 queries are scored against all 8 documents of the step (the other
    rank's with gradients flowing back to it), here with a cached loss (chunks of 1) too."""
    common = dict(triples=toy_triples, base_model=tiny_bert_dir, steps=3, batch_size=4,
                  in_batch_negatives=True)  # fmt: skip
    single = train(small_config(output=tmp_path / "single", **common))
    local = train(small_config(output=tmp_path / "local", grad_accum=2, **common))
    config = small_config(output=tmp_path / "ddp", gather_across_devices=True,
                          cache_chunk_size=1, **common).to_dict()  # fmt: skip
    mp.start_processes(_rank_main, args=(config, _free_port()), nprocs=2, join=True,
                       start_method="spawn")  # fmt: skip
    assert _losses(tmp_path / "ddp") == pytest.approx(_losses(tmp_path / "single"), rel=1e-4)
    assert _losses(tmp_path / "ddp")[0] != pytest.approx(_losses(tmp_path / "local")[0])
    a = ColBERT.from_pretrained(single.final).state_dict()
    b = ColBERT.from_pretrained(tmp_path / "ddp" / "final").state_dict()
    # a key bias's gradient is rounding noise (softmax ignores a shift), scaled up by Adam
    for key in (k for k in a if not k.endswith("attention.self.key.bias")):
        torch.testing.assert_close(a[key], b[key], atol=2e-5, rtol=1e-4, msg=key)
    assert local.steps == 3
