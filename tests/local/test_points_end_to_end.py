"""Points end to end in local mode, through the real template and ASL: the trainer swept over
learning rate x seed (issue 11's example manifest), and a plan past the inline Map's limits running
as a Distributed Map (items and results in the stack bucket)."""

from __future__ import annotations

import json
from pathlib import Path

from agesweep.local.session import run_manifest

EXAMPLES = Path(__file__).parents[2] / "events" / "manifests"


def test_the_hyperparameter_sweep_gives_each_point_one_folder_and_one_summary_row(make_stack, data_dir: Path) -> None:
    stack = make_stack()
    result = run_manifest(stack, EXAMPLES / "trainer-hyperparameters.yaml")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    points = sorted((a["point"]["learning_rate"], a["point"]["seed"], a["age"]) for a in summary["ages"])
    assert points == sorted((lr, seed, age) for lr in ("0.002", "0.005") for seed in ("1", "2") for age in (55, 65))
    assert summary["axes"] == ["learning_rate", "seed"] and summary["succeeded"] == 8
    for outcome in summary["ages"]:
        (only,) = outcome["slices"]
        assert only["metrics"]["epochs"] == 20  # each point's own metrics JSON was found
        lr, seed, age = outcome["point"]["learning_rate"], outcome["point"]["seed"], outcome["age"]
        folder = data_dir / "output" / f"learning_rate={lr}" / f"seed={seed}" / result.run_id / f"age_{age}"
        assert sorted(p.name for p in folder.glob("model_*.pt")) == [f"model_enroll_fixedphi_age_{age}_sex_0_1000.pt"]
        assert only["metrics_lineage"]["parameters"]["learning_rate"] == float(lr)
    csv_header = (result.run_dir / "summary.csv").read_text().splitlines()[0].split(",")
    assert {"learning_rate", "seed"} <= set(csv_header)


def test_a_plan_past_the_inline_limits_runs_as_a_distributed_map(make_stack, tmp_path: Path, data_dir: Path) -> None:
    stack = make_stack()
    manifest = tmp_path / "many.yaml"
    manifest.write_text(
        "run_name: many\naxes: {n: {from: 1, to: 1010}}\noutput: /data/output\nmax_concurrency: 40\n"
        "job:\n  container:\n    image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/tool:1.0\n"
        "    command: [/bin/sh, -c, 'mkdir -p \"$0\" && echo \"$1\" > \"$0/n.txt\"', Ref::output_folder, Ref::n]\n",
        encoding="utf-8",
    )
    result = run_manifest(stack, manifest)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert "plan-items.json" in {p.name for p in result.artifacts}
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["total"] == summary["succeeded"] == 1010
    written = {p.parent.name: p.read_text().strip() for p in (data_dir / "output" / result.run_id).glob("n=*/n.txt")}
    assert written == {f"n={n}": str(n) for n in range(1, 1011)}  # one folder per point, none shared
    assert result.history_events < 100  # the 1,010 iterations ran as child executions
    # progress reads the items back from the stack bucket (the state carries none): a row per point
    assert len(result.rows) == 1010 and {row.status for row in result.rows} == {"SUCCEEDED"}
