"""Console links: where a person clicks to see a log stream, an object, an execution or a job."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from agesweep.settings import local_mode

DEFAULT_LOG_GROUP = "/aws/batch/job"  # where Batch jobs log unless the job definition says otherwise
LOCAL_LOGS_ENV = "AGESWEEP_LOCAL_LOGS"  # local mode's folder of job logs (agesweep/local/batch_jobs.py)


def local_log_file(logs_dir: Path, job_id: str, attempt: int) -> Path:
    """Where local mode writes one attempt's output (the name batch_jobs.py gives it)."""
    return logs_dir / f"{job_id.replace(':', '_')}-attempt{attempt}.log"


def job_log_url(log_group: str, log_stream: str | None, region: str, job_id: str | None = None, attempts: int = 0) -> str | None:
    """A job's log: in local mode the file:// of its last attempt's log file, else the console link."""
    logs_dir = os.environ.get(LOCAL_LOGS_ENV)
    if local_mode() and logs_dir and job_id and attempts:
        return local_log_file(Path(logs_dir), job_id, attempts).resolve().as_uri()
    return log_url(log_group, log_stream, region)


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
