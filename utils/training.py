"""Training on device-resident tensors: minibatches drawn from the task with fresh input noise per draw.

No DataLoader: a 16-row truth table (or a few thousand digit images) lives on the device as one tensor and
minibatches are index slices of a per-epoch permutation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from utils.errors import InputError, NumericalError
from utils.masked_model import MaskedModel
from utils.optim import epoch_lr


@dataclass
class TaskTensors:
    """The task's arrays as float32 tensors on one device. x_*: (n, n_inputs), y_*: (n, n_outputs)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    noise_std: float
    accuracy_kind: str
    output_groups: list[list[int]]
    x_score: torch.Tensor  # clean training samples for unit scores: the table, or the training images
    y_score: torch.Tensor

    @classmethod
    def from_task(cls, task, device: torch.device) -> TaskTensors:
        def tensor(a):
            return torch.as_tensor(a, dtype=torch.float32, device=device)

        x_val = tensor(task.x_val)
        y_val = tensor(task.y_val)
        # Boolean tasks validate and test on the same clean table: share the tensors.
        same = task.x_test is task.x_val
        return cls(
            x_train=tensor(task.x_train),
            y_train=tensor(task.y_train),
            x_val=x_val,
            y_val=y_val,
            x_test=x_val if same else tensor(task.x_test),
            y_test=y_val if same else tensor(task.y_test),
            noise_std=float(task.noise_std),
            accuracy_kind=task.accuracy_kind,
            output_groups=task.output_groups or [list(range(task.n_outputs))],
            x_score=x_val if same else tensor(task.x_train),
            y_score=y_val if same else tensor(task.y_train),
        )


@dataclass
class TrainResult:
    """Best-epoch outcome. metrics: per-epoch lists plus best/test numbers (accuracies in percent)."""

    state: dict
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingOptions:
    """How one training call runs (the published options of the same names; their
    defaults live in the parser, run/parser.py).

    optimizer: adam | sgd | momentum | rms; loss: BCE | MSE | CE; scheduler: exp | cosine (gamma: exp decay
    per epoch); epochs, batch_size, lr, weight_decay as published.
    """

    optimizer: str
    lr: float
    weight_decay: float
    l1: float  # strength of an L1 penalty on the kept weights, added to the loss (0 = none)
    loss: str
    epochs: int
    batch_size: int
    scheduler: str
    gamma: float
    best_epoch: str  # accuracy_loss | published (see `improves`)
    # The clusterability regulariser and 000's weight normalisation (utils/clusterability_loss.py).
    clusterability_reg: float
    reg_k: int
    reg_every: int
    normalize_weights_every: int


def select_device(use_gpu: bool) -> torch.device:
    """CUDA when asked for and a GPU is present, else CPU."""
    if use_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def make_optimizer(params, options: TrainingOptions):
    """The optimizer named by options.optimizer with its lr and weight decay (see utils/optim.py for why
    not torch.optim)."""
    from utils.optim import OPTIMIZERS

    if options.optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {options.optimizer!r} (choose adam, sgd, momentum, rms)")
    return OPTIMIZERS[options.optimizer](params, lr=options.lr, weight_decay=options.weight_decay)


def loss_value(
    logits: torch.Tensor, y: torch.Tensor, loss: str, output_groups: list[list[int]]
) -> torch.Tensor:
    """Mean loss of logits (batch, m) against 0/1 targets y (batch, m).

    BCE and MSE act on the sigmoid outputs; CE is a softmax cross-entropy within each output group
    (one group = the whole output for multiclass tasks), summed over groups.
    """
    if loss == "BCE":
        return F.binary_cross_entropy_with_logits(logits, y)
    if loss == "MSE":
        return F.mse_loss(torch.sigmoid(logits), y)
    if loss == "CE":
        total = logits.new_zeros(())
        for group in output_groups:
            total = total + F.cross_entropy(logits[:, group], y[:, group].argmax(dim=1))
        return total
    raise InputError(f"unknown --loss {loss!r} (choose BCE, MSE, CE)")


def l1_penalty(model) -> torch.Tensor:
    """Sum of |weight| over the kept (unmasked) weights of every block; biases are not penalised."""
    return sum((module.weight * module.weight_mask).abs().sum() for _, _, module in model.masked_layers())


def per_sample_loss(logits: torch.Tensor, y: torch.Tensor, loss: str, output_groups) -> torch.Tensor:
    """Loss of each sample separately: (batch,). Used by the unit scores (one batched pass)."""
    if loss == "BCE":
        return F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=1)
    if loss == "MSE":
        return F.mse_loss(torch.sigmoid(logits), y, reduction="none").mean(dim=1)
    total = logits.new_zeros(logits.shape[0])
    for group in output_groups:
        total = total + F.cross_entropy(logits[:, group], y[:, group].argmax(dim=1), reduction="none")
    return total


def accuracy_percent(logits: torch.Tensor, y: torch.Tensor, kind: str, output_groups) -> float:
    """Accuracy in percent.

    bits: fraction of output bits right at the 0.5 cut (logit 0). groups: per output group, whether the
    argmax is the hot target, averaged over groups and samples. argmax: multiclass top-1.
    """
    if kind == "bits":
        correct = (logits > 0) == (y > 0.5)
        return 100.0 * float(correct.double().mean())
    hits = [(logits[:, g].argmax(dim=1) == y[:, g].argmax(dim=1)).double().mean() for g in output_groups]
    return 100.0 * float(torch.stack(hits).mean())


@torch.no_grad()
def evaluate(
    model: MaskedModel, x: torch.Tensor, y: torch.Tensor, data: TaskTensors, loss: str
) -> tuple[float, float]:
    """(accuracy percent, mean loss) of the model on clean x (n, d), y (n, m), in eval mode."""
    was_training = model.training
    model.eval()
    logits = _batched_logits(model, x)
    model.train(was_training)
    return (
        accuracy_percent(logits, y, data.accuracy_kind, data.output_groups),
        float(loss_value(logits, y, loss, data.output_groups)),
    )


def _batched_logits(model: MaskedModel, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    if x.shape[0] <= chunk:
        return model.logits(x)
    return torch.cat([model.logits(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])


def clone_state(model: MaskedModel) -> dict:
    """A detached copy of the state_dict (weights, masks, batch-norm statistics); cheaper than deepcopy."""
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _clusterability_term(options: TrainingOptions):
    """(model -> λ · spectral penalty, every how many steps) for clusterability_reg λ > 0, else None."""
    strength = float(options.clusterability_reg)
    if strength <= 0:
        return None
    from utils.clusterability_loss import clusterability_penalty

    k = int(options.reg_k)
    return (lambda model: strength * clusterability_penalty(model, k)), int(options.reg_every)


def batch_bounds(n: int, batch: int, batch_norm: bool) -> list[tuple[int, int]]:
    """(start, stop) of each minibatch over n samples. With batch norm a trailing batch of one sample
    (whose variance is undefined) joins the batch before it."""
    bounds = [(start, min(start + batch, n)) for start in range(0, n, batch)]
    if batch_norm and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def check_lr(lr: float, epoch: int, options) -> None:
    """NumericalError when the scheduled learning rate of `epoch` is NaN, inf or beyond float32."""
    if not math.isfinite(lr) or abs(lr) > torch.finfo(torch.float32).max:
        raise NumericalError(
            f"the learning rate became {lr:g} in epoch {epoch + 1} (--lr {options.lr:g}, "
            f"--gamma {options.gamma:g}), beyond float32; use a smaller --gamma"
        )


def check_train_loss(train_loss: float, epoch: int, options) -> None:
    """NumericalError when an epoch's mean training loss is NaN or inf (the weights diverged)."""
    if not math.isfinite(train_loss):
        raise NumericalError(
            f"the training loss became {train_loss} in epoch {epoch + 1} (--lr {options.lr}); "
            "the weights diverged: lower --lr"
        )


def check_finite_weights(model: MaskedModel) -> None:
    """NumericalError naming the first layer whose weights or biases hold NaN or inf."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NumericalError(f"the trained network's {name} holds NaN or inf; lower --lr")


def published_val_loss(per_sample: torch.Tensor, batch: int) -> float:
    """The published validation loss: the per-batch mean losses over the clean validation set in order,
    summed and divided by (number of batches - 1). One batch holding the whole set divides by zero: inf.
    per_sample: (n,) loss of each validation sample (mean over outputs, as the published loss)."""
    means = [float(chunk.mean()) for chunk in torch.split(per_sample, batch)]
    return float("inf") if len(means) < 2 else sum(means) / (len(means) - 1)


def improves(rule: str, best: tuple[float, float] | None, accuracy: float, loss: float) -> bool:
    """Whether an epoch with (accuracy %, validation loss) replaces the best (accuracy, loss) so far.

    accuracy_loss: strictly higher accuracy, ties to strictly lower loss (the earlier epoch wins a full tie).
    published: the published train loop. Its best starts at (0 %, 1000); with a finite loss (< 1000) an
    epoch wins with higher accuracy, or with accuracy and loss at least as good (the later epoch wins a
    tie); with an infinite loss (one validation batch) the later epoch wins whenever its accuracy is at least
    the best, so the kept epoch is the last whose accuracy equals the best.
    """
    if rule == "accuracy_loss":
        return epoch_better((accuracy, -loss), None if best is None else (best[0], -best[1]))
    best_accuracy, best_loss = best if best is not None else (0.0, 1000.0)
    if loss < 1000.0:
        return accuracy > best_accuracy or (loss <= best_loss and accuracy >= best_accuracy)
    return accuracy >= best_accuracy


def check_loss_fits(options: TrainingOptions, data: TaskTensors) -> None:
    if options.loss == "CE" and data.accuracy_kind == "bits":
        raise InputError(
            "--loss CE needs one-hot outputs (digits 128 2 20, mnist 1568 2 20, mnist_10way); "
            "use --loss BCE or MSE for bit outputs"
        )


def epoch_better(key: tuple[float, float], best_key: tuple[float, float] | None) -> bool:
    """Whether an epoch scoring key = (validation accuracy, -validation loss) beats the best so far: higher
    accuracy, ties to the lower loss (--best_epoch accuracy_loss; the batched searches use it)."""
    return best_key is None or key > best_key


def train(
    model: MaskedModel,
    data: TaskTensors,
    options: TrainingOptions,
    generator: torch.Generator,
    epochs: int | None = None,
    progress=None,
    include_start: bool = False,
    pruner=None,
) -> TrainResult:
    """Train `model` in place for `epochs` (default options.epochs; `options` is a TrainingOptions) and load
    the best epoch's state.

    Best epoch by options.best_epoch (see `improves`): "accuracy_loss" (default) keeps the highest validation
    accuracy, ties to the lower mean loss; "published" follows the published train loop, including its
    infinite validation loss when one batch of --batch_size holds the whole validation set. With include_start
    the network as it came in competes as epoch -1. `generator` drives the
    batch order and the input noise, so a seeded generator makes the run reproducible. `progress`, if
    given, is called as progress(epoch, train_loss, val_accuracy) after each epoch. `pruner`, a factory
    pruner(model, steps_per_epoch, epochs) -> utils.gradual_pruning.GradualPruner, makes the pruner that is
    called after every optimizer step; while it has not reached its target, epochs cannot be the best one.
    Returns TrainResult(state=best state_dict copy, metrics) with metrics: train_loss, val_accuracy,
    val_loss (per epoch lists), best_epoch, test_accuracy, test_loss.
    """
    check_loss_fits(options, data)
    epochs = options.epochs if epochs is None else epochs
    optimizer = make_optimizer(model.parameters(), options)
    n = data.x_train.shape[0]
    batch = options.batch_size
    history = {"train_loss": [], "val_accuracy": [], "val_loss": []}
    best_key, best_state, best_epoch = None, None, -1
    device = data.x_train.device
    rule = options.best_epoch
    penalty = _clusterability_term(options)
    normalize_every = int(options.normalize_weights_every)
    bounds = batch_bounds(n, batch, model.norms is not None)
    if pruner is not None:
        pruner = pruner(model, len(bounds), epochs)
    if include_start and pruner is None:
        val_acc, val_loss = evaluate(model, data.x_val, data.y_val, data, options.loss)
        best_key, best_state = (val_acc, _rule_loss(rule, model, data, options, val_loss)), clone_state(model)
    global_step = 0
    for epoch in range(epochs):
        optimizer.lr = epoch_lr(options.lr, epoch, options.scheduler, options.gamma, epochs)
        check_lr(optimizer.lr, epoch, options)
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        x_epoch = data.x_train[order]
        if data.noise_std > 0:
            noise = torch.randn(x_epoch.shape, generator=generator).to(device)
            x_epoch = x_epoch + data.noise_std * noise
        y_epoch = data.y_train[order]
        running, steps = 0.0, 0
        for start, stop in bounds:
            logits = model.logits(x_epoch[start:stop])
            loss = loss_value(logits, y_epoch[start:stop], options.loss, data.output_groups)
            if options.l1 > 0:
                loss = loss + options.l1 * l1_penalty(model)
            if penalty is not None and global_step % penalty[1] == 0:
                loss = loss + penalty[0](model)
            if normalize_every and global_step % normalize_every == 0:
                from utils.clusterability_loss import normalize_incoming

                normalize_incoming(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.detach()
            steps += 1
            global_step += 1
            if pruner is not None:
                pruner.after_step(global_step)
        train_loss = float(running) / max(steps, 1)
        check_train_loss(train_loss, epoch, options)
        val_acc, val_loss = evaluate(model, data.x_val, data.y_val, data, options.loss)
        history["train_loss"].append(train_loss)
        history["val_accuracy"].append(val_acc)
        history["val_loss"].append(val_loss)
        rule_loss = _rule_loss(rule, model, data, options, val_loss)
        eligible = pruner is None or pruner.done
        if eligible and improves(rule, best_key, val_acc, rule_loss):
            best_key, best_epoch = (val_acc, rule_loss), epoch
            best_state = clone_state(model)
        if progress is not None:
            progress(epoch, train_loss, val_acc)
    model.load_state_dict(best_state)
    check_finite_weights(model)
    test_acc, test_loss = evaluate(model, data.x_test, data.y_test, data, options.loss)
    metrics = dict(history, best_epoch=best_epoch, test_accuracy=test_acc, test_loss=test_loss)
    if pruner is not None:
        metrics.update(target_sparsity=pruner.target, mask_updates=pruner.updates)
    return TrainResult(state=best_state, metrics=metrics)


@torch.no_grad()
def _rule_loss(rule: str, model, data: TaskTensors, options, mean_loss: float) -> float:
    """The validation loss the best-epoch rule compares: the mean loss, or the published batch sum."""
    if rule != "published":
        return mean_loss
    if -(-data.x_val.shape[0] // options.batch_size) < 2:
        return float("inf")
    was_training = model.training
    model.eval()
    logits = _batched_logits(model, data.x_val)
    model.train(was_training)
    per_sample = per_sample_loss(logits, data.y_val, options.loss, data.output_groups)
    return published_val_loss(per_sample, options.batch_size)
