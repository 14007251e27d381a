"""Our optimizers follow torch.optim's single-tensor CPU updates exactly (utils/optim.py says why)."""

import math

import pytest
import torch

from utils.optim import OPTIMIZERS, epoch_lr

TORCH_EQUIVALENT = {
    "adam": lambda p, lr, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd, foreach=False),
    "sgd": lambda p, lr, wd: torch.optim.SGD(p, lr=lr, weight_decay=wd, foreach=False),
    "momentum": lambda p, lr, wd: torch.optim.SGD(
        p, lr=lr, weight_decay=wd, momentum=0.9, nesterov=True, foreach=False
    ),
    "rms": lambda p, lr, wd: torch.optim.RMSprop(p, lr=lr, weight_decay=wd, foreach=False),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_matches_torch_optim(name, weight_decay):
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(5)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    opt_ours = OPTIMIZERS[name](ours, lr=0.05, weight_decay=weight_decay)
    opt_theirs = TORCH_EQUIVALENT[name](theirs, 0.05, weight_decay)
    for _ in range(25):
        grads = [torch.randn_like(t) for t in start]
        for params, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b), f"{name}: max difference {(a - b).abs().max().item()}"


def test_parameters_without_gradient_are_left_alone():
    p = torch.nn.Parameter(torch.ones(3))
    opt = OPTIMIZERS["adam"]([p], lr=0.1, weight_decay=0.1)
    opt.step()
    assert torch.equal(p, torch.ones(3))


def test_epoch_learning_rates():
    assert epoch_lr(0.1, 0, "exp", 0.5, 10) == 0.1
    assert epoch_lr(0.1, 3, "exp", 0.5, 10) == pytest.approx(0.0125)
    assert epoch_lr(0.1, 0, "cosine", 1.0, 10) == pytest.approx(0.1)
    assert epoch_lr(0.1, 5, "cosine", 1.0, 10) == pytest.approx(0.05)
    assert epoch_lr(0.1, 9, "cosine", 1.0, 10) == pytest.approx(0.1 * (1 + math.cos(math.pi * 0.9)) / 2)
