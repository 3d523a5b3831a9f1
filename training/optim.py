"""Adam, step for step the arithmetic of ``torch.optim.Adam`` (defaults, single-tensor path).

Why not torch.optim: constructing any torch.optim optimizer imports torch._dynamo, ~1.6 s of a
local-mode job that trains in under one. The tests hold this bit-identical to torch.optim.Adam.
"""

from __future__ import annotations

import torch


class Adam:
    """Adam with betas (0.9, 0.999), eps 1e-8, no weight decay; state is plain tensors."""

    def __init__(self, params: dict[str, torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = params
        self.lr, self.betas, self.eps = lr, betas, eps
        self.step_count = 0
        self.exp_avg = {name: torch.zeros_like(p, memory_format=torch.preserve_format) for name, p in params.items()}
        self.exp_avg_sq = {name: torch.zeros_like(p, memory_format=torch.preserve_format) for name, p in params.items()}

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.step_count += 1
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2_sqrt = (1 - beta2**self.step_count) ** 0.5
        step_size = self.lr / bias_correction1
        for name, param in self.params.items():
            grad = param.grad
            if grad is None:
                continue
            exp_avg, exp_avg_sq = self.exp_avg[name], self.exp_avg_sq[name]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict:
        return {
            "step": self.step_count,
            "exp_avg": {name: t.detach().cpu() for name, t in self.exp_avg.items()},
            "exp_avg_sq": {name: t.detach().cpu() for name, t in self.exp_avg_sq.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step"])
        for name, param in self.params.items():
            self.exp_avg[name] = state["exp_avg"][name].to(param.device, param.dtype).clone()
            self.exp_avg_sq[name] = state["exp_avg_sq"][name].to(param.device, param.dtype).clone()
