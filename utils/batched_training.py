"""Train many small MLPs of one architecture as one stacked model (docs/architecture.md, "Training").

`train_batched(models, data, options, generators, include_start)` does for every member exactly what
`utils.training.train(model, data, options, generator, include_start=...)` does alone, in lockstep: the
weights of all members are stacked as (members, out, in) tensors, every layer is one `torch.baddbmm` per
step, and the optimizer (elementwise, utils/optim.py) updates the stacked tensors at once. Each member keeps
its own masks, its own generator (so batch order and input noise are the draws it would have made alone),
its own best epoch and its own metrics. Per member the arithmetic is the same as alone (baddbmm computes
each member's product as `F.linear` does, and the loss gradient of a member does not involve the others),
so the results are identical; `tests/test_batched.py` checks this bit for bit.

Members that `batch_declined` turns away (sigmoid hidden units, batch norm, dropout, skip connections, or a
training option the batch does not implement: --l1, --clusterability_reg, --normalize_weights_every) are
trained one by one with `train`, so callers need not care; they say so to their user.
"""

from __future__ import annotations

import functools

import torch
from torch.nn import functional as F

from utils.masked_model import MaskedModel
from utils.optim import epoch_lr
from utils.training import (
    TaskTensors,
    TrainingOptions,
    TrainResult,
    accuracy_percent,
    batch_bounds,
    check_finite_weights,
    check_loss_fits,
    check_lr,
    check_train_loss,
    improves,
    loss_value,
    make_optimizer,
    per_sample_loss,
    published_val_loss,
    train,
)

# Every training option, by how the batched loop treats it (tests/test_batched_options.py checks that the two
# sets together name every field of TrainingOptions, so a new option must be placed here):
# BATCHED_OPTIONS are implemented exactly, member by member; DECLINING_OPTIONS, when set, make the batch
# decline (the members then train one by one with `train`).
BATCHED_OPTIONS = frozenset(
    {"optimizer", "lr", "weight_decay", "loss", "epochs", "batch_size", "scheduler", "gamma", "best_epoch"}
)
DECLINING_OPTIONS = frozenset({"l1", "clusterability_reg", "reg_k", "reg_every", "normalize_weights_every"})


def batch_declined(model: MaskedModel, options: TrainingOptions, data: TaskTensors) -> str | None:
    """Why `model` trained with `options` on `data` cannot join a batch (a phrase naming the option or the
    part of the network), or None when it can. Plain masked MLPs batch: relu or step units (exact in any
    batch; a vectorised sigmoid rounds differently by position), no batch norm, no dropout, no skip
    connections; the options must all be in BATCHED_OPTIONS or off; and the batched matrix products must
    round as the single ones do for these layer widths and minibatch sizes (on some CPUs they do not for
    minibatches of a few rows)."""
    if options.l1 > 0:
        return "--l1"
    if options.clusterability_reg > 0:
        return "--clusterability_reg"  # reg_k and reg_every only act with it
    if options.normalize_weights_every:
        return "--normalize_weights_every"
    if model.activation_name not in ("relu", "ste"):
        return f"{model.activation_name} hidden units"
    if model.norms is not None:
        return "batch norm"
    if model.dropout is not None:
        return "dropout"
    if len(model.masked_layers()) != len(model.layers):
        return "skip connections"
    n = data.x_train.shape[0]
    rows = {stop - start for start, stop in batch_bounds(n, options.batch_size, False)}
    rows |= {data.x_val.shape[0], data.x_test.shape[0]}
    inexact = [r for r in sorted(rows) if not _products_exact(tuple(model.arch), r)]
    if inexact:
        widths = " ".join(map(str, model.arch))
        return (
            f"--batch_size {options.batch_size} with --arch {widths} (batched products of {inexact[0]} "
            "rows round differently here)"
        )
    return None


def can_batch(model: MaskedModel, options: TrainingOptions, data: TaskTensors) -> bool:
    """Whether `model` trained with `options` on `data` joins a batch (see `batch_declined`)."""
    return batch_declined(model, options, data) is None


@functools.lru_cache(maxsize=256)
def _products_exact(arch: tuple[int, ...], rows: int) -> bool:
    """Whether `_linear`, `_BatchedLinear.backward`'s products give, member by member, the bits F.linear
    and its backward give for minibatches of `rows` rows through layers of widths `arch` (the GEMM kernel
    a BLAS picks depends on the sizes; the data only carries the rounding)."""
    generator = torch.Generator().manual_seed(0)
    members = 2
    for fan_in, fan_out in zip(arch[:-1], arch[1:]):
        h = torch.randn(members, rows, fan_in, generator=generator)
        weight = torch.randn(members, fan_out, fan_in, generator=generator)
        bias = torch.randn(members, fan_out, generator=generator)
        grad = torch.randn(members, rows, fan_out, generator=generator)
        out = _linear(h, weight, bias)
        grad_weight, grad_bias = _linear_param_grads(grad, h)
        grad_h = torch.bmm(grad, weight)
        for m in range(members):
            alone_h = h[m].clone().requires_grad_()
            alone_w = weight[m].clone().requires_grad_()
            alone_b = bias[m].clone().requires_grad_()
            alone = F.linear(alone_h, alone_w, alone_b)
            alone.backward(grad[m])
            pairs = ((out[m], alone), (grad_weight[m], alone_w.grad), (grad_bias[m], alone_b.grad))
            if not all(torch.equal(a, b) for a, b in (*pairs, (grad_h[m], alone_h.grad))):
                return False
    return True


class _Stack:
    """The stacked parameters and masks of M members: weight (M, out, in), bias (M, out) per layer."""

    def __init__(self, activation, weights, biases, weight_masks, bias_masks):
        self.activation = activation
        self.weights = [w.requires_grad_() for w in weights]
        self.biases = [b.requires_grad_() for b in biases]
        self.weight_masks, self.bias_masks = weight_masks, bias_masks

    @classmethod
    def of(cls, models) -> _Stack:
        depth = len(models[0].layers)
        layers = [[m.layers[i] for m in models] for i in range(depth)]
        return cls(
            models[0]._act,
            [torch.stack([layer.weight.detach() for layer in group]) for group in layers],
            [torch.stack([layer.bias.detach() for layer in group]) for group in layers],
            [torch.stack([layer.weight_mask for layer in group]) for group in layers],
            [torch.stack([layer.bias_mask for layer in group]) for group in layers],
        )

    @property
    def members(self) -> int:
        return self.weights[0].shape[0]

    def parameters(self) -> list[torch.Tensor]:
        out = []
        for w, b in zip(self.weights, self.biases):
            out += [w, b]
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x: (M, B, d) -> logits (M, B, m); hidden units as MLP.forward computes them."""
        h = x
        last = len(self.weights) - 1
        for i, (w, b, wm, bm) in enumerate(
            zip(self.weights, self.biases, self.weight_masks, self.bias_masks)
        ):
            h = _BatchedLinear.apply(h, w * wm, b * bm)
            if i < last:
                h = self.activation(h)
        return h

    def snapshot(self) -> list[list[torch.Tensor]]:
        """Copies of every stacked tensor (weights, biases, masks per layer), for the best-epoch states."""
        return [
            [t.detach().clone() for t in group]
            for group in (self.weights, self.biases, self.weight_masks, self.bias_masks)
        ]

    @classmethod
    def of_best(cls, activation, best: list) -> _Stack:
        """The stack whose member m is member m of snapshot best[m] (members share snapshots: one copy
        per distinct snapshot, not per member)."""
        by_snapshot: dict[int, tuple[list, list[int]]] = {}
        for m, snap in enumerate(best):
            by_snapshot.setdefault(id(snap), (snap, []))[1].append(m)
        sources = [(snap, torch.tensor(members)) for snap, members in by_snapshot.values()]
        groups = []
        for g, template in enumerate(best[0]):
            group = []
            for i, like in enumerate(template):
                out = torch.empty_like(like)
                for snap, index in sources:
                    out[index] = snap[g][i][index]
                group.append(out)
            groups.append(group)
        return cls(activation, *groups)

    def load_into(self, models) -> list[dict]:
        """Copy member m's tensors into models[m] (as load_state_dict does, in one foreach copy per
        stacked tensor); returns each member's state_dict (its model's own tensors, detached)."""
        states: list[dict] = [{} for _ in models]
        with torch.no_grad():
            for i in range(len(self.weights)):
                for name, stacked in (
                    ("weight", self.weights[i]),
                    ("bias", self.biases[i]),
                    ("weight_mask", self.weight_masks[i]),
                    ("bias_mask", self.bias_masks[i]),
                ):
                    targets = [getattr(model.layers[i], name) for model in models]
                    _copy_all(targets, list(stacked.detach().unbind(0)))
                    for state, target in zip(states, targets):
                        state[f"layers.{i}.{name}"] = target.detach()
        return states

    def all_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.weights + self.biases)


def _copy_all(targets: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    """targets[k].copy_(sources[k]) for every k (one foreach call where torch has it)."""
    if hasattr(torch, "_foreach_copy_"):
        torch._foreach_copy_(targets, sources)
    else:
        for target, source in zip(targets, sources):
            target.copy_(source)


class _BatchedLinear(torch.autograd.Function):
    """h (M, B, in), weight (M, out, in), bias (M, out) -> (M, B, out): F.linear per member, forward and
    backward in F.linear's orientation. Autograd through baddbmm(b, h, W^T) would give the weight gradient
    as (h^T g)^T, whose rounding differs from linear's g^T h on some CPUs (AVX2: the first layer of
    4-24-4); bmm(g^T, h) is the same GEMM as linear's backward, member by member."""

    @staticmethod
    def forward(ctx, h, weight, bias):
        ctx.save_for_backward(h, weight)
        return _linear(h, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        h, weight = ctx.saved_tensors
        grad_h = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        return grad_h, *_linear_param_grads(grad, h)


def _linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """h (M, B, in), weight (M, out, in), bias (M, out) -> (M, B, out)."""
    return torch.baddbmm(bias[:, None, :], h, weight.transpose(1, 2))


def _linear_param_grads(grad: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight gradient (M, out, in), bias gradient (M, out)) of `_linear` for output gradient grad."""
    return torch.bmm(grad.transpose(1, 2), h), grad.sum(dim=1)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(M, ...) -> an (M, N) view of a copy whose rows are not contiguous with each other. Elementwise
    kernels and row reductions then run row by row, each member's N values exactly as a tensor of N alone
    (one long contiguous run would round the tails of vector blocks differently)."""
    members, n = t.shape[0], t[0].numel()
    buffer = t.new_empty(members, n + 1)
    buffer[:, :n] = t.reshape(members, n)
    return buffer[:, :n]


@torch.no_grad()
def _evaluate(stack: _Stack, x: torch.Tensor, y: torch.Tensor, data: TaskTensors, loss: str) -> list:
    """[(accuracy percent, mean loss)] per member on clean x (n, d), y (n, m), as utils.training.evaluate."""
    members = stack.members
    logits = stack.logits(x.expand(members, *x.shape))
    if loss == "BCE" and data.accuracy_kind == "bits":
        z, target = _rows(logits), _rows(y.expand(members, *y.shape))
        accuracy = (100.0 * ((z > 0) == (target > 0.5)).double().mean(dim=1)).tolist()
        losses = F.binary_cross_entropy_with_logits(z, target, reduction="none").mean(dim=1).tolist()
        return list(zip(accuracy, losses))
    return [
        (
            accuracy_percent(logits[m], y, data.accuracy_kind, data.output_groups),
            float(loss_value(logits[m], y, loss, data.output_groups)),
        )
        for m in range(members)
    ]


@torch.no_grad()
def _rule_losses(stack: _Stack, data: TaskTensors, options: TrainingOptions, mean_losses: list) -> list:
    """The validation loss each member's best-epoch rule compares (utils.training._rule_loss): the mean
    loss, or for --best_epoch published the published batch sum (inf when one batch holds the set)."""
    if options.best_epoch != "published":
        return mean_losses
    if -(-data.x_val.shape[0] // options.batch_size) < 2:
        return [float("inf")] * len(mean_losses)
    logits = stack.logits(data.x_val.expand(stack.members, *data.x_val.shape))
    per_sample = [per_sample_loss(z, data.y_val, options.loss, data.output_groups) for z in logits]
    return [published_val_loss(losses, options.batch_size) for losses in per_sample]


def train_batched(
    models: list[MaskedModel],
    data: TaskTensors,
    options: TrainingOptions,
    generators: list[torch.Generator],
    include_start: bool = False,
) -> list[TrainResult]:
    """`train` for each member at once; models end with their best epoch's state (as with `train`). A
    batched member's TrainResult.state holds its model's own tensors (detached), not copies."""
    if len(models) != len(generators):
        raise ValueError("give one generator per model")
    if not models:
        return []
    # the published best-epoch rule is only in `train`: such members train one by one
    batchable = [i for i, m in enumerate(models) if can_batch(m, options, data)]
    results: list[TrainResult | None] = [None] * len(models)
    for i in range(len(models)):
        if i not in batchable:
            results[i] = train(models[i], data, options, generators[i], include_start=include_start)
    if len(batchable) == 1:  # one member: the plain loop costs less and gives the same numbers
        i = batchable[0]
        results[i] = train(models[i], data, options, generators[i], include_start=include_start)
    elif batchable:
        group = [models[i] for i in batchable]
        for i, result in zip(
            batchable, _train_stack(group, data, options, [generators[i] for i in batchable], include_start)
        ):
            results[i] = result
    return results


def _train_stack(models, data, options, generators, include_start) -> list[TrainResult]:
    check_loss_fits(options, data)
    members = len(models)
    epochs = options.epochs
    stack = _Stack.of(models)
    optimizer = make_optimizer(stack.parameters(), options)
    by_hand = options.loss == "BCE" and stack.activation is torch.relu  # the common case, without autograd
    n = data.x_train.shape[0]
    device = data.x_train.device
    histories = [{"train_loss": [], "val_accuracy": [], "val_loss": []} for _ in range(members)]
    best_key: list = [None] * members
    best_state: list = [None] * members
    best_epoch = [-1] * members
    if include_start:
        snapshot = stack.snapshot()
        start = _evaluate(stack, data.x_val, data.y_val, data, options.loss)
        rule_losses = _rule_losses(stack, data, options, [loss for _, loss in start])
        for m, ((val_acc, _), rule_loss) in enumerate(zip(start, rule_losses)):
            best_key[m], best_state[m] = (val_acc, rule_loss), snapshot
    bounds = batch_bounds(n, options.batch_size, False)
    for epoch in range(epochs):
        optimizer.lr = epoch_lr(options.lr, epoch, options.scheduler, options.gamma, epochs)
        check_lr(optimizer.lr, epoch, options)
        # each member's own draws from its own generator, in the order `train` makes them (its order, then
        # its noise); the gather and the noise arithmetic then run once for all members, elementwise
        orders = torch.stack([torch.randperm(n, generator=generator) for generator in generators]).to(device)
        x_all, y_all = data.x_train[orders], data.y_train[orders]
        if data.noise_std > 0:
            shape = data.x_train.shape
            noise = torch.stack([torch.randn(shape, generator=generator) for generator in generators])
            x_all = x_all + data.noise_std * noise.to(device)
        running = torch.zeros(members)
        for start, stop in bounds:
            if by_hand:
                losses = _relu_bce_step(stack, x_all[:, start:stop], y_all[:, start:stop])
            else:
                logits = stack.logits(x_all[:, start:stop])
                losses = _member_losses(logits, y_all[:, start:stop], options.loss, data.output_groups)
                optimizer.zero_grad()
                losses.sum().backward()
            optimizer.step()
            running += losses.detach()
        train_losses = (running / max(len(bounds), 1)).tolist()
        for train_loss in train_losses:
            check_train_loss(train_loss, epoch, options)
        evaluations = _evaluate(stack, data.x_val, data.y_val, data, options.loss)
        rule_losses = _rule_losses(stack, data, options, [loss for _, loss in evaluations])
        snapshot = None  # taken once per epoch, only when some member improves
        for m, ((val_acc, val_loss), rule_loss) in enumerate(zip(evaluations, rule_losses)):
            histories[m]["train_loss"].append(train_losses[m])
            histories[m]["val_accuracy"].append(val_acc)
            histories[m]["val_loss"].append(val_loss)
            if improves(options.best_epoch, best_key[m], val_acc, rule_loss):
                best_key[m], best_epoch[m] = (val_acc, rule_loss), epoch
                snapshot = snapshot if snapshot is not None else stack.snapshot()
                best_state[m] = snapshot
    final = _Stack.of_best(stack.activation, best_state)
    states = final.load_into(models)
    if not final.all_finite():
        for model in models:
            check_finite_weights(model)  # raises naming the first member's first non-finite layer
    tests = _evaluate(final, data.x_test, data.y_test, data, options.loss)
    results = []
    for m, (test_acc, test_loss) in enumerate(tests):
        metrics = dict(histories[m], best_epoch=best_epoch[m], test_accuracy=test_acc, test_loss=test_loss)
        results.append(TrainResult(state=states[m], metrics=metrics))
    return results


class _MemberBCE(torch.autograd.Function):
    """Per-member mean BCE-with-logits: z, y (M, B, m) -> (M,). Its backward computes each member's
    gradient exactly as `F.binary_cross_entropy_with_logits(z[k], y[k])` (mean) does alone (torch's
    backward: (sigmoid(z) - y) * grad, then divided by B*m; autograd through reduction="none" and .mean
    would round differently). Both passes run on `_rows` layouts, one row per member."""

    @staticmethod
    def forward(ctx, z, y):
        z_rows, y_rows = _rows(z), _rows(y)
        ctx.save_for_backward(z_rows, y_rows)
        ctx.shape = z.shape
        return _bce_rows(z_rows, y_rows)

    @staticmethod
    def backward(ctx, grad):
        z, y = ctx.saved_tensors
        return _bce_rows_grad(z, y, grad).reshape(ctx.shape), None


def _bce_rows(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z, y (M, N) `_rows` layouts -> (M,) each row's mean BCE-with-logits."""
    return F.binary_cross_entropy_with_logits(z, y, reduction="none").mean(dim=1)


def _bce_rows_grad(z: torch.Tensor, y: torch.Tensor, grad: torch.Tensor | None = None) -> torch.Tensor:
    """The gradient (M, N) of `_bce_rows` for loss gradient grad (M,) (None: ones, whose product is exact)."""
    grad_z = z.sigmoid() - y
    if grad is not None:
        grad_z = grad_z * grad[:, None]
    return grad_z.div_(z.shape[1])


@torch.no_grad()
def _relu_bce_step(stack: _Stack, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Forward and backward of a ReLU stack under each member's mean BCE, by hand: x (M, B, d), y (M, B, m)
    -> losses (M,); sets the .grad of every weight and bias. The operations are those autograd runs for
    `losses.sum().backward()` through `logits` and `_MemberBCE` (_BatchedLinear's GEMMs, the mask products'
    backward grad * mask, ReLU's threshold_backward), in the same order, so the gradients are the same
    bits; what goes is autograd's graph and engine, a third of a tiny step's cost."""
    inputs, masked = [], []
    h = x
    last = len(stack.weights) - 1
    layers = zip(stack.weights, stack.biases, stack.weight_masks, stack.bias_masks)
    for i, (w, b, wm, bm) in enumerate(layers):
        weight = w * wm
        inputs.append(h)
        masked.append(weight)
        h = _linear(h, weight, b * bm)
        if i < last:
            h = torch.relu(h)
    z, target = _rows(h), _rows(y)
    losses = _bce_rows(z, target)
    grad = _bce_rows_grad(z, target).reshape(h.shape)
    for i in range(last, -1, -1):
        grad_weight, grad_bias = _linear_param_grads(grad, inputs[i])
        stack.weights[i].grad = grad_weight * stack.weight_masks[i]
        stack.biases[i].grad = grad_bias * stack.bias_masks[i]
        if i > 0:
            grad = torch.ops.aten.threshold_backward(torch.bmm(grad, masked[i]), inputs[i], 0)
    return losses


def _member_losses(logits: torch.Tensor, y: torch.Tensor, loss: str, output_groups) -> torch.Tensor:
    """(M,) each member's mean batch loss, with the gradient `utils.training.loss_value` gives it alone
    (BCE in one op; MSE and CE member by member, so the arithmetic stays the same)."""
    if loss == "BCE":
        return _MemberBCE.apply(logits, y)
    return torch.stack([loss_value(logits[m], y[m], loss, output_groups) for m in range(logits.shape[0])])
