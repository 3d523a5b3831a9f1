"""The fixed-phi Aladyn model for one age: loss, gradients, initialisation and pi.

Why it is fast and lean compared with the reference trainer (figures: docs/training.md):
* lambda is trained in a working layout, [T, K+1, N] with the patients in order of their latest
  exit (``Problem.to_working``): a block of patients is then a slice whose softmax over k and
  whose products need no transposes (a [B, K+1, T] -> [T, K+1, B] copy costs ~80x a plain one);
* a block stops at its own latest exit instead of computing cells that have all exited; the
  cells that exit early inside a block are masked by index (a prefix of the block's cells sorted
  by exit time), not by N x D x T masks; nothing N x D x T is ever built;
* the products are disease-major, [D, K+1] x [K+1, B] and [K+1, D] x [D, B], the shapes MKL runs
  fastest with a dimension of K + 1 = 21, and one pass yields the loss and its gradient;
* sum log(1 - pi) is the log of running products over time: one multiply per cell instead of one
  log (a float32 log costs ~5x a multiply); the events ride in the same pass (their cell holds
  -pi, so the product gains pi and 1 / cell is the gradient weight log pi needs);
* the GP prior is one [T, T] x [T, 4096] float64 product per cache-sized chunk of lambda.
The straightforward formulation lives in ``training.reference``; the tests hold both equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from training.kernels import JITTER, lambda_kernel, rbf_kernel

PI_MIN, PI_MAX = 1e-8, 1.0 - 1e-8
HEALTHY_MEAN = -5.0
PRIOR_WEIGHT = 1e-4
CHUNK_ELEMENTS = 1 << 19  # cells per survival chunk: ~2 MB float32, the two cores' L2 together
PRIOR_CHUNK_COLUMNS = 4096  # [T, 4096] float64: ~1.7 MB, where the float64 product is fastest
PRODUCT_FLOOR = 1e-30  # running products of 1 - pi are folded into logs before going below this


@dataclass
class Block:
    """Patients ``n0 .. n1`` of the working order, processed for times ``< t_end`` (one past the
    block's latest exit) in ``time_chunks``. Its cells are laid out [D, B] (flat position
    d * B + n); ``order`` lists them by exit time, so those already exited at time t (they add
    nothing) are ``order[:exited_before[t]]``: masks as indices. Events (Y = 1 at the exit) are
    sorted by time; those at time t are ``events_before[t] .. events_before[t + 1]``."""

    n0: int
    n1: int
    t_end: int
    time_chunks: list[tuple[int, int]]
    order: torch.Tensor  # long, flat positions of the cells exited before t_end - 1
    exited_before: list[int]
    event_pos: torch.Tensor  # [n_events] long, flat position of each event's cell
    event_n: torch.Tensor  # [n_events] long, its patient within the block
    event_sig_phi: torch.Tensor  # [K+1, n_events] sigmoid(phi) at its disease and time
    events_before: list[int]

    @property
    def size(self) -> int:
        return self.n1 - self.n0


@dataclass
class Problem:
    """Everything that stays fixed while one age is trained, already on the training device.
    Per-patient tensors are in the working order ``order`` (slice rows by latest exit)."""

    order: torch.Tensor  # [N] long: working position -> slice row
    g: torch.Tensor  # [N, P+1] standardised covariates (PRS + sex), working order
    refs: torch.Tensor  # [K] or [K, T] signature references
    exit_time: torch.Tensor  # [D, N] long, capped at the age: E_a, working order
    y_at_exit: torch.Tensor  # [D, N] bool, working order
    sig_phi: torch.Tensor  # [T_used, K+1, D] sigmoid(phi), time-major
    sig_phi_t: torch.Tensor  # [T_used, D, K+1] its transpose
    blocks: list[Block]
    chunk_shape: tuple[int, int, int]  # largest (times, diseases, patients) chunk buffer
    kernel_inv: torch.Tensor  # [T, T] float64 inverse of K_lambda
    sig_phi_min: float
    sig_phi_max: float
    n_times: int
    observed_cells: int  # (patient, disease, time) cells in the likelihood: sum of (E_a + 1)
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

    def to_working(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``params`` (or Adam state) with lambda [N, K+1, T] moved to the working layout."""
        return {name: t[self.order.to(t.device)].permute(2, 1, 0).contiguous() if name == "lambda_" else t
                for name, t in params.items()}

    def to_standard(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The inverse of ``to_working``: lambda back to [N, K+1, T] in slice order."""
        out = {}
        for name, t in params.items():
            if name == "lambda_":
                standard = torch.empty(t.shape[2], t.shape[1], t.shape[0], dtype=t.dtype, device=t.device)
                standard[self.order.to(t.device)] = t.permute(2, 1, 0)
                t = standard
            out[name] = t
        return out


def _plan_blocks(exit_time: torch.Tensor, y_at_exit: torch.Tensor, sig_phi: torch.Tensor, chunk_elements: int) -> list[Block]:
    """Blocks of about ``chunk_elements // D`` consecutive patients of the working order, each
    chunked over time to about ``chunk_elements`` cells. ``exit_time``, ``y_at_exit``: [D, N]."""
    d, n = exit_time.shape
    step_n = min(n, max(1, chunk_elements // d))
    blocks = []
    for n0 in range(0, n, step_n):
        n1 = min(n0 + step_n, n)
        exits = exit_time[:, n0:n1]
        t_end = int(exits.max()) + 1
        flat = exits.reshape(-1)
        order = torch.argsort(flat, stable=True)
        exited_before = torch.searchsorted(flat[order], torch.arange(t_end), right=False).tolist()
        step_t = max(1, chunk_elements // flat.numel())
        ev_d, ev_n = torch.nonzero(y_at_exit[:, n0:n1], as_tuple=True)
        ev_t = exits[ev_d, ev_n]
        by_time = torch.argsort(ev_t, stable=True)
        ev_d, ev_n, ev_t = ev_d[by_time], ev_n[by_time], ev_t[by_time]
        blocks.append(Block(
            n0=n0, n1=n1, t_end=t_end,
            time_chunks=[(t0, min(t0 + step_t, t_end)) for t0 in range(0, t_end, step_t)],
            order=order[: exited_before[-1]].clone(), exited_before=exited_before,
            event_pos=ev_d * (n1 - n0) + ev_n, event_n=ev_n, event_sig_phi=sig_phi[ev_t, :, ev_d].T.contiguous(),
            events_before=torch.searchsorted(ev_t, torch.arange(t_end + 1), right=False).tolist(),
        ))
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
    sig_phi = sig[:, :, :t_used].permute(2, 0, 1).contiguous()  # [T_used, K+1, D]
    order = torch.argsort(exit_time.max(dim=1).values, descending=True, stable=True)
    exit_w, y_w = exit_time[order].T.contiguous(), y_at_exit[order].T.contiguous()
    blocks = _plan_blocks(exit_w, y_w, sig_phi, chunk_elements)
    dev = torch.device(device)
    for block in blocks:
        for name in ("order", "event_pos", "event_n", "event_sig_phi"):
            setattr(block, name, getattr(block, name).to(dev))
    kernel_inv = torch.linalg.inv(lambda_kernel(n_times))
    chunk_t = max(t1 - t0 for block in blocks for t0, t1 in block.time_chunks)
    return Problem(
        order=order.to(dev),
        g=g.float()[order].to(dev),
        refs=refs.float().to(dev),
        exit_time=exit_w.to(dev),
        y_at_exit=y_w.to(dev),
        sig_phi=sig_phi.to(dev),
        sig_phi_t=sig_phi.transpose(1, 2).contiguous().to(dev),
        blocks=blocks,
        chunk_shape=(chunk_t, phi.shape[1], max(block.size for block in blocks)),
        kernel_inv=(0.5 * (kernel_inv + kernel_inv.T)).to(dev),
        sig_phi_min=float(sig.min()),
        sig_phi_max=float(sig.max()),
        n_times=n_times,
        observed_cells=int((exit_time + 1).sum()),
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
        [
            refs64[None] + (g64 @ gamma[:, :k_count])[:, :, None],
            torch.full((g.shape[0], 1, refs64.shape[1]), HEALTHY_MEAN, dtype=torch.float64),
        ],
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



def _prior(
    problem: Problem, lam: torch.Tensor, gamma: torch.Tensor, grad_lam: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """sum_{n,k} 0.5 (lambda - mu)^T K^-1 (lambda - mu) for working-layout ``lam``; with
    ``grad_lam`` given, writes d/dlambda into it and returns d/dgamma (float64) too.

    mu = r_k + (G gamma)_k for the signatures and -5 for the healthy state. K_lambda has
    condition number ~3e7, so the product is taken in float64: in float32 the value is off by
    ~1e-4 and d/dmu (a sum over time of K^-1 (lambda - mu)) by ~10%, which would steer gamma by
    rounding noise. K^-1 (lambda - mu) is also the gradient, so nothing is recomputed. lambda is
    taken as [T, (K+1) N] in runs of ``PRIOR_CHUNK_COLUMNS`` columns (column k N + n)."""
    k_count, n_times, n = problem.n_signatures, problem.n_times, problem.n_patients
    f64 = {"dtype": torch.float64, "device": lam.device}
    gamma64, g64 = gamma.double(), problem.g.double()
    refs = problem.refs.double()
    mean = torch.full((k_count + 1, n), HEALTHY_MEAN, **f64)  # the part of mu constant in time
    mean[:k_count] = (g64 @ gamma64[:, :k_count]).T + (refs[:, None] if refs.dim() == 1 else 0.0)
    mean = mean.view(-1)
    refs_in_time = torch.cat([refs.T, torch.zeros(n_times, 1, **f64)], dim=1) if refs.dim() == 2 else None  # [T, K+1]
    columns = lam.view(n_times, -1)
    grad_columns = grad_lam.view(n_times, -1) if grad_lam is not None else None
    column_sums = torch.empty(columns.shape[1], **f64) if grad_lam is not None else None
    solved_buffer = torch.empty(n_times * PRIOR_CHUNK_COLUMNS, **f64)
    total = torch.zeros((), **f64)
    for c0 in range(0, columns.shape[1], PRIOR_CHUNK_COLUMNS):
        c1 = min(c0 + PRIOR_CHUNK_COLUMNS, columns.shape[1])
        deviation = columns[:, c0:c1].double()
        deviation -= mean[c0:c1]
        if refs_in_time is not None:
            deviation -= refs_in_time.index_select(1, torch.arange(c0, c1, device=lam.device) // n)
        solved = torch.mm(problem.kernel_inv, deviation, out=solved_buffer[: deviation.numel()].view(deviation.shape))
        total += torch.dot(deviation.view(-1), solved.view(-1))
        if grad_lam is not None:
            grad_columns[:, c0:c1] = solved
            torch.sum(solved, dim=0, out=column_sums[c0:c1])
    if grad_lam is None:
        return 0.5 * total, None
    grad_gamma = torch.zeros(gamma.shape, **f64)
    grad_gamma[:, :k_count] = -(g64.T @ column_sums.view(k_count + 1, n)[:k_count].T)  # d mu / d gamma is constant in time
    return 0.5 * total, grad_gamma


class _GaussianProcessPrior(torch.autograd.Function):
    """The prior alone, for the fallback path and the tests (the fused loss calls ``_prior``)."""

    @staticmethod
    def forward(ctx, lam: torch.Tensor, gamma: torch.Tensor, problem: Problem) -> torch.Tensor:
        want_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        grad_lam = torch.empty_like(lam) if want_grad else None
        total, grad_gamma = _prior(problem, lam, gamma, grad_lam)
        if want_grad:
            ctx.save_for_backward(grad_lam, grad_gamma.to(gamma.dtype))
        return total.to(lam.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_lam, grad_gamma = ctx.saved_tensors
        return grad_lam * grad_out, grad_gamma * grad_out, None


def gp_prior(problem: Problem, lam: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """(1/N) sum_{n,k} 0.5 (lambda - mu)^T K^-1 (lambda - mu), lambda in the working layout."""
    return _GaussianProcessPrior.apply(lam, gamma, problem) / problem.n_patients


def _products_before_underflow(problem: Problem, kappa: float) -> int:
    """How many chunk factors a float32 running product may take before it could fall below
    ``PRODUCT_FLOOR``: each factor is 1 - pi >= 1 - kappa max sigmoid(phi), except at most one
    (a cell has one exit) that is pi >= kappa min sigmoid(phi)."""
    smallest = 1.0 - kappa * problem.sig_phi_max
    if smallest >= 1.0:
        return problem.t_used
    event = kappa * problem.sig_phi_min
    return max(1, 1 + int(math.log(PRODUCT_FLOOR / min(event, 1.0)) / math.log(smallest)))


def _block_data(
    problem: Problem, block: Block, theta: torch.Tensor, kappa: float, survival_weights: torch.Tensor, buffers: dict,
    max_factors: int, want_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The block's log-likelihood, sum_{t <= E_a} log(1 - pi) + sum_events (log pi - log(1 - pi)),
    and, when asked, weighted [t_end, K+1, B] with d/dtheta = -kappa * weighted (up to a term
    constant in k, which the softmax cancels) and d/dkappa = -sum(theta * weighted).

    Cell value c = (1 - kappa sigmoid(phi))^T theta = 1 - pi (theta sums to 1, so no elementwise
    pass is needed for it); an exited cell gets c = 1 by index, an event cell at its exit
    c = -pi. The log-likelihood is then sum log |c|, and with w = 1 / c (0 where exited), both
    log(1 - pi) and log pi have d/dtheta = -kappa sigmoid(phi) w (+ const), d/dkappa =
    -(theta . sigmoid(phi)) w: one product over d gives the gradient. The log is taken of running
    products, folded every ``max_factors`` chunks."""
    n_d, size = problem.chunk_shape[1], block.size
    cells = n_d * size
    product = buffers["product"].view(-1)[: problem.chunk_shape[0] * cells].view(-1, n_d, size).fill_(1.0)
    weighted = theta.new_empty(theta.shape) if want_grad else None
    total = torch.zeros((), dtype=torch.float64, device=theta.device)
    factors = 0
    for t0, t1 in block.time_chunks:
        if factors == max_factors:
            total += product.abs_().log_().sum(dtype=torch.float64)
            product.fill_(1.0)
            factors = 0
        c = buffers["chunk"].view(-1)[: (t1 - t0) * cells].view(t1 - t0, n_d, size)
        torch.bmm(survival_weights[t0:t1], theta[t0:t1], out=c)
        for t in range(t0, t1):
            flat = c[t - t0].view(-1)
            if block.exited_before[t]:
                flat.index_fill_(0, block.order[: block.exited_before[t]], 1.0)
            e0, e1 = block.events_before[t], block.events_before[t + 1]
            if e1 > e0:
                mixed = (theta[t].index_select(1, block.event_n[e0:e1]) * block.event_sig_phi[:, e0:e1]).sum(dim=0)
                flat.index_put_((block.event_pos[e0:e1],), mixed.mul_(-kappa))
        product[: t1 - t0].mul_(c)
        factors += 1
        if want_grad:
            c.reciprocal_()
            for t in range(t0, t1):
                if block.exited_before[t]:
                    c[t - t0].view(-1).index_fill_(0, block.order[: block.exited_before[t]], 0.0)
            torch.bmm(problem.sig_phi[t0:t1], c, out=weighted[t0:t1])
    total += product.abs_().log_().sum(dtype=torch.float64)
    return total, weighted


def _fused_loss(
    problem: Problem, lam: torch.Tensor, gamma: torch.Tensor, kappa: torch.Tensor, grads: dict[str, torch.Tensor] | None
) -> torch.Tensor:
    """The whole loss, -(1/N) log-likelihood + (w/N) prior, in one pass over patient blocks;
    with ``grads`` (buffers shaped like lambda_, gamma, kappa) it writes the gradient into them.
    Only valid where the clamp on pi cannot bind (checked by the caller)."""
    k = float(kappa)
    survival_weights = 1.0 - k * problem.sig_phi_t  # [T_used, D, K+1], small
    max_factors = _products_before_underflow(problem, k)
    buffers = {"chunk": lam.new_empty(problem.chunk_shape), "product": lam.new_empty(problem.chunk_shape)}
    grad_lam = grads["lambda_"] if grads is not None else None
    prior, grad_gamma = _prior(problem, lam, gamma, grad_lam)
    loglik = torch.zeros((), dtype=torch.float64, device=lam.device)
    d_kappa = torch.zeros((), dtype=torch.float64, device=lam.device)  # of the log-likelihood
    scale = 1.0 / problem.n_patients
    if grads is not None:
        grad_lam.mul_(problem.prior_weight * scale)
    for block in problem.blocks:
        theta = torch.softmax(lam[: block.t_end, :, block.n0 : block.n1], dim=1)  # [t, K+1, B]
        value, weighted = _block_data(problem, block, theta, k, survival_weights, buffers, max_factors, grads is not None)
        loglik += value
        if grads is not None:
            # d(-loglik / N)/dtheta = (kappa / N) w, w = weighted; through the softmax that is
            # (kappa / N) theta (w - sum_k theta w), and d/dkappa = sum theta w / N: one theta w
            weighted.mul_(theta)
            per_cell = weighted.sum(dim=1, keepdim=True)  # [t, 1, B]
            d_kappa -= per_cell.sum(dtype=torch.float64)
            grad_lam[: block.t_end, :, block.n0 : block.n1].add_(weighted.addcmul_(theta, per_cell, value=-1.0), alpha=k * scale)
    if grads is not None:
        grads["gamma"].copy_(grad_gamma * (problem.prior_weight * scale))
        grads["kappa"].copy_(-d_kappa * scale)
    return ((problem.prior_weight * prior - loglik) * scale).to(lam.dtype)


class _FusedLoss(torch.autograd.Function):
    """``_fused_loss`` for autograd: the forward pass computes the gradient, backward scales it."""

    @staticmethod
    def forward(ctx, lam: torch.Tensor, gamma: torch.Tensor, kappa: torch.Tensor, problem: Problem) -> torch.Tensor:
        grads = None
        if any(ctx.needs_input_grad[:3]):
            grads = {"lambda_": torch.empty_like(lam), "gamma": torch.empty_like(gamma), "kappa": torch.empty_like(kappa)}
        ctx.grads = grads
        return _fused_loss(problem, lam, gamma, kappa, grads)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grads, ctx.grads = ctx.grads, None  # handed over, not copied: autograd keeps them as .grad
        return grads["lambda_"].mul_(grad_out), grads["gamma"].mul_(grad_out), grads["kappa"].mul_(grad_out), None


def clamp_cannot_bind(problem: Problem, kappa: float) -> bool:
    """pi = kappa * (convex mix of sigmoid(phi)) lies in [kappa*min, kappa*max]; if that is inside
    the clamp range the clamp is the identity and the fused path is exact."""
    margin = 1e-6  # theta sums to 1 only up to rounding
    return kappa * problem.sig_phi_min * (1 - margin) > PI_MIN and kappa * problem.sig_phi_max * (1 + margin) < PI_MAX


def _log_one_minus_clamped(pi: torch.Tensor) -> torch.Tensor:
    """log(1 - clamp(pi, 1e-8, 1 - 1e-8)); the upper bound is applied to 1 - pi because
    1 - 1e-8 rounds to 1 in float32 and would give log(0)."""
    return torch.log((1 - pi.clamp(min=PI_MIN)).clamp(min=PI_MIN))


def _data_loss_clamped(problem: Problem, lam: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """The data term through autograd with an explicit clamp, for the rare epochs where it binds."""
    theta = torch.softmax(lam[: problem.t_used], dim=1)  # [T_used, K+1, N]
    d, n = problem.exit_time.shape
    step = max(1, CHUNK_ELEMENTS // (n * d))
    times = torch.arange(problem.t_used, device=lam.device)[:, None, None]
    total = lam.new_zeros(())
    for t0 in range(0, problem.t_used, step):
        t1 = min(t0 + step, problem.t_used)
        pi = kappa * torch.bmm(problem.sig_phi_t[t0:t1], theta[t0:t1])  # [t, D, N]
        exited = times[t0:t1] > problem.exit_time[None]
        total = total + _log_one_minus_clamped(pi).masked_fill(exited, 0.0).sum()
    ev_d, ev_n = torch.nonzero(problem.y_at_exit, as_tuple=True)
    ev_t = problem.exit_time[ev_d, ev_n]
    pi_event = kappa * (theta[ev_t, :, ev_n] * problem.sig_phi[ev_t, :, ev_d]).sum(dim=1)
    events = (torch.log(pi_event.clamp(PI_MIN, PI_MAX)) - _log_one_minus_clamped(pi_event)).sum()
    return -(total + events) / problem.n_patients


def total_loss(problem: Problem, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """-(1/N) log-likelihood + (w/N) GP prior, ``params`` in the working layout
    (``Problem.to_working``); its backward gives d/dlambda, d/dgamma and d/dkappa."""
    lam, gamma, kappa = params["lambda_"], params["gamma"], params["kappa"]
    if clamp_cannot_bind(problem, float(kappa.detach())):
        return _FusedLoss.apply(lam, gamma, kappa, problem)
    return _data_loss_clamped(problem, lam, kappa) + problem.prior_weight * gp_prior(problem, lam, gamma)


def loss_and_grad(problem: Problem, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the job runs each epoch: the loss (detached), with its gradient written into each
    parameter's ``.grad``. The fused path reuses the ``.grad`` tensors of the previous epoch, so
    an epoch allocates nothing of lambda's size (each fresh 44 MB tensor costs ~11,000 page
    faults at N = 10,000); where the clamp may bind, it is ``total_loss`` and autograd."""
    if not clamp_cannot_bind(problem, float(params["kappa"].detach())):
        for p in params.values():
            p.grad = None
        loss = total_loss(problem, params)
        loss.backward()
        return loss.detach()
    grads = {name: p.grad if p.grad is not None else torch.empty_like(p) for name, p in params.items()}
    with torch.no_grad():
        loss = _fused_loss(problem, params["lambda_"], params["gamma"], params["kappa"], grads)
    for name, p in params.items():
        p.grad = grads[name]
    return loss


@torch.no_grad()
def predict_pi(phi: torch.Tensor, lam: torch.Tensor, kappa: torch.Tensor, chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """pi [N, D, T] over all times (the job's main output) from lambda [N, K+1, T], clamped as in
    training; computed in patient chunks straight into the output, its only N x D x T tensor."""
    n, _, n_times = lam.shape
    sig = torch.sigmoid(phi.to(lam.device, lam.dtype)).permute(2, 0, 1)  # [T, K+1, D]
    pi = lam.new_empty(n, phi.shape[1], n_times)
    step = max(1, chunk_elements // (phi.shape[1] * n_times))
    for n0 in range(0, n, step):
        theta = torch.softmax(lam[n0 : n0 + step], dim=1).permute(2, 0, 1)  # [T, c, K+1]
        chunk = torch.bmm(theta, sig).mul_(kappa).clamp_(PI_MIN, PI_MAX)  # [T, c, D]
        pi[n0 : n0 + step] = chunk.permute(1, 2, 0)
    return pi
