"""`agesweep local --serve`: runs started by others (the aws CLI, `agesweep submit`) are kept like a
foreground run's, and the --simulate-* switches apply to the session's first run only."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from agesweep.local.cloud import LocalCloud
from agesweep.local.session import save_run


class RunSaver:
    """Every execution of the state machine that ends gets <workdir>/runs/<run_id>/ (its summary,
    report, retry manifest), as a foreground run does. Call `poll` from the serving loop."""

    def __init__(self, cloud: LocalCloud, already_saved: Iterable[str] = ()) -> None:
        self.cloud = cloud
        self.saved: set[str] = set(already_saved)
        self.simulations_dropped = False

    def ended_runs(self) -> list[str]:
        """Run ids (execution names) of the executions that ended and have no run folder yet."""
        sfn = self.cloud.client("stepfunctions")
        ended: list[str] = []
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.cloud.state_machine_arn):
            ended += [e["name"] for e in page["executions"] if e["status"] != "RUNNING" and e["name"] not in self.saved]
        return ended

    def poll(self) -> list[Path]:
        """Save the runs that ended since the last poll; the run folders written."""
        ended = self.ended_runs()
        if ended:
            self.drop_simulations()  # before the user can see the failure and retry it
        folders: list[Path] = []
        for run_id in ended:
            run_dir, _ = save_run(self.cloud, run_id)
            self.saved.add(run_id)
            folders.append(run_dir)
        return folders

    def drop_simulations(self) -> None:
        """--simulate-failure / --simulate-spot-interruption are for the first run: its retry must
        be able to succeed."""
        if not self.simulations_dropped:
            self.cloud.simulated_failures.clear()
            self.cloud.spot_interruptions.clear()
            self.simulations_dropped = True
