"""Unit association matrices of every hidden layer (Lange, Rolnick & Kording 2022; docs/associations.md).

For hidden layer l (post-activation units h, width d) on n inputs x (n, n_in) with logits y:

* `forward_cov`   |cov(h_i, h_j)|, the population covariance (divided by n).
* `forward_jac`   |mean_n (J_n J_n^T)_ij|, J_n = dh/dx at x_n, (d, n_in) (computed layer by layer).
* `backward_jac`  |mean_n (G_n G_n^T)_ij|, G_n = dy/dh at h_n, (d, n_out).
* `backward_hess` |mean_n H_n|, H_n = d^2 loss_n / dh dh at h_n, symmetrised ((H + H^T) / 2).
  The mean is over samples of per-sample Hessians. The anchor's code takes the Hessian of the batch-mean
  loss and then divides by n again, so its matrix carries an extra 1/batch-size factor (with one batch of
  all n samples it is ours / n; with several batches it mixes batch sizes). We leave that factor out.
  Q and the normalised matrices do not see a constant factor.
* `<name>_norm`   |M_ij| / (s_i s_j), s = sqrt(|diag M|) clamped below at 1e-12 (a correlation).

Every matrix is (d, d) float64 with its diagonal. Everything is batched with torch.func (vmap over samples
of jacrev / hessian); samples are processed in chunks only to bound memory.
"""

from __future__ import annotations

import numpy as np

from detection_pipeline.associations.names import (  # noqa: F401 - the vocabulary, importable from here
    ASSOCIATIONS,
    BASE_ASSOCIATIONS,
    CHUNK,
    NEEDS_TARGETS,
    NORM_FLOOR,
    UPSTREAM,
    base_of,
    check_association,
    loss_fn,
    normalised,
)
from utils.errors import InputError


def _chunks(n: int):
    return [(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]


def association_matrices(
    network,
    inputs: np.ndarray,
    targets: np.ndarray | None = None,
    names=ASSOCIATIONS,
    loss: str = "CE",
    output_groups: list[list[int]] | None = None,
    absolute: bool = True,
) -> dict[str, list[np.ndarray]]:
    """{association: [(arch[l], arch[l]) float64 for hidden layers l = 1..L]} for the requested names.

    inputs: (n, arch[0]); targets: (n, arch[-1]) 0/1 (one-hot for CE), needed only by backward_hess.
    absolute=False keeps the signs of the unnormalised matrices (to add matrices of several batches).
    """
    import torch
    from torch.func import hessian, jacrev, vmap

    from models.from_network import torch_model

    names = list(names)
    for name in names:
        check_association(name)
    if network.layout.get("module") is None and (network.has_conv or network.skips):
        from models.functional import with_module

        network = with_module(network)  # channels and skip connections: through the traced module
    if network.layout.get("module") is not None:  # a traced module: through its own forward
        from detection_pipeline.associations.module_matrices import module_association_matrices

        if targets is None and "backward_hess" in {base_of(name) for name in names}:
            raise InputError("backward_hess needs targets: give the input batch 'labels' or 'targets'")
        return module_association_matrices(network, inputs, targets, names, loss, output_groups, absolute)
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim != 2 or inputs.shape[1] != network.arch[0] or inputs.shape[0] < 2:
        raise InputError(
            f"the input batch has shape {tuple(inputs.shape)} but the network takes "
            f"(n >= 2, {network.arch[0]}) inputs"
        )
    bases = {base_of(name) for name in names}
    if "backward_hess" in bases:
        if targets is None:
            raise InputError("backward_hess needs targets: give the input batch 'labels' or 'targets'")
        targets = np.asarray(targets, dtype=np.float32)
        if targets.shape != (inputs.shape[0], network.arch[-1]):
            raise InputError(
                f"targets have shape {tuple(targets.shape)}, expected ({inputs.shape[0]}, {network.arch[-1]})"
            )
    if network.skips:
        raise InputError("associations need a layered MLP; this network has skip connections")
    if network.activation == "ste":
        # The straight-through step has no derivative of its own for torch.func to take.
        raise InputError("associations need a differentiable hidden activation (relu or sigmoid), not ste")
    model = torch_model(network)
    for p in model.parameters():
        p.requires_grad_(False)
    n_hidden = network.depth - 1
    x_all = torch.from_numpy(inputs)
    groups = output_groups or [list(range(network.arch[-1]))]
    loss_one = loss_fn(loss, groups)

    sums = {base: [0.0] * n_hidden for base in bases}
    with torch.no_grad():
        acts = [a.double() for a in model.forward(x_all)[1:-1]]
    if "forward_cov" in bases:
        sums["forward_cov"] = [a.T @ a for a in acts]
    for start, stop in _chunks(inputs.shape[0]):
        x = x_all[start:stop]
        h_chunk = [a[start:stop].float() for a in acts]
        if "forward_jac" in bases:
            # Chain rule on per-sample Gram matrices: with L_l = dh_l/dh_(l-1) (c, arch[l], arch[l-1]),
            # J_l J_l^T = L_l (J_(l-1) J_(l-1)^T) L_l^T, so the (arch[0])-wide Jacobian is contracted once.
            gram = None
            for k in range(n_hidden):
                local = vmap(jacrev(_step(model, k)))(x if k == 0 else h_chunk[k - 1])
                gram = local @ local.transpose(1, 2) if gram is None else local @ gram @ local.transpose(1, 2)
                sums["forward_jac"][k] = sums["forward_jac"][k] + gram.double().sum(0)
        for k in range(n_hidden):
            tail = _tail(model, k + 1)
            if "backward_jac" in bases:
                grad = vmap(jacrev(tail))(h_chunk[k]).double()  # (c, n_out, arch[l])
                sums["backward_jac"][k] = sums["backward_jac"][k] + torch.einsum("coi,coj->ij", grad, grad)
            if "backward_hess" in bases:
                y = torch.from_numpy(targets[start:stop])
                hess = vmap(hessian(lambda h, t, f=tail: loss_one(f(h), t)))(h_chunk[k], y)
                sums["backward_hess"][k] = sums["backward_hess"][k] + hess.double().sum(0)
    n = inputs.shape[0]
    raw: dict[str, list[np.ndarray]] = {}
    for base in bases:
        mats = [np.asarray(m.numpy() if hasattr(m, "numpy") else m, dtype=np.float64) / n for m in sums[base]]
        if base == "forward_cov":
            means = [a.mean(0).numpy() for a in acts]
            mats = [m - np.outer(mu, mu) for m, mu in zip(mats, means)]
        if base == "backward_hess":
            mats = [(m + m.T) / 2 for m in mats]
        raw[base] = mats
    return {
        name: [
            normalised(m) if name.endswith("_norm") else (np.abs(m) if absolute else m)
            for m in raw[base_of(name)]
        ]
        for name in names
    }


def _step(model, i: int):
    """h (arch[i],) -> layer i+1's activations (arch[i+1],)."""

    def step(h):
        return model.step(i, h[None])[0]

    return step


def _tail(model, start: int):
    """h (arch[start],) -> logits (arch[-1],) through the rest of the model."""

    def tail(h):
        return model.tail(h[None], start)[0]

    return tail
