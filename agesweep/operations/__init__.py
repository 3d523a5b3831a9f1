"""Operating a deployed sweep stack: submit, status, runs, retry, cancel, logs — boto3, no printing.

Every resource is found from the CloudFormation stack's Outputs (`--stack`, agesweep.operations.
deployment), so the same calls work against a deployed stack and against `agesweep local --serve`
(its moto server carries an `agesweep-local` stack with the same Outputs; point boto3 at it with
`AWS_ENDPOINT_URL`). Where a sweep stands is read by agesweep.tracking; these modules add what an
operator needs on top, one module per command: run lookup, ETA, stuck-job diagnosis, cancellation
and log streams.

Every failure an operator can cause or fix (no credentials, no region, unknown stack or run) is
raised as `errors.OpsError` with a one-line message; the CLI prints it and exits 2.
"""
