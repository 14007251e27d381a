"""Batched forward passes of many lesioned copies of one network (docs/lesion.md).

A lesion zeroes the incoming weights and bias of a set of hidden units: exactly what our MLP computes when
those units' weight rows and bias masks are 0. Without batch norm a lesioned unit then outputs act(0)
(0 for relu and ste, 0.5 for sigmoid); with batch norm the MLP multiplies a masked unit's output by its
bias mask, so it outputs 0. Either way a lesioned unit outputs a constant, `lesion_value`.

Many copies (one per lesion draw) share one forward pass:
- the intact pass is computed once: post-activations acts[l] (batch, arch[l]) and pre-activations pre[l];
- the first lesioned layer l holds the same number k of lesioned units in every copy, given as indices
  idx (copies, k); its effect on layer l+1 is a small correction
      pre[l+1] + (lesion_value - acts[l][:, idx]) @ W_l[:, idx]^T      -> (copies, batch, arch[l+1])
  (one batched matmul of width k instead of arch[l]);
- later lesioned layers (double lesions) take a per-copy bool mask (copies, arch[m]);
- the layers above run as one broadcast matmul over all copies.

`DenseForward` holds this for the Evaluator; channel networks (conv layers) have `ChannelForward` in
channel_forward.py with the same interface (net, logits, row_floats, prepare, lesioned).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.mlp import hidden_activation
from utils.errors import InputError


@dataclass
class NetTensors:
    """The network as float32 tensors: weights[i] (arch[i+1], arch[i]) masked, biases[i] (arch[i+1],),
    scale/shift[i] (arch[i+1],) of the folded eval-mode batch norm after hidden layer i+1 (or None)."""

    arch: list[int]
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    scale: list[torch.Tensor | None]
    shift: list[torch.Tensor | None]
    activation: str
    lesion_value: float

    @property
    def depth(self) -> int:
        return len(self.weights)

    def act(self, z: torch.Tensor, i: int) -> torch.Tensor:
        """Post-activation of the hidden layer i+1 from its pre-activation z (batch norm folded in)."""
        if self.scale[i] is not None:
            z = z * self.scale[i] + self.shift[i]
        return hidden_activation(self.activation)(z)  # the function the torch module applies


def net_tensors(network) -> NetTensors:
    """NetTensors of a LayeredNetwork (fc layers, no skips); the same function as models.torch_model."""
    if network.has_conv:
        raise InputError("net_tensors takes fully connected networks; channel_forward runs conv layers")
    if network.skips:
        raise InputError("lesion tests need a layered network without skip connections")
    batch_norm = any(n is not None for n in network.norms[:-1])
    activation = network.activation
    weights, biases, scale, shift = [], [], [], []
    for i in range(network.depth):
        w = network.weights[i] * network.masks[i].astype(np.float32)
        weights.append(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)))
        biases.append(torch.from_numpy(network.biases[i].astype(np.float32)))
        norm = network.norms[i] if i < network.depth - 1 else None
        if batch_norm and i < network.depth - 1 and norm is None:
            raise InputError(f"layer {i} has no batch norm statistics while others do")
        if norm is None:
            scale.append(None)
            shift.append(None)
            continue
        s = np.asarray(norm["gamma"], np.float64) / np.sqrt(np.asarray(norm["var"], np.float64) + norm["eps"])
        t = np.asarray(norm["beta"], np.float64) - np.asarray(norm["mean"], np.float64) * s
        scale.append(torch.from_numpy(s.astype(np.float32)))
        shift.append(torch.from_numpy(t.astype(np.float32)))
    # a lesioned unit outputs act(0) (0 for relu, ste and linear, 0.5 for sigmoid), or 0 with batch norm
    value = 0.0 if batch_norm else float(hidden_activation(activation)(torch.zeros(())))
    return NetTensors(list(network.arch), weights, biases, scale, shift, activation, value)


@torch.no_grad()
def intact_pass(net: NetTensors, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """x (batch, arch[0]) -> (acts, pre): acts[l] (batch, arch[l]) post-activations (acts[0] = x, the last
    = logits); pre[l] pre-activations (pre[0] = x)."""
    acts, pre = [x], [x]
    h = x
    for i in range(net.depth):
        z = h @ net.weights[i].T + net.biases[i]
        pre.append(z)
        h = net.act(z, i) if i < net.depth - 1 else z
        acts.append(h)
    return acts, pre


@torch.no_grad()
def removed_rows(net: NetTensors, acts: list[torch.Tensor], layer: int) -> torch.Tensor:
    """(arch[layer], batch): lesion_value − activation of every unit of hidden `layer`, one row per unit
    (what lesioning a unit adds to its activation); computed once per layer, rows gathered per copy."""
    return (net.lesion_value - acts[layer]).T.contiguous()


@torch.no_grad()
def lesioned_logits(
    net: NetTensors,
    acts: list[torch.Tensor],
    pre: list[torch.Tensor],
    layer: int,
    idx: torch.Tensor,
    later: dict[int, torch.Tensor] | None = None,
    removed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits (copies, batch, arch[-1]) of copies lesioned at hidden `layer` (1 = first hidden) by unit
    indices idx (copies, k) int64, plus bool masks later[m] (copies, arch[m]) at hidden layers m > layer.
    removed: removed_rows(net, acts, layer), when the caller keeps it between calls."""
    later = later or {}
    if removed is None:
        removed = removed_rows(net, acts, layer)
    gathered = removed[idx]  # (copies, k, batch)
    w_rows = net.weights[layer].T[idx]  # (copies, k, n_{l+1})
    base = pre[layer + 1].unsqueeze(0).expand(idx.shape[0], -1, -1)
    z = torch.baddbmm(base, gathered.transpose(1, 2), w_rows)  # (copies, batch, n_{l+1})
    for i in range(layer, net.depth):
        # z is the pre-activation of layer i+1
        if i == net.depth - 1:
            return z
        h = net.act(z, i)
        mask = later.get(i + 1)
        if mask is not None:
            h = torch.where(mask[:, None, :], torch.full_like(h[:1, :1, :1], net.lesion_value), h)
        z = torch.baddbmm(
            net.biases[i + 1].expand(h.shape[0], 1, -1), h, net.weights[i + 1].T.expand(h.shape[0], -1, -1)
        )
    raise ValueError(f"layer {layer} is not a hidden layer of arch {net.arch}")


class DenseForward:
    """Lesioned copies of a fully connected network on test inputs x (batch, arch[0])."""

    chunk_floats = 2**20  # floats in one copies x batch x width activation tensor (4 MB)

    def __init__(self, network, x: np.ndarray):
        self.net = net_tensors(network)
        self.batch = int(x.shape[0])
        self.acts, self.pre = intact_pass(self.net, torch.from_numpy(np.asarray(x, dtype=np.float32)))
        self.logits = self.acts[-1]  # (batch, outputs) of the intact network
        self._removed: dict[int, torch.Tensor] = {}

    def row_floats(self, layer: int) -> int:
        """Floats of one lesioned copy's widest activation above `layer`."""
        return self.batch * max(self.net.arch[layer + 1 :])

    def prepare(self, layer: int) -> None:
        """Computes what copies lesioned at `layer` share (once, before threads share it)."""
        if layer not in self._removed:
            self._removed[layer] = removed_rows(self.net, self.acts, layer)

    def lesioned(self, layer: int, idx: torch.Tensor, later: dict) -> torch.Tensor:
        """Logits (copies, batch, outputs); see lesioned_logits."""
        self.prepare(layer)
        return lesioned_logits(self.net, self.acts, self.pre, layer, idx, later, self._removed[layer])


@dataclass
class Scorer:
    """Per-output correct counts of logits against the test targets.

    kind "bits": output o is right on a sample when (logit > 0) == target bit; every sample counts.
    "groups"/"argmax": per output group the prediction is the argmax; output o (a class) counts the samples
    whose target class is o and is right when the prediction is o (per-class accuracy).
    totals: (outputs,) samples counted per output (0 for a class absent from the test set).
    """

    y: torch.Tensor
    kind: str
    groups: list[list[int]]
    totals: np.ndarray
    onehots: list[torch.Tensor]
    targets: list[torch.Tensor]

    @torch.no_grad()
    def correct(self, logits: torch.Tensor) -> np.ndarray:
        """logits (copies, batch, outputs) -> int64 (copies, outputs) correct counts."""
        if self.kind == "bits":
            right = (logits > 0) == (self.y > 0.5)
            return right.sum(dim=1).numpy().astype(np.int64)
        out = np.zeros((logits.shape[0], self.y.shape[1]), dtype=np.int64)
        for group, onehot, target in zip(self.groups, self.onehots, self.targets):
            columns = logits[..., group[0] : group[-1] + 1] if _is_range(group) else logits[..., group]
            hit = (columns.argmax(dim=-1) == target).to(torch.float32)  # (copies, batch)
            out[:, group] = np.rint((hit @ onehot).numpy()).astype(np.int64)
        return out


def make_scorer(y: np.ndarray, kind: str, output_groups) -> Scorer:
    """Scorer for targets y (batch, outputs) 0/1 and the task's accuracy kind."""
    y_t = torch.from_numpy(np.asarray(y, dtype=np.float32))
    n, m = y_t.shape
    if kind == "bits":
        return Scorer(y_t, kind, [], np.full(m, n, dtype=np.int64), [], [])
    groups = [list(g) for g in output_groups] or [list(range(m))]
    onehots, targets = [], []
    totals = np.zeros(m, dtype=np.int64)
    for group in groups:
        target = y_t[:, group].argmax(dim=1)
        onehot = torch.nn.functional.one_hot(target, len(group)).to(torch.float32)  # (batch, |g|)
        onehots.append(onehot)
        targets.append(target)
        totals[group] = onehot.sum(dim=0).numpy().astype(np.int64)
    return Scorer(y_t, kind, groups, totals, onehots, targets)


def _is_range(group: list[int]) -> bool:
    return list(group) == list(range(group[0], group[0] + len(group)))
