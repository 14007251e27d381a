"""The interface training and pruning use of the torch models they train (models/: MLP, DAGNetwork, CNN).

Training and pruning live below models/ in the layers (docs/architecture.md, "Layers"), so they name the
models' shared interface here, as a `typing.Protocol`, instead of importing the classes or probing them.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class MaskedModel(Protocol):
    """A torch module of masked layers. arch: units per layer (inputs first); layers: one masked module per
    consecutive layer pair (weight, weight_mask, bias, bias_mask; a unit of layer t >= 1 is alive while
    layers[t - 1].bias_mask is 1 there); norms: batch norm modules of the hidden layers or None; dropout:
    an nn.Dropout or None; activation_name: relu | sigmoid | ste | linear."""

    arch: list[int]
    layers: nn.ModuleList
    norms: nn.Module | None
    dropout: nn.Module | None
    activation_name: str
    training: bool

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, arch[0]) -> output pre-activations (batch, arch[-1])."""

    def masked_layers(self) -> list[tuple[int, int, nn.Module]]:
        """Every masked weight block as (source layer, target layer, module); consecutive layers first."""

    def masks(self) -> list[torch.Tensor]:
        """The weight masks of `masked_layers()`."""

    def set_masks(
        self, weight_masks: list[torch.Tensor], bias_masks: list[torch.Tensor] | None = None
    ) -> None:
        """Copy 0/1 masks in place (weight masks per block, bias masks per layer)."""

    def density(self) -> float:
        """Percent of weights kept."""

    def units_kept(self) -> list[int]:
        """Units alive per layer."""

    def parameters(self): ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict): ...

    def train(self, mode: bool = True): ...

    def eval(self): ...
