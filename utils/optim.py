"""Optimizers and learning-rate schedules for small networks, without torch.optim.

Why not torch.optim: its first use imports torch._dynamo (about 1 s per process on an idle machine, several
seconds on a loaded one), which a batch of hundreds of short runs pays again and again, and its per-step
bookkeeping dominates the cost of a 4-24-4 network. These follow torch's single-tensor CPU code paths
operation by operation (Adam, SGD, SGD + Nesterov momentum, RMSprop, all with L2 weight decay added to the
gradient), so the numbers match torch.optim's (tests/test_optim.py checks this).
"""

from __future__ import annotations

import math

import torch


class Optimizer:
    """Minimal optimizer over a list of parameters: step(), zero_grad(), lr attribute."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr = lr
        self.weight_decay = weight_decay
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _grad(self, p: torch.Tensor) -> torch.Tensor:
        if self.weight_decay:
            return p.grad.add(p, alpha=self.weight_decay)
        return p.grad

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self._update(i, p, self._grad(p))

    def _update(self, i: int, p: torch.Tensor, grad: torch.Tensor) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    def _update(self, i, p, grad):
        p.add_(grad, alpha=-self.lr)


class NesterovMomentum(Optimizer):
    """SGD with Nesterov momentum 0.9 (torch: SGD(momentum=0.9, nesterov=True, dampening=0))."""

    def __init__(self, params, lr, weight_decay=0.0, momentum: float = 0.9):
        super().__init__(params, lr, weight_decay)
        self.momentum = momentum
        self.buffers: dict[int, torch.Tensor] = {}

    def _update(self, i, p, grad):
        buf = self.buffers.get(i)
        if buf is None:
            buf = self.buffers[i] = torch.clone(grad).detach()
        else:
            buf.mul_(self.momentum).add_(grad)
        p.add_(grad.add(buf, alpha=self.momentum), alpha=-self.lr)


class Adam(Optimizer):
    def __init__(self, params, lr, weight_decay=0.0, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        # torch's single-tensor Adam, each operation over all parameters in one foreach call (on CPU torch
        # runs a foreach op tensor by tensor with the single-tensor kernel, so the numbers are the same)
        self.steps += 1
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        grads = [p.grad for p in params]
        exp_avg = [self.exp_avg[i] for i in live]
        exp_avg_sq = [self.exp_avg_sq[i] for i in live]
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        torch._foreach_lerp_(exp_avg, grads, 1 - self.beta1)
        torch._foreach_mul_(exp_avg_sq, self.beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - self.beta2)
        bias_correction1 = 1 - self.beta1**self.steps
        bias_correction2 = 1 - self.beta2**self.steps
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, math.sqrt(bias_correction2))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, exp_avg, denom, value=-self.lr / bias_correction1)


class RMSprop(Optimizer):
    def __init__(self, params, lr, weight_decay=0.0, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(params, lr, weight_decay)
        self.alpha, self.eps = alpha, eps
        self.square_avg = [torch.zeros_like(p) for p in self.params]

    def _update(self, i, p, grad):
        square_avg = self.square_avg[i]
        square_avg.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
        p.addcdiv_(grad, square_avg.sqrt().add_(self.eps), value=-self.lr)


OPTIMIZERS = {"adam": Adam, "sgd": SGD, "momentum": NesterovMomentum, "rms": RMSprop}


def epoch_lr(base_lr: float, epoch: int, scheduler: str, gamma: float, epochs: int) -> float:
    """Learning rate of epoch `epoch` (0-based): exp -> base * gamma^epoch (torch ExponentialLR);
    cosine -> base * (1 + cos(pi * epoch / epochs)) / 2 (torch CosineAnnealingLR, eta_min 0)."""
    if scheduler == "cosine":
        return base_lr * (1 + math.cos(math.pi * epoch / epochs)) / 2
    return base_lr * gamma**epoch
