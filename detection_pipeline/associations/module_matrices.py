"""Association matrices of a traced module's hidden units, through the module's own forward
(models/trace.py). The same definitions as matrices.py, with a unit's value read where the module computes
it: after its folded batch norm and the elementwise ops (activation, dropout) that follow it alone; a
channel's value is its spatial mean, and the derivative with respect to a unit is the derivative with
respect to a shift added to every position of its output (backward_jac, backward_hess).
"""

from __future__ import annotations

import numpy as np
import torch

from detection_pipeline.associations.names import CHUNK, base_of, loss_fn, normalised
from utils.errors import InputError


def module_association_matrices(
    network, inputs, targets, names, loss: str, output_groups, absolute: bool = True
) -> dict[str, list[np.ndarray]]:
    """{association: [(arch[l], arch[l]) float64 per hidden layer]} of a traced network (see matrices.py).
    inputs (n, prod(input_shape)) or (n, *input_shape); targets (n, outputs) for backward_hess."""
    from torch.func import hessian, jacrev, vmap

    traced = network.layout["module"]
    if traced.fixed_batch is not None:
        raise InputError(
            "association matrices differentiate one sample at a time; this exported module fixes its batch "
            "size: export it with a dynamic batch (dynamic_shapes) or pass the module from Python"
        )
    shape = tuple(traced.input_shape)
    x_all = torch.from_numpy(np.asarray(inputs, dtype=np.float32)).reshape(len(inputs), *shape)
    n = x_all.shape[0]
    if n < 2:
        raise InputError("association matrices need at least 2 inputs")
    bases = {base_of(name) for name in names}
    widths = list(network.arch[1:-1])
    hidden = range(len(widths))
    loss_one = loss_fn(loss, output_groups or [list(range(network.arch[-1]))])
    sums = {base: [np.zeros((d, d)) for d in widths] for base in bases}
    with torch.no_grad():
        _, values = traced.layer_values(x_all)
    values = [v.double() for v in values]

    def hidden_of(x):  # one sample (shape) -> tuple of (arch[l],) values
        return tuple(v[0] for v in traced.layer_values(x[None])[1])

    def logits_after(shift, x, layer):  # shift (arch[l],) added to that layer's units
        return traced.layer_values(x[None], {layer: shift[None]})[0][0]

    for start in range(0, n, CHUNK):
        x = x_all[start : start + CHUNK]
        if "forward_jac" in bases:
            jac = vmap(jacrev(hidden_of))(x)  # per layer (c, arch[l], *shape)
            for k in hidden:
                j = jac[k].flatten(2).double()
                sums["forward_jac"][k] += torch.einsum("cif,cjf->ij", j, j).numpy()
        for k in hidden:
            zero = torch.zeros(x.shape[0], widths[k])
            if "backward_jac" in bases:
                g = vmap(jacrev(logits_after), in_dims=(0, 0, None))(zero, x, k + 1).double()
                sums["backward_jac"][k] += torch.einsum("coi,coj->ij", g, g).numpy()
            if "backward_hess" in bases:
                y = torch.from_numpy(np.asarray(targets[start : start + CHUNK], dtype=np.float32))

                def loss_at(shift, x1, t, layer=k + 1):
                    return loss_one(logits_after(shift, x1, layer), t)

                h = vmap(hessian(loss_at))(zero, x, y).double()
                sums["backward_hess"][k] += h.sum(0).numpy()
    raw = {}
    for base in bases:
        if base == "forward_cov":
            raw[base] = [
                (v.T @ v).numpy() / n - np.outer(v.mean(0).numpy(), v.mean(0).numpy()) for v in values
            ]
        elif base == "backward_hess":
            raw[base] = [(m + m.T) / (2 * n) for m in sums[base]]
        else:
            raw[base] = [m / n for m in sums[base]]
    return {
        name: [
            normalised(m) if name.endswith("_norm") else (np.abs(m) if absolute else m)
            for m in raw[base_of(name)]
        ]
        for name in names
    }
