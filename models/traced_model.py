"""The runnable side of a traced module (models/trace.py): `TracedModel` keeps the exported graph module
with hooks at every unit set, so lesions zero units inside the module's own forward and the values of named
units are read from that same forward.

`Group`: one set of units (the outputs of one linear/conv, or of linears summed) with its edge blocks and
the graph nodes where a lesion zeroes it (`point`) and where its value is read (`act`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from utils.network import LayeredNetwork


@dataclass
class Group:
    """One set of units: the linear/conv producers whose (summed) output it is.

    point: the node whose value is the units' output (after folded batch norm; the sum for merged linears);
    act: the node after the elementwise ops that follow it alone (for association matrices).
    blocks: {source group: (width, width[source]) float64 edge weights}."""

    name: str
    kind: str
    width: int
    point: str
    act: str
    bias: np.ndarray
    blocks: dict = field(default_factory=dict)
    layer: int = 0


class TracedModel:
    """The traced network (`network`, a LayeredNetwork with layout["module"] = self) and the module that
    computes it. Hidden layer l's units are the concatenation of its groups' units."""

    def __init__(self, gm, groups: list[Group], network: LayeredNetwork, fixed_batch: int | None):
        self.gm = gm
        self.groups = groups
        self.network = network
        self.fixed_batch = fixed_batch
        self.input_shape = tuple(network.layout["input_shape"])
        self.layer_groups = [
            [g for g in range(len(groups)) if groups[g].width and groups[g].layer == l]
            for l in range(len(network.arch))
        ]
        self._keep: dict[str, torch.Tensor] = {}
        self._record: dict[str, torch.Tensor] = {}
        self._shift: dict[str, torch.Tensor] = {}
        self.lesion_gm = self._instrumented()

    # -- the instrumented module: keep masks and shifts at each group's point, recording at act ----------
    def _instrumented(self):
        import copy
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation, on copy
            gm = copy.deepcopy(self.gm)
        for parameter in gm.parameters():
            parameter.requires_grad_(False)  # derivatives are taken with respect to inputs and units only
        keep, shift, record = self._keep, self._shift, self._record

        def apply(value, key):
            mask = keep.get(key)
            if mask is not None:
                value = value * mask.view(*mask.shape, *([1] * (value.dim() - 2)))
            return value

        def remember(value, key):
            offset = shift.get(key)
            if offset is not None:
                value = value + offset.view(*offset.shape, *([1] * (value.dim() - 2)))
            record[key] = value
            return value

        graph = gm.graph
        by_name = {n.name: n for n in graph.nodes}
        for g in self.groups:
            if g.kind == "input":
                continue
            node = by_name[g.point]
            with graph.inserting_after(node):
                new = graph.call_function(apply, (node, g.point))
            node.replace_all_uses_with(new, delete_user_cb=lambda user, new=new: user is not new)
            act = by_name[g.act]
            if g.act == g.point:
                act = new
            with graph.inserting_after(act):
                rec = graph.call_function(remember, (act, g.point))
            act.replace_all_uses_with(rec, delete_user_cb=lambda user, rec=rec: user is not rec)
        graph.lint()
        gm.recompile()
        return gm

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return self.lesion_gm(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, *input_shape) -> logits (n, outputs) of the intact module (chunks of the exported batch
        size when the export fixed it)."""
        self._set(keep={})
        return self._batched(x)

    def _batched(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if self.fixed_batch is None:
                return self._run(x)
            b, n = self.fixed_batch, x.shape[0]
            parts = []
            for s in range(0, n, b):
                chunk = x[s : s + b]
                pad = b - chunk.shape[0]
                if pad:
                    chunk = torch.cat([chunk, chunk[:1].expand(pad, *chunk.shape[1:])])
                parts.append(self._run(chunk)[: b - pad])
            return torch.cat(parts)

    def lesioned(self, x: torch.Tensor, zero: dict[int, torch.Tensor]) -> torch.Tensor:
        """Logits (copies, n, outputs) of copies with units zeroed: zero[l] bool (copies, arch[l]) per
        hidden layer l. All copies run as one batch of copies x n inputs."""
        copies = next(iter(zero.values())).shape[0]
        n = x.shape[0]
        keep = {}
        for layer, mask in zero.items():
            start = 0
            for g in self.layer_groups[layer]:
                group = self.groups[g]
                part = (~mask[:, start : start + group.width]).to(torch.float32)
                start += group.width
                keep[group.point] = part.repeat_interleave(n, dim=0)  # (copies * n, width)
        self._set(keep=keep)
        big = x.unsqueeze(0).expand(copies, *x.shape).reshape(copies * n, *x.shape[1:])
        try:
            return self._batched(big).view(copies, n, -1)
        finally:
            self._set()

    def layer_values(self, x: torch.Tensor, shifts: dict[int, torch.Tensor] | None = None):
        """(logits (n, outputs), [(n, arch[l]) per hidden layer]): each unit's value after the elementwise
        ops that follow it (channels: their spatial mean). shifts[l] (n, arch[l]) is added there, to every
        position of a unit's output (to differentiate with respect to a unit)."""
        offsets = {}
        for layer, shift in (shifts or {}).items():
            start = 0
            for g in self.layer_groups[layer]:
                group = self.groups[g]
                offsets[group.point] = shift[:, start : start + group.width]
                start += group.width
        self._set(shift=offsets)
        try:
            logits = self._run(x)
            values = []
            for layer in range(1, len(self.network.arch) - 1):
                parts = []
                for g in self.layer_groups[layer]:
                    v = self._record[self.groups[g].point]
                    parts.append(v.flatten(2).mean(2) if v.dim() > 2 else v)
                values.append(torch.cat(parts, dim=1))
            return logits, values
        finally:
            self._set()

    def _set(self, keep=None, shift=None) -> None:
        """Masks and shifts for the next run (the instrumented graph reads these dicts in place)."""
        for target, new in ((self._keep, keep), (self._shift, shift), (self._record, None)):
            target.clear()
            target.update(new or {})
