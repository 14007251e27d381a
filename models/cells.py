"""Cell networks: a layered DAG of small modules (cells), built from a `CellGraph` (utils/cell_graph.py).

- Cells with no predecessor read the input through one stem: a 3x3 conv (conv cells) or a linear layer
  (fc cells) from the input to the cells' width.
- A cell's input is the sum of its predecessors' outputs (their shapes must agree).
- Cells with no successor feed the head: global average pooling (conv cells), their features
  concatenated in graph order, then one linear layer to the task's outputs.

Every weight layer is masked (MaskedConv2d / MaskedLinear), so edges inside cells are pruned as in any
model; `cell_mask` (n_cells,) multiplies each cell's output, so a cell is pruned (or lesioned) by setting
its entry to 0. The graph, input shape and output width travel in the state_dict (`cell_graph_text`,
`cell_io` buffers), so a checkpoint rebuilds its own network (`CellNetwork.from_state_dict`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.cnn import MaskedConv2d
from models.layer_masks import LayerListMasks
from models.mlp import MaskedLinear
from utils.cell_graph import CellGraph, is_cell_state, numel, parse_cell_edgelist, plan_cells, shape_text
from utils.cnn_spec import LayerSpec, spec_text
from utils.errors import InputError


class Cell(nn.Module):
    """One cell: its layers (masked conv or linear, ReLU, optional max pool) applied in order.

    in_shape: (C, H, W) for conv cells or (N,) for fc cells (utils/cell_graph.plan_cells gives the shapes)."""

    def __init__(self, specs: tuple[LayerSpec, ...], in_shape: tuple[int, ...]):
        super().__init__()
        self.specs = tuple(specs)
        layers, width = [], in_shape[0]
        for spec in self.specs:
            if spec.kind == "conv":
                layers.append(MaskedConv2d(width, spec.size, spec.kernel, spec.padding))
            else:
                layers.append(MaskedLinear(width, spec.size))
            width = spec.size
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for spec, layer in zip(self.specs, self.layers):
            x = F.relu(layer(x))
            if spec.kind == "conv" and spec.pool > 1:
                x = F.max_pool2d(x, spec.pool)
        return x


class CellNetwork(LayerListMasks, nn.Module):
    """A network of cells (see the module docstring).

    graph: the CellGraph; input_shape: (C, H, W) of the images (flat rows are reshaped) or (N,) for fc
    cells on vectors; n_outputs: the task's output width. Cell modules live in `self.cells[node id]`.
    """

    def __init__(self, graph: CellGraph, input_shape, n_outputs: int, dropout: float | None = None):
        super().__init__()
        self.graph = graph
        self.input_shape = tuple(int(s) for s in input_shape)
        self.n_outputs = int(n_outputs)
        plan = plan_cells(graph, self.input_shape, self.n_outputs)  # every shape check, before allocating
        if graph.kind() == "conv":
            self.stem = MaskedConv2d(self.input_shape[0], plan.stem_width, 3, 1)
        else:
            self.stem = MaskedLinear(numel(self.input_shape), plan.stem_width)
        cells = {node: Cell(graph.specs[i], plan.in_shapes[i]) for i, node in enumerate(graph.nodes)}
        self.cells = nn.ModuleDict(cells)
        self.out_shapes = list(plan.out_shapes)
        self.head = MaskedLinear(plan.head_in, self.n_outputs)
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.register_buffer("cell_mask", torch.ones(graph.n_cells))
        # The graph and the shapes travel with the weights (tensors only, so any state_dict code works).
        text = list(graph.text().encode())
        self.register_buffer("cell_graph_text", torch.tensor(text, dtype=torch.uint8))
        self.register_buffer("cell_io", torch.tensor([*self.input_shape, self.n_outputs], dtype=torch.int64))
        self.norms = None  # no batch norm: the training loop keeps the last short batch
        self.activation_name = "relu"

    # -- forward -----------------------------------------------------------------------------------------
    def inputs_of(self, x: torch.Tensor) -> torch.Tensor:
        """Flat rows (batch, prod(input_shape)) or shaped inputs -> (batch, *input_shape)."""
        n = numel(self.input_shape)
        if x.dim() == 2 and x.shape[1] == n:
            return x.view(x.shape[0], *self.input_shape)
        if tuple(x.shape[1:]) == self.input_shape:
            return x
        raise InputError(
            f"this cell network takes inputs of shape {shape_text(self.input_shape)}, got "
            f"{shape_text(x.shape[1:])}; check --input_shape and the task"
        )

    def cell_outputs(self, x: torch.Tensor, gates: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each cell's output (batch, *out_shape), in graph order, times its `cell_mask` entry, and times
        gates[:, cell] (batch, n_cells) when gates are given (a per-row lesion)."""
        x = self.inputs_of(x)
        if self.graph.kind() == "fc":
            x = x.flatten(1)
        gate = self.cell_mask.to(x.dtype).expand(x.shape[0], -1)
        if gates is not None:
            gate = gate * gates.to(x.dtype)
        stem = F.relu(self.stem(x))
        outputs: list[torch.Tensor] = []
        for i, node in enumerate(self.graph.nodes):
            preds = self.graph.predecessors(i)
            h = stem if not preds else outputs[preds[0]]
            for p in preds[1:]:  # the summed input, one addition at a time (a traced graph maps those)
                h = h + outputs[p]
            out = self.cells[node](h)
            out = out * gate[:, i].view(-1, *([1] * (out.dim() - 1)))
            if self.dropout is not None:
                out = self.dropout(out)
            outputs.append(out)
        return outputs

    def _head(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        feats = [
            outputs[i].mean(dim=(2, 3)) if outputs[i].dim() == 4 else outputs[i] for i in self.graph.outputs
        ]
        return self.head(torch.cat(feats, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, *input_shape) or flat rows -> logits (batch, n_outputs)."""
        return self._head(self.cell_outputs(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def gated_logits(self, x: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Logits (copies, batch, outputs) of `copies` versions of the network on x (batch, ...), copy c with
        every cell's output multiplied by gates[c, cell] (copies, n_cells): a lesion test's copies in one
        batched forward."""
        copies, batch = gates.shape[0], x.shape[0]
        x = self.inputs_of(x)
        rows = x.unsqueeze(0).expand(copies, *x.shape).reshape(copies * batch, *x.shape[1:])
        outputs = self.cell_outputs(rows, gates.repeat_interleave(batch, dim=0))
        return self._head(outputs).view(copies, batch, -1)

    # -- masks, as the training and pruning code sees them -------------------------------------------------
    @property
    def layers(self) -> list[nn.Module]:
        """Every masked weight layer: the stem, each cell's layers in graph order, the head."""
        cell_layers = [layer for node in self.graph.nodes for layer in self.cells[node].layers]
        return [self.stem, *cell_layers, self.head]

    def cells_kept(self) -> list[str]:
        return [node for i, node in enumerate(self.graph.nodes) if float(self.cell_mask[i]) > 0]

    def units_kept(self) -> list[int]:
        """Alive output units (bias mask 1) of every masked layer."""
        return [int(layer.bias_mask.sum()) for layer in self.layers]

    # -- checkpoints -------------------------------------------------------------------------------------
    @classmethod
    def from_state_dict(cls, state: dict, source: str = "") -> CellNetwork:
        """Rebuild the network a checkpoint was saved from and load its weights and masks."""
        if not is_cell_state(state):
            raise InputError(f"{source or 'the checkpoint'} is not a cell network's state_dict")
        text = bytes(state["cell_graph_text"].to(torch.uint8).tolist()).decode(errors="replace")
        graph = parse_cell_edgelist(text, source)
        io = [int(v) for v in state["cell_io"].tolist()]
        model = cls(graph, io[:-1], io[-1])
        model.load_state_dict(state)
        return model

    def describe(self) -> str:
        return ", ".join(f"{n}={spec_text(list(s))}" for n, s in zip(self.graph.nodes, self.graph.specs))


def _in_l1(layer: nn.Module) -> torch.Tensor:
    """(in,) L1 norm of a masked layer's kept weights per input feature or channel."""
    w = (layer.weight * layer.weight_mask).detach().abs()
    return w.sum(dim=tuple(d for d in range(w.dim()) if d != 1))


@torch.no_grad()
def cell_level_network(model: CellNetwork, source: str = ""):
    """The cell graph of `model` as a LayeredNetwork: layer 0 = the input channels (or features), layer d =
    the cells of depth d, the last layer = the outputs. Edge weights are L1 norms of the kept weights that
    connect two nodes: input channel k -> input cell: the stem's weights from k; cell A -> cell B: B's first
    layer's weights from A's alive output channels (a summed input shares them between B's predecessors,
    so a pruned channel of A no longer counts); output cell A -> output o: the head's weights from A's
    features to o. A pruned cell (cell_mask 0) keeps no edge. layout["cell_nodes"] names the unit of every
    hidden layer by its graph node id; layout["cell_index"][l] gives the cell index of each unit of layer l.
    """
    from utils.network import Block, LayeredNetwork

    graph = model.graph
    depth = graph.depths()
    n_layers = max(depth) + 2
    per_layer = [[i for i in range(graph.n_cells) if depth[i] == d] for d in range(1, n_layers - 1)]
    arch = [model.input_shape[0] if graph.kind() == "conv" else int(model.stem.weight.shape[1])]
    arch += [len(cells) for cells in per_layer] + [model.n_outputs]
    position = {i: (depth[i], per_layer[depth[i] - 1].index(i)) for i in range(graph.n_cells)}
    alive = model.cell_mask.detach().cpu() > 0
    blocks: dict[tuple[int, int], np.ndarray] = {}

    def put(s_layer, s_index, t_layer, t_index, value):
        shape = (arch[t_layer], arch[s_layer])
        blocks.setdefault((s_layer, t_layer), np.zeros(shape, np.float32))[t_index, s_index] = value

    stem_l1 = _in_l1(model.stem).cpu().numpy()
    for i in graph.inputs:
        for k in range(arch[0]):
            put(0, k, *position[i], float(stem_l1[k]) * float(alive[i]))
    for s, t in graph.edges:
        last = model.cells[graph.nodes[s]].layers[-1]
        channel_alive = (last.bias_mask > 0) & ((last.weight_mask != 0).flatten(1).any(dim=1))
        first = model.cells[graph.nodes[t]].layers[0]
        value = float((_in_l1(first) * channel_alive.to(first.weight.dtype)).sum()) * float(
            alive[s] & alive[t]
        )
        put(*position[s], *position[t], value)
    head = (model.head.weight * model.head.weight_mask).detach().abs()
    start = 0
    for i in graph.outputs:
        width = model.out_shapes[i][0]
        per_output = head[:, start : start + width].sum(dim=1).cpu().numpy() * float(alive[i])
        start += width
        for o in range(model.n_outputs):
            put(*position[i], n_layers - 1, o, float(per_output[o]))
    depth_n = n_layers - 1
    weights = [blocks.get((l, l + 1), np.zeros((arch[l + 1], arch[l]), np.float32)) for l in range(depth_n)]
    skips = [Block(s, t, w, (w != 0).astype(np.uint8)) for (s, t), w in sorted(blocks.items()) if t > s + 1]
    biases = [np.zeros(arch[l + 1], np.float32) for l in range(depth_n - 1)]
    biases.append(model.head.bias.detach().cpu().numpy() * model.head.bias_mask.cpu().numpy())
    network = LayeredNetwork(
        arch,
        weights,
        biases,
        [(w != 0).astype(np.uint8) for w in weights],
        skips=skips,
        source=source,
    )
    network.layout["cell_nodes"] = [[graph.nodes[i] for i in cells] for cells in per_layer]
    network.layout["cell_index"] = [[], *per_layer, []]
    network.layout["cell_model"] = model
    network.layout["state_fingerprint"] = cell_state_fingerprint(model.state_dict())
    network.layout["cell_input_shape"] = list(model.input_shape)
    network.layout["unit_names"] = [  # per layer, as utils/unit_names.py reads them
        [f"input:{k}" for k in range(arch[0])],
        *([graph.nodes[i] for i in cells] for cells in per_layer),
        [f"output:{o}" for o in range(model.n_outputs)],
    ]
    return network


@torch.no_grad()
def cell_output_norms(model: CellNetwork, x: torch.Tensor) -> torch.Tensor:
    """(n_cells,) mean over samples of the L1 norm of each cell's output on inputs x (batch, ...)."""
    was_training = model.training
    model.eval()
    outputs = model.cell_outputs(x)
    model.train(was_training)
    return torch.stack([out.abs().flatten(1).sum(1).mean() for out in outputs])


@torch.no_grad()
def prune_cells(model: CellNetwork, x: torch.Tensor, n: int) -> list[str]:
    """Prune the `n` alive cells whose outputs have the smallest L1 norm on x (cell_mask set to 0), never
    every cell on a path to the head; returns the pruned node ids. Raises ValueError for a bad n."""
    alive = (model.cell_mask > 0).nonzero().flatten().tolist()
    if not 0 <= n < len(alive):
        raise ValueError(f"can prune 0 to {len(alive) - 1} of the {len(alive)} alive cells, not {n}")
    norms = cell_output_norms(model, x)
    order = sorted(alive, key=lambda i: (float(norms[i]), i))
    pruned = []
    for i in order:
        if len(pruned) == n:
            break
        model.cell_mask[i] = 0.0
        if not any(model.cell_mask[j] > 0 for j in model.graph.outputs) or _cut_off(model):
            model.cell_mask[i] = 1.0  # the head would see nothing: keep this one
            continue
        pruned.append(model.graph.nodes[i])
    return pruned


def _cut_off(model: CellNetwork) -> bool:
    """Whether no path of alive cells joins the stem to the head."""
    graph, alive = model.graph, model.cell_mask > 0
    reach = [False] * graph.n_cells
    for i in range(graph.n_cells):
        fed = not graph.predecessors(i) or any(reach[p] for p in graph.predecessors(i))
        reach[i] = bool(alive[i]) and fed
    return not any(reach[i] for i in graph.outputs)


def cell_state_fingerprint(state: dict) -> str:
    """The fingerprint of a cell network's state_dict (every weight, mask and the graph itself)."""
    from utils.fingerprint import state_fingerprint

    return state_fingerprint({k: v.detach().cpu().numpy() for k, v in state.items()})
