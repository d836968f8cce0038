"""Data parallel training as under torchrun, with 2 CPU processes on the gloo backend: each
rank trains on its own shard of every batch, and the result equals one process taking the
whole batch in two accumulation steps."""

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
