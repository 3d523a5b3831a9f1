"""`agesweep retry`: submit a finished run's retry manifest (only what failed)."""

from __future__ import annotations

from pathlib import Path

from agesweep.cli.options import AsJson, Force, Region, Run, StackName, Wait
from agesweep.cli.output import operator_errors, out, print_json
from agesweep.cli.submit import print_submission, validate_or_exit
from agesweep.operations.deployment import DEFAULT_STACK, discover_stack
from agesweep.operations.retry import retry_manifests
from agesweep.operations.submit import DEFAULT_START_WAIT_S, Submission, submit_manifest


def retry(
    run: Run,
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    force: Force = False,
    wait: Wait = DEFAULT_START_WAIT_S,
    as_json: AsJson = False,
) -> None:
    """Rerun only what failed: submit the run's retry manifest.

    Collation writes runs/<run_id>/retry-manifest.yaml when the run ends: the original manifest narrowed to the failed (age,
    slice) pairs, named <run_name>-retry. It is validated and submitted like `submit` (uploaded
    as manifests/<run_name>-retry.yaml), so retrying the same run twice starts one run. When
    ages failed different slices it holds several manifests; each is submitted.

    Exit codes: 0 submitted, or nothing failed (nothing to do); 2 run still running, no retry
    manifest, invalid retry manifest, unknown stack/run or AWS problem.
    """
    submitted: list[Submission] = []
    with operator_errors():
        found = discover_stack(stack, region)
        documents = retry_manifests(found, run)
        if not documents:
            if as_json:
                print_json({"run_id": run, "submitted": []})
            else:
                out().print(f"nothing to retry: no age of run {run} failed", markup=False)
            return
        for name, raw in documents:
            validate_or_exit(raw, name, Path(name), as_json)
        for name, raw in documents:
            submitted.append(submit_manifest(found, raw, name, source=f"retry:{run}", force=force, wait_s=wait))
    if as_json:
        print_json({"run_id": run, "submitted": [s.to_dict() for s in submitted]})
        return
    for sub in submitted:
        print_submission(sub, found)
