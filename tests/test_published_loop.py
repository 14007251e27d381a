"""Our dense training with the published options is the published train loop.

The reference below is written from the published code's description (Neural Sculpting utils/train.py,
utils/loss.py): torch.optim.Adam with weight decay 1e-4, one pass per epoch over the shuffled truth table
with fresh N(0, 0.1^2) input noise, a BCE on sigmoid probabilities (-log of p*t + (1-p)*(1-t), 1e-8 patched
in where it is infinite), and with one validation batch the last epoch whose clean-table accuracy equals
the best so far. It shares nothing with utils/training.py but the initial network and the random draws
(the same generator, the same order of calls), so agreement means the two loops do the same thing.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from run.common import fresh_model, generator_for, prepare
from run.parser import parse_config
from utils.training import train

OPTIONS = ["--modularity", "4", "1", "2", "8", "--arch", "4", "24", "24", "8", "--lr", "0.1",
           "--batch_size", "16", "--epochs", "30", "--table_repeats", "1", "--best_epoch", "published",
           "--quiet"]  # fmt: skip
DATASET = str(Path(__file__).resolve().parents[1] / "datasets" / "increasing_reuse_non_separable")


def _logits(layers, x):
    h = x
    for i, (weight, bias) in enumerate(layers):
        h = F.linear(h, weight, bias)
        if i < len(layers) - 1:
            h = torch.relu(h)
    return h


def _accuracy(layers, x, y) -> float:
    with torch.no_grad():
        return 100.0 * float(((_logits(layers, x) > 0).float() == y).float().mean())


def published_train(layers, x, y, epochs, lr, batch, generator):
    """The published loop on dense `layers` [(weight, bias)] (trained in place) over the table x, y."""
    params = [t for layer in layers for t in layer]
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=1e-4)
    best_accuracy, best = 0.0, None
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        noisy = x[order] + 0.1 * torch.randn(x.shape, generator=generator)
        target = y[order]
        for start in range(0, x.shape[0], batch):
            p = torch.sigmoid(_logits(layers, noisy[start : start + batch]))
            t = target[start : start + batch]
            outs = p * t + (1 - t) * (1 - p)
            loss = -torch.log(outs).sum() / t.numel()
            if torch.isinf(loss):
                loss = -torch.log(outs + (outs <= 0).float() * 1e-8).sum() / t.numel()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy = _accuracy(layers, x, y)
        if accuracy >= best_accuracy:  # one validation batch: the published loss is infinite
            best_accuracy, best = accuracy, [tuple(t.detach().clone() for t in layer) for layer in layers]
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_training_with_published_options_is_the_published_loop(seed):
    config = parse_config([*OPTIONS, "--dataset_path", DATASET, "--seed", str(seed)])
    ctx = prepare(config)
    ours = fresh_model(config, ctx.device, ctx.task)
    layers = [
        (layer.weight.detach().clone().requires_grad_(), layer.bias.detach().clone().requires_grad_())
        for layer in copy.deepcopy(ours).layers
    ]
    x, y = ctx.data.x_train, ctx.data.y_train
    assert x.shape[0] == 16  # one pass over the bare table
    result = train(ours, ctx.data, ctx.training, generator_for(seed))
    reference = published_train(layers, x, y, 30, 0.1, 16, generator_for(seed))
    assert result.metrics["test_accuracy"] == _accuracy(reference, ctx.data.x_test, ctx.data.y_test)
    for layer, (weight, bias) in zip(ours.layers, reference):
        assert torch.allclose(layer.weight, weight, atol=1e-4)
        assert torch.allclose(layer.bias, bias, atol=1e-4)
