"""The ONNX Runtime encoder backend (`pip install "latesearch[onnx]"`): a `ColBERT`'s
`embed_ids` graph (backbone, head, normalization) exported to ONNX, with the attended mean
of the backbone's last hidden states as a second output (the "pooled" dense view), run on
CPU by onnxruntime in fp32 or int8.

int8 keeps the weights of every MatMul (the transformer's and the head's) as symmetric
8-bit integers in blocks of 128 along the input, each block with its own scale, and
multiplies in int8 with the activations quantized per block at run time (onnxruntime's
MatMulNBits at accuracy level 4). Per-block scales follow outliers that a per-tensor
activation scale (onnxruntime's dynamic quantization) cannot: on the default model that
scheme turned some document tokens nearly orthogonal to torch's (cosine 0.07), this one
keeps every token above 0.99. The token embedding table stays fp32 (it is only gathered).

Exports are cached, keyed by the model's fingerprint, the precision, and the onnxruntime
and torch versions: in `<model folder>/latesearch-onnx/<key>/` when the model's folder is
writable (never inside the installed package), else in `~/.cache/latesearch/onnx/<key>/`
(`$XDG_CACHE_HOME`, or `$LATESEARCH_ONNX_CACHE` for another root). Each entry is staged in
a temporary folder, fsynced and renamed into place, and checked against torch on fresh
shapes before it is published.

The runtime's threads stop spinning when a run returns: left spinning (its default), they
kept the CPU busy through the search stages that follow encoding and slowed those down by
more than the encoder saved; never spinning made the encoder itself slower at 2 threads.

The session is a snapshot of the weights when attached: a model changed afterwards (e.g.
trained) must be attached again. Passes with gradients enabled always run in torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import logging
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from latesearch._atomic import replace_folder, write_json
from latesearch._configio import check_positive
from latesearch.errors import ConfigError

BACKENDS = ("torch", "onnx")
PRECISIONS = ("fp32", "int8")
INSTALL_HINT = 'the ONNX backend needs onnxruntime and onnx: pip install "latesearch[onnx]"'
CACHE_ENV = "LATESEARCH_ONNX_CACHE"
FOLDER_NAME = "latesearch-onnx"  # inside a model folder (sentence-transformers use onnx/)
MODEL_FILE, META_FILE = "model.onnx", "meta.json"
INPUTS, OUTPUTS = ("input_ids", "attention_mask"), ("embeddings", "pooled")
OPSET = 17
FORMAT = 1  # bump when the exported graph changes: older cache entries are then unused
INT8_SCHEME = {"op": "MatMulNBits", "bits": 8, "block_size": 128, "symmetric": True,
               "accuracy_level": 4}  # fmt: skip  (see the module docstring)
INT8_ORT = "1.24"  # the first onnxruntime whose MatMulNBits quantizer takes 8 bits
TOLERANCE = {"atol": 1e-4, "rtol": 1e-3}  # the export's check against torch (fp32)
PACKAGE = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- options
def check_backend(backend: str, precision: str = "fp32", threads: int | None = None) -> None:
    """Validate the backend options; "onnx" also needs onnxruntime installed."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"onnx_precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if threads is not None:
        check_positive("onnx_threads", threads, error=ConfigError)
    if backend == "onnx":
        require_onnxruntime()


def require_onnxruntime() -> Any:
    """The onnxruntime module (onnx, which exports need, checked too), or a ConfigError
    saying how to install them."""
    try:
        import onnxruntime

        if importlib.util.find_spec("onnx") is None:
            raise ImportError("No module named 'onnx'")
    except ImportError as err:
        raise ConfigError(f"{INSTALL_HINT} ({err})") from None
    return onnxruntime


def attach_onnx(
    model: Any,
    precision: str = "fp32",
    *,
    threads: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Any:
    """Make `model` (a ColBERT) encode with ONNX Runtime from now on (its inference passes:
    queries, documents, pooled vectors); returns the model. `threads`: intra-op threads
    (default: torch's current count)."""
    model.onnx_encoder = load_encoder(model, precision, threads=threads, cache_dir=cache_dir)
    model.backend, model.onnx_precision = "onnx", precision
    return model


def detach_onnx(model: Any) -> Any:
    """Back to the torch encoder; returns the model."""
    model.onnx_encoder = None
    model.backend = "torch"
    return model


# ---------------------------------------------------------------------- the session
class OnnxEncoder:
    """An onnxruntime CPU session over an exported ColBERT graph."""

    def __init__(self, path: Path, precision: str, threads: int, *, exported: bool) -> None:
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # threads spin only during a run (see the module docstring)
        options.add_session_config_entry("session.force_spinning_stop", "1")
        self.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.path, self.precision, self.threads = path, precision, threads
        self.exported = exported  # whether this load exported (False: found in the cache)

    def __repr__(self) -> str:
        return f"OnnxEncoder({str(self.path)!r}, {self.precision}, threads={self.threads})"

    def run(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 CPU (n, L, dim) embeddings (no output mask) and (n, hidden) pooled."""
        feeds = {
            "input_ids": input_ids.to("cpu", torch.int64).numpy(),
            "attention_mask": attention_mask.to("cpu", torch.int64).numpy(),
        }
        embeddings, pooled = self.session.run(list(OUTPUTS), feeds)
        return torch.from_numpy(embeddings), torch.from_numpy(pooled)

    def embed_and_pool(
        self, batch: Any, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As `ColBERT.embed_and_pool`: masked embeddings and pooled vectors, on `device`."""
        embeddings, pooled = self.run(batch.input_ids, batch.attention_mask)
        embeddings = embeddings.to(device=device, dtype=dtype)
        mask = batch.output_mask.to(device=device, dtype=dtype).unsqueeze(-1)
        return embeddings * mask, pooled.to(device=device, dtype=dtype)

    def embed(self, batch: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """As `ColBERT._embed`: (n, L, dim) embeddings, unscored positions zero."""
        return self.embed_and_pool(batch, device, dtype)[0]


def load_encoder(
    model: Any,
    precision: str = "fp32",
    *,
    threads: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> OnnxEncoder:
    """The session of `model`'s export at `precision`: from the cache, else exported (and
    quantized), checked and published there first. A cached file the runtime cannot load
    is exported again."""
    check_backend("onnx", precision, threads)
    threads = threads or torch.get_num_threads()
    fingerprint = model.fingerprint()
    for attempt in range(2):
        folder, exported = _cached(model, fingerprint, precision, cache_dir, fresh=attempt > 0)
        try:
            return OnnxEncoder(folder / MODEL_FILE, precision, threads, exported=exported)
        except Exception:  # a damaged entry: export once more
            if attempt:
                raise
            shutil.rmtree(folder, ignore_errors=True)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------- the cache
def cache_key(fingerprint: str, precision: str) -> dict[str, Any]:
    """What an export depends on."""
    ort = require_onnxruntime()
    key = {"fingerprint": fingerprint, "precision": precision, "format": FORMAT,
           "opset": OPSET, "onnxruntime": ort.__version__, "torch": torch.__version__}  # fmt: skip
    if precision == "int8":
        key["quantization"] = INT8_SCHEME
    return key


def entry_name(key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return f"{key['precision']}-{digest[:20]}"


def cache_root(model: Any, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where `model`'s exports go: `cache_dir`, $LATESEARCH_ONNX_CACHE, the model's own
    folder when writable (and not part of the installed package or a hub snapshot), else
    the user cache."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    source = getattr(model, "source", None)
    if source:
        folder = Path(source).resolve()
        if (
            folder.is_dir()
            and os.access(folder, os.W_OK)
            and not folder.is_relative_to(PACKAGE)
            and "snapshots" not in folder.parts
        ):
            return folder / FOLDER_NAME
    return user_cache()


def user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "latesearch" / "onnx"


def _cached(
    model: Any, fingerprint: str, precision: str, cache_dir: Any, *, fresh: bool
) -> tuple[Path, bool]:
    """The folder of a valid cache entry (made now when missing or `fresh`), and whether
    it was made now."""
    key = cache_key(fingerprint, precision)
    roots = [cache_root(model, cache_dir)]
    if cache_dir is None and roots[0] != user_cache():
        roots.append(user_cache())  # the model's folder turned out not writable
    for i, root in enumerate(roots):
        target = root / entry_name(key)
        if not fresh and _valid(target, key):
            return target, False
        try:
            return _publish(model, target, key, precision, cache_dir), True
        except OSError:
            if i == len(roots) - 1:
                raise
    raise AssertionError("unreachable")


def _valid(folder: Path, key: dict[str, Any]) -> bool:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        size = (folder / MODEL_FILE).stat().st_size
    except (OSError, ValueError):
        return False
    return meta.get("key") == key and meta.get("bytes") == size


def _publish(model: Any, target: Path, key: dict[str, Any], precision: str, cache_dir: Any) -> Path:
    """Export (fp32) or quantize the fp32 entry (int8) into a staging folder beside
    `target`, fsync it, and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    stage.mkdir()
    try:
        if precision == "fp32":
            export(model, stage / MODEL_FILE)
        else:
            fp32, _ = _cached(model, key["fingerprint"], "fp32", cache_dir, fresh=False)
            quantize(fp32 / MODEL_FILE, stage / MODEL_FILE)
        for path in stage.iterdir():  # the graph, and external weights if any
            _fsync(path)
        meta = {"key": key, "bytes": (stage / MODEL_FILE).stat().st_size,
                "source": str(getattr(model, "source", "")), "inputs": list(INPUTS),
                "outputs": list(OUTPUTS)}  # fmt: skip
        write_json(stage / META_FILE, meta)
        if _valid(target, key):  # another process published it meanwhile
            shutil.rmtree(stage)
            return target
        return replace_folder(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


# ---------------------------------------------------------------------- export
class _Graph(nn.Module):
    """`embed_ids`, plus the attended mean of the backbone's last hidden states."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from latesearch.modeling.colbert import mean_pool

        seen: list[torch.Tensor] = []

        def keep(_module: Any, _args: Any, output: Any) -> None:
            seen.append(output[0] if isinstance(output, tuple) else output.last_hidden_state)

        handle = self.model.backbone.register_forward_hook(keep)
        try:
            embeddings = self.model.embed_ids(input_ids, attention_mask)
        finally:
            handle.remove()
        if len(seen) != 1:
            raise ConfigError("cannot export: embed_ids did not run the backbone once")
        return embeddings, mean_pool(seen[0], attention_mask)


def export(model: Any, path: Path) -> Path:
    """Export `model`'s graph (float32, CPU) to `path`, alone in its folder, with dynamic
    batch and sequence axes, then check it against torch on other shapes, padded and not.
    The TorchScript exporter (exact on BERT, DistilBERT, XLM-R and ModernBERT; deprecated
    in torch 2.9+), else torch.export's (needs onnxscript; was off by 1e-3 on ModernBERT:
    the check refuses such an export)."""
    source = model
    if model.device.type != "cpu" or model.dtype != torch.float32:
        import copy

        source = copy.deepcopy(model).to("cpu", torch.float32)
    graph = _Graph(source).eval()
    try:
        _torchscript_export(graph, path)
    except ConfigError:
        raise
    except Exception as err:  # e.g. a torch without the TorchScript exporter
        log.warning("TorchScript ONNX export failed (%s); trying torch.export", err)
        for leftover in path.parent.iterdir():
            leftover.unlink()
        _dynamo_export(graph, path)
    check_export(graph, path)
    return path


def _torchscript_export(graph: _Graph, path: Path) -> None:
    axes = {0: "batch", 1: "sequence"}
    dynamic = {"input_ids": axes, "attention_mask": axes, "embeddings": axes,
               "pooled": {0: "batch"}}  # fmt: skip
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings
        torch.onnx.export(graph, _probe(graph.model, 2, 9), str(path),
                          input_names=list(INPUTS), output_names=list(OUTPUTS),
                          dynamic_axes=dynamic, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)  # fmt: skip


def _dynamo_export(graph: _Graph, path: Path) -> None:
    """The torch.export-based exporter (needs onnxscript)."""
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    shapes = {name: {0: batch, 1: sequence} for name in INPUTS}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, _probe(graph.model, 2, 9), str(path),
                          input_names=list(INPUTS), output_names=list(OUTPUTS),
                          dynamic_shapes=shapes, dynamo=True, verbose=False)  # fmt: skip


def _probe(model: Any, rows: int, width: int, *, pad: bool = True) -> tuple[torch.Tensor, ...]:
    """Seeded token ids and a mask whose last row is half padding (traced with padding,
    so that no all-ones shortcut of the attention mask is baked into the graph)."""
    vocab = int(model.backbone.config.vocab_size)
    generator = torch.Generator().manual_seed(rows * 1000 + width)
    ids = torch.randint(0, vocab, (rows, width), generator=generator, dtype=torch.int64)
    mask = torch.ones_like(ids)
    if pad:
        mask[-1, max(1, width // 2) :] = 0
    return ids, mask


def check_export(graph: _Graph, path: Path) -> None:
    """The exported graph must reproduce torch on shapes other than the traced one."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for rows, width, pad in ((3, 13, True), (1, 5, False)):
        ids, mask = _probe(graph.model, rows, width, pad=pad)
        with torch.no_grad():
            expected = graph(ids, mask)
        found = session.run(list(OUTPUTS), {"input_ids": ids.numpy(),
                                            "attention_mask": mask.numpy()})  # fmt: skip
        for name, want, got in zip(OUTPUTS, expected, found, strict=True):
            if not np.allclose(got, want.numpy(), **TOLERANCE):
                gap = float(np.abs(got - want.numpy()).max())
                raise ConfigError(
                    f"the ONNX export of {getattr(graph.model, 'source', 'this model')} does "
                    f"not reproduce torch ({name}: max difference {gap:.2g} at shape "
                    f"{rows}x{width}); use backend='torch'"
                )


def quantize(source: Path, target: Path) -> Path:
    """The int8 entry from an fp32 export (`INT8_SCHEME`, see the module docstring)."""
    need = f'int8 needs onnxruntime >= {INT8_ORT}: pip install -U "latesearch[onnx]"'
    try:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as err:
        raise ConfigError(f"{need} ({err})") from None
    if "bits" not in inspect.signature(MatMulNBitsQuantizer).parameters:  # 4-bit only
        raise ConfigError(f"{need} (this onnxruntime quantizes MatMul weights to 4 bits only)")
    scheme = INT8_SCHEME
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(source)), bits=scheme["bits"], block_size=scheme["block_size"],
        is_symmetric=scheme["symmetric"], accuracy_level=scheme["accuracy_level"],
    )  # fmt: skip
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its progress lines
    try:
        quantizer.process()
    finally:
        root.setLevel(level)
    # a large export keeps its weights in files beside the graph: so does its int8 entry
    external = any(p.name not in (MODEL_FILE, META_FILE) for p in source.parent.iterdir())
    quantizer.model.save_model_to_file(str(target), use_external_data_format=external)
    return target
