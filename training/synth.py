"""Synthetic inputs in the exact layout of the Aladyn job, with real structure.

Each patient has smooth signature loadings driven by genetics (PRS + sex) and a GP; a disease's
hazard is the loading-weighted mix of its signatures' hazards, so onsets cluster by signature and
the trainer has something real to learn: its loss falls and its future-onset ranking beats
chance. The pretrained ``phi``/``psi`` in the enrollment model are the generating ones plus noise;
the generating lambda, phi and psi are written to ``synthetic_truth.pt`` beside the inputs.

Demo size (local mode, ~1 s of training per age): the defaults below.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

from training import layout
from training.kernels import lambda_kernel, rbf_kernel

DEMO = {"patients": 2000, "diseases": 20, "times": 52, "signatures": 4, "prs": 5}
PATIENT_CHUNK = 2048  # bounds the generator's memory at any cohort size


def _smooth_noise(gen: torch.Generator, shape: tuple[int, ...], times: int, amplitude: float) -> torch.Tensor:
    """Draws GP(0, amplitude^2 * RBF(T/4)) paths along the last axis."""
    chol = torch.linalg.cholesky(amplitude**2 * lambda_kernel(times)).float()
    noise: torch.Tensor = torch.randn(*shape, times, generator=gen) @ chol.T
    return noise


def generate(
    out_dir: str | Path,
    patients: int = DEMO["patients"],
    diseases: int = DEMO["diseases"],
    times: int = DEMO["times"],
    signatures: int = DEMO["signatures"],
    prs: int = DEMO["prs"],
    seed: int = 0,
) -> Path:
    """Writes the trainer's input files into ``out_dir`` and returns it."""
    if diseases < signatures or min(patients, diseases, times, signatures, prs) < 1:
        raise ValueError("need patients, diseases, times, signatures, prs >= 1 and diseases >= signatures")
    if times < layout.AGE_MAX - layout.AGE_OFFSET + 2:
        raise ValueError(f"times must be >= {layout.AGE_MAX - layout.AGE_OFFSET + 2} to cover ages up to {layout.AGE_MAX}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    n, d_count, t_count, k_count = patients, diseases, times, signatures

    # Diseases: one home signature each; baseline log-odds rising with age.
    home = torch.arange(d_count) % k_count
    member = torch.nn.functional.one_hot(home, k_count).T.bool()  # [K, D]
    base = -7.0 + 1.5 * torch.rand(d_count, generator=gen)
    slope = 1.0 + 2.0 * torch.rand(d_count, generator=gen)
    age_curve = base[:, None] + slope[:, None] * torch.linspace(0.0, 1.0, t_count)[None, :]  # [D, T]
    psi = torch.where(member, 1.5, -2.5) + 0.1 * torch.randn(k_count, d_count, generator=gen)
    psi = torch.cat([psi, -5.0 + 0.1 * torch.randn(1, d_count, generator=gen)])  # healthy row
    phi_true = age_curve[None] + psi[:, :, None] + _smooth_noise(gen, (k_count + 1, d_count), t_count, 0.3)

    # Patients: genetics -> mean loading, plus a smooth personal trajectory.
    g = torch.randn(n, prs, generator=gen)
    sex = (torch.rand(n, generator=gen) < 0.5).float()
    g_sex = torch.cat([g, sex[:, None]], dim=1)
    gamma_true = 0.6 * torch.randn(prs + 1, k_count, generator=gen) / (prs + 1) ** 0.5
    refs = torch.linspace(-0.5, 0.5, k_count)
    censor = torch.where(
        torch.rand(n, generator=gen) < 0.7,
        torch.full((n,), t_count - 1),
        torch.randint(t_count // 3, t_count, (n,), generator=gen),
    )

    y = torch.zeros(n, d_count, t_count, dtype=torch.float32)
    e = torch.empty(n, d_count, dtype=torch.long)
    lam_true = torch.empty(n, k_count + 1, t_count)
    sig_phi = torch.sigmoid(phi_true)  # [K+1, D, T]
    t_grid = torch.arange(t_count)
    for lo in range(0, n, PATIENT_CHUNK):  # chunks bound memory; the work inside is vectorised
        hi = min(lo + PATIENT_CHUNK, n)
        lam = refs[None, :, None] + (g_sex[lo:hi] @ gamma_true)[:, :, None]
        lam = lam + _smooth_noise(gen, (hi - lo, k_count), t_count, 1.0)
        healthy = torch.full((hi - lo, 1, t_count), -5.0)
        lam_true[lo:hi] = torch.cat([lam, healthy], dim=1)
        theta = torch.softmax(lam_true[lo:hi], dim=1)  # [n, K+1, T]
        hazard = torch.einsum("nkt,kdt->ndt", theta, sig_phi)
        hit = torch.rand(hi - lo, d_count, t_count, generator=gen) < hazard
        hit &= t_grid[None, None, :] <= censor[lo:hi, None, None]
        has_onset = hit.any(dim=2)
        onset = hit.to(torch.uint8).argmax(dim=2)
        e[lo:hi] = torch.where(has_onset, onset, censor[lo:hi, None])
        y[lo:hi].scatter_(2, e[lo:hi, :, None], has_onset[:, :, None].float())

    # Prevalence as the seed computes it: events at t among those still at risk at t, smoothed.
    at_risk = (t_grid[None, None, :] <= e[:, :, None]).sum(dim=0).clamp_min(1)
    prevalence = (y.sum(dim=0) / at_risk).double()
    smoother = rbf_kernel(t_count, 2.0)
    prevalence = (prevalence @ (smoother / smoother.sum(dim=0, keepdim=True))).float().clamp(1e-6, 1 - 1e-6)

    phi_pretrained = phi_true + 0.05 * torch.randn(phi_true.shape, generator=gen)
    psi_pretrained = psi + 0.05 * torch.randn(psi.shape, generator=gen)

    torch.save(y, out / layout.Y_FILE)
    torch.save(e, out / layout.E_FILE)
    torch.save(g, out / layout.G_FILE)
    torch.save(
        {"prevalence_t": prevalence, "disease_names": [f"disease_{i:03d}" for i in range(d_count)]},
        out / layout.ESSENTIALS_FILE,
    )
    torch.save({"signature_refs": refs}, out / layout.REFERENCES_FILE)
    torch.save(
        {"model_state_dict": {"phi": phi_pretrained, "psi": psi_pretrained}},
        out / layout.ENROLLMENT_MODEL_FILE,
    )
    # what the trainer should recover (it reports how well: metrics "recovery")
    torch.save({"lambda_": lam_true, "phi": phi_true, "psi": psi}, out / layout.SYNTH_TRUTH_FILE)
    with open(out / layout.COVARIATES_FILE, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["eid", "sex", "enrollment_age"])
        ages = 40 + torch.randint(0, 30, (n,), generator=gen)
        writer.writerows(zip(range(1_000_000, 1_000_000 + n), sex.int().tolist(), ages.tolist(), strict=True))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write the input files into")
    for name, default in DEMO.items():
        parser.add_argument(f"--{name}", type=int, default=default, help=f"default {default} (demo size)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        out = generate(args.out, args.patients, args.diseases, args.times, args.signatures, args.prs, args.seed)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.patients} patients x {args.diseases} diseases x {args.times} times to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
