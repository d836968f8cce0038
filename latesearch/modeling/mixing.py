"""Weight-space ensembles of ColBERT models fine-tuned from one start: WiSE-FT
interpolation toward the start (Wortsman et al., CVPR 2022) and "model soups" (Wortsman et
al., ICML 2022). Both give one model of the same size and speed as its ingredients."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch

from latesearch.errors import ConfigError
from latesearch.modeling.colbert import ColBERT

# Settings a model is used with rather than trained for: ingredients may differ in these,
# and the mixture takes the first ingredient's.
USAGE_FIELDS = frozenset({"query_maxlen", "doc_maxlen"})


def mix_models(models: Sequence[ColBERT], weights: Sequence[float] | None = None) -> ColBERT:
    """The model whose floating-point weights are sum_i weights[i] * models[i]'s (default:
    the uniform average). The weights must sum to 1 (an affine combination, so a weight may
    be negative or above 1: extrapolation). The ingredients need the same architecture and
    the same encoder settings (markers, dim, similarity, augmentation...); integer buffers
    must be equal. The mixture is a new model on the first ingredient's device and dtype,
    with its config; the ingredients are not modified."""
    weights = mixing_weights(len(models), weights)
    states = [model.state_dict() for model in models]
    _check_compatible(models, states)
    mixed = {}
    for name, tensor in states[0].items():
        if tensor.is_floating_point():
            total = torch.zeros_like(tensor, dtype=torch.float64)
            for weight, state in zip(weights, states, strict=True):
                total += weight * state[name].to(device=tensor.device, dtype=torch.float64)
            mixed[name] = total.to(tensor.dtype)
        else:
            for index, state in enumerate(states[1:], start=1):
                if not torch.equal(state[name].to(tensor.device), tensor):
                    raise ConfigError(f"models[0] and models[{index}] differ in buffer {name}")
            mixed[name] = tensor.clone()
    result = copy.deepcopy(models[0])
    result.load_state_dict(mixed)
    return result


def mixing_weights(count: int, weights: Sequence[float] | None = None) -> list[float]:
    """The validated weights of `count` models: `weights` (finite, one per model, summing to
    1) or, when None, the uniform average."""
    if count < 1:
        raise ConfigError("mix_models needs at least one model")
    weights = [1.0 / count] * count if weights is None else [float(w) for w in weights]
    if len(weights) != count:
        raise ConfigError(f"{count} models but {len(weights)} weights")
    finite = all(math.isfinite(w) for w in weights)
    if not finite or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        raise ConfigError(f"mixing weights must be finite and sum to 1, got {weights}")
    return weights


def interpolate(start: ColBERT, tuned: ColBERT, alpha: float) -> ColBERT:
    """WiSE-FT: start + alpha * (tuned - start). alpha 0 is the start, 1 the fine-tuned
    model; in between trades the fine-tuning's gains for the start's robustness."""
    return mix_models([start, tuned], [1.0 - alpha, alpha])


def _check_compatible(models: Sequence[ColBERT], states: Sequence[dict]) -> None:
    """Every model has models[0]'s encoder settings (usage fields aside) and weight shapes."""
    settings = {k: v for k, v in models[0].config.to_dict().items() if k not in USAGE_FIELDS}
    shapes = {name: tuple(t.shape) for name, t in states[0].items()}
    for index in range(1, len(models)):
        config = models[index].config.to_dict()
        theirs = {k: v for k, v in config.items() if k not in USAGE_FIELDS}
        differing = sorted(k for k in settings if settings[k] != theirs.get(k))
        if differing:
            raise ConfigError(
                f"models[0] and models[{index}] have different settings: "
                + ", ".join(f"{k} ({settings[k]!r} vs {theirs.get(k)!r})" for k in differing)
            )
        other_shapes = {name: tuple(t.shape) for name, t in states[index].items()}
        if other_shapes != shapes:
            mismatch = sorted(set(shapes) ^ set(other_shapes)) or sorted(
                n for n in shapes if shapes[n] != other_shapes[n]
            )
            raise ConfigError(
                f"models[0] and models[{index}] have different architectures "
                f"(first mismatching weights: {', '.join(mismatch[:3])})"
            )
