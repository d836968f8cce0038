"""AdamW with separate backbone / projection learning rates, linear warmup and decay,
and the L2-SP anchor toward the starting weights."""

from __future__ import annotations

import torch
from torch import nn

from latesearch.errors import ConfigError
from latesearch.training.config import TrainConfig

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Named parameters that training updates. A backbone's pooler does not reach the token
    embeddings, so it is frozen (it would get no gradient, which DDP rejects)."""
    for name, param in model.named_parameters():
        if ".pooler." in f".{name}":
            param.requires_grad_(False)
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def freeze_lower_layers(model: nn.Module, train_layers: int | None) -> None:
    """Train only the top `train_layers` transformer layers and the projection (None: the
    whole encoder, as in the paper). Embeddings and lower layers are frozen, so backward
    stops early: cheaper steps, a smaller delta to ship, and less drift from the backbone."""
    if train_layers is None:
        return
    layers = _encoder_layers(model)
    if train_layers > len(layers):
        raise ConfigError(f"train_layers={train_layers} but the backbone has {len(layers)} layers")
    keep = {id(p) for layer in layers[len(layers) - train_layers :] for p in layer.parameters()}
    for name, param in model.named_parameters():
        if not name.startswith("head.") and id(param) not in keep:
            param.requires_grad_(False)


def _encoder_layers(model: nn.Module) -> list[nn.Module]:
    encoder = getattr(getattr(model, "backbone", None), "encoder", None)
    layers = getattr(encoder, "layer", None)
    if layers is None:
        raise ConfigError("train_layers needs a BERT-style backbone (backbone.encoder.layer)")
    return list(layers)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over three groups: backbone (decayed), backbone biases/norms (not decayed), and
    the projection head at `projection_lr` (default: `lr`)."""
    decay, no_decay, projection = [], [], []
    for name, param in trainable_parameters(model):
        if name.startswith("head."):
            projection.append(param)
        elif name.endswith(_NO_DECAY):
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [
        {"params": decay, "lr": config.lr, "weight_decay": config.weight_decay},
        {"params": no_decay, "lr": config.lr, "weight_decay": 0.0},
        {
            "params": projection,
            "lr": config.projection_lr or config.lr,
            "weight_decay": config.weight_decay,
        },
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], eps=1e-8)


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 over `warmup_steps`, then linear decay to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Anchor:
    """L2-SP regularization: ``weight * sum ||theta - theta_0||^2`` over the backbone."""

    def __init__(self, model: nn.Module, weight: float, reference: nn.Module | None = None) -> None:
        """`reference` holds the starting weights (default: `model`'s current ones)."""
        self.weight = weight
        start = dict((reference or model).named_parameters())
        self.pairs = [
            (p, start[name].detach().to(p.device, p.dtype).clone())
            for name, p in trainable_parameters(model)
            if not name.startswith("head.")
        ]

    def penalty(self) -> torch.Tensor:
        total = sum(((p - p0) ** 2).sum() for p, p0 in self.pairs)
        return self.weight * total  # type: ignore[return-value]
