"""Console links: where a person clicks to see a log stream, an object, an execution or a job."""

from __future__ import annotations

from urllib.parse import quote

DEFAULT_LOG_GROUP = "/aws/batch/job"  # where Batch jobs log unless the job definition says otherwise


def console_encode(text: str) -> str:
    """The CloudWatch console's fragment encoding: URL-encode, then encode the '%' again as '$25'."""
    return quote(text, safe="").replace("%", "$25")


def log_url(log_group: str, log_stream: str | None, region: str) -> str | None:
    """CloudWatch console link to one log stream (None when the job never got a stream)."""
    if not log_stream:
        return None
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{console_encode(log_group)}/log-events/{console_encode(log_stream)}"
    )


def s3_console_url(bucket: str, key: str, region: str) -> str:
    return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={quote(key, safe='/')}"


def execution_console_url(execution_arn: str, region: str) -> str:
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def batch_job_console_url(job_id: str, region: str) -> str:
    return f"https://{region}.console.aws.amazon.com/batch/home?region={region}#jobs/detail/{job_id}"
