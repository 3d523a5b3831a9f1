"""`agesweep logs`: print an age's job log (CloudWatch Logs); -f follows it until the job ends."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from agesweep.cli.options import Region, Run, StackName
from agesweep.cli.output import err, operator_errors
from agesweep.operations.deployment import DEFAULT_STACK, discover_stack
from agesweep.operations.logs import log_lines


def logs(
    run: Run,
    age: Annotated[int, typer.Option("--age", help="The age whose job's log to show.", show_default=False)],
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    index: Annotated[int | None, typer.Option("--index", help="Array child (slice) index, for ages run as array jobs.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls with -f.")] = 2.0,
    timestamps: Annotated[bool, typer.Option("--timestamps", help="Prefix each line with its time.")] = False,
) -> None:
    """Print an age's job log (CloudWatch Logs); -f follows it until the job ends.

    Read from the stack's JobLogGroupName, every attempt in order; a retried job's attempts
    are separated by a header line on stderr.

    With -f, follows the job until it ends (SUCCEEDED or FAILED). Exit codes: 0 printed,
    2 unknown stack/run/age, age not submitted yet, or AWS problem.
    """
    console = err()
    current: str | None = None
    printed = 0
    with operator_errors():
        found = discover_stack(stack, region)
        for line in log_lines(found, run, age, index=index, follow=follow, poll_s=interval):
            if line.stream != current:
                console.print(f"── age {age} attempt {line.attempt} · {line.stream}", style="dim", highlight=False)
                current = line.stream
            prefix = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(line.timestamp))} " if timestamps else ""
            print(prefix + line.message, flush=True)
            printed += 1
    if not printed:
        console.print(f"no log lines for age {age} yet (the stream appears once its container writes output)", highlight=False)
