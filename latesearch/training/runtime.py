"""Where a training process runs: rank and device (torch.distributed under torchrun),
mixed precision, and the random-number state saved with every checkpoint."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from latesearch.errors import ConfigError
from latesearch.modeling import resolve_device


@dataclass
class Runtime:
    """One training process: its rank among `world_size` and its device."""

    rank: int
    world_size: int
    device: torch.device
    precision: str  # resolved: 'fp32' | 'bf16' | 'fp16'

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, value: float) -> float:
        """The mean of `value` over all ranks."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def gather(self, obj: Any) -> list[Any]:
        """`obj` from every rank, in rank order."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather_documents(
        self, D: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Every rank's document embeddings (n, Ld, dim) and masks, in rank order, padded to
        the widest; the gradient of each rank's slice flows back to that rank (summed over
        the ranks' losses). Also the row of this rank's first document."""
        if not self.distributed:
            return D, mask, 0
        width = torch.tensor([D.shape[1]], device=D.device)
        dist.all_reduce(width, op=dist.ReduceOp.MAX)
        pad = int(width.item()) - D.shape[1]
        D = torch.nn.functional.pad(D, (0, 0, 0, pad))
        mask = torch.nn.functional.pad(mask.bool(), (0, pad))
        from torch.distributed.nn.functional import all_gather

        masks = [torch.empty_like(mask) for _ in range(self.world_size)]
        dist.all_gather(masks, mask)
        return torch.cat(all_gather(D)), torch.cat(masks), self.rank * D.shape[0]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def setup_runtime(device: str | None, precision: str) -> Runtime:
    """Join the process group when torchrun set WORLD_SIZE > 1; pick device and precision."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world_size > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device is None and torch.cuda.is_available():
            resolved = torch.device("cuda", local_rank)
            torch.cuda.set_device(resolved)
        else:
            resolved = resolve_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    else:
        resolved = resolve_device(device)
    return Runtime(rank, world_size, resolved, resolve_precision(precision, resolved))


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' is bf16 on a CUDA device that supports it, else fp32; fp16 needs CUDA."""
    if precision == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return "bf16" if cuda_bf16 else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("TrainConfig.precision='fp16' needs a CUDA device; use bf16 or fp32")
    return precision


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's random-number state (dropout masks depend on it)."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@contextlib.contextmanager
def evaluation_mode(model: torch.nn.Module) -> Iterator[None]:
    """Temporarily switch `model` to eval mode (no dropout), then back to train mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
