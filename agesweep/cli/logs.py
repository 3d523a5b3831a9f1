"""`agesweep logs`: print an age's (or a point's) job log (CloudWatch Logs); -f follows it until the job ends."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from agesweep.cli.options import Region, Run, StackName
from agesweep.cli.output import err, operator_errors
from agesweep.operations.deployment import DEFAULT_STACK, discover_stack
from agesweep.operations.logs import log_lines, parse_point


def logs(
    run: Run,
    age: Annotated[int | None, typer.Option("--age", help="The age whose job's log to show.", show_default=False)] = None,
    point: Annotated[str | None, typer.Option(
        "--point", help="The point whose job's log to show: axis=value[,axis=value] (a run with named axes).",
        show_default=False)] = None,
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    index: Annotated[int | None, typer.Option("--index", help="Array child (slice) index, for ages run as array jobs.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls with -f.")] = 2.0,
    timestamps: Annotated[bool, typer.Option("--timestamps", help="Prefix each line with its time.")] = False,
) -> None:
    """Print an age's job log (CloudWatch Logs); -f follows it until the job ends.

    A run with named axes picks its job with --point axis=value,... (and --age for the trainer's).

    Read from the stack's JobLogGroupName, every attempt in order; a retried job's attempts
    are separated by a header line on stderr.

    With -f, follows the job until it ends (SUCCEEDED or FAILED). Exit codes: 0 printed,
    2 unknown stack/run/age/point, not submitted yet, or AWS problem.
    """
    console = err()
    current: str | None = None
    printed = 0
    with operator_errors():
        found = discover_stack(stack, region)
        chosen = parse_point(point)
        what = ", ".join([*(f"{k} {v}" for k, v in chosen.items()), *([f"age {age}"] if age is not None else [])])
        for line in log_lines(found, run, age, index=index, follow=follow, poll_s=interval, point=chosen):
            if line.stream != current:
                console.print(f"── {what} attempt {line.attempt} · {line.stream}", style="dim", highlight=False)
                current = line.stream
            prefix = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(line.timestamp))} " if timestamps else ""
            print(prefix + line.message, flush=True)
            printed += 1
    if not printed:
        console.print(f"no log lines for {what} yet (the stream appears once its container writes output)", highlight=False)
