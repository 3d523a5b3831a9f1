"""`agesweep local --serve`: runs started by others (the aws CLI, `agesweep submit`) are kept like a
foreground run's, and the --simulate-* switches apply to the session's first run only."""

from __future__ import annotations

import json
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

    def executions(self) -> list[dict[str, str]]:
        sfn = self.cloud.client("stepfunctions")
        found: list[dict[str, str]] = []
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.cloud.state_machine_arn):
            found += page["executions"]
        return found

    def ended_runs(self) -> list[str]:
        """Run ids (execution names) of the executions that ended and have no run folder yet."""
        return [e["name"] for e in self.executions() if e["status"] != "RUNNING" and e["name"] not in self.saved]

    def file_notification(self, note: dict[str, str]) -> Path | None:
        """Append an SNS message to runs/<run_id>/notifications.jsonl of the run it names, as a
        foreground run keeps its messages; the file, or None when it names no run of this server."""
        text = f"{note['subject']}\n{note['message']}"
        named = [e["name"] for e in self.executions() if e["name"] in text]
        if not named:
            return None
        run_dir = self.cloud.workdir / "runs" / max(named, key=len)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "notifications.jsonl"
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(note) + "\n")
        return path

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
