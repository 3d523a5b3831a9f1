"""A Distributed Map's run as collation needs it: the plan's items (runs/<run_id>/plan-items.json)
and each iteration's result from the files its ResultWriter wrote (manifest.json → SUCCEEDED_n.json
/ FAILED_n.json, each an array of child executions whose Output is the iteration's JSON)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from agesweep.aws import read_object
from agesweep.contracts import ItemResult, MapRunResults, Plan

MAX_ITEMS_BYTES = 64 * 1024 * 1024  # 10,000 items are ~10 MB
MAX_RESULTS_BYTES = 64 * 1024 * 1024


def with_items(plan: Plan, s3: Any, bucket: str) -> Plan:
    """The plan with its items read back from the stack bucket (a DISTRIBUTED plan carries none)."""
    if plan.map_mode != "DISTRIBUTED" or plan.items or not plan.items_key:
        return plan
    return plan.with_items_json(read_object(s3, bucket, plan.items_key, max_bytes=MAX_ITEMS_BYTES))


def iteration_results(details: MapRunResults, s3: Any) -> list[ItemResult]:
    """Every iteration result the map run's ResultWriter recorded (an iteration that failed as a child
    execution, which agesweep's processor never does, leaves no Output and is skipped: collation then
    reports its item MISSING)."""
    bucket = details.ResultWriterDetails.Bucket
    manifest = json.loads(read_object(s3, bucket, details.ResultWriterDetails.Key, max_bytes=MAX_RESULTS_BYTES))
    results: list[ItemResult] = []
    for status in ("SUCCEEDED", "FAILED", "PENDING"):
        for entry in manifest.get("ResultFiles", {}).get(status, []):
            for execution in json.loads(read_object(s3, bucket, entry["Key"], max_bytes=MAX_RESULTS_BYTES)):
                output = execution.get("Output")
                if not output:
                    continue
                try:
                    results.append(ItemResult.model_validate_json(output))
                except ValidationError:
                    continue
    return results


def read_map_run(plan: Plan, results: list[ItemResult | None] | MapRunResults, s3: Any, bucket: str
                 ) -> tuple[Plan, list[ItemResult | None]]:
    """CollateInput as collation takes it: an inline Map's results as they are; a Distributed Map's
    items and results read from the stack bucket."""
    if not isinstance(results, MapRunResults):
        return plan, results
    return with_items(plan, s3, bucket), list(iteration_results(results, s3))
