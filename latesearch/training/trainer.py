"""The training loop: `train(TrainConfig(...))`.

One process trains on CPU or one GPU; under torchrun (WORLD_SIZE > 1) every rank trains a
DistributedDataParallel copy on its own shard of each batch and rank 0 writes checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from latesearch.errors import ConfigError
from latesearch.modeling import ColBERT, TokenBatch
from latesearch.training import checkpointing as ckpt
from latesearch.training.cached import cached_backward
from latesearch.training.config import CONFIG_FILE, TrainConfig, resume_conflicts
from latesearch.training.data import MicroBatch, build_stream
from latesearch.training.loss import Objective
from latesearch.training.optim import (
    Anchor,
    build_optimizer,
    freeze_lower_layers,
    linear_schedule,
)
from latesearch.training.runtime import (
    Runtime,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_runtime,
)

log = logging.getLogger("latesearch.training")
Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a finished run produced."""

    output: Path
    final: Path
    steps: int
    steps_per_s: float
    last_loss: float | None
    best: dict[str, Any] | None
    skipped: int


class _Encoder(nn.Module):
    """Wraps the encoder so that DistributedDataParallel sees each forward pass: queries,
    documents, or both; returns (Q, D, document mask), None for what was not given."""

    def __init__(self, model: ColBERT, doc_chunk: int | None = None) -> None:
        super().__init__()
        self.model, self.doc_chunk = model, doc_chunk

    def forward(
        self, queries: TokenBatch | None, documents: TokenBatch | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        Q = None if queries is None else self.model.forward_queries(queries)
        D = mask = None
        if documents is not None:
            D, mask = self.model.forward_documents(documents, chunk_size=self.doc_chunk)
        return Q, D, mask


def train(config: TrainConfig, *, progress: Progress | None = None) -> TrainResult:
    """Fine-tune a ColBERT model as `config` says; returns where the results are."""
    runtime = setup_runtime(config.device, config.precision)
    try:
        return Trainer(config, runtime, progress).run()
    finally:
        runtime.close()


class Trainer:
    def __init__(self, config: TrainConfig, runtime: Runtime, progress: Progress | None) -> None:
        self.config, self.rt, self.progress = config, runtime, progress
        self.out = Path(config.output)
        self.nway = 1 + config.negatives_per_query
        if config.batch_size % (config.grad_accum * runtime.world_size):
            raise ConfigError(
                f"TrainConfig.batch_size={config.batch_size} must be a multiple of "
                f"grad_accum x world size = {config.grad_accum * runtime.world_size}"
            )

    # ------------------------------------------------------------------ setup
    def _prepare_output(self) -> Path | None:
        """Check the output folder and write the run's config there; the checkpoint to
        resume from, if any. A folder holding nothing but a config (a run that failed
        before its first checkpoint) is taken over."""
        cfg, out = self.config, self.out
        saved_path = out / CONFIG_FILE
        if saved_path.exists() and not _only_config(out):  # else: a run that saved nothing
            if not cfg.resume:
                raise ConfigError(
                    f"{out} already holds a training run: resume it (--resume; resume=True in "
                    "Python) or choose another output folder"
                )
            conflicts = resume_conflicts(TrainConfig.load(saved_path), cfg)
            if conflicts:
                raise ConfigError(f"{saved_path}: cannot resume with changed field(s) {conflicts}")
        self.rt.barrier()
        if self.rt.is_main:
            out.mkdir(parents=True, exist_ok=True)
            ckpt.clean_partial(out)
            cfg.save(saved_path)
        self.rt.barrier()
        return ckpt.latest_checkpoint(out) if cfg.resume else None

    def _load_model(self, resume_from: Path | None) -> ColBERT:
        cfg = self.config
        overrides = {
            k: v
            for k, v in (
                ("query_maxlen", cfg.query_maxlen),
                ("doc_maxlen", cfg.doc_maxlen),
                ("dim", cfg.dim),
            )
            if v is not None
        }
        source = resume_from if resume_from is not None else cfg.base_model
        model = ColBERT.from_pretrained(
            source,
            device=self.rt.device,
            dtype="float32",
            **({} if resume_from is not None else overrides),
        )
        freeze_lower_layers(model, cfg.train_layers)
        if cfg.anchor_weight > 0:
            reference = model
            if resume_from is not None:
                reference = ColBERT.from_pretrained(
                    cfg.base_model, device="cpu", dtype="float32", **overrides
                )
            self.anchor: Anchor | None = Anchor(model, cfg.anchor_weight, reference)
        else:
            self.anchor = None
        return model

    # ------------------------------------------------------------------ main loop
    def run(self) -> TrainResult:
        cfg, rt = self.config, self.rt
        resume_from = self._prepare_output()
        seed_everything(cfg.seed + rt.rank)
        model = self._load_model(resume_from)
        model.train()
        optimizer = build_optimizer(model, cfg)
        scheduler = linear_schedule(optimizer, cfg.warmup_steps, cfg.steps)
        scaler = torch.amp.GradScaler("cuda", enabled=rt.precision == "fp16")
        loss_log = ckpt.JsonlLog(self.out / ckpt.LOSS_LOG)
        eval_log = ckpt.JsonlLog(self.out / ckpt.EVAL_LOG)
        step, best, state = 0, None, None
        if resume_from is not None:
            state = ckpt.load_trainer_state(resume_from)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            step, best = int(state["step"]), state.get("best")
            log.info("resuming from %s (step %d)", resume_from, step)
        if rt.is_main:
            loss_log.truncate(step)
            eval_log.truncate(step)
        stream = build_stream(cfg, self.out, rank=rt.rank, world_size=rt.world_size, runtime=rt)
        dev = self._dev_set() if cfg.eval_every and rt.is_main else None
        scorer: nn.Module = _Encoder(model, cfg.doc_chunk)
        if rt.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [rt.device.index] if rt.device.type == "cuda" else None
            scorer = DistributedDataParallel(scorer, device_ids=ids)
        self.objective = Objective(
            nway=self.nway,
            similarity=model.config.similarity,
            in_batch=cfg.in_batch_negatives,
            distill=cfg.distill_from is not None,
            temperature=cfg.distill_temperature,
            gather=rt.gather_documents if cfg.gather_across_devices and rt.distributed else None,
        )
        if state is not None:
            rngs = state["rng"]
            if len(rngs) == rt.world_size:
                set_rng_state(rngs[rt.rank], rt.device)
        params = [p for p in model.parameters() if p.requires_grad]
        batches = stream.batches(start=step * cfg.batch_size)
        started, first_step, last_loss = time.perf_counter(), step, None
        while step < cfg.steps:
            micro = next(batches)
            loss, grad_norm = self._step(scorer, model, micro, optimizer, scaler, params)
            scheduler.step()
            step += 1
            last_loss = rt.mean(loss)
            elapsed = time.perf_counter() - started
            record = {
                "step": step,
                "loss": last_loss,
                "lr": scheduler.get_last_lr()[0],
                "grad_norm": grad_norm,
                "examples": step * cfg.batch_size,
                "elapsed_s": round(elapsed, 3),
                "steps_per_s": (step - first_step) / elapsed if elapsed > 0 else 0.0,
            }
            if rt.is_main:
                loss_log.append(record)
                if self.progress and cfg.log_every and (step % cfg.log_every == 0 or step == 1):
                    self.progress(record)
            if (
                dev is not None
                and step % cfg.eval_every == 0
                or (dev is not None and step == cfg.steps)
            ):
                best = self._evaluate(dev, model, step, best, eval_log)
            rt.barrier()
            if (cfg.save_every and step % cfg.save_every == 0) or step == cfg.steps:
                self._save(model, step, best, optimizer, scheduler, scaler)
        elapsed = time.perf_counter() - started
        final = self.out / "final"
        if rt.is_main:
            ckpt.save_checkpoint(final, model, cfg, info={"step": step, "best": best})
        rt.barrier()
        return TrainResult(
            output=self.out,
            final=final,
            steps=step,
            steps_per_s=(step - first_step) / elapsed if elapsed > 0 else 0.0,
            last_loss=last_loss,
            best=best,
            skipped=stream.skipped,
        )

    def _step(
        self,
        scorer: nn.Module,
        model: ColBERT,
        micro: list[MicroBatch],
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        params: list[nn.Parameter],
    ) -> tuple[float, float | None]:
        cfg = self.config
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for i, batch in enumerate(micro):
            syncing = i == len(micro) - 1
            total += self._micro_step(scorer, model, batch, scaler, len(micro), syncing)
        grad_norm = None
        if cfg.max_grad_norm is not None:
            scaler.unscale_(optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        scaler.step(optimizer)
        scaler.update()
        return total / len(micro), grad_norm

    def _micro_step(
        self,
        scorer: nn.Module,
        model: ColBERT,
        batch: MicroBatch,
        scaler: torch.amp.GradScaler,
        parts: int,
        syncing: bool,
    ) -> float:
        """Forward and backward of one micro-batch (its share `1 / parts` of the step's
        gradient), cached in chunks when `cache_chunk_size` is below its size; the loss."""
        cfg, rt = self.config, self.rt
        if cfg.distill_from is not None and batch.teacher is None:
            raise ConfigError("TrainConfig.distill_from is set but the triples have no scores")
        queries = model.tokenizer.queries(batch.queries)
        documents = model.tokenizer.documents(batch.documents)

        def loss_of(Q, D, mask):
            loss = self.objective(Q, D, mask, batch.teacher)
            return loss if self.anchor is None else loss + self.anchor.penalty()

        def backward(loss: torch.Tensor) -> None:
            scaler.scale(loss / parts).backward()

        def no_sync():
            return scorer.no_sync() if rt.distributed else contextlib.nullcontext()

        chunk = cfg.cache_chunk_size
        with contextlib.nullcontext() if syncing else no_sync():
            if chunk is not None and max(len(queries), len(documents)) > chunk:
                loss = cached_backward(
                    scorer, queries, documents, loss_of, chunk, backward=backward,
                    no_sync=no_sync, device=rt.device, context=rt.autocast,
                )  # fmt: skip
            else:
                with rt.autocast():
                    loss = loss_of(*scorer(queries, documents))
                backward(loss)
        return float(loss.detach())

    # ------------------------------------------------------------------ saving, dev
    def _save(self, model, step, best, optimizer, scheduler, scaler) -> None:
        rngs = self.rt.gather(rng_state(self.rt.device))
        if self.rt.is_main:
            state = {
                "step": step,
                "position": step * self.config.batch_size,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rngs,
                "best": best,
                "world_size": self.rt.world_size,
            }
            folder = ckpt.checkpoint_dir(self.out, step)
            ckpt.save_checkpoint(folder, model, self.config, state=state, info={"step": step})
            ckpt.prune_checkpoints(self.out, self.config.keep_last)
        self.rt.barrier()

    def _dev_set(self):
        from latesearch.training.devset import DevSuite

        return DevSuite.load(self.config)

    def _evaluate(self, dev, model, step, best, eval_log) -> dict[str, Any] | None:
        metrics = dev.evaluate(model, average=self.config.dev_average)
        record = {"step": step, **metrics}
        eval_log.append(record)
        if self.progress:
            self.progress({"step": step, "eval": metrics})
        key = self.config.dev_metric
        if best is None or metrics[key] > best[key]:
            best = record
            ckpt.save_checkpoint(self.out / "best", model, self.config, info=record)
        return best


def _only_config(out: Path) -> bool:
    """Whether `out` holds a training config and nothing else."""
    return [p.name for p in out.iterdir()] == [CONFIG_FILE]
