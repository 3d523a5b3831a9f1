"""AWS Batch on this machine: a FIFO job queue served by N worker threads, each attempt the job's real
command as a local process (`/data` mapped to a folder), retries decided by the job definition's
evaluateOnExit, array parents that follow their children, attempt timeouts, simulated spot
reclaims and application errors, and each attempt's output shipped to CloudWatch Logs. A job
definition's environment reaches the process, and its secrets (valueFrom) are read from the local
Secrets Manager / SSM Parameter Store, as Batch's execution role would."""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agesweep.links import local_log_file
from agesweep.local import moto_hooks
from agesweep.local.plumbing import FAKE_CREDENTIALS, Plumbing
from agesweep.workload import REF_RE

_TERMINATE_GRACE_S = 10.0
_HOST_RECLAIMED = "Host EC2 (instance i-0local) terminated."


@dataclass
class SpotInterruption:
    """Local stand-in for an EC2 spot reclaim: the first `times` attempts of this age's jobs on a
    spot-first queue are stopped by their host once their output shows `after_output` (by default:
    once training has started). A reclaim warns first (SIGTERM: the trainer checkpoints, then
    SIGKILL after a grace period); `hard` kills at once (SIGKILL, no warning), as a host that vanishes."""

    age: int
    after_output: str = "epoch "
    times: int = 1
    hard: bool = False


@dataclass
class Chaos:
    """Random host loss, seeded: each attempt on a spot-first queue is reclaimed with probability
    `reclaim_share`, and each attempt on any queue hard-killed with probability `kill_share`, at a
    random point of its first `within_s` seconds. The draw depends on (seed, job name, array index,
    attempt), never on scheduling order, so a seed replays the same chaos."""

    reclaim_share: float = 0.0
    kill_share: float = 0.0
    seed: int = 0
    within_s: float = 4.0

    def draw(self, job: Any, attempt: int, spot: bool) -> tuple[float, bool] | None:
        """(seconds into the attempt, hard kill?) when this attempt loses its host, else None."""
        index = (job.array_properties or {}).get("index")
        rng = random.Random(f"{self.seed}:{job.job_name}:{index}:{attempt}:{spot}")
        reclaim, kill, at = rng.random(), rng.random(), rng.uniform(0.2, self.within_s)
        if kill < self.kill_share:
            return at, True
        if spot and reclaim < self.reclaim_share:
            return at, False
        return None


@dataclass
class SimulatedFailure:
    """Local stand-in for an application error: every attempt of this age's job exits non-zero."""

    age: int
    exit_code: int = 3


@dataclass
class JobEvent:
    """One Batch job status change, as local mode saw it (also sent to EventBridge)."""

    job_id: str
    job_name: str
    status: str
    attempt: int
    reason: str | None = None


# (source, detail-type, resources, detail) → the default event bus
EventSink = Callable[[str, str, list[str], dict[str, Any]], None]


def retry_action(retry_strategy: dict[str, Any] | None, reason: str, exit_code: int | None) -> str:
    """Evaluate a job definition's retryStrategy.evaluateOnExit the way Batch does: RETRY or EXIT."""
    for rule in (retry_strategy or {}).get("evaluateOnExit") or []:
        if "onStatusReason" in rule and not fnmatch.fnmatchcase(reason, rule["onStatusReason"]):
            continue
        if "onReason" in rule and not fnmatch.fnmatchcase(reason, rule["onReason"]):
            continue
        if "onExitCode" in rule and not fnmatch.fnmatchcase(str(exit_code), rule["onExitCode"]):
            continue
        return str(rule["action"]).upper()
    return "RETRY"  # a failure that matches no rule is retried (Batch's documented default)


class SecretUnavailable(Exception):
    """A job definition's secret could not be read: the container does not start (Batch's
    ResourceInitializationError)."""


def substitute_refs(command: list[str], parameters: dict[str, str]) -> list[str]:
    """Each `Ref::name` (the whole name, so Ref::output_folder is not Ref::output) replaced by its
    parameter; a placeholder without a parameter stays as it is, as on Batch."""
    return [REF_RE.sub(lambda m: parameters.get(m.group(1), m.group(0)), part) for part in command]


def resolve_secret(secretsmanager: Any, ssm: Any, value_from: str) -> str:
    """The value Batch puts in a secret's variable: a Secrets Manager secret (or one JSON key of it:
    ARN:json-key:version-stage:version-id) or an SSM parameter (decrypted). Raises SecretUnavailable."""
    try:
        if ":ssm:" in value_from:
            found = ssm.get_parameters(Names=[value_from], WithDecryption=True)
            if not found.get("Parameters"):
                raise SecretUnavailable(f"SSM parameter {value_from} not found")
            return str(found["Parameters"][0]["Value"])
        head, _, rest = value_from.partition(":secret:")
        name, *options = rest.split(":")
        key, stage, version = ([*options, "", "", ""])[:3]
        request = {"SecretId": f"{head}:secret:{name}", **({"VersionStage": stage} if stage else {}),
                   **({"VersionId": version} if version else {})}
        text = str(secretsmanager.get_secret_value(**request).get("SecretString", ""))
        if not key:
            return text
        value = json.loads(text).get(key) if text.startswith("{") else None
        if value is None:
            raise SecretUnavailable(f"secret {name} has no JSON key {key!r}")
        return str(value)
    except SecretUnavailable:
        raise
    except Exception as error:  # ClientError, or a secret that is not JSON
        raise SecretUnavailable(f"cannot read {value_from}: {error}") from None


def job_age(job: Any) -> int | None:
    with contextlib.suppress(KeyError, ValueError):
        return int(job.parameters["age"])
    return None


class BatchJobs:
    """The compute environment: `workers` job slots taking jobs from one FIFO queue."""

    def __init__(
        self,
        plumbing: Plumbing,
        *,
        root: Path,
        data_dir: Path,
        logs_dir: Path,
        workers: int,
        region: str,
        compute_environment_name: str,
        emit_event: EventSink,
        spot_interruptions: list[SpotInterruption] | None = None,
        simulated_failures: list[SimulatedFailure] | None = None,
        chaos: Chaos | None = None,
    ) -> None:
        self.plumbing = plumbing
        self.root = root
        self.data_dir = data_dir
        self.logs_dir = logs_dir
        self.workers = max(1, workers)
        self.region = region
        self.compute_environment_name = compute_environment_name
        self.emit_event = emit_event
        self.spot_interruptions = {item.age: item for item in spot_interruptions or []}
        self.simulated_failures = {item.age: item for item in simulated_failures or []}
        self.chaos = chaos
        self.queue_capacity: dict[str, str] = {}  # job queue name → spot | on-demand (set from the template)
        self.job_log_group = "/aws/batch/job"  # set from the job definition's awslogs options
        self.job_events: list[JobEvent] = []
        self._queue: queue.Queue[Any] = queue.Queue()  # FIFO, like a Batch job queue
        self._base_environment: dict[str, str] = {}  # read once, in start_workers
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._job_changed: dict[str, threading.Event] = {}
        self._job_changed_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start_workers(self) -> None:
        # The jobs' base environment, read once before any job: the in-process Lambda handlers swap
        # their variables into os.environ while they run, and a job must not inherit whichever
        # function happened to be running when it started.
        self._base_environment = {
            key: value for key, value in os.environ.copy().items() if not key.startswith(("POWERTOOLS_", "AGESWEEP_"))
        }
        for index in range(self.workers):
            threading.Thread(target=self._worker, name=f"agesweep-local-worker-{index}", daemon=True).start()

    def stop(self) -> None:
        for _ in range(self.workers):
            self._queue.put(None)
        for process in list(self._processes.values()):
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    # ------------------------------------------------------------------ the moto hook's side
    def start_batch_job(self, backend: Any, job: Any, include_start_attempt: bool, retry_strategy: Any = None) -> None:
        backend.backend._jobs[job.job_id] = job
        # SubmitJob's RetryStrategy overrides the job definition's (moto keeps only the latter)
        job.agesweep_retry_strategy = retry_strategy or job.job_definition.retry_strategy
        if include_start_attempt:
            job.status = "RUNNABLE"
            self._queue.put(job)
        else:
            job.status = "PENDING"
            self.plumbing.spawn(self._await_children, job)

    def wait_for_job_change(self, job_id: str, timeout: float) -> None:
        """Block a .sync poll until its job stops (or `timeout`); see moto_hooks._SyncPollClock."""
        self._job_event(job_id).wait(timeout)

    def _job_event(self, job_id: str) -> threading.Event:
        with self._job_changed_lock:
            return self._job_changed.setdefault(job_id, threading.Event())

    def _emit_job_change(self, job: Any) -> None:
        if job.job_stopped:
            self._job_event(job.job_id).set()
        attempt = len(job.attempts)
        self.job_events.append(JobEvent(job.job_id, job.job_name, job.status, attempt, job.job_stopped_reason))
        self.emit_event("aws.batch", "Batch Job State Change", [job.arn], moto_hooks.described_job(job))

    def is_spot(self, job: Any) -> bool:
        return self.queue_capacity.get(job.job_queue.name, "spot") == "spot"

    def log_paths(self, job_id: str) -> list[Path]:
        """The local log file of each attempt of a job, oldest first."""
        stem = job_id.replace(":", "_")
        return sorted(self.logs_dir.glob(f"{stem}-attempt*.log"), key=lambda p: int(p.stem.rpartition("attempt")[2] or 0))

    # ------------------------------------------------------------------ running jobs
    def _worker(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._run_job(job)
            except Exception as error:  # a broken job must not stop the worker
                self.plumbing.log(f"job {job.job_name} could not run: {type(error).__name__}: {error}")
                job.job_stopped_reason = f"agesweep local: {type(error).__name__}: {error}"
                job._mark_stopped(success=False)

    def _await_children(self, parent: Any) -> None:
        """An array parent runs while its children do and fails if any child fails."""
        while parent._child_jobs is None:
            time.sleep(0.05)
        parent.job_started_at = dt.datetime.now()
        while not all(child.job_stopped for child in parent._child_jobs):
            if any(child.status in ("STARTING", "RUNNING") for child in parent._child_jobs):
                parent.status = "RUNNING"
            if parent.stop:
                for child in parent._child_jobs:
                    child.terminate(parent.job_stopped_reason or "Array job terminated")
            time.sleep(0.1)
        failed = sum(child.status == "FAILED" for child in parent._child_jobs)
        if failed:
            parent.job_stopped_reason = f"Array job failed: {failed} of {len(parent._child_jobs)} child jobs failed"
        parent._mark_stopped(success=not failed)
        self._emit_job_change(parent)

    def _run_job(self, job: Any) -> None:
        strategy = getattr(job, "agesweep_retry_strategy", None) or job.job_definition.retry_strategy
        attempts_allowed = int((strategy or {}).get("attempts", 1))
        while True:
            if job.stop:
                job._mark_stopped(success=False)
                self._emit_job_change(job)
                return
            exit_code, reason = self._run_attempt(job)
            job.exit_code = exit_code
            if exit_code == 0:
                job._mark_stopped(success=True)
                self._emit_job_change(job)
                return
            can_retry = not job.stop and len(job.attempts) < attempts_allowed
            if can_retry and retry_action(strategy, reason, exit_code) == "RETRY":
                self.plumbing.log(f"job {job.job_name} attempt {len(job.attempts)} failed ({reason}); retrying")
                job.status = "RUNNABLE"
                self._emit_job_change(job)
                continue
            job.job_stopped_reason = reason
            job._mark_stopped(success=False)
            self._emit_job_change(job)
            return

    def host_command(self, command: list[str], container_paths: list[str]) -> list[str]:
        """A container command as this machine runs it: mounted paths (e.g. /data) mapped onto the
        local data folder, and `python` as this interpreter (the image's Python)."""
        resolved = []
        for part in command:
            for container_path in container_paths:
                root = container_path.rstrip("/")
                if part == container_path or part.startswith(root + "/"):
                    part = str(self.data_dir) + part[len(root):]
                    break
            resolved.append(part)
        if resolved and resolved[0] in {"python", "python3"}:
            resolved[0] = sys.executable
        return resolved

    def _job_command(self, job: Any) -> list[str]:
        container = job.job_definition.container_properties or {}
        command = list(job.container_overrides.get("command") or container.get("command") or [])
        container_paths = [mount["containerPath"] for mount in container.get("mountPoints") or []]
        resolved = self.host_command(substitute_refs(command, dict(job.parameters or {})), container_paths)
        age = job_age(job)
        failure = self.simulated_failures.get(age) if age is not None else None
        if failure is not None:
            message = f"agesweep local: simulated application error for age {failure.age}"
            resolved = [sys.executable, "-c", f"import sys; print({message!r}); sys.exit({failure.exit_code})"]
        return resolved

    def _job_environment(self, job: Any) -> dict[str, str]:
        container = job.job_definition.container_properties or {}
        env = {item["name"]: item["value"] for item in container.get("environment") or []}
        env.update({item["name"]: item["value"] for item in job.container_overrides.get("environment") or []})
        env.update(self._job_secrets(container))
        index = (job.array_properties or {}).get("index")
        env.update(
            {
                "AWS_BATCH_JOB_ID": job.job_id,
                "AWS_BATCH_JOB_ATTEMPT": str(len(job.attempts)),
                "AWS_BATCH_JQ_NAME": job.job_queue.name,
                "AWS_BATCH_CE_NAME": self.compute_environment_name,
                "AGESWEEP_JOB_DEFINITION": job.job_definition.arn,
            }
        )
        if index is not None:
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        return {
            **self._base_environment,
            **env,
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.plumbing.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(self.root), self._base_environment.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONUNBUFFERED": "1",
        }

    def _job_secrets(self, container: dict[str, Any]) -> dict[str, str]:
        """Each secret's variable, read as the job's execution role would. Raises SecretUnavailable."""
        secrets = container.get("secrets") or []
        if not secrets:
            return {}
        secretsmanager, ssm = self.plumbing.client("secretsmanager"), self.plumbing.client("ssm")
        return {item["name"]: resolve_secret(secretsmanager, ssm, item["valueFrom"]) for item in secrets}

    def _begin_attempt(self, job: Any) -> int:
        job.status = "STARTING"
        job.job_started_at = dt.datetime.now()
        job.log_stream_name = job._stream_name
        job._start_attempt()
        self._emit_job_change(job)
        return len(job.attempts)

    def _run_attempt(self, job: Any) -> tuple[int, str]:
        """One attempt: a local process under the job's timeout, stoppable by TerminateJob."""
        attempt = self._begin_attempt(job)
        command = self._job_command(job)
        try:
            env = self._job_environment(job)
        except SecretUnavailable as error:
            reason = f"ResourceInitializationError: unable to pull secrets: {error}"
            self.plumbing.log(f"job {job.job_name} attempt {attempt}: {reason}")
            job.latest_attempt["statusReason"] = reason
            return 127, reason
        log_path = local_log_file(self.logs_dir, job.job_id, attempt)  # collation links it (links.job_log_url)
        started = time.monotonic()
        with log_path.open("wb") as log:
            try:
                process = subprocess.Popen(command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)
            except OSError as error:
                return 127, f"CannotStartContainerError: {error}"
            self._processes[job.job_id] = process
            job.status = "RUNNING"
            self._emit_job_change(job)
            reason = self._supervise(job, process, log_path, attempt, started)
            exit_code = process.wait()
            if exit_code < 0:  # killed by a signal: a container reports 128 + the signal number
                exit_code = 128 - exit_code
            self._processes.pop(job.job_id, None)
        self._ship_log(job, log_path)
        job.latest_attempt["container"]["exitCode"] = exit_code
        job.latest_attempt["statusReason"] = reason if exit_code else None
        job.job_stopped_at = dt.datetime.now()
        job.latest_attempt["stoppedAt"] = int(job.job_stopped_at.timestamp() * 1000)
        return exit_code, reason

    def _supervise(self, job: Any, process: subprocess.Popen[bytes], log_path: Path, attempt: int, started: float) -> str:
        """Wait for the attempt's process; stop it (SIGTERM, then SIGKILL) on TerminateJob, timeout or
        a simulated spot reclaim. Returns the attempt's status reason."""
        timeout = job._get_attempt_duration()
        interruption = self._interruption(job, attempt)
        chaos = self.chaos.draw(job, attempt, self.is_spot(job)) if self.chaos else None
        hard = False
        while process.poll() is None:
            stop_reason: str | None = None
            elapsed = time.monotonic() - started
            if job.stop:
                stop_reason = job.job_stopped_reason or "Terminated by user"
            elif timeout and elapsed > timeout:
                stop_reason = "Job attempt duration exceeded timeout"
            elif interruption is not None and interruption.after_output.encode() in log_path.read_bytes():
                stop_reason, hard = _HOST_RECLAIMED, interruption.hard
            elif chaos is not None and elapsed > chaos[0]:
                stop_reason, hard = _HOST_RECLAIMED, chaos[1]
            if stop_reason and hard:
                self.plumbing.log(f"job {job.job_name} attempt {attempt}: host lost without warning (SIGKILL)")
                process.kill()
                process.wait()
                return stop_reason
            if stop_reason:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(_TERMINATE_GRACE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                return stop_reason
            time.sleep(0.05)
        return "Essential container in task exited"

    def _interruption(self, job: Any, attempt: int) -> SpotInterruption | None:
        """The simulated reclaim of this attempt: only on a spot-first queue, only the first `times`."""
        age = job_age(job)
        interruption = self.spot_interruptions.get(age) if age is not None else None
        if interruption is None or attempt > interruption.times or not self.is_spot(job):
            return None
        return interruption

    def _ship_log(self, job: Any, log_path: Path) -> None:
        """Send the attempt's output to CloudWatch Logs, as the awslogs driver would."""
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines() or ["(no output)"]
        logs = self.plumbing.client("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=self.job_log_group, logStreamName=job.log_stream_name)
        now = int(time.time() * 1000)
        for start in range(0, len(lines), 1000):
            logs.put_log_events(
                logGroupName=self.job_log_group,
                logStreamName=job.log_stream_name,
                logEvents=[{"timestamp": now, "message": line} for line in lines[start : start + 1000]],
            )
