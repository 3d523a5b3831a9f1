"""The process exit codes of every agesweep command (README and each command's --help list them)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the run (or check) succeeded: every age ok
    SOME_FAILED = 1  # the run finished, some ages failed
    INVALID = 2  # bad input or an operator error (invalid manifest, no stack, no credentials): nothing started
    RUNNING = 3  # `status`: the run has not finished yet
