"""What local mode adds for scheduled functions: the schedule itself, and the EFS mount they read.

- ``Scheduler`` fires every rule of template.yaml with a ScheduleExpression (moto stores such rules
  but never fires them) with an EventBridge "Scheduled Event", every ``interval_s`` (shorter than
  on AWS, so a manifest saved under <data>/manifests/ starts its run within seconds), one look at a
  time, the first one when local mode starts.
- ``with_local_mounts`` points a function's EFS mount (FileSystemConfigs' LocalMountPath, e.g.
  /mnt/data, named in its environment) at the local data folder, which the jobs see as /data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.events.utils import EventMessageType

from agesweep.local.template import FunctionSpec, Pseudo

DEFAULT_INTERVAL_S = 2.0


def with_local_mounts(fn: FunctionSpec, data_dir: Path) -> FunctionSpec:
    """The function with every env value under one of its mount paths moved onto ``data_dir``."""
    if not fn.mount_paths:
        return fn
    environment = dict(fn.environment)
    for key, value in fn.environment.items():
        for mount in fn.mount_paths:
            root = mount.rstrip("/")
            if value == root or value.startswith(root + "/"):
                environment[key] = str(data_dir) + value[len(root):]
                break
    return dataclasses.replace(fn, environment=environment)


def scheduled_event(pseudo: Pseudo, rule_arn: str, now: dt.datetime) -> EventMessageType:
    """The event EventBridge sends a scheduled rule's targets (events/efs_watch_scheduled.json)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": pseudo.account_id,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": pseudo.region,
        "resources": [rule_arn],
        "detail": {},
    }


class Scheduler:
    """One thread that fires the scheduled rules of the default bus, every ``interval_s``."""

    def __init__(
        self,
        pseudo: Pseudo,
        deliver: Callable[[str, dict[str, Any], EventMessageType], None],
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.pseudo = pseudo
        self.deliver = deliver
        self.interval_s = interval_s
        self.ticks = 0
        self._stop = threading.Event()
        self._ticked = threading.Condition()
        self._thread: threading.Thread | None = None

    def _rules(self) -> list[Any]:
        from moto.events.models import events_backends

        backend = events_backends[self.pseudo.account_id][self.pseudo.region]
        return [
            rule
            for bus in backend.event_buses.values()
            for rule in list(bus.rules.values())
            if rule.scheduled_expression and rule.state == "ENABLED"
        ]

    def tick(self) -> None:
        """Fire every scheduled rule once, now."""
        now = dt.datetime.now(dt.UTC)
        for rule in self._rules():
            event = scheduled_event(self.pseudo, rule.arn, now)
            for target in list(rule.targets):
                self.deliver(rule.name, target, event)
        with self._ticked:
            self.ticks += 1
            self._ticked.notify_all()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()

    def start(self) -> None:
        self.tick()  # the first look as local mode starts: files saved from now on are new
        self._thread = threading.Thread(target=self._run, name="agesweep-local-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def wait_ticks(self, count: int, timeout_s: float = 60.0) -> None:
        """Wait until ``count`` more ticks have fired (tests: "N more looks changed nothing")."""
        with self._ticked:
            target = self.ticks + count
            if not self._ticked.wait_for(lambda: self.ticks >= target, timeout=timeout_s):
                raise TimeoutError(f"{count} scheduled ticks did not fire within {timeout_s:.0f} s")
