"""Replay of the published code's CPU runs: its random numbers and its arithmetic (docs/fidelity.md).

The published code (Neural Sculpting) draws every random number of a prune command from torch's global CPU
generator, seeded once per process, and from its data-loader worker processes:

- every pass over a loader (a new iterator) draws one int64, the workers' base seed, shuffled or not;
- a shuffled pass draws a second int64 that seeds the pass's permutation (`randperm` on its own generator);
- the input noise (N(0, 1) x std, 4 draws per sample) is drawn inside the 2 workers: worker w seeds its own
  generator with base seed + w, and batches go to the workers in turn;
- building a network draws torch's default Linear initialisation (uniform weight, then uniform bias, layer
  by layer) and then Kaiming-normal weights layer by layer; only the latter are kept.

`PublishedStream` holds that global generator and makes those draws without processes. `published_train`
is the published train loop (Adam on the BCE of the sigmoid outputs against float64 targets, the published
best-epoch rule), `published_unit_masks` / `published_edge_masks` its unit and magnitude cuts (numpy
percentiles, biases masked on units without inputs), and `published_search` its accept / revert / halve
loop with the edge targets in float32 as the published code computes them. Together they consume the
random numbers in the published order, so a seed reproduces the published trajectory retraining by
retraining (docs/fidelity.md says how closely on this machine).

Models are duck-typed like utils/pruning.py's: `model(x)` returns [x, hidden..., logits] and
`model.layers[i]` has weight, bias, weight_mask, bias_mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from utils.errors import InputError, NumericalError

NUM_WORKERS = 2  # the published boolean-task loaders each use 2 worker processes


class PublishedStream:
    """The published process's global torch generator, seeded with --seed.

    After the network builds, every draw from it is one int64 (loader passes), so its position is the
    number of those draws, `int64_draws`; `advance(k)` skips k of them (a phase resumed after a run that
    was reused from disk)."""

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(int(seed))
        self.int64_draws = 0

    def draw_int64(self) -> int:
        self.int64_draws += 1
        return int(torch.empty((), dtype=torch.int64).random_(generator=self.generator).item())

    def advance(self, draws: int) -> None:
        for _ in range(int(draws)):
            self.draw_int64()

    def build_network(self, arch: list[int]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The draws of building the published MLP of `arch`; returns its initial (weights, biases):
        Kaiming-normal weights (out, in), zero biases."""
        shapes = list(zip(arch[1:], arch[:-1]))
        for out_features, in_features in shapes:  # nn.Linear's own initialisation, overwritten below
            nn.init.kaiming_uniform_(
                torch.empty(out_features, in_features), a=math.sqrt(5), generator=self.generator
            )
            bound = 1.0 / math.sqrt(in_features)
            nn.init.uniform_(torch.empty(out_features), -bound, bound, generator=self.generator)
        weights = [nn.init.kaiming_normal_(torch.empty(o, i), generator=self.generator) for o, i in shapes]
        return weights, [torch.zeros(o) for o, _ in shapes]

    def skip_training(self, epochs: int) -> None:
        """The draws of one training done elsewhere (its network is given): per epoch a shuffled training
        pass (2) and a validation pass (1), then the test pass (1)."""
        self.advance(3 * epochs + 1)

    def shuffled_pass(self, n: int) -> tuple[torch.Tensor, int]:
        """(permutation of n rows, workers' base seed) of one pass over the shuffled training loader."""
        base_seed = self.draw_int64()
        sampler = torch.Generator().manual_seed(self.draw_int64())
        return torch.randperm(n, generator=sampler), base_seed

    def unshuffled_pass(self) -> None:
        self.draw_int64()


def worker_noise(base_seed: int, n: int, batch: int, width: int, std: float) -> torch.Tensor:
    """(n, width) input noise of one training pass, row r of the pass in loader order: batch b is built by
    worker b mod 2 from its generator seeded base_seed + worker, one randn(width) x std per sample (drawn
    one sample at a time, as the worker does: torch draws small and large tensors differently)."""
    workers = [torch.Generator().manual_seed(base_seed + w) for w in range(NUM_WORKERS)]
    rows = []
    for b, start in enumerate(range(0, n, batch)):
        generator = workers[b % NUM_WORKERS]
        rows += [torch.randn(width, generator=generator) * std for _ in range(start, min(start + batch, n))]
    return torch.stack(rows)


def published_loss(probs: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """The published losses on sigmoid outputs (batch, m) and float64 targets: BCE = mean of -log(p t +
    (1 - p)(1 - t)) (1e-8 added to zero likelihoods when the mean is infinite), MSE = mean squared error."""
    if loss == "MSE":
        return torch.sum((probs - targets) ** 2) / targets.numel()
    ones = torch.ones(targets.size())
    outs = probs * targets + (ones - targets) * (ones - probs)
    value = torch.sum(-torch.log(outs)) / targets.numel()
    if torch.isinf(value):
        outs = outs + (outs <= 0.0).float() * 1e-8
        value = torch.sum(-torch.log(outs)) / targets.numel()
    return value


@dataclass(frozen=True)
class ReplayOptions:
    """The published training options a replay needs (--lr, --weight_decay, --epochs, --batch_size,
    --loss, --optimizer, --gamma) and the input noise std (0: no noise)."""

    lr: float
    weight_decay: float
    epochs: int
    batch_size: int
    loss: str = "BCE"
    optimizer: str = "adam"
    gamma: float = 1.0
    noise_std: float = 0.1


def check_replayable(options: ReplayOptions) -> None:
    """InputError when the published code had no such training (the replay covers its boolean tasks)."""
    if options.loss not in ("BCE", "MSE"):
        raise InputError(f"the published replay trains with --loss BCE or MSE, not {options.loss}")
    if options.optimizer not in _TORCH_OPTIMIZERS:
        raise InputError(f"the published replay has no optimizer {options.optimizer!r}")


_TORCH_OPTIMIZERS = {
    "adam": ("Adam", {}),
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "rms": ("RMSprop", {}),
}


def _optimizer(model, options: ReplayOptions):
    # torch.optim itself (single-tensor CPU paths), as the published code: the replay is about its numbers
    name, extra = _TORCH_OPTIMIZERS[options.optimizer]
    return getattr(torch.optim, name)(
        model.parameters(), lr=options.lr, weight_decay=options.weight_decay, **extra
    )


def _clone(model) -> dict:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@torch.no_grad()
def published_eval(model, x: torch.Tensor, y: torch.Tensor, options: ReplayOptions) -> tuple[float, float]:
    """(accuracy %, loss) of one unshuffled pass in batches of --batch_size, as the published test: the
    batch losses summed and divided by (batches - 1) (infinite with one batch), the accuracy over all
    output bits at the 0.5 cut in float32. y: float64 targets."""
    model.eval()
    total_loss, correct, total, batches = 0, 0, 0, 0
    for start in range(0, x.shape[0], options.batch_size):
        batches += 1
        probs = torch.sigmoid(model(x[start : start + options.batch_size])[-1])
        target = y[start : start + options.batch_size]
        total_loss = total_loss + published_loss(probs, target, options.loss)
        correct = correct + torch.sum((probs > 0.5).float() == target)
        total += target.numel()
    accuracy = 100.0 * correct / total
    # the published test divides by the last batch index: batches - 1 (a tensor / 0 is inf)
    loss = total_loss / (batches - 1) if batches > 1 else torch.tensor(float("inf"), dtype=torch.float64)
    return float(accuracy), float(loss)


def published_train(
    model, x: torch.Tensor, y: torch.Tensor, options: ReplayOptions, stream: PublishedStream
) -> dict:
    """Train `model` in place as the published train loop, drawing from `stream`, and load the epoch it
    keeps. x: (n, d) clean float32 table (training, validation and test rows), y: (n, m) 0/1 targets.

    Per epoch: one shuffled noisy pass in batches (Adam steps), one validation pass; the kept epoch is the
    published rule's (accuracy at least the best and loss at most the best, or accuracy higher; a loss of
    1000 or more is judged on accuracy alone). Then one test pass on the kept network. Returns metrics:
    train_loss, val_accuracy, val_loss (per epoch), best_epoch, test_accuracy, test_loss."""
    y = y.double()
    n, width = x.shape
    optimizer = _optimizer(model, options)
    history = {"train_loss": [], "val_accuracy": [], "val_loss": []}
    best_loss, best_accuracy, best_state, best_epoch = 1000.0, 0.0, None, -1
    lr = options.lr
    for epoch in range(options.epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        order, base_seed = stream.shuffled_pass(n)
        noise = worker_noise(base_seed, n, options.batch_size, width, options.noise_std)
        running = 0.0
        for start in range(0, n, options.batch_size):
            rows = order[start : start + options.batch_size]
            inputs = x[rows] + noise[start : start + len(rows)] if options.noise_std > 0 else x[rows]
            optimizer.zero_grad()
            loss = published_loss(torch.sigmoid(model(inputs)[-1]), y[rows], options.loss)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(rows)
        history["train_loss"].append(running / n)
        stream.unshuffled_pass()
        accuracy, val_loss = published_eval(model, x, y, options)
        history["val_accuracy"].append(accuracy)
        history["val_loss"].append(val_loss)
        if val_loss < 1000.0:
            keep = (best_loss >= val_loss and accuracy >= best_accuracy) or accuracy > best_accuracy
            if keep:
                best_loss = val_loss
        else:
            keep = accuracy >= best_accuracy
        if keep:
            best_accuracy, best_state, best_epoch = accuracy, _clone(model), epoch
        lr = lr * options.gamma  # torch's ExponentialLR, one multiplication per epoch
    if best_state is None:
        raise NumericalError("the published replay kept no epoch (the validation loss is NaN); lower --lr")
    model.load_state_dict(best_state)
    stream.unshuffled_pass()
    test_accuracy, test_loss = published_eval(model, x, y, options)
    return dict(history, best_epoch=best_epoch, test_accuracy=test_accuracy, test_loss=test_loss)


# ------------------------------------------------------------------------------------------------ cuts


def inputless_bias_masks(weight_masks: list[torch.Tensor]) -> list[torch.Tensor]:
    """The published bias masks: 1 for a unit with at least one kept incoming weight. (out, in) -> (out,)."""
    return [(mask.sum(dim=1) > 0).float() for mask in weight_masks]


def apply_masks(model, weight_masks: list[torch.Tensor]) -> None:
    """Set the masks and multiply the weights and biases by them, as the published set_mask does (so a
    masked weight is 0 in the weights the next magnitude cut ranks)."""
    bias_masks = inputless_bias_masks(weight_masks)
    with torch.no_grad():
        for layer, weight_mask, bias_mask in zip(model.layers, weight_masks, bias_masks, strict=True):
            layer.weight_mask.copy_(weight_mask)
            layer.bias_mask.copy_(bias_mask)
            layer.weight.mul_(layer.weight_mask)
            layer.bias.mul_(layer.bias_mask)


def published_unit_scores(
    model, x: torch.Tensor, y: torch.Tensor, loss: str, stream: PublishedStream
) -> np.ndarray:
    """The published activation x gradient unit scores (float32, all hidden units in layer order): one
    unshuffled pass with batch 1 (one draw), each sample's |dL/da| x |a|, averaged by numpy in float32."""
    stream.unshuffled_pass()
    y = y.double()
    per_layer: list[list[np.ndarray]] = [[] for _ in model.layers[:-1]]
    for i in range(x.shape[0]):
        activations = model(x[i : i + 1])
        hidden = activations[1:-1]
        for h in hidden:
            h.retain_grad()
        published_loss(torch.sigmoid(activations[-1]), y[i : i + 1], loss).backward()
        for rows, h in zip(per_layer, hidden):
            rows.append((h.grad.abs().detach() * h.abs().detach()).numpy()[0])
    model.zero_grad(set_to_none=True)
    return np.concatenate([np.mean(rows, axis=0) for rows in per_layer])


def published_unit_masks(model, scores: np.ndarray, percent: float) -> tuple[list[torch.Tensor], float]:
    """(weight masks, threshold): every hidden unit whose score is not above numpy's percentile of all
    hidden scores loses its incoming row and outgoing column (the current masks are kept)."""
    threshold = np.percentile(np.array(scores), percent)
    keep = scores > threshold
    masks = [layer.weight_mask.detach().clone() for layer in model.layers]
    start = 0
    for i, layer in enumerate(model.layers[:-1]):
        width = layer.weight_mask.shape[0]
        dead = torch.from_numpy(~keep[start : start + width])
        masks[i][dead, :] = 0
        masks[i + 1][:, dead] = 0
        start += width
    return masks, float(threshold)


def published_edge_masks(model, percent: torch.Tensor) -> tuple[list[torch.Tensor], float]:
    """(weight masks, threshold): keep the weights whose |w| is above numpy's percentile of all |w| (masked
    weights are 0 and count); `percent` is the float32 target the published search computes."""
    magnitudes = [layer.weight.detach().abs() for layer in model.layers]
    every = np.concatenate([m.numpy().ravel() for m in magnitudes])
    threshold = np.percentile(every, percent.numpy())
    return [(m > threshold).float() for m in magnitudes], float(threshold)


# ---------------------------------------------------------------------------------------------- search


@dataclass
class ReplayPlan:
    """One published search. kind "units" (targets: percent of hidden units, Python floats) or "edges"
    (percent of all weights, float32 from the start network's pruned percent, as the published code);
    step: --unit_pruning_gradient / --pruning_gradient (linear schedule); threshold: accuracy %;
    make_masks(model, target) -> (weight masks, threshold) draws what the cut draws."""

    kind: str
    step: float
    threshold: float
    make_masks: Callable


def edge_start_percent(model) -> torch.Tensor:
    """100 (1 - kept / total) in float32, as the published edge phase computes the unit network's percent."""
    kept = torch.zeros(())
    total = 0
    for layer in model.layers:
        kept = kept + torch.sum(layer.weight_mask)
        total += layer.weight_mask.numel()
    return 100.0 * (1.0 - kept / total)


def published_search(model, plan: ReplayPlan, retrain: Callable, on_try: Callable | None = None) -> dict:
    """The published accept / revert / halve loop from `model` (left holding the last accepted network).

    Targets follow the linear schedule (start + step x i) until the first rejection, then held target + p,
    p halving after each rejection and never below one unit/edge; the search ends when a try at that
    smallest p is rejected. A target of 100 % or more is rejected untried; every other target is cut and
    retrained (retrain(model) -> metrics with test_accuracy), even when the cut masks nothing new.
    Returns {"history": [...], "metrics": metrics of the last accepted retraining or None}."""
    units = plan.kind == "units"
    total = (
        sum(layer.bias_mask.numel() for layer in model.layers[:-1])
        if units
        else sum(layer.weight_mask.numel() for layer in model.layers)
    )
    p_min = 100.0 / float(total)
    start = 0.0 if units else edge_start_percent(model)
    held, held_metrics = _clone(model), None
    previous, p, follow, i = start, 0.0, True, 1
    history = []
    while True:
        if follow:
            target = plan.step * i if units else start + plan.step * i
            p = target - previous
        else:
            target = previous + p
        record = {"iteration": i, "target_percent": float(target), "step": float(p)}
        if target >= 100.0:
            record.update(
                trained=False, accepted=False, skipped="target at or above 100%: nothing would be left"
            )
            accepted = False
        else:
            masks, threshold = plan.make_masks(model, target)
            apply_masks(model, masks)
            metrics = retrain(model)
            accepted = metrics["test_accuracy"] >= plan.threshold
            record.update(
                trained=True,
                accepted=accepted,
                test_accuracy=metrics["test_accuracy"],
                best_epoch=metrics["best_epoch"],
                val_accuracy=metrics["val_accuracy"],
                val_loss=metrics["val_loss"],
                weights_kept=int(sum(int(m.sum()) for m in masks)),
                cut_threshold=threshold,
            )
        history.append(record)
        if on_try is not None:
            on_try(record, model)
        if accepted:
            held, held_metrics, previous = _clone(model), metrics, target
        elif p > p_min:
            model.load_state_dict(held)
            follow = False
            p = p / 2
            if p < p_min:
                p = p_min
        else:
            model.load_state_dict(held)
            break
        i += 1
    return {"history": history, "metrics": held_metrics}
