"""Adam, computed by PyTorch's own functional Adam, without ``torch.optim.Optimizer``.

``torch.optim.Adam`` marks its methods "never compile" for torch's compiler, and the
first such call (building the optimizer) and every ``step`` import the compiler,
``torch._dynamo``: 1.1-2.0 s of every training process that never compiles anything
(the command line's ``train``, each of the app's trainings in its child process), and
about 0.1 ms of Python per step on top of the update itself (measured:
``benchmarks/benchmark_trainer.py --cli``). :class:`Adam` keeps the same state and calls
the same update, :func:`torch.optim.adam.adam` (with ``fused=True``, the one kernel for
all parameters that ``torch.optim.Adam(fused=True)`` calls), so the weights it gives
are those ``torch.optim.Adam`` gives, bit for bit (a test checks it, with a
learning-rate schedule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim.adam import adam


class Adam:
    """Adam (no weight decay, no AMSGrad) over ``params``.

    Args:
        params: the parameters to train (those with ``requires_grad``).
        lr: the learning rate.
        betas: Adam's two averaging factors.
        fused: update every parameter in one kernel (CPU and CUDA); else one
            parameter after another, as ``torch.optim.Adam(fused=False)`` does.
        schedule: the rate of step ``k`` (0-based) is ``lr * schedule(k)``, as
            ``torch.optim.lr_scheduler.LambdaLR`` sets it; None: ``lr`` throughout.
        eps: added to the denominator, as in ``torch.optim.Adam``.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        fused: bool = False,
        schedule: Callable[[int], float] | None = None,
        eps: float = 1e-8,
    ):
        self.params = [p for p in params if p.requires_grad]
        self.base_lr, self.betas, self.fused, self.eps = lr, betas, fused, eps
        self.schedule = schedule
        self.steps_taken = 0
        # per parameter, made at its first step in its memory layout, as torch.optim does:
        # the two running averages and the step count (float32; on the parameter's device
        # when fused)
        self._state: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @property
    def lr(self) -> float:
        """The rate the next step takes."""
        factor = 1.0 if self.schedule is None else self.schedule(self.steps_taken)
        return self.base_lr * factor

    def zero_grad(self) -> None:
        """Forget the gradients (set to None, as ``zero_grad(set_to_none=True)`` does)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient (the others, as torch.optim does,
        are left as they are)."""
        indices = [i for i, p in enumerate(self.params) if p.grad is not None]
        for i in indices:
            if i not in self._state:
                p = self.params[i]
                self._state[i] = (
                    torch.zeros_like(p, memory_format=torch.preserve_format),
                    torch.zeros_like(p, memory_format=torch.preserve_format),
                    torch.zeros((), dtype=torch.float32, device=p.device if self.fused else "cpu"),
                )
        params = [self.params[i] for i in indices]
        states = [self._state[i] for i in indices]
        beta1, beta2 = self.betas
        adam(
            params,
            [p.grad for p in params],  # type: ignore[misc]
            [average for average, _, _ in states],
            [square for _, square, _ in states],
            [],
            [count for _, _, count in states],
            fused=self.fused,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=self.lr,
            weight_decay=0.0,
            eps=self.eps,
            maximize=False,
        )
        self.steps_taken += 1
