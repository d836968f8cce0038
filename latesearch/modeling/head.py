"""The projection head: the paper's single bias-free linear layer, or a stack of dense
layers (PyLate's `Dense` modules, BGE-M3's `colbert_linear`) with biases, activations and
residual connections."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from latesearch.errors import CheckpointError
from latesearch.modeling.config import ColBERTConfig

ACTIVATION_MODULES = {
    "identity": nn.Identity,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


def head_layers(config: ColBERTConfig, hidden: int) -> list[dict[str, Any]]:
    """The head's layers: `config.head`, or the paper's [hidden -> dim] bias-free layer."""
    layers = [dict(layer) for layer in config.head] or [
        {"in_features": hidden, "out_features": config.dim, "bias": False,
         "activation": "identity", "residual": False}
    ]
    if layers[0]["in_features"] != hidden:
        raise CheckpointError(
            f"the head's first layer takes {layers[0]['in_features']} features, "
            f"the backbone gives {hidden}"
        )
    return layers


def simplified(layers: list[dict[str, Any]], hidden: int, dim: int) -> tuple:
    """`config.head` for these layers: () when they are the paper's single layer."""
    if len(layers) == 1:
        only = {"bias": False, "activation": "identity", "residual": False, **layers[0]}
        if (only["in_features"], only["out_features"]) == (hidden, dim) and not only["bias"] \
                and only["activation"] == "identity" and not only["residual"]:
            return ()
    return tuple(layers)


class ProjectionHead(nn.Module):
    """Dense layers after the backbone. Layer 0 is `linear` (the name colbert-ai's and
    latesearch's checkpoints use); later layers are `layers.<i-1>`; a residual connection
    between different widths has its own bias-free `residuals.<i>` projection."""

    def __init__(self, layers: list[dict[str, Any]]) -> None:
        super().__init__()
        self.specs = layers
        first, rest = layers[0], layers[1:]
        self.linear = nn.Linear(first["in_features"], first["out_features"], bias=first["bias"])
        self.layers = nn.ModuleList(
            nn.Linear(s["in_features"], s["out_features"], bias=s["bias"]) for s in rest
        )
        self.residuals = nn.ModuleDict({
            str(i): nn.Linear(s["in_features"], s["out_features"], bias=False)
            for i, s in enumerate(layers)
            if s["residual"] and s["in_features"] != s["out_features"]
        })
        self.activations = [ACTIVATION_MODULES[s["activation"]]() for s in layers]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = hidden
        for i, linear in enumerate([self.linear, *self.layers]):
            y = self.activations[i](linear(x))
            if self.specs[i]["residual"]:
                y = y + (self.residuals[str(i)](x) if str(i) in self.residuals else x)
            x = y
        return x

    def load(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load weights named as in `state_dict()`; a missing or misshapen one is an error."""
        expected = self.state_dict()
        missing = sorted(set(expected) - set(state))
        if missing:
            raise CheckpointError(f"{source}: the projection head lacks {missing}")
        for key, tensor in expected.items():
            if tuple(state[key].shape) != tuple(tensor.shape):
                raise CheckpointError(
                    f"{source}: head tensor {key} has shape {tuple(state[key].shape)}, "
                    f"expected {tuple(tensor.shape)}"
                )
        with torch.no_grad():
            for key, tensor in expected.items():
                tensor.copy_(state[key])
