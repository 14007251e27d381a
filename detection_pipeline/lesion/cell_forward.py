"""Lesioned copies of a cell network through its own torch module (models/cells.py).

The network handed to the lesion tests is the cell-level graph (models.cells.cell_level_network): unit u of
hidden layer l is the cell `layout["cell_index"][l][u]`. A lesioned cell outputs zero: every copy of a chunk
runs as one batched forward of the real module with a per-copy gate on each cell's output
(CellNetwork.gated_logits), so sums into later cells and the head see exactly what the module computes.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch


class CellForward:
    """Same interface as forward.DenseForward, for a cell-level network (layout["cell_model"])."""

    chunk_floats = 2**22  # floats in one copies x samples activation map (16 MB)

    def __init__(self, network, x: np.ndarray):
        self.model = network.layout["cell_model"].eval()
        self.cell_index = [np.asarray(cells, dtype=np.int64) for cells in network.layout["cell_index"]]
        self.net = SimpleNamespace(arch=list(network.arch), lesion_value=0.0, depth=network.depth)
        self.x = torch.from_numpy(np.asarray(x, dtype=np.float32))
        self.batch = int(x.shape[0])
        with torch.no_grad():
            self.logits = self.model(self.x)
        widths = [int(np.prod(shape)) for shape in self.model.out_shapes]
        self._row = self.batch * max(widths) * self.model.graph.n_cells

    def row_floats(self, layer: int) -> int:
        return self._row

    def prepare(self, layer: int) -> None:
        """Nothing to share between chunks."""

    @torch.no_grad()
    def lesioned(self, layer: int, idx: torch.Tensor, later: dict) -> torch.Tensor:
        """Logits (copies, batch, outputs) of copies lesioned at hidden `layer` by unit indices idx
        (copies, k), plus bool masks later[m] (copies, arch[m]) at hidden layers m > layer."""
        copies = idx.shape[0]
        gates = torch.ones(copies, self.model.graph.n_cells)
        rows = torch.arange(copies).unsqueeze(1).expand_as(idx)
        gates[rows, torch.from_numpy(self.cell_index[layer])[idx]] = 0.0
        for m, mask in later.items():
            cells = torch.from_numpy(self.cell_index[m])
            gates[:, cells] = gates[:, cells] * (~mask).to(gates.dtype)
        return self.model.gated_logits(self.x, gates)
