"""Pre-flight checks: is everything a valid manifest names actually usable, before any job starts?

Run by the validate Lambda (boto3) and by `agesweep validate --preflight`. Problems read like schema
errors (`field.path: what is wrong (what is allowed)`); all are collected before raising.

For an existing job definition a manifest names (workload "definition") its command must match the
manifest: every `Ref::` supplied, every axis and job.parameters value used.

The trainer's input must hold every file it reads (JOB_INPUT_FILES): an s3:// input is listed; an input
on the jobs' EFS mount (e.g. /data/input) is checked only in local mode, where LOCAL_DATA_ENV names
the folder local mode mounts there. On AWS the validate Lambda has no EFS mount: the job itself
reports a missing file there (exit 2, its log tail in the alert).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
from botocore.exceptions import ClientError

from agesweep import axes as sweep_axes
from agesweep.errors import InputMissing, PreflightFailed
from agesweep.manifest import Manifest
from agesweep.manifest_checks import BUILTIN_PARAMETERS
from agesweep.workload import refs_in

_ECR_IMAGE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[^:@]+)(?::(?P<tag>[^@]+)|@(?P<digest>sha256:[a-f0-9]{64}))$"
)
_MISSING_CODES = {"NoSuchBucket", "NoSuchKey", "404", "NotFound"}

# What training.train reads from its --base_data_path: training.layout's INPUT_FILES and the default
# --enrollment_model (the job definition passes no other). The trainer is not in the Lambda layer,
# so the names are repeated here; tests/unit/test_preflight.py keeps them equal.
JOB_INPUT_FILES = (
    "Y_tensor.pt", "E_matrix.pt", "G_matrix.pt", "model_essentials.pt", "reference_trajectories.pt",
    "baselinagefamh.csv", "enrollment_model_W0.0001_fulldata_sexspecific.pt",
)
LOCAL_DATA_ENV = "AGESWEEP_LOCAL_DATA"  # local mode: the folder its jobs' mount points (e.g. /data) map to


def parse_ecr_image(image: str) -> dict[str, str] | None:
    """Registry, region, repository and tag/digest of an ECR image URI; None for other registries."""
    match = _ECR_IMAGE.match(image)
    return {k: v for k, v in match.groupdict().items() if v} if match else None


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


class Preflight:
    """Checks against live AWS resources; clients are injectable (tests use moto's mock_aws)."""

    def __init__(self, batch: Any, ecr: Any, s3: Any) -> None:
        self.batch, self.ecr, self.s3 = batch, ecr, s3

    @classmethod
    def from_session(cls, session: boto3.session.Session | None = None) -> Preflight:
        session = session or boto3.session.Session()
        return cls(session.client("batch"), session.client("ecr"), session.client("s3"))

    def check(self, manifest: Manifest, job_queue: str, job_definition: str) -> dict[str, Any] | None:
        """Raise PreflightFailed (queue/definition/image/access) or InputMissing (s3 input absent).

        Returns the job definition description (camelCase, as Batch returns it) for planning.
        """
        problems: list[str] = []
        missing: list[str] = []
        queue_field = "job.queue" if manifest.job.queue else "job.queue (stack default)"
        def_field = "job.definition" if manifest.job.definition else "job.definition (stack default)"
        problems += self.check_queue(job_queue, queue_field)
        description, def_problems = self.check_job_definition(job_definition, def_field)
        problems += def_problems
        if manifest.workload == "definition" and description is not None:
            problems += definition_command_problems(manifest, description)
        if manifest.job.image:
            problems += self.check_image(manifest.job.image)
        if manifest.workload == "trainer":
            found_problems, missing = self.check_input(manifest.input, description)
            problems += found_problems
        elif manifest.input.startswith("s3://"):
            # your own job reads what it reads: only the bucket is checked (missing, it is a setup problem)
            input_problems, no_bucket = self.check_s3(manifest.input, "input", must_have_objects=False)
            problems += input_problems + no_bucket
        if manifest.output.startswith("s3://"):
            # A missing output bucket is a setup problem, not a missing input.
            output_problems, no_bucket = self.check_s3(manifest.output, "output", must_have_objects=False)
            problems += output_problems + no_bucket
        if problems:
            raise PreflightFailed("\n".join(problems + missing))
        if missing:
            raise InputMissing("\n".join(missing))
        return description

    def check_queue(self, ref: str, field: str = "job.queue") -> list[str]:
        try:
            queues = self.batch.describe_job_queues(jobQueues=[ref]).get("jobQueues", [])
        except ClientError as exc:
            return [f"{field}: cannot describe job queue {ref!r}: {exc.response['Error'].get('Code')} (a queue this stack may use)"]
        if not queues:
            return [f"{field}: job queue {ref!r} not found (an existing job queue name or ARN)"]
        queue = queues[0]
        state, status = queue.get("state"), queue.get("status")
        if state != "ENABLED" or status != "VALID":
            return [f"{field}: job queue {ref!r} is {state}/{status} (an ENABLED, VALID job queue)"]
        return []

    def describe_job_definition(self, ref: str) -> dict[str, Any] | None:
        """Latest ACTIVE revision for a bare name; the exact revision for name:revision or an ARN."""
        found: list[dict[str, Any]]
        if ref.startswith("arn:"):
            found = self.batch.describe_job_definitions(jobDefinitions=[ref]).get("jobDefinitions", [])
        else:
            # name or name:revision (filtering by name works the same on AWS and on moto)
            name, _, revision = ref.partition(":")
            found = [
                d
                for page in self.batch.get_paginator("describe_job_definitions").paginate(jobDefinitionName=name)
                for d in page.get("jobDefinitions", [])
                if d.get("jobDefinitionName") == name
            ]
            if revision:
                found = [d for d in found if str(d.get("revision")) == revision]
            else:
                found = [d for d in found if d.get("status") == "ACTIVE"]
        if not found:
            return None
        return max(found, key=lambda d: d.get("revision", 0))

    def check_job_definition(self, ref: str, field: str = "job.definition") -> tuple[dict[str, Any] | None, list[str]]:
        try:
            description = self.describe_job_definition(ref)
        except ClientError as exc:
            code = exc.response["Error"].get("Code")
            return None, [f"{field}: cannot describe job definition {ref!r}: {code} (a definition this stack may use)"]
        if description is None:
            return None, [f"{field}: job definition {ref!r} not found (an ACTIVE job definition name, name:revision or ARN)"]
        if description.get("status") != "ACTIVE":
            return None, [f"{field}: job definition {ref!r} is {description.get('status')} (an ACTIVE job definition)"]
        if description.get("type") != "container":
            return None, [f"{field}: job definition {ref!r} is of type {description.get('type')} (a container job definition)"]
        return description, []

    def check_image(self, image: str, field: str = "job.image") -> list[str]:
        parts = parse_ecr_image(image)
        if parts is None:
            return []  # not ECR (e.g. a public registry): Batch pulls it; nothing to look up here
        image_id = {"imageDigest": parts["digest"]} if "digest" in parts else {"imageTag": parts["tag"]}
        ecr = self.ecr
        if ecr.meta.region_name != parts["region"]:
            ecr = boto3.client("ecr", region_name=parts["region"])
        try:
            ecr.describe_images(registryId=parts["registry"], repositoryName=parts["repo"], imageIds=[image_id])
        except ClientError as exc:
            code = exc.response["Error"].get("Code")
            if code == "RepositoryNotFoundException":
                return [f"{field}: ECR repository {parts['repo']!r} not found in {parts['registry']} (an existing repository)"]
            if code == "ImageNotFoundException":
                return [f"{field}: image {image!r} not found in ECR (a pushed tag or digest)"]
            return [f"{field}: cannot look up {image!r} in ECR: {code} (an image this stack may pull)"]
        return []

    def check_input(self, uri: str, description: dict[str, Any] | None) -> tuple[list[str], list[str]]:
        """(problems, missing files) of the manifest's input: every JOB_INPUT_FILES file must be there."""
        if uri.startswith("s3://"):
            problems, missing = self.check_s3(uri, "input", must_have_objects=True)
            if problems or missing:
                return problems, missing
            bucket, prefix = _split_s3(uri)
            keys = {
                obj["Key"]
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=_folder(prefix))
                for obj in page.get("Contents", [])
            }
            return [], [_missing_file(uri, name) for name in JOB_INPUT_FILES if _folder(prefix) + name not in keys]
        folder = local_input_folder(uri, description)
        if folder is None:
            return [], []  # EFS on AWS: the validate Lambda has no mount; the job checks its input
        return [], [_missing_file(uri, name, folder) for name in JOB_INPUT_FILES if not (folder / name).is_file()]

    def check_s3(self, uri: str, field: str, must_have_objects: bool) -> tuple[list[str], list[str]]:
        """Bucket reachable; for inputs, at least one object under the prefix (none: every input file is missing)."""
        bucket, prefix = _split_s3(uri)
        try:
            if not must_have_objects:
                self.s3.head_bucket(Bucket=bucket)
                return [], []
            listing = self.s3.list_objects_v2(Bucket=bucket, Prefix=_folder(prefix), MaxKeys=1)
        except ClientError as exc:
            code = str(exc.response["Error"].get("Code"))
            if code in _MISSING_CODES:
                return [], [f"{field}: bucket {bucket!r} does not exist (an existing bucket)"]
            return [f"{field}: cannot read {uri}: {code} (a location the stack's roles may read)"], []
        if listing.get("KeyCount", 0) == 0:
            return [], [_missing_file(uri, name) for name in JOB_INPUT_FILES]
        return [], []


def definition_command_problems(manifest: Manifest, description: dict[str, Any]) -> list[str]:
    """An existing definition's command against the manifest: each Ref:: is supplied (an axis,
    job.parameters, the definition's own default parameters or agesweep's builtins), and each name
    the manifest supplies is used."""
    name = f"{description.get('jobDefinitionName')}:{description.get('revision')}"
    command = [str(part) for part in (description.get("containerProperties") or {}).get("command") or []]
    defaults = list(description.get("parameters") or {})
    by_axis = {p: axis for axis, spec in manifest.axes.items() for p in sweep_axes.supplied_names(axis, spec)}
    supplied = [*by_axis, *manifest.job.parameters, *defaults, *BUILTIN_PARAMETERS]
    problems: list[str] = []
    for i, part in enumerate(command):
        for ref in refs_in([part]):
            if ref not in supplied:
                problems.append(
                    f"job.definition: Ref::{ref} in command[{i}] of {name!r} is not supplied ({_hint(ref, supplied)}an "
                    f"axis, job.parameters, the definition's parameters, or agesweep's {', '.join(BUILTIN_PARAMETERS)})"
                )
    used = set(refs_in(command))
    refs = sorted(used)
    for parameter, axis in by_axis.items():
        if parameter not in used:
            problems.append(
                f"axes.{axis}: {parameter!r} is not used by the command of {name!r} "
                f"({_hint(parameter, refs)}a Ref:: of its command: {', '.join(refs) or 'none'})"
            )
    for parameter in manifest.job.parameters:
        if parameter not in used:
            problems.append(
                f"job.parameters.{parameter}: not used by the command of {name!r} "
                f"({_hint(parameter, refs)}a Ref:: of its command: {', '.join(refs) or 'none'})"
            )
    return problems


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _folder(prefix: str) -> str:
    return f"{prefix.rstrip('/')}/" if prefix else ""


def _missing_file(uri: str, name: str, local: Path | None = None) -> str:
    where = f" (local mode: {local / name})" if local is not None else ""
    return f"input: {uri.rstrip('/')}/{name} is missing{where} (a file the job reads)"


def local_input_folder(uri: str, description: dict[str, Any] | None) -> Path | None:
    """Local mode only: the folder on this machine that an input under one of the job definition's
    mount points (e.g. /data/input) is; None on AWS or for a path on no mount."""
    data = os.environ.get(LOCAL_DATA_ENV)
    if not data or description is None:
        return None
    path = PurePosixPath(uri)
    for mount in (description.get("containerProperties") or {}).get("mountPoints") or []:
        root = PurePosixPath(mount.get("containerPath") or "/")
        if path == root or root in path.parents:
            return Path(data) / path.relative_to(root)
    return None
