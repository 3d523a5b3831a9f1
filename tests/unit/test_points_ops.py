"""The operator side of a run with named axes: progress rows, tables and `logs --point` name points."""

from __future__ import annotations

import pytest

from agesweep import tracking
from agesweep.cli.output import age_table, rows_that_fit
from agesweep.contracts import PlanItem
from agesweep.operations.errors import OpsError
from agesweep.operations.logs import _chosen, parse_point

W1, W2 = "2020-01-01_2020-01-30", "2020-01-31_2020-02-29"


def row(point: dict[str, str], age: int | None = None, status: str = "RUNNING") -> tracking.AgeProgress:
    return tracking.AgeProgress(age=age, job_name="-".join(point.values()) or f"a-{age}", array_size=0, status=status,
                                job_id="j", point=point)


def test_a_points_row_is_labelled_by_its_values() -> None:
    item = PlanItem.model_validate({
        "point": {"variable": "t2m", "window": W1}, "job_name": "pulse-t2m", "output_folder": "s3://b/o/",
        "parameters": {}, "container_overrides": {}, "timeout": {"AttemptDurationSeconds": 60},
        "retry_strategy": {"Attempts": 1, "EvaluateOnExit": [{"Action": "EXIT"}]}, "tags": {}})
    progress = tracking.AgeProgress.of(item)
    assert (progress.age, progress.label, progress.short) == (None, f"variable t2m, window {W1}", f"variable t2m, window {W1}")
    assert row({}, 60).label == "age 60" and row({}, 60).short == "60"
    assert progress.to_dict()["point"] == {"variable": "t2m", "window": W1}


def test_tables_of_points_keep_plan_order_and_say_points() -> None:
    rows = [row({"variable": v, "window": w}, status=s) for v, w, s in
            [("t2m", W1, "SUCCEEDED"), ("t2m", W2, "FAILED"), ("tp", W1, "SUCCEEDED"), ("tp", W2, "RUNNING")]]
    kept, summary = rows_that_fit(rows, 3)
    assert [r.point["variable"] + r.point["window"][-2:] for r in kept] == ["t2m29", "tp29"]
    assert summary == "… 2 more points not shown: succeeded 2"
    assert [c.header for c in age_table(rows).columns][0] == "point"


def test_logs_choose_one_point() -> None:
    assert parse_point(f"variable=tp, window={W2}") == {"variable": "tp", "window": W2}
    assert parse_point(None) == {}
    with pytest.raises(OpsError, match="not axis=value"):
        parse_point("variable")
    rows = [row({"learning_rate": lr, "seed": "1"}, age) for lr in ("0.002", "0.005") for age in (55, 65)]
    assert [(r.point["learning_rate"], r.age) for r in _chosen(rows, 65, {"learning_rate": "0.005"})] == [("0.005", 65)]
    assert len(_chosen(rows, None, {"seed": "1"})) == 4
