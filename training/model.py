"""The fixed-phi Aladyn model for one age: loss, gradients, initialisation and pi.

Why it is fast and lean compared with the reference trainer:
* the survival term is one pass per cache-sized chunk (a few times x a patient range) that yields
  sum log(1 - pi) and d/dtheta together in two reused chunk buffers; the gradient is kept at
  theta's size (N x K+1 x T), never as an N x D x T tensor, and only times up to the age are
  touched;
* cells after their exit time are skipped by index, and the event term gathers the few
  (patient, disease) cells with an event at their exit, instead of multiplying N x D x T masks;
* the GP prior over all patients and signatures is one [N(K+1), T] x [T, T] product (float64),
  whose result is also its gradient.
The straightforward formulation lives in ``training.reference``; the tests hold both equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.kernels import JITTER, lambda_kernel, rbf_kernel

PI_MIN, PI_MAX = 1e-8, 1.0 - 1e-8
HEALTHY_MEAN = -5.0
PRIOR_WEIGHT = 1e-4
CHUNK_ELEMENTS = 1 << 20  # ~4 MB float32 chunk buffers: the fused passes stay in cache


@dataclass
class Block:
    """A patient range and the time chunks it is processed in; ``order`` lists the block's
    (patient, disease) cells by exit time, so the cells already exited at time t, which add
    nothing to the likelihood, are ``order[:exited_before[t]]``: masks as indices."""

    n0: int
    n1: int
    time_chunks: list[tuple[int, int]]
    order: torch.Tensor
    exited_before: list[int]


@dataclass
class Problem:
    """Everything that stays fixed while one age is trained, already on the training device."""

    g: torch.Tensor  # [N, P+1] standardised covariates (PRS + sex)
    refs: torch.Tensor  # [K] or [K, T] signature references
    exit_time: torch.Tensor  # [N, D] long, capped at the age: E_a
    sig_phi: torch.Tensor  # [T_used, K+1, D] sigmoid(phi), time-major for bmm
    sig_phi_t: torch.Tensor  # [T_used, D, K+1] its transpose, for the gradient
    blocks: list[Block]
    chunk_shape: tuple[int, int, int]  # largest (times, patients, diseases) chunk buffer
    event_index: torch.Tensor  # [2, n_events] (t, n) of cells with Y[n, d, E_a] = 1
    event_sig_phi: torch.Tensor  # [n_events, K+1] sigmoid(phi) at each event
    kernel_inv: torch.Tensor  # [T, T] float64 inverse of K_lambda
    sig_phi_min: float
    sig_phi_max: float
    n_times: int
    prior_weight: float = PRIOR_WEIGHT

    @property
    def n_patients(self) -> int:
        return self.g.shape[0]

    @property
    def n_signatures(self) -> int:
        return self.sig_phi.shape[1] - 1

    @property
    def t_used(self) -> int:
        return self.sig_phi.shape[0]


def _plan_blocks(exit_time: torch.Tensor, t_used: int, chunk_elements: int) -> list[Block]:
    """Chunks of about ``chunk_elements`` cells: several times for all patients when a time step
    is small, else one time step for a patient range."""
    n, d = exit_time.shape
    if n * d <= chunk_elements:
        step_t, step_n = max(1, chunk_elements // (n * d)), n
    else:
        step_t, step_n = 1, max(1, chunk_elements // d)
    times = [(t0, min(t0 + step_t, t_used)) for t0 in range(0, t_used, step_t)]
    blocks = []
    for n0 in range(0, n, step_n):
        n1 = min(n0 + step_n, n)
        exits = exit_time[n0:n1].reshape(-1)
        order = torch.argsort(exits, stable=True)
        counts = torch.searchsorted(exits[order], torch.arange(t_used), right=False)
        blocks.append(Block(n0, n1, times, order, counts.tolist()))
    return blocks


def build_problem(
    g: torch.Tensor,
    refs: torch.Tensor,
    exit_time: torch.Tensor,
    y_at_exit: torch.Tensor,
    phi: torch.Tensor,
    device: torch.device | str = "cpu",
    prior_weight: float = PRIOR_WEIGHT,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> Problem:
    """Precomputes the fixed tensors. ``exit_time`` must already be capped at the age."""
    n_times = phi.shape[2]
    t_used = int(exit_time.max()) + 1  # nothing after the latest exit enters the likelihood
    sig = torch.sigmoid(phi.float())
    sig_phi = sig[:, :, :t_used].permute(2, 0, 1).contiguous()
    ev_n, ev_d = torch.nonzero(y_at_exit, as_tuple=True)
    ev_t = exit_time[ev_n, ev_d]
    kernel_inv = torch.linalg.inv(lambda_kernel(n_times))
    blocks = _plan_blocks(exit_time, t_used, chunk_elements)
    chunk_t = max(t1 - t0 for t0, t1 in blocks[0].time_chunks)
    chunk_n = max(b.n1 - b.n0 for b in blocks)
    dev = torch.device(device)
    for block in blocks:
        block.order = block.order.to(dev)
    return Problem(
        g=g.float().to(dev),
        refs=refs.float().to(dev),
        exit_time=exit_time.to(dev),
        sig_phi=sig_phi.to(dev),
        sig_phi_t=sig_phi.transpose(1, 2).contiguous().to(dev),
        blocks=blocks,
        chunk_shape=(chunk_t, chunk_n, phi.shape[1]),
        event_index=torch.stack([ev_t, ev_n]).to(dev),
        event_sig_phi=sig_phi[ev_t, :, ev_d].to(dev),
        kernel_inv=(0.5 * (kernel_inv + kernel_inv.T)).to(dev),
        sig_phi_min=float(sig.min()),
        sig_phi_max=float(sig.max()),
        n_times=n_times,
        prior_weight=prior_weight,
    )


def initial_parameters(
    g: torch.Tensor, refs: torch.Tensor, y_mean: torch.Tensor, psi: torch.Tensor, n_times: int, seed: int
) -> dict[str, torch.Tensor]:
    """Seeded start: gamma[:, k] = least squares of G on the centred mean logit onset rate over
    signature k's diseases (psi > 0); lambda = prior mean + GP(0, 0.01 K + 1e-6 I) draw.
    Runs on the CPU in float64 so every device starts from the same numbers."""
    k_count = refs.shape[0]
    g64 = g.double()
    member = (psi[:k_count] > 0).double()  # [K, D]
    logit = torch.logit(y_mean.double().clamp(1e-6, 1 - 1e-6))  # [N, D]
    counts = member.sum(dim=1)
    per_signature = (logit @ member.T) / counts.clamp_min(1)  # [N, K]
    centred = (per_signature - per_signature.mean(dim=0)) * (counts > 0)
    gamma = torch.zeros(g.shape[1], k_count + 1, dtype=torch.float64)
    gamma[:, :k_count] = torch.linalg.lstsq(g64, centred).solution

    refs64 = refs.double() if refs.dim() == 2 else refs.double()[:, None]
    mean = torch.cat(
        [refs64[None] + (g64 @ gamma[:, :k_count])[:, :, None], torch.full((g.shape[0], 1, 1), HEALTHY_MEAN, dtype=torch.float64)],
        dim=1,
    )
    noise_cov = 0.01 * rbf_kernel(n_times, n_times / 4.0) + JITTER * torch.eye(n_times, dtype=torch.float64)
    chol = torch.linalg.cholesky(noise_cov)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(g.shape[0], k_count + 1, n_times, generator=generator, dtype=torch.float64) @ chol.T
    return {
        "lambda_": (mean + noise).float(),
        "gamma": gamma.float(),
        "kappa": torch.ones((), dtype=torch.float32),
    }


def _prior_mean(problem: Problem, gamma: torch.Tensor) -> torch.Tensor:
    """mu [N, K+1, 1 or T]: r_k + (G gamma)_k for the signatures, -5 for the healthy state."""
    genetic = problem.g @ gamma[:, : problem.n_signatures]  # [N, K]
    refs = problem.refs if problem.refs.dim() == 2 else problem.refs[:, None]  # [K, 1|T]
    signatures = refs[None, :, :] + genetic[:, :, None]
    healthy = torch.full_like(signatures[:, :1, :], HEALTHY_MEAN)
    return torch.cat([signatures, healthy], dim=1)


class _GaussianProcessPrior(torch.autograd.Function):
    """0.5 * sum_{n,k} (lambda - mu)^T K^-1 (lambda - mu) with one [N*(K+1), T] x [T, T] product.

    K_lambda has condition number ~3e7, so the product is taken in float64: in float32 the value
    is off by ~1e-4 and d/dmu (a sum over time of K^-1 (lambda - mu)) by ~10%, which would steer
    gamma by rounding noise. The product is also the gradient, so nothing is recomputed."""

    @staticmethod
    def forward(ctx, lam: torch.Tensor, mu: torch.Tensor, kernel_inv: torch.Tensor) -> torch.Tensor:
        deviation = lam.double() - mu.double()
        solved = deviation @ kernel_inv
        ctx.mu_is_constant_in_time = mu.shape[-1] == 1
        ctx.save_for_backward(solved)
        return (0.5 * torch.dot(deviation.reshape(-1), solved.reshape(-1))).to(lam.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (solved,) = ctx.saved_tensors
        grad_lam = (solved * grad_out).to(grad_out.dtype)
        grad_mu = solved.sum(dim=-1, keepdim=True) if ctx.mu_is_constant_in_time else solved
        return grad_lam, (-grad_mu * grad_out).to(grad_out.dtype), None


def gp_prior(problem: Problem, lam: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """(1/N) sum_{n,k} 0.5 (lambda - mu)^T K^-1 (lambda - mu), all patients and signatures at once."""
    prior = _GaussianProcessPrior.apply(lam, _prior_mean(problem, gamma), problem.kernel_inv)
    return prior / problem.n_patients


class _SurvivalLogLik(torch.autograd.Function):
    """S = sum_{t <= E_a} log(1 - pi) with dS/dtheta and dS/dkappa from the same pass.

    Per cache-sized chunk: q = 1 - pi = theta @ (1 - kappa sigmoid(phi)) (theta sums to 1, so no
    elementwise pass is needed for it), exited cells set to q = 1 by index, w = 1/q, then one
    product sum_d w sigmoid(phi) gives the gradient at theta's size and log q gives S. Only valid
    where the clamp on pi cannot bind (checked by the caller)."""

    @staticmethod
    def forward(ctx, theta: torch.Tensor, kappa: torch.Tensor, problem: Problem) -> torch.Tensor:
        want_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        k = float(kappa)
        survival_weights = 1.0 - k * problem.sig_phi  # [T_used, K+1, D], small
        chunk = torch.empty(problem.chunk_shape, dtype=theta.dtype, device=theta.device)
        inverse = torch.empty_like(chunk) if want_grad else None
        weighted = torch.empty_like(theta) if want_grad else None
        total = torch.zeros((), dtype=torch.float64, device=theta.device)
        n_diseases = problem.chunk_shape[2]
        for block in problem.blocks:
            n0, n1 = block.n0, block.n1
            for t0, t1 in block.time_chunks:
                size = (t1 - t0, n1 - n0, n_diseases)
                q = chunk.view(-1)[: size[0] * size[1] * size[2]].view(size)
                torch.bmm(theta[t0:t1, n0:n1], survival_weights[t0:t1], out=q)
                flat = q.view(size[0], -1)
                for t in range(t0, t1):
                    if block.exited_before[t]:
                        flat[t - t0].index_fill_(0, block.order[: block.exited_before[t]], 1.0)
                if want_grad:
                    w = torch.reciprocal(q, out=inverse.view(-1)[: q.numel()].view(size))
                    w_flat = w.view(size[0], -1)
                    for t in range(t0, t1):
                        if block.exited_before[t]:
                            w_flat[t - t0].index_fill_(0, block.order[: block.exited_before[t]], 0.0)
                    torch.bmm(w, problem.sig_phi_t[t0:t1], out=weighted[t0:t1, n0:n1])
                total += q.log_().sum()
        if want_grad:
            ctx.save_for_backward(theta, weighted)
            ctx.kappa = k
        return total.to(theta.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        theta, weighted = ctx.saved_tensors  # weighted = sum_d [t <= E_a] sigmoid(phi) / (1 - pi)
        grad_theta = weighted * (-ctx.kappa * grad_out)
        grad_kappa = -(theta * weighted).sum() * grad_out
        return grad_theta, grad_kappa.reshape(()), None


def clamp_cannot_bind(problem: Problem, kappa: float) -> bool:
    """pi = kappa * (convex mix of sigmoid(phi)) lies in [kappa*min, kappa*max]; if that is inside
    the clamp range the clamp is the identity and the fused path is exact."""
    margin = 1e-6  # theta sums to 1 only up to rounding
    return kappa * problem.sig_phi_min * (1 - margin) > PI_MIN and kappa * problem.sig_phi_max * (1 + margin) < PI_MAX


def _log_one_minus_clamped(pi: torch.Tensor) -> torch.Tensor:
    """log(1 - clamp(pi, 1e-8, 1 - 1e-8)); the upper bound is applied to 1 - pi because
    1 - 1e-8 rounds to 1 in float32 and would give log(0)."""
    return torch.log((1 - pi.clamp(min=PI_MIN)).clamp(min=PI_MIN))


def _survival_clamped(theta: torch.Tensor, kappa: torch.Tensor, problem: Problem) -> torch.Tensor:
    """The same sum through autograd with an explicit clamp, for the rare epochs where it binds."""
    total = theta.new_zeros(())
    times = torch.arange(problem.t_used, device=theta.device)[:, None, None]
    for t0, t1 in problem.blocks[0].time_chunks:
        pi = kappa * torch.bmm(theta[t0:t1], problem.sig_phi[t0:t1])
        exited = times[t0:t1] > problem.exit_time[None]
        total = total + _log_one_minus_clamped(pi).masked_fill(exited, 0.0).sum()
    return total


def theta_time_major(problem: Problem, lam: torch.Tensor) -> torch.Tensor:
    """softmax_k(lambda) for t < T_used, laid out [T_used, N, K+1] for batched products over time."""
    # softmax along K in lambda's own layout is ~6x faster than along a short last axis
    return torch.softmax(lam[:, :, : problem.t_used], dim=1).permute(2, 0, 1).contiguous()


def data_loss(problem: Problem, lam: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """-(1/N) sum_{n,d} [sum_{t<E} log(1-pi) + Y_E log pi_E + (1-Y_E) log(1-pi_E)], written as
    sum_{t<=E} log(1-pi) plus, at the few events, log pi_E - log(1-pi_E)."""
    theta = theta_time_major(problem, lam)
    if clamp_cannot_bind(problem, float(kappa.detach())):
        survival = _SurvivalLogLik.apply(theta, kappa, problem)
    else:
        survival = _survival_clamped(theta, kappa, problem)
    ev_t, ev_n = problem.event_index
    pi_event = kappa * (theta[ev_t, ev_n] * problem.event_sig_phi).sum(dim=1)
    events = (torch.log(pi_event.clamp(PI_MIN, PI_MAX)) - _log_one_minus_clamped(pi_event)).sum()
    return -(survival + events) / problem.n_patients


def total_loss(problem: Problem, params: dict[str, torch.Tensor]) -> torch.Tensor:
    lam, gamma, kappa = params["lambda_"], params["gamma"], params["kappa"]
    return data_loss(problem, lam, kappa) + problem.prior_weight * gp_prior(problem, lam, gamma)


@torch.no_grad()
def predict_pi(phi: torch.Tensor, lam: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """pi [N, D, T] over all times (the job's main output), clamped as in training."""
    theta = torch.softmax(lam, dim=1)  # [N, K+1, T]
    sig = torch.sigmoid(phi.to(lam.device, lam.dtype))  # [K+1, D, T]
    pi = torch.bmm(theta.permute(2, 0, 1), sig.permute(2, 0, 1))  # [T, N, D]
    return pi.mul_(kappa).clamp_(PI_MIN, PI_MAX).permute(1, 2, 0).contiguous()
