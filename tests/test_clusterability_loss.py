"""The clusterability regulariser: value and gradient against autograd through a dense eigendecomposition
and against finite differences; it trains (the penalty falls when descended) and is wired into training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.mlp import MLP
from utils.clusterability_loss import clusterability_penalty, graph_blocks, spectral_penalty


def reference_penalty(blocks: list[torch.Tensor], k: int) -> torch.Tensor:
    """(1/k) Σ λ_2..λ_{k+1} of I - D^-1/2 A D^-1/2 with torch.linalg.eigvalsh (autograd differentiates it)."""
    widths = [blocks[0].shape[1]] + [b.shape[0] for b in blocks]
    offsets = np.concatenate([[0], np.cumsum(widths)])
    n = int(offsets[-1])
    rows = []
    for layer in range(len(widths)):
        parts = []
        for other in range(len(widths)):
            shape = (widths[layer], widths[other])
            if other == layer - 1:
                parts.append(blocks[layer - 1])
            elif other == layer + 1:
                parts.append(blocks[layer].T)
            else:
                parts.append(torch.zeros(shape, dtype=torch.float64))
        rows.append(torch.cat(parts, dim=1))
    a = torch.cat(rows, dim=0)
    s = a.sum(dim=1).rsqrt()
    laplacian = torch.eye(n, dtype=torch.float64) - s[:, None] * a * s[None, :]
    return torch.linalg.eigvalsh(laplacian)[1 : k + 1].sum() / k


def small_model(seed=0, bn=True) -> MLP:
    torch.manual_seed(seed)
    model = MLP([6, 7, 5, 3], batch_norm=bn).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.weight_mask.copy_((torch.rand_like(layer.weight) < 0.75).double())
        if bn:
            for norm in model.norms:
                norm.weight.uniform_(0.5, 2.0)
                norm.running_var.uniform_(0.5, 3.0)
    return model


@pytest.mark.parametrize("k", [1, 3])
def test_gradient_equals_autograd_through_dense_eigh(k):
    model = small_model()
    ours = clusterability_penalty(model, k)
    ours.backward()
    mine = [layer.weight.grad.clone() for layer in model.layers] + [
        n.weight.grad.clone() for n in model.norms
    ]
    model.zero_grad()
    theirs = reference_penalty(graph_blocks(model), k)
    theirs.backward()
    autograd = [layer.weight.grad for layer in model.layers] + [n.weight.grad for n in model.norms]
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-10)
    for a, b in zip(mine, autograd):
        assert torch.allclose(a, b, atol=1e-10)


def test_gradient_equals_finite_differences():
    torch.manual_seed(1)
    blocks = [torch.rand(5, 4, dtype=torch.float64), torch.rand(3, 5, dtype=torch.float64)]
    blocks = [b.requires_grad_() for b in blocks]
    spectral_penalty(blocks, 2).backward()
    h = 1e-6
    for block in blocks:
        for index in [(0, 0), (2, 1), (block.shape[0] - 1, block.shape[1] - 1)]:
            with torch.no_grad():
                plus = [b.detach().clone() for b in blocks]
                minus = [b.detach().clone() for b in blocks]
                which = next(i for i, b in enumerate(blocks) if b is block)
                plus[which][index] += h
                minus[which][index] -= h
                numeric = (float(spectral_penalty(plus, 2)) - float(spectral_penalty(minus, 2))) / (2 * h)
            assert float(block.grad[index]) == pytest.approx(numeric, abs=1e-6)


def test_descending_the_penalty_lowers_it():
    model = small_model(bn=False).float()
    start = clusterability_penalty(model, 2).item()
    optimizer = torch.optim.SGD([layer.weight for layer in model.layers], lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        clusterability_penalty(model, 2).backward()
        optimizer.step()
    assert float(clusterability_penalty(model, 2).detach()) < 0.95 * start


def test_training_with_the_regulariser_changes_weights_and_run_folder(tmp_path):
    from run.options import task_options, training_options
    from run.parser import parse_config
    from run.runs import dense_dir
    from tests.conftest import DONE_WHEN
    from utils.tasks import load_task
    from utils.training import TaskTensors, train

    outcomes = []
    for reg in ("0", "0.5"):
        config = parse_config([*DONE_WHEN, "--epochs", "2", "--clusterability_reg", reg, "--reg_every", "1"])
        data = TaskTensors.from_task(load_task(task_options(config)), torch.device("cpu"))
        torch.manual_seed(0)
        model = MLP(config.arch)
        train(model, data, training_options(config), torch.Generator().manual_seed(0))
        outcomes.append((model.layers[0].weight.detach().clone(), dense_dir(config)))
    assert not torch.equal(outcomes[0][0], outcomes[1][0])
    assert outcomes[0][1] != outcomes[1][1] and "creg-0.5" in str(outcomes[1][1])


def test_normalize_incoming_keeps_the_function_and_sets_norms():
    from utils.clusterability_loss import normalize_incoming

    model = small_model(bn=False)
    x = torch.randn(20, 6, dtype=torch.float64)
    before = model.logits(x)
    normalize_incoming(model)
    assert torch.allclose(model.logits(x), before, atol=1e-12)
    for layer in model.layers[:-1]:
        norms = torch.sqrt(((layer.weight * layer.weight_mask) ** 2).sum(dim=1) + layer.bias**2)
        alive = (layer.weight_mask.sum(dim=1) > 0) | (layer.bias != 0)
        assert torch.allclose(norms[alive], torch.full_like(norms[alive], 2.0**0.5))


def test_sparse_eigensolver_path_agrees_with_dense(monkeypatch):
    import utils.clusterability_loss as loss

    torch.manual_seed(3)
    blocks = [torch.rand(40, 30, dtype=torch.float64), torch.rand(20, 40, dtype=torch.float64)]
    blocks = [b * (torch.rand_like(b) < 0.5) for b in blocks]
    dense_value, dense_grads = loss.eigen_terms([b.numpy() for b in blocks], 3)
    monkeypatch.setattr(loss, "DENSE_UP_TO", 10)
    sparse_value, sparse_grads = loss.eigen_terms([b.numpy() for b in blocks], 3)
    assert sparse_value == pytest.approx(dense_value, rel=1e-9)
    for a, b in zip(dense_grads, sparse_grads):
        assert np.allclose(a, b, atol=1e-7)
