"""The fast loss equals the direct (reference-style, looped) formulation, value and gradient."""

from __future__ import annotations

import pytest
import torch

from training import model
from training.data import load_slice
from training.layout import ENROLLMENT_MODEL_FILE
from training.model import build_problem, gp_prior, initial_parameters, loss_and_grad, predict_pi, total_loss
from training.optim import Adam
from training.reference import reference_loss


def _setup(tiny_inputs, age: int = 55, chunk_elements: int = 1 << 20, kappa: float = 0.9, refs_in_time: bool = False):
    data = load_slice(tiny_inputs, 5, 65, age, ENROLLMENT_MODEL_FILE)
    if refs_in_time:  # signature_refs may be [K, T]
        data.refs = data.refs[:, None] + 0.3 * torch.sin(torch.arange(data.phi.shape[2]) / 7.0)[None, :]
    problem = build_problem(data.g, data.refs, data.exit_time_capped, data.y_at_capped_exit, data.phi, chunk_elements=chunk_elements)
    params = initial_parameters(data.g, data.refs, data.y_mean, data.psi, problem.n_times, seed=7)
    params["kappa"] = torch.tensor(kappa)
    y = torch.load(tiny_inputs / "Y_tensor.pt")[5:65]
    return data, problem, params, y


def _reference(data, params, y):
    p64 = {name: t.detach().double().requires_grad_(True) for name, t in params.items()}
    loss = reference_loss(
        p64["lambda_"], p64["gamma"], p64["kappa"], data.phi.double(), data.g.double(), data.refs.double(),
        data.exit_time_capped, y.double(),
    )
    loss.backward()
    return loss.item(), {name: t.grad for name, t in p64.items()}


def _fast(problem, params):
    p32 = {name: t.detach().clone().requires_grad_(True) for name, t in problem.to_working(params).items()}
    loss = total_loss(problem, p32)
    loss.backward()
    return loss.item(), problem.to_standard({name: t.grad.double() for name, t in p32.items()})


@pytest.mark.parametrize(
    ("chunk_elements", "kappa", "age", "refs_in_time"),
    [
        (1 << 20, 0.9, 55, False),  # one chunk, fused path
        (7, 0.9, 55, False),  # one patient per block: masks-as-indices bookkeeping across blocks
        (400, 1.1, 79, False),  # several times per chunk, oldest age
        (1 << 20, 0.9, 60, True),  # refs [K, T]: the prior mean varies in time
        (1 << 20, 40.0, 40, False),  # kappa so large the clamp binds: the autograd fallback
    ],
)
def test_loss_and_gradient_equal_the_direct_formulation(tiny_inputs, chunk_elements, kappa, age, refs_in_time):
    data, problem, params, y = _setup(tiny_inputs, age, chunk_elements, kappa, refs_in_time)
    ref_loss, ref_grads = _reference(data, params, y)
    loss, grads = _fast(problem, params)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    for name, ref in ref_grads.items():
        scale = ref.abs().max().item()
        assert (grads[name] - ref).abs().max().item() <= 2e-4 * scale + 1e-9, name


def test_running_products_fold_into_logs_before_they_could_underflow(tiny_inputs, monkeypatch):
    """With a floor so high that every chunk must be folded, the loss is unchanged."""
    data, problem, params, y = _setup(tiny_inputs, 79, 400, 0.9)
    loss, _ = _fast(problem, params)
    monkeypatch.setattr(model, "PRODUCT_FLOOR", 0.999)
    assert model._products_before_underflow(problem, 0.9) == 1
    folded, _ = _fast(problem, params)
    assert folded == pytest.approx(loss, rel=1e-6)
    assert folded == pytest.approx(_reference(data, params, y)[0], rel=1e-6)


@pytest.mark.parametrize("kappa", [0.9, 40.0])  # the fused path and the autograd fallback
def test_the_jobs_epoch_step_gives_the_autograd_gradient(tiny_inputs, kappa):
    """loss_and_grad writes into reused .grad tensors; twice in a row it still overwrites them."""
    _, problem, params, _ = _setup(tiny_inputs, 55, 400, kappa)
    expected_loss, expected = _fast(problem, params)
    working = {name: t.clone().requires_grad_(True) for name, t in problem.to_working(params).items()}
    for _ in range(2):
        loss = loss_and_grad(problem, working)
        assert loss.item() == expected_loss
        grads = problem.to_standard({name: t.grad.double() for name, t in working.items()})
        for name in params:
            assert torch.equal(grads[name], expected[name]), name


def test_working_layout_round_trips(tiny_inputs):
    _, problem, params, _ = _setup(tiny_inputs, 55, 7)
    working = problem.to_working(params)
    assert working["lambda_"].shape == (52, 4, 60) and not torch.equal(problem.order, torch.arange(60))
    assert all(torch.equal(a, b) for a, b in zip(problem.to_standard(working).values(), params.values(), strict=True))


def test_only_times_up_to_the_age_are_touched(tiny_inputs):
    _, problem_young, _, _ = _setup(tiny_inputs, age=42)
    _, problem_old, _, _ = _setup(tiny_inputs, age=70)
    assert problem_young.t_used <= 42 - 30 + 1 < problem_old.t_used <= 70 - 30 + 1


def test_prior_equals_the_loop_over_patients_and_signatures(tiny_inputs):
    data, problem, params, _ = _setup(tiny_inputs)
    lam, gamma = params["lambda_"].double(), params["gamma"].double()
    kernel = torch.linalg.inv(problem.kernel_inv)
    expected = 0.0
    for n in range(lam.shape[0]):
        for k in range(lam.shape[1]):
            mean = -5.0 if k == lam.shape[1] - 1 else data.refs[k].double() + data.g[n].double() @ gamma[:, k]
            dev = lam[n, k] - mean
            expected += 0.5 * float(dev @ torch.linalg.solve(kernel, dev))
    working = problem.to_working(params)
    assert gp_prior(problem, working["lambda_"], working["gamma"]).item() == pytest.approx(expected / lam.shape[0], rel=1e-6)


def test_adam_is_bit_identical_to_torch_optim(tiny_inputs):
    _, problem, params, _ = _setup(tiny_inputs)
    ours = {name: t.clone().requires_grad_(True) for name, t in problem.to_working(params).items()}
    theirs = {name: t.clone().requires_grad_(True) for name, t in problem.to_working(params).items()}
    our_opt = Adam(ours, lr=0.1)
    their_opt = torch.optim.Adam(list(theirs.values()), lr=0.1)
    for _ in range(5):
        for p, opt in ((ours, our_opt), (theirs, their_opt)):
            opt.zero_grad()
            total_loss(problem, p).backward()
            opt.step()
    for name in params:
        assert torch.equal(ours[name], theirs[name]), name


def test_initialisation_is_seeded_and_follows_the_signatures(tiny_inputs):
    data, problem, params, _ = _setup(tiny_inputs)
    again = initial_parameters(data.g, data.refs, data.y_mean, data.psi, problem.n_times, seed=7)
    other = initial_parameters(data.g, data.refs, data.y_mean, data.psi, problem.n_times, seed=8)
    assert torch.equal(params["lambda_"], again["lambda_"])
    assert not torch.equal(params["lambda_"], other["lambda_"])
    assert torch.equal(params["gamma"], other["gamma"])  # gamma is least squares, not random
    assert torch.all(params["gamma"][:, -1] == 0)
    healthy_mean = params["lambda_"][:, -1].mean().item()
    assert healthy_mean == pytest.approx(-5.0, abs=0.1)


def test_pi_is_the_clamped_signature_mixture(tiny_inputs):
    data, _, params, _ = _setup(tiny_inputs)
    pi = predict_pi(data.phi, params["lambda_"], params["kappa"])
    theta = torch.softmax(params["lambda_"], dim=1)
    expected = (params["kappa"] * torch.einsum("nkt,kdt->ndt", theta, torch.sigmoid(data.phi))).clamp(1e-8, 1 - 1e-8)
    assert pi.shape == (60, data.phi.shape[1], data.phi.shape[2])
    torch.testing.assert_close(pi, expected)
