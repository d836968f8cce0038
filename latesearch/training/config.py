"""`TrainConfig`: every setting of a training run, saved as JSON beside each checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from latesearch._configio import JsonConfig
from latesearch.errors import ConfigError

CONFIG_FILE = "train_config.json"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ON_ERROR = ("raise", "skip")
TRIPLES_FORMATS = ("auto", "text", "ids")
DISTILL_SOURCES = ("triples",)
DEV_AVERAGES = ("pooled", "groups")
DEV_METRICS = ("nDCG@10", "RR@10")
# Fields a resumed run may change; any other difference from the saved config is an error.
RESUMABLE_CHANGES = frozenset(
    {"steps", "save_every", "keep_last", "eval_every", "log_every", "resume", "device",
     "on_error", "cache_chunk_size"}
)  # fmt: skip


@dataclass
class TrainConfig(JsonConfig):
    """Settings of a ColBERT fine-tuning run (Khattab & Zaharia 2020, Section 3.3).

    Data, one of: `triples` (text TSV ``query<TAB>positive<TAB>negative...``, or id triples
    JSONL with `collection` + `queries`); or `qrels` + `queries` + `collection` with
    negatives mined by `mine_negatives` ('bm25' or 'index:<path>', top `mine_depth` minus
    the positives). `batch_size` is the number of queries per optimizer step, over all
    ranks and accumulation micro-batches. Defaults follow the paper: lr 3e-6, batch 32,
    one negative, softmax cross-entropy over [positive, negative].

    Large batches: `cache_chunk_size` computes each micro-batch's loss by GradCache
    (`training.cached`), encoding at most that many texts at a time, with the same loss
    and gradients; `gather_across_devices` (with `in_batch_negatives`) makes every rank's
    documents in-batch negatives of every query under DDP.

    Dev evaluation (every `eval_every` steps, and after the last): the dev set of
    `dev_queries` + `dev_qrels` + `dev_collection` and/or BEIR-layout folders `dev_beir`
    (their `dev_split` judgements, each ranked against its own corpus), NanoBEIR-style:
    every set's metrics and their mean; the checkpoint with the best mean `dev_metric` is
    kept in `best/`.
    """

    file_name: ClassVar[str] = CONFIG_FILE

    # data
    triples: str | None = None
    triples_format: str = "auto"
    collection: str | None = None
    queries: str | None = None
    qrels: str | None = None
    mine_negatives: str | None = None
    mine_depth: int = 100
    negatives_per_query: int = 1
    in_batch_negatives: bool = False
    gather_across_devices: bool = False
    on_error: str = "raise"
    # model
    base_model: str | None = None
    query_maxlen: int | None = None
    doc_maxlen: int | None = None
    dim: int | None = None
    train_layers: int | None = None
    doc_chunk: int | None = None
    cache_chunk_size: int | None = None
    # optimization
    steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 3e-6
    projection_lr: float | None = None
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float | None = 2.0
    precision: str = "auto"
    seed: int = 12345
    device: str | None = None
    anchor_weight: float = 0.0
    distill_from: str | None = None
    distill_temperature: float = 1.0
    # output
    output: str = "runs/train"
    resume: bool = False
    save_every: int = 0
    keep_last: int = 0
    log_every: int = 10
    # dev evaluation
    eval_every: int = 0
    dev_queries: str | None = None
    dev_qrels: str | None = None
    dev_collection: str | None = None
    dev_average: str = "pooled"
    dev_beir: tuple[str, ...] = ()
    dev_split: str = "test"
    dev_metric: str = "nDCG@10"

    def validate(self) -> None:
        self._check_values()
        self._check_data()

    def _check_values(self) -> None:
        self._check_ints("mine_depth", "steps", "batch_size", "grad_accum", "dim", "doc_chunk",
                         "cache_chunk_size")  # fmt: skip
        self._check_ints("negatives_per_query", "warmup_steps", "save_every", "keep_last",
                         "log_every", "eval_every", "train_layers", minimum=0)  # fmt: skip
        self._check_ints("query_maxlen", minimum=4)
        self._check_ints("doc_maxlen", minimum=3)
        for name in ("lr", "projection_lr", "max_grad_norm", "distill_temperature"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                _bad(name, value, "> 0")
        for name in ("weight_decay", "anchor_weight"):
            if getattr(self, name) < 0:
                _bad(name, getattr(self, name), ">= 0")
        for name, allowed in (
            ("precision", PRECISIONS),
            ("on_error", ON_ERROR),
            ("triples_format", TRIPLES_FORMATS),
            ("dev_average", DEV_AVERAGES),
            ("dev_metric", DEV_METRICS),
        ):
            if getattr(self, name) not in allowed:
                _bad(name, getattr(self, name), f"one of {allowed}")
        if self.distill_from is not None and self.distill_from not in DISTILL_SOURCES:
            _bad("distill_from", self.distill_from, f"None or one of {DISTILL_SOURCES}")
        if self.batch_size % self.grad_accum:
            _bad("batch_size", self.batch_size, f"a multiple of grad_accum={self.grad_accum}")
        if not self.output.strip():
            _bad("output", self.output, "a folder path")

    def _check_data(self) -> None:
        if (self.triples is None) == (self.qrels is None):
            raise ConfigError("TrainConfig: give exactly one of `triples` or `qrels`")
        if self.gather_across_devices and not self.in_batch_negatives:
            _bad("gather_across_devices", True, "False unless in_batch_negatives is on")
        if self.negatives_per_query == 0 and not self.in_batch_negatives:
            _bad("negatives_per_query", 0, ">= 1 unless in_batch_negatives is on")
        if self.triples is not None:
            if self.mine_negatives is not None:
                _bad("mine_negatives", self.mine_negatives, "None with `triples`")
            if self.triples_format_resolved() == "ids":
                self._require("collection", "queries", why="id triples")
        else:
            self._require("queries", "collection", why="`qrels`")
            mine = self.mine_negatives
            if mine is None and self.negatives_per_query > 0:
                _bad("mine_negatives", None, "'bm25' or 'index:<path>' with `qrels`")
            if (
                mine is not None
                and mine != "bm25"
                and not (mine.startswith("index:") and len(mine) > 6)
            ):
                _bad("mine_negatives", mine, "'bm25' or 'index:<path>'")
        if self.distill_from == "triples" and self.triples is None:
            _bad("distill_from", self.distill_from, "used with triples carrying scores")
        trio = ("dev_queries", "dev_qrels", "dev_collection")
        given = [name for name in trio if getattr(self, name) is not None]
        if given and len(given) < len(trio):
            self._require(*trio, why=f"{given[0]}")
        if self.eval_every and not given and not self.dev_beir:
            raise ConfigError(
                "TrainConfig.eval_every > 0 needs dev data: dev_queries + dev_qrels + "
                "dev_collection, or dev_beir folders",
                field="eval_every",
            )
        if not self.dev_split.strip():
            _bad("dev_split", self.dev_split, "a qrels split name such as 'test' or 'dev'")

    def _require(self, *names: str, why: str) -> None:
        for name in names:
            if getattr(self, name) is None:
                raise ConfigError(f"TrainConfig.{name} is required with {why}")

    def triples_format_resolved(self) -> str | None:
        """'text' or 'ids' for a triples run, else None. 'auto': a .json/.jsonl file (under
        any .gz) holds ids unless its first line is a text record (a "query" key); any
        other file is text TSV."""
        from latesearch.data.triples import is_json_file, json_triples_kind

        if self.triples is None:
            return None
        if self.triples_format != "auto":
            return self.triples_format
        if not is_json_file(self.triples):
            return "text"
        return json_triples_kind(self.triples) or "ids"


def resume_conflicts(saved: TrainConfig, new: TrainConfig) -> list[str]:
    """Fields that differ between a saved run and its resumption (and may not)."""
    old, cur = saved.to_dict(), new.to_dict()
    return sorted(k for k in cur if k not in RESUMABLE_CHANGES and old[k] != cur[k])


def _bad(name: str, value: Any, expected: str) -> None:
    raise ConfigError(f"TrainConfig.{name} must be {expected}, got {value!r}", field=name)
