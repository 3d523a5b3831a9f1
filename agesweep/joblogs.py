"""The reason in the job's own words: the last lines of a job's CloudWatch log stream.

A failed job's status reason says *that* it failed ("Essential container in task exited"); its
stderr says *why* (a traceback, "error: input file missing"). Collation, the alerts and
`agesweep status` show these lines. Reads are best effort: no stream, no permission or an
expired log gives no lines, never an error.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

TAIL_LINES = 8
MAX_LINE_CHARS = 240


def tail_lines(messages: list[str], lines: int = TAIL_LINES) -> list[str]:
    """The last non-blank lines, each trimmed to MAX_LINE_CHARS."""
    kept = [m.rstrip() for m in messages if m.strip()]
    return [m if len(m) <= MAX_LINE_CHARS else m[: MAX_LINE_CHARS - 3] + "..." for m in kept[-lines:]]


def log_tail(logs: Any, log_group: str, log_stream: str | None, lines: int = TAIL_LINES) -> list[str]:
    """The last `lines` lines of one job's log stream (GetLogEvents from the end)."""
    if logs is None or not log_stream:
        return []
    try:
        response = logs.get_log_events(
            logGroupName=log_group, logStreamName=log_stream, startFromHead=False, limit=max(lines * 4, 20)
        )
    except (ClientError, BotoCoreError):
        return []
    return tail_lines([str(event.get("message", "")) for event in response.get("events", [])], lines)
